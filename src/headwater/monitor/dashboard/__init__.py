"""The dashboard: ``headwater monitor`` serves one auto-refreshing page of pipelines, runs,
ingestion rates, data quality, freshness and lag, alerts, the quarantine, stream processors and
models. Charts are SVG drawn on the server; every file the page loads comes from this package.

    >>> import headwater.monitor.dashboard as dash
    >>> callable(dash.collect)
    True

FastAPI and uvicorn come with ``pip install 'headwater[serve]'``; they load only when the app
is created.
"""

from __future__ import annotations

from headwater.core import lazy_exports

# public name -> module that defines it; loaded on first use so FastAPI loads only when needed
_EXPORTS = {
    "API_KEY_ENV": "headwater.monitor.dashboard._app",
    "create_app": "headwater.monitor.dashboard._app",
    "serve": "headwater.monitor.dashboard._app",
    "Snapshot": "headwater.monitor.dashboard._data",
    "collect": "headwater.monitor.dashboard._data",
    "ingestion_series": "headwater.monitor.dashboard._data",
    "quality_series": "headwater.monitor.dashboard._data",
    "pipeline_views": "headwater.monitor.dashboard._data",
    "page": "headwater.monitor.dashboard._page",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

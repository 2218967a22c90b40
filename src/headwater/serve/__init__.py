"""The model server: one FastAPI/uvicorn service for registered classifiers, regressors and
recommenders, with online state (in-process or Redis), a durable interaction log, hot reload,
A/B splits and shadow scoring.

    from headwater.serve import ServeSettings, run_server
    run_server(ServeSettings("churn@challenger", api_key="..."), tracker=Tracker.for_project(p))

FastAPI and uvicorn (``pip install 'headwater[serve]'``) load on first use.
"""

from __future__ import annotations

from headwater.core import lazy_exports

_NAMES = {
    "API_KEY_ENV": "._settings", "ServeSettings": "._settings", "api_key_from_env": "._settings",
    "Server": "._server", "Variant": "._server", "bucket": "._server",
    "Predictor": "._predictor", "parse_rows": "._predictor",
    "Interaction": "._state", "MemoryState": "._state", "RedisState": "._state",
    "open_state": "._state",
    "InteractionLog": "._log", "read_log": "._log", "topic_for": "._log",
    "ServerMetrics": "._metrics",
    "create_app": "._app",
    "build": "._run", "run_server": "._run", "serving": "._run",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_exports(__name__, _NAMES)

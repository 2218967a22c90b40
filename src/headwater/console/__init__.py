"""Terminal renderers shared by the CLI and the quickstart (below both; nothing here reads files,
parses options or exits): Arrow tables, run summaries, quality reports, training and CV results.

    >>> import headwater.console as hc
    >>> "run_summary" in hc.__all__
    True
"""

from __future__ import annotations

from headwater.core import lazy_exports

# public name -> module that defines it; loaded on first use (pyarrow, Rich)
_EXPORTS = {
    "arrow_table": "headwater.console._tables",
    "run_summary": "headwater.console._runs",
    "quality_report": "headwater.console._runs",
    "train_leaderboard": "headwater.console._train",
    "train_metrics": "headwater.console._train",
    "print_train_result": "headwater.console._train",
    "cv_leaderboard": "headwater.console._cv",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

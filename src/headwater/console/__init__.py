"""Terminal renderers shared by the CLI and the quickstart (below both; nothing here reads files,
parses options or exits): Arrow tables, run summaries, quality reports, training and CV results.

    >>> import headwater.console as hc
    >>> "run_summary" in hc.__all__
    True
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'headwater.console' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__

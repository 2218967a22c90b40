"""Where data lands and what is remembered: warehouse, lake, PostgreSQL, state, run records.

Names load on first use, so that importing a constant (``QUARANTINE_TABLE``) does not load DuckDB,
Delta Lake and SQLAlchemy: ``headwater --help`` stays fast.

    >>> import headwater.store as hs
    >>> hs.QUARANTINE_TABLE
    '_hw_quarantine'
"""

from __future__ import annotations

from headwater.core import lazy_exports

# public name -> module that defines it
_EXPORTS = {
    "QUARANTINE_SCHEMA": "headwater.store._base",
    "QUARANTINE_TABLE": "headwater.store._base",
    "STATE_TABLE": "headwater.store._base",
    "Store": "headwater.store._base",
    "Transaction": "headwater.store._base",
    "quote": "headwater.store._base",
    "DeltaStore": "headwater.store._delta",
    "DuckDBStore": "headwater.store._duckdb",
    "Evolution": "headwater.store._evolve",
    "plan_evolution": "headwater.store._evolve",
    "open_store": "headwater.store._open",
    "run_store": "headwater.store._open",
    "recorded_run": "headwater.store._open",
    "PostgresStore": "headwater.store._postgres",
    "RunStore": "headwater.store._runs",
    "metadata_engine": "headwater.store._metadata",
    "metadata_url": "headwater.store._metadata",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Where data lands and what is remembered: warehouse, lake, PostgreSQL, state, run records."""

from headwater.store._base import (
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    STATE_TABLE,
    Store,
    Transaction,
    literal,
    quote,
)
from headwater.store._delta import DeltaStore
from headwater.store._duckdb import DuckDBStore
from headwater.store._evolve import Evolution, plan_evolution
from headwater.store._open import open_store, run_store
from headwater.store._postgres import PostgresStore
from headwater.store._runs import RunStore

__all__ = [
    "QUARANTINE_SCHEMA",
    "QUARANTINE_TABLE",
    "STATE_TABLE",
    "DeltaStore",
    "DuckDBStore",
    "Evolution",
    "PostgresStore",
    "RunStore",
    "Store",
    "Transaction",
    "literal",
    "open_store",
    "plan_evolution",
    "quote",
    "run_store",
]

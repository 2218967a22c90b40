"""What every store offers: state, one transaction for rows + quarantine + state, queries."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pyarrow as pa

from headwater.core import State, WriteMode

#: Table that holds every quarantined row, in the same store as the data, written in the
#: same transaction.
QUARANTINE_TABLE = "_hw_quarantine"
#: Table that holds committed positions per pipeline and key.
STATE_TABLE = "_hw_state"

QUARANTINE_SCHEMA = pa.schema([
    ("id", pa.string()),                # "<run id>:<n>", unique
    ("run_id", pa.string()),
    ("pipeline", pa.string()),
    ("table_name", pa.string()),        # the table the row was meant for
    ("source", pa.string()),            # file path, URL, schema.table
    ("position", pa.int64()),           # line, record or offset in the source
    ("unit", pa.string()),              # what position counts: line, record, offset
    ("raw", pa.string()),               # the row as read, JSON object of column -> text
    ("rules", pa.list_(pa.string())),   # every rule it failed, e.g. "type(amount)"
    ("reasons", pa.list_(pa.string())), # one message per rule, for people
    ("quarantined_at", pa.timestamp("us", tz="UTC")),
    ("replayed_by", pa.string()),       # run id of the replay that loaded it, else null
])


class Transaction(ABC):
    """Rows, quarantined rows and state that commit together or not at all."""

    @abstractmethod
    def write(self, table: str, data: pa.Table, *, mode: WriteMode = "append",
              primary_key: list[str] | None = None) -> int:
        """Write rows to ``table``; evolve its schema if needed. Returns rows written."""

    def write_stream(self, table: str, tables: Iterable[pa.Table], *,
                     mode: WriteMode = "append", primary_key: list[str] | None = None) -> int:
        """Write a stream of tables to ``table``, as :meth:`write` would one by one (what each
        writes is in ``mode``; ``replace`` replaces the table once per transaction). Returns
        rows written. Stores that can insert a stream in one statement override this."""
        return sum(self.write(table, data, mode=mode, primary_key=primary_key)
                   for data in tables)

    @abstractmethod
    def delete_all(self, table: str) -> None:
        """Delete every row of ``table``, keeping its columns (no table: nothing to do)."""

    @abstractmethod
    def quarantine(self, rows: pa.Table) -> int:
        """Add rows (``QUARANTINE_SCHEMA``) to the quarantine. Returns rows written."""

    @abstractmethod
    def set_state(self, key: str, position: dict[str, Any]) -> None:
        """Record that ``key`` is loaded up to ``position``."""

    @abstractmethod
    def clear_state(self) -> None:
        """Forget every position of this pipeline (for mode replace: reload everything)."""

    @abstractmethod
    def mark_replayed(self, ids: list[str], run_id: str) -> None:
        """Mark quarantined rows as loaded by a replay run."""


class Store(ABC):
    """A place data lands: the DuckDB warehouse, PostgreSQL, or a Delta Lake."""

    #: ``duckdb``, ``postgres`` or ``delta``.
    kind: str = "store"

    @abstractmethod
    def state(self, pipeline: str) -> State:
        """Positions committed for ``pipeline``: ``key -> position``."""

    @abstractmethod
    def transaction(self, pipeline: str, run_id: str) -> AbstractContextManager[Transaction]:
        """A transaction that commits on a clean exit and rolls back on an exception."""

    @abstractmethod
    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Run SQL (``?`` or ``$1`` placeholders as the engine uses) and return an Arrow table."""

    @abstractmethod
    def tables(self) -> list[str]:
        """User tables in this store (headwater's own ``_hw_*`` tables excluded)."""

    def read_table(self, table: str) -> pa.Table:
        """A whole table as Arrow."""
        return self.query(f"SELECT * FROM {quote(table)}")

    def batches(self, sql: str, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        """Stream a query's result batch by batch (default: one table, sliced)."""
        yield from self.query(sql).to_batches(max_chunksize=batch_rows)

    def close(self) -> None:  # noqa: B027 - optional for stores without a connection
        """Release connections."""


def quote(identifier: str) -> str:
    """Quote an SQL identifier: ``orders`` -> ``"orders"``; ``a"b`` -> ``"a""b"``.

    >>> quote('we"ird')
    '"we""ird"'
    """
    return '"' + identifier.replace('"', '""') + '"'

"""The embedded warehouse: one DuckDB file holding tables, quarantine and state."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from headwater.core import POSITION, SinkError, State, WriteMode
from headwater.core._arrow import cast_column
from headwater.store._base import (
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    STATE_TABLE,
    Store,
    Transaction,
    quote,
)
from headwater.store._evolve import plan_evolution
from headwater.store._prepare import dedupe_on_key, prepare_rows

_INCOMING = "_hw_incoming"
#: How long opening the file waits for another process to let go of it.
LOCK_WAIT_S = 3.0


class DuckDBStore(Store):
    """A DuckDB file used as the warehouse.

    Parameters
    ----------
    path:
        The database file; its folder is created on first use.
    read_only:
        Open without taking the write lock (several readers may share the file).

    >>> import tempfile, pyarrow as pa
    >>> store = DuckDBStore(tempfile.mkdtemp() + "/w.duckdb")
    >>> with store.transaction("demo", "run-1") as tx:
    ...     tx.write("t", pa.table({"a": [1, 2]}))
    2
    >>> store.query("SELECT max(a) AS m FROM t").to_pylist()
    [{'m': 2}]
    """

    kind = "duckdb"

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._con: duckdb.DuckDBPyConnection | None = None
        self._schemas: dict[str, pa.Schema | None] = {}

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The open connection (opened, and headwater's tables created, on first use)."""
        if self._con is None:
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            elif not self.path.exists():
                raise SinkError(f"warehouse {self.path} does not exist yet",
                                hint="load something first, e.g. "
                                "`headwater ingest file PATH --table NAME`")
            self._con = self._connect()
            if not self.read_only:
                self._create_own_tables()
        return self._con

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Connect, waiting up to ``LOCK_WAIT_S`` while another process holds the file (a
        reader such as the dashboard holds it for milliseconds; a writer for its run)."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.IOException as exc:
                if time.monotonic() >= deadline:
                    raise SinkError(f"cannot open warehouse {self.path}: {exc}",
                                    hint="another headwater process may be writing to it; "
                                    "wait for it to finish") from None
                time.sleep(0.05)

    def _create_own_tables(self) -> None:
        con = self.con
        con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (pipeline VARCHAR, key VARCHAR, "
                    "position JSON, run_id VARCHAR, updated_at TIMESTAMPTZ DEFAULT now(), "
                    "PRIMARY KEY (pipeline, key))")
        con.register("_hw_qschema", QUARANTINE_SCHEMA.empty_table())
        con.execute(f"CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} AS SELECT * FROM _hw_qschema")
        con.unregister("_hw_qschema")

    def state(self, pipeline: str) -> State:
        """Positions committed for ``pipeline``."""
        if self.read_only and not self.path.exists():
            return State()
        rows = self.con.execute(
            f"SELECT key, position FROM {STATE_TABLE} WHERE pipeline = ?", [pipeline]
        ).fetchall()
        return State({key: json.loads(pos) for key, pos in rows})

    @contextmanager
    def transaction(self, pipeline: str, run_id: str) -> Iterator[Transaction]:
        """Rows, quarantine and state commit together; an exception rolls all of it back."""
        con = self.con
        con.begin()
        try:
            yield _DuckDBTransaction(con, pipeline, run_id, self._schemas)
        except BaseException:
            con.rollback()
            self._schemas.clear()       # what the transaction saw is gone with it
            raise
        else:
            con.commit()

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Run SQL with ``?`` placeholders; return Arrow."""
        self._schemas.clear()           # the SQL may change tables
        try:
            relation = self.con.sql(sql, params=params or None)
            return pa.table({}) if relation is None else relation.to_arrow_table()
        except duckdb.Error as exc:
            raise SinkError(f"query failed: {exc}",
                            hint="`headwater sql \"SHOW TABLES\"` lists the tables") from None

    def batches(self, sql: str, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        """Stream a query's result without holding it all in memory."""
        reader = self.con.sql(sql).to_arrow_reader(batch_rows)
        yield from reader

    def tables(self) -> list[str]:
        """User tables (``_hw_*`` excluded)."""
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_name NOT LIKE '\\_hw\\_%' ESCAPE '\\' "
            "ORDER BY table_name").fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        """Close the connection."""
        if self._con is not None:
            self._con.close()
            self._con = None


class _DuckDBTransaction(Transaction):
    def __init__(self, con: duckdb.DuckDBPyConnection, pipeline: str, run_id: str,
                 schemas: dict[str, pa.Schema | None]) -> None:
        self.con = con
        self.pipeline = pipeline
        self.run_id = run_id
        self._replaced: set[str] = set()
        #: Table -> its Arrow schema (None: no such table), as the store last saw it. The
        #: store's connection holds the file's write lock, so only its own transactions change
        #: tables: one look per table lasts until a rollback or a query (which clear it).
        self._schemas = schemas

    def _schema(self, table: str) -> pa.Schema | None:
        """The table's columns as Arrow, or None when it does not exist."""
        if table not in self._schemas:
            exists = self.con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
                "AND table_name = ?", [table]).fetchall()[0][0]
            self._schemas[table] = self._arrow_schema(table) if exists else None
        return self._schemas[table]

    def _arrow_schema(self, table: str) -> pa.Schema:
        """The table's columns as Arrow types; UUID columns as Arrow's UUID (DuckDB hands their
        values out as text)."""
        schema = self.con.sql(f"SELECT * FROM {quote(table)} LIMIT 0").to_arrow_table().schema
        for name, sql_type, *_ in self.con.execute(f"DESCRIBE {quote(table)}").fetchall():
            if sql_type == "UUID":
                schema = schema.set(schema.get_field_index(name), pa.field(name, pa.uuid()))
        return schema

    def write(self, table: str, data: pa.Table, *, mode: WriteMode = "append",
              primary_key: list[str] | None = None) -> int:
        data = prepare_rows(data.drop_columns([c for c in (POSITION,) if c in data.column_names]))
        if mode == "merge":
            data = dedupe_on_key(data, primary_key or [], table)
        if mode == "replace" and table not in self._replaced:
            self.con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            self._replaced.add(table)
            self._schemas[table] = None
        existing = self._schema(table)
        if existing is None:
            self.con.register(_INCOMING, data)
            try:
                self.con.execute(f"CREATE TABLE {quote(table)} AS SELECT * FROM {_INCOMING}")
            finally:
                self.con.unregister(_INCOMING)
                self._schemas.pop(table, None)
            return data.num_rows
        if data.num_rows == 0:
            return 0
        plan = plan_evolution(table, existing, data.schema)
        for name, type_ in plan.cast.items():
            data = data.set_column(data.schema.get_field_index(name), name,
                                   cast_column(data[name], type_))
        self.con.register(_INCOMING, data)
        try:
            if plan.add or plan.widen:
                self._schemas.pop(table, None)  # looked at again on the next write
            for fld in plan.add:
                self.con.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(fld.name)} "
                                 f"{self._sql_type(fld.name)}")
            for fld in plan.widen:
                self.con.execute(f"ALTER TABLE {quote(table)} ALTER {quote(fld.name)} "
                                 f"TYPE {self._sql_type(fld.name)}")
            if mode == "merge":
                match = " AND ".join(f"t.{quote(k)} IS NOT DISTINCT FROM s.{quote(k)}"
                                     for k in primary_key or [])
                self.con.execute(f"DELETE FROM {quote(table)} t USING {_INCOMING} s WHERE {match}")
            self.con.execute(f"INSERT INTO {quote(table)} BY NAME SELECT * FROM {_INCOMING}")
        finally:
            self.con.unregister(_INCOMING)
        return data.num_rows

    def write_stream(self, table: str, tables: Iterable[pa.Table], *,
                     mode: WriteMode = "append", primary_key: list[str] | None = None) -> int:
        """Insert a stream of tables with one ``INSERT … SELECT`` per run of one schema.

        The first table of each run goes through :meth:`write` (it creates, replaces or evolves
        the table); the rest of the run streams in through a RecordBatchReader, which DuckDB
        inserts in parallel and in order. A table of another schema ends the run and starts the
        next one. Merges are written table by table (each one deletes the rows it replaces).
        """
        if mode == "merge":
            return super().write_stream(table, tables, mode=mode, primary_key=primary_key)
        rest = iter(tables)
        written = 0
        head = next(rest, None)
        while head is not None:
            written += self.write(table, head, mode=mode, primary_key=primary_key)
            run = _SameSchema(_prepared(head).schema, rest)
            written += self._insert_run(table, run)
            head = run.next_head
        return written

    def _insert_run(self, table: str, run: _SameSchema) -> int:
        """Insert every table of ``run`` in one statement; returns rows inserted."""
        existing = self._schema(table)
        assert existing is not None  # the run's first table created it
        casts = plan_evolution(table, existing, run.schema).cast
        schema = pa.schema([pa.field(f.name, casts.get(f.name, f.type)) for f in run.schema])
        reader = pa.RecordBatchReader.from_batches(schema, run.batches(casts))
        self.con.register(_INCOMING, reader)
        try:
            self.con.execute(f"INSERT INTO {quote(table)} BY NAME SELECT * FROM {_INCOMING}")
        except duckdb.Error:
            # the transaction is aborted (its rollback drops the view); raise the stream's own
            # error (a bad file, a bug) if it has one, not DuckDB's report of it
            if run.error is not None:
                raise run.error from None
            raise
        self.con.unregister(_INCOMING)
        if run.error is not None:
            raise run.error
        return run.rows

    def _sql_type(self, column: str) -> str:
        rows = self.con.execute(f"DESCRIBE SELECT {quote(column)} FROM {_INCOMING}").fetchall()
        return rows[0][1]

    def delete_all(self, table: str) -> None:
        if self._schema(table) is not None:
            self.con.execute(f"DELETE FROM {quote(table)}")

    def quarantine(self, rows: pa.Table) -> int:
        if rows.num_rows == 0:
            return 0
        self.con.register(_INCOMING, rows.select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA))
        try:
            self.con.execute(f"INSERT INTO {QUARANTINE_TABLE} BY NAME SELECT * FROM {_INCOMING}")
        finally:
            self.con.unregister(_INCOMING)
        return rows.num_rows

    def set_state(self, key: str, position: dict[str, Any]) -> None:
        self.con.execute(f"DELETE FROM {STATE_TABLE} WHERE pipeline = ? AND key = ?",
                         [self.pipeline, key])
        self.con.execute(f"INSERT INTO {STATE_TABLE} (pipeline, key, position, run_id) "
                         "VALUES (?, ?, ?, ?)",
                         [self.pipeline, key, json.dumps(position, default=str), self.run_id])

    def clear_state(self) -> None:
        self.con.execute(f"DELETE FROM {STATE_TABLE} WHERE pipeline = ?", [self.pipeline])

    def mark_replayed(self, ids: list[str], run_id: str) -> None:
        if ids:
            self.con.execute(f"UPDATE {QUARANTINE_TABLE} SET replayed_by = ? "
                             "WHERE id IN (SELECT unnest(?::VARCHAR[]))", [run_id, ids])


def _prepared(data: pa.Table) -> pa.Table:
    """Rows as :meth:`_DuckDBTransaction.write` stores them: no ``_hw_pos``, no null types."""
    return prepare_rows(data.drop_columns([c for c in (POSITION,) if c in data.column_names]))


class _SameSchema:
    """The tables of a stream, prepared, up to the first one whose schema differs
    (:attr:`next_head`, None at the end). Errors raised while streaming are kept in
    :attr:`error`: DuckDB reports them as its own, without their type."""

    def __init__(self, schema: pa.Schema, tables: Iterator[pa.Table]) -> None:
        self.schema = schema
        self.tables = tables
        self.rows = 0
        self.next_head: pa.Table | None = None
        self.error: BaseException | None = None

    def batches(self, casts: dict[str, pa.DataType]) -> Iterator[pa.RecordBatch]:
        try:
            for data in self.tables:
                prepared = _prepared(data)
                if not prepared.schema.equals(self.schema):
                    self.next_head = data
                    return
                for name, type_ in casts.items():
                    index = prepared.schema.get_field_index(name)
                    prepared = prepared.set_column(index, name, cast_column(prepared[name], type_))
                self.rows += prepared.num_rows
                yield from prepared.to_batches()
        except BaseException as exc:
            self.error = exc
            raise

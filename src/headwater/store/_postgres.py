"""PostgreSQL as the warehouse: rows, quarantine and state in one database transaction.

Rows travel as Arrow through ADBC's bulk ingest (binary ``COPY``), never row by row. Merge stages
the load in a temporary table, then deletes the rows it replaces and inserts it, in SQL.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

from headwater.core import POSITION, SinkError, State, WriteMode, redact, register_secret, require
from headwater.monitor import get_logger
from headwater.store._base import (
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    STATE_TABLE,
    Store,
    Transaction,
    quote,
)
from headwater.store._evolve import plan_evolution
from headwater.store._pgtypes import arrow_type, decode, normalise, pg_type
from headwater.store._prepare import dedupe_on_key, prepare_rows

log = get_logger(__name__)

_COLUMNS_SQL = """
SELECT a.attname, t.typname, a.atttypmod
FROM pg_attribute a
JOIN pg_class c ON a.attrelid = c.oid
JOIN pg_namespace n ON c.relnamespace = n.oid
JOIN pg_type t ON a.atttypid = t.oid
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


class PostgresStore(Store):
    """A PostgreSQL database used as the warehouse.

    Parameters
    ----------
    url:
        ``postgresql://user:password@host:5432/db`` (a SQLAlchemy ``postgresql+psycopg://`` URL
        works too). The password never appears in errors or logs.
    schema:
        The schema that holds the tables, ``_hw_state`` and ``_hw_quarantine``; created on first
        use.

    Raises
    ------
    SinkError
        When the server cannot be reached or refuses a statement (the message is redacted).

    Example
    -------
    >>> store = PostgresStore("postgresql://postgres@127.0.0.1:5432/test", schema="demo")
    >>> with store.transaction("orders", "run-1") as tx:           # doctest: +SKIP
    ...     tx.write("orders", pa.table({"id": [1, 2]}), mode="merge", primary_key=["id"])
    ...     tx.set_state("orders.csv", {"sha256": "ab12"})
    2
    """

    kind = "postgres"

    def __init__(self, url: str, *, schema: str = "public") -> None:
        self.url = url
        self.schema = schema
        self._con: Any = None
        self._in_transaction = False
        register_secret(urlsplit(url).password)

    # -- connection -------------------------------------------------------------------------

    @property
    def con(self) -> Any:
        """The open ADBC connection (opened, and headwater's tables created, on first use)."""
        if self._con is None:
            dbapi = require("adbc_driver_postgresql.dbapi", "postgres")
            try:
                self._con = dbapi.connect(_libpq_url(self.url), autocommit=True)
            except Exception as exc:
                raise SinkError(f"cannot connect to PostgreSQL {redact(_libpq_url(self.url))}: "
                                f"{redact(str(exc))}",
                                hint="check the store's url in headwater.yaml and that the "
                                "server accepts connections") from None
            self._setup()
        return self._con

    def _setup(self) -> None:
        s = quote(self.schema)
        q_cols = ", ".join(f"{quote(f.name)} {pg_type(f.type, f.name)}" for f in QUARANTINE_SCHEMA)
        with self._cursor() as cur:
            lock = "hashtext('headwater:setup:' || $1)"
            self._run(cur, f"SELECT pg_advisory_lock({lock})", [self.schema])
            try:
                self._run(cur, f"CREATE SCHEMA IF NOT EXISTS {s}")
                self._run(cur, f"CREATE TABLE IF NOT EXISTS {s}.{STATE_TABLE} ("
                          "pipeline text NOT NULL, key text NOT NULL, position jsonb, run_id text, "
                          "updated_at timestamptz DEFAULT now(), PRIMARY KEY (pipeline, key))")
                self._run(cur, f"CREATE TABLE IF NOT EXISTS {s}.{QUARANTINE_TABLE} ({q_cols})")
            finally:
                self._run(cur, f"SELECT pg_advisory_unlock({lock})", [self.schema])
            self._run(cur, f"SET search_path TO {s}, public")

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        cur = self.con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def _run(self, cur: Any, sql: str, params: list[Any] | None = None) -> None:
        """Execute a statement; wrap driver errors without leaking credentials."""
        try:
            cur.execute(sql, params) if params else cur.execute(sql)
        except Exception as exc:
            raise SinkError(f"PostgreSQL ({self.schema}) refused: {redact(str(exc)).strip()}",
                            hint=f"statement: {redact(sql.strip())[:300]}") from None

    def _table(self, table: str) -> str:
        return f"{quote(self.schema)}.{quote(table)}"

    # -- Store ------------------------------------------------------------------------------

    def state(self, pipeline: str) -> State:
        """Positions committed for ``pipeline``."""
        rows = self._fetch(f"SELECT key, position::text FROM {self._table(STATE_TABLE)} "
                           "WHERE pipeline = $1", [pipeline])
        return State({key: json.loads(pos) for key, pos in rows})

    @contextmanager
    def transaction(self, pipeline: str, run_id: str) -> Iterator[Transaction]:
        """Rows, quarantine and state commit together; an exception rolls all of it back."""
        with self._cursor() as cur:
            self._run(cur, "BEGIN")
            self._in_transaction = True
            try:
                yield _PostgresTransaction(self, cur, pipeline, run_id)
            except BaseException:
                try:
                    cur.execute("ROLLBACK")
                except Exception as exc:  # the connection is gone: the server rolled back
                    log.warning("rollback_failed", store="postgres", error=redact(str(exc)))
                raise
            else:
                self._run(cur, "COMMIT")
            finally:
                self._in_transaction = False

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Run SQL with ``$1`` (or ``?``) placeholders; return Arrow (numerics as decimals)."""
        with self._cursor() as cur:
            self._run(cur, _dollar_params(sql) if params else sql, params)
            if cur.description is None:
                return pa.table({})
            return decode(cur.fetch_arrow_table())

    def batches(self, sql: str, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        """Stream a query's result: the server sends it as a binary COPY stream, batch by batch."""
        with self._cursor() as cur:
            self._run(cur, sql)
            for batch in cur.fetch_record_batch():
                table = decode(pa.Table.from_batches([batch]))
                yield from table.to_batches(max_chunksize=batch_rows)

    def tables(self) -> list[str]:
        """User tables in the schema (``_hw_*`` excluded)."""
        rows = self._fetch("SELECT table_name FROM information_schema.tables "
                           "WHERE table_schema = $1 AND table_name NOT LIKE '\\_hw\\_%' "
                           "ORDER BY table_name", [self.schema])
        return [r[0] for r in rows]

    def read_table(self, table: str) -> pa.Table:
        """A whole table as Arrow."""
        return self.query(f"SELECT * FROM {self._table(table)}")

    def close(self) -> None:
        """Close the connection."""
        if self._con is not None:
            try:
                self._con.close()
            finally:
                self._con = None

    def _fetch(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            self._run(cur, sql, params)
            return cur.fetchall()


class _PostgresTransaction(Transaction):
    def __init__(self, store: PostgresStore, cur: Any, pipeline: str, run_id: str) -> None:
        self.store = store
        self.cur = cur
        self.pipeline = pipeline
        self.run_id = run_id
        self._replaced: set[str] = set()
        self._temp = itertools.count()

    def _columns(self, table: str) -> pa.Schema | None:
        self.store._run(self.cur, _COLUMNS_SQL, [self.store.schema, table])
        rows = self.cur.fetchall()
        if not rows:
            return None
        return pa.schema([pa.field(name, arrow_type(typname, typmod))
                          for name, typname, typmod in rows])

    def _ingest(self, table: str, data: pa.Table, *, temporary: bool = False) -> None:
        try:
            if temporary:
                self.cur.adbc_ingest(table, data, mode="create", temporary=True)
            else:
                self.cur.adbc_ingest(table, data, mode="append", db_schema_name=self.store.schema)
        except Exception as exc:
            raise SinkError(f"bulk load into '{table}' failed: {redact(str(exc)).strip()}",
                            hint="check the column types of the table against this load "
                            "(`headwater sql` can show them)") from None

    def delete_all(self, table: str) -> None:
        if self._columns(table) is not None:
            self.store._run(self.cur, f"DELETE FROM {self.store._table(table)}")

    def write(self, table: str, data: pa.Table, *, mode: WriteMode = "append",
              primary_key: list[str] | None = None) -> int:
        run = self.store._run
        target = self.store._table(table)
        data = normalise(prepare_rows(data.drop_columns(
            [c for c in (POSITION,) if c in data.column_names])))
        if mode == "merge":
            data = dedupe_on_key(data, primary_key or [], table)
        if mode == "replace" and table not in self._replaced:
            run(self.cur, f"DROP TABLE IF EXISTS {target}")
            self._replaced.add(table)
        existing = self._columns(table)
        if existing is None:
            ddl = ", ".join(f"{quote(f.name)} {pg_type(f.type, f.name)}" for f in data.schema)
            run(self.cur, f"CREATE TABLE {target} ({ddl})")
            if data.num_rows:
                self._ingest(table, data)
            return data.num_rows
        if data.num_rows == 0:
            return 0
        plan = plan_evolution(table, existing, data.schema)
        for name, type_ in plan.cast.items():
            data = data.set_column(data.schema.get_field_index(name), name, data[name].cast(type_))
        for fld in plan.add:
            run(self.cur, f"ALTER TABLE {target} ADD COLUMN {quote(fld.name)} "
                f"{pg_type(fld.type, fld.name)}")
        for fld in plan.widen:
            sql_type = pg_type(fld.type, fld.name)
            run(self.cur, f"ALTER TABLE {target} ALTER COLUMN {quote(fld.name)} TYPE {sql_type} "
                f"USING {quote(fld.name)}::{sql_type}")
        if mode == "merge":
            self._merge(target, data, primary_key or [])
        else:
            self._ingest(table, data)
        return data.num_rows

    def _merge(self, target: str, data: pa.Table, primary_key: list[str]) -> None:
        """Stage ``data`` in a temporary table, delete the rows it replaces, insert it."""
        run = self.store._run
        temp = f"_hw_incoming_{next(self._temp)}"
        self._ingest(temp, data, temporary=True)
        try:
            run(self.cur, f"ANALYZE {quote(temp)}")
            nulls = any(data[k].null_count for k in primary_key)
            # `=` lets PostgreSQL hash-join; IS NOT DISTINCT FROM (null keys match) cannot.
            match = " AND ".join(
                f"t.{quote(k)} IS NOT DISTINCT FROM s.{quote(k)}" if nulls
                else f"t.{quote(k)} = s.{quote(k)}" for k in primary_key)
            run(self.cur, f"DELETE FROM {target} t USING {quote(temp)} s WHERE {match}")
            cols = ", ".join(quote(c) for c in data.column_names)
            run(self.cur, f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {quote(temp)}")
        finally:
            run(self.cur, f"DROP TABLE IF EXISTS {quote(temp)}")

    def quarantine(self, rows: pa.Table) -> int:
        if rows.num_rows == 0:
            return 0
        data = normalise(rows.select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA))
        self._ingest(QUARANTINE_TABLE, data)
        return rows.num_rows

    def set_state(self, key: str, position: dict[str, Any]) -> None:
        self.store._run(
            self.cur,
            f"INSERT INTO {self.store._table(STATE_TABLE)} (pipeline, key, position, run_id) "
            "VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT (pipeline, key) DO UPDATE SET "
            "position = EXCLUDED.position, run_id = EXCLUDED.run_id, updated_at = now()",
            [self.pipeline, key, json.dumps(position, default=str), self.run_id])

    def clear_state(self) -> None:
        self.store._run(self.cur,
                        f"DELETE FROM {self.store._table(STATE_TABLE)} WHERE pipeline = $1",
                        [self.pipeline])

    def mark_replayed(self, ids: list[str], run_id: str) -> None:
        if ids:
            self.store._run(
                self.cur,
                f"UPDATE {self.store._table(QUARANTINE_TABLE)} SET replayed_by = $1 "
                "WHERE id IN (SELECT jsonb_array_elements_text($2::jsonb))",
                [run_id, json.dumps(ids)])


def _libpq_url(url: str) -> str:
    """``postgresql+psycopg://...`` (SQLAlchemy) -> ``postgresql://...`` (libpq)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    base = scheme.split("+", 1)[0]
    return ("postgresql" if base == "postgres" else base) + sep + rest


def _dollar_params(sql: str) -> str:
    """Turn ``?`` placeholders outside quotes into ``$1``, ``$2``... (PostgreSQL's style).

    >>> _dollar_params("SELECT '?' AS q FROM t WHERE a = ? AND b = ?")
    "SELECT '?' AS q FROM t WHERE a = $1 AND b = $2"
    """
    if "?" not in sql or "$1" in sql:
        return sql
    out: list[str] = []
    quote_char: str | None = None
    n = 0
    for ch in sql:
        if quote_char is not None:
            if ch == quote_char:
                quote_char = None
        elif ch in "'\"":
            quote_char = ch
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    return "".join(out)


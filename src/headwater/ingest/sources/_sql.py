"""Relational sources: PostgreSQL, MariaDB/MySQL and SQLite tables or queries, as Arrow batches.

Full loads read a table in one extract, optionally split into key ranges read in parallel.
Incremental loads read rows whose cursor column lies in ``[last cursor - lookback, max now]``;
the position committed with the rows is the new maximum (plus, without a lookback, the keys seen
at exactly that value, so rows sharing it are neither lost nor loaded twice). With ``mode: merge``
on the primary key the lookback never duplicates.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.core import POSITION, Batch, ConfigError, Extract, Source, SourceError, State
from headwater.core._arrow import DB_TYPE
from headwater.ingest.sources._sql_dialect import (
    Column,
    Dialect,
    PostgresDialect,
    SQLiteDialect,
    dialect_for,
)
from headwater.ingest.sources._sql_types import (
    decode_cursor,
    encode_cursor,
    parse_lookback,
    step_back,
)
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config._sources import SqlSpec

log = get_logger(__name__)

#: Column added when a soft-delete column (or change data capture) says a row is deleted.
DELETED = "hw_deleted"
#: At most this many keys sharing the last cursor value are remembered in the position.
MAX_SEEN_KEYS = 1000

_NAMED_PARAM = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(?<![:\w]):([A-Za-z_]\w*)")


@dataclass
class _Target:
    """One table or query to read."""

    key: str
    label: str
    from_sql: str
    name: str
    columns: list[Column] | None = None
    primary_key: list[str] = field(default_factory=list)


class SqlSource(Source):
    """Tables, a schema or a query of a relational database.

    Parameters
    ----------
    url:
        SQLAlchemy URL: ``postgresql://...``, ``mysql+pymysql://...``, ``sqlite:///file.db``.
        Credentials belong in the environment (``${PGPASSWORD}`` in headwater.yaml).
    tables:
        Tables to read; with neither ``tables`` nor ``query``, every table of ``schema``.
    schema:
        Schema (PostgreSQL) or database (MySQL) of the tables.
    query:
        A SELECT to read instead of tables; ``:name`` placeholders take ``params``.
    cursor:
        Column for incremental loads (``updated_at``, an increasing id); None: full loads.
    lookback:
        How far before the last cursor to read again (``timedelta``-like ``'10m'`` or a number).
    initial:
        First cursor value to read from on the first run.
    soft_delete:
        Column that marks deleted rows; adds ``hw_deleted`` (bool) to every row.
    parallel:
        Read one table in this many key ranges at once (by ``split_by`` or an integer key).
    window:
        ``(start, end)`` of the cursor for a backfill run: read ``start <= cursor < end`` and
        remember that this window is done (separately from the incremental position).

    >>> import sqlite3, tempfile, pathlib
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "app.db"
    >>> con = sqlite3.connect(db)
    >>> _ = con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    >>> _ = con.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b")]); con.commit()
    >>> [e] = SqlSource(f"sqlite:///{db}", tables=["t"]).extracts(State())
    >>> [b.data.num_rows for b in e.batches]
    [2]
    """

    kind = "sql"

    def __init__(self, url: str, *, tables: list[str] | None = None, schema: str | None = None,
                 query: str | None = None, params: dict[str, Any] | None = None,
                 cursor: str | None = None, lookback: str | int | None = None,
                 initial: str | int | None = None, soft_delete: str | None = None,
                 deleted_when: Literal["not_null", "true"] = "not_null", parallel: int = 1,
                 split_by: str | None = None, batch_rows: int = 100_000,
                 root: Path | None = None, window: tuple[Any, Any] | None = None) -> None:
        self.url = url
        self.tables = list(tables or [])
        self.schema = schema
        self.query = query
        self.params = dict(params or {})
        self.cursor = cursor
        self.lookback = lookback
        self.initial = initial
        self.soft_delete = soft_delete
        self.deleted_when = deleted_when
        self.parallel = parallel
        self.split_by = split_by
        self.batch_rows = batch_rows
        self.root = root
        self.window = window

    @classmethod
    def from_spec(cls, spec: SqlSpec, root: Path | None = None, *,
                  window: tuple[Any, Any] | None = None) -> SqlSource:
        """Build from the headwater.yaml model."""
        cursor = spec.cursor
        return cls(
            spec.url.get_secret_value(), tables=spec.tables, schema=spec.db_schema,
            query=spec.query, params=spec.params, cursor=cursor.column if cursor else None,
            lookback=cursor.lookback if cursor else None,
            initial=cursor.initial if cursor else None,
            soft_delete=spec.soft_delete.column if spec.soft_delete else None,
            deleted_when=spec.soft_delete.deleted_when if spec.soft_delete else "not_null",
            parallel=spec.parallel, split_by=spec.split_by, batch_rows=spec.batch_rows,
            root=root, window=window,
        )

    def describe(self) -> str:
        """One line for people."""
        what = "query" if self.query else ", ".join(self.tables) or f"schema {self.schema}"
        mode = f"incremental by {self.cursor}" if self.cursor else "full"
        return f"{self.url.split('://', 1)[0]}: {what} ({mode})"

    # ------------------------------------------------------------------ planning

    def dialect(self) -> Dialect:
        """The database dialect of ``url``."""
        return dialect_for(self.url, root=self.root)

    def targets(self, dialect: Dialect) -> list[_Target]:
        """The tables (or the query) to read, with their columns and keys."""
        if self.query:
            sql, _ = self._bind_named(self.query, dialect)
            digest = hashlib.sha1(self.query.encode()).hexdigest()[:12]
            return [_Target(key=f"query:{digest}", label=f"{dialect.name}:query:{digest}",
                            from_sql=f"({sql}) AS _hw_q", name="query")]
        names = self.tables or dialect.tables(self.schema)
        if not names:
            raise SourceError(f"{dialect.name}: no tables in "
                              f"{'schema ' + self.schema if self.schema else 'the database'}",
                              hint="list them under `tables:` or check `schema:`")
        out = []
        for name in names:
            columns = dialect.columns(name, self.schema)
            qualified = f"{self.schema}.{name}" if self.schema else name
            out.append(_Target(key=qualified, label=f"{dialect.name}:{qualified}",
                               from_sql=dialect.table_ref(name, self.schema), name=name,
                               columns=columns,
                               primary_key=dialect.primary_key(name, self.schema)))
        return out

    def extracts(self, state: State) -> Iterator[Extract]:
        """One extract per table (or the query): its rows and the position to commit."""
        dialect = self.dialect()
        try:
            targets = self.targets(dialect)
            for target in targets:
                self._check_columns(target)
                extract = self._extract(dialect, target, state, several=len(targets) > 1)
                if extract is not None:
                    yield extract
        finally:
            dialect.close()

    def _check_columns(self, target: _Target) -> None:
        if target.columns is None:
            return
        names = [c.name for c in target.columns]
        for role, column in (("cursor", self.cursor), ("soft_delete", self.soft_delete),
                             ("split_by", self.split_by)):
            if column and column not in names:
                raise ConfigError(f"{role} column '{column}' is not in {target.key}",
                                  hint="columns there: " + ", ".join(names))

    # ------------------------------------------------------------------ one table

    def _extract(self, d: Dialect, t: _Target, state: State, *, several: bool) -> Extract | None:
        where: list[str] = []
        params: list[Any] = []
        key = t.key
        position: dict[str, Any]
        if self.window is not None:
            if not self.cursor:
                raise ConfigError("a backfill window needs a cursor column",
                                  hint="add `cursor: {column: updated_at}` to the source")
            start, end = self.window
            key = f"{t.key}@{start}/{end}"
            if key in state:
                log.info("window_already_loaded", source=t.label, window=[str(start), str(end)])
                return None
            ctype = self._cursor_type(d, t)
            c = d.quote(self.cursor)
            n = len(self._query_params(d))
            where += [f"{c} >= {d.param(n, ctype)}", f"{c} < {d.param(n + 1, ctype)}"]
            params += [start, end]
            position = {"window": [str(start), str(end)]}
        elif self.cursor:
            found = self._incremental(d, t, state.get(t.key), where, params)
            if found is None:
                log.info("nothing_new", source=t.label, cursor=self.cursor)
                return None
            position = found
        else:
            position = {"full": True, "read_at": datetime.now(UTC).isoformat()}
        select = self._select_list(d, t)
        meta: dict[str, Any] = {"table": t.name, "primary_key": t.primary_key,
                                "dialect": d.kind}
        if several:
            meta["table_suffix"] = t.name
        batches = self._batches(d, t, select, where, params)
        return Extract(source=t.label, key=key, position=position, batches=batches,
                       unit="row", meta=meta)

    def _select_list(self, d: Dialect, t: _Target) -> str:
        if t.columns is None:
            return "*"
        return ", ".join(d.select_expr(c) for c in t.columns)

    def _cursor_type(self, d: Dialect, t: _Target) -> str | None:
        """The SQL type to cast bound cursor values to (PostgreSQL binds text)."""
        if not isinstance(d, PostgresDialect) or not self.cursor:
            return None
        if t.columns is not None:
            for c in t.columns:
                if c.name == self.cursor:
                    return c.type_sql
        probe = f"SELECT {d.quote(self.cursor)} FROM {t.from_sql} LIMIT 0"
        for batch in d.read(probe, self._query_params(d)):
            meta = batch.schema.field(0).metadata or {}
            return meta.get(DB_TYPE, b"text").decode()
        return "text"

    def _incremental(self, d: Dialect, t: _Target, previous: dict[str, Any] | None,
                     where: list[str], params: list[Any]) -> dict[str, Any] | None:
        """Add the cursor range to ``where``; return the position, or None if nothing is new."""
        assert self.cursor is not None
        c = d.quote(self.cursor)
        ctype = self._cursor_type(d, t)
        base = self._query_params(d)
        lower: Any = None
        last: Any = None
        seen: list[Any] = []
        if previous is not None and "cursor" in previous:
            last = decode_cursor(previous["cursor"], previous.get("kind", "text"))
            lower = step_back(last, parse_lookback(self.lookback), column=self.cursor)
            seen = previous.get("pk_seen_at_cursor") or [] if self.lookback is None else []
        elif self.initial is not None:
            lower = self.initial
        cond = f" WHERE {c} >= {d.param(len(base), ctype)}" if lower is not None else ""
        rows = d.rows(f"SELECT max({c}) FROM {t.from_sql}{cond}",
                      [*base, lower] if lower is not None else base)
        upper = rows[0][0] if rows else None
        if upper is None:
            return None
        if lower is not None:
            where.append(f"{c} >= {d.param(len(base) + len(params), ctype)}")
            params.append(lower)
        where.append(f"{c} <= {d.param(len(base) + len(params), ctype)}")
        params.append(upper)
        pk = t.primary_key
        if seen and len(pk) == 1:
            where.append(self._not_seen(d, t, c, ctype, len(base) + len(params), seen))
            params.append(last)
            params += self._seen_params(d, seen)
        value, kind = encode_cursor(upper)
        position: dict[str, Any] = {"cursor": value, "kind": kind, "column": self.cursor}
        if len(pk) == 1:
            keys = d.rows(f"SELECT {d.quote(pk[0])} FROM {t.from_sql} WHERE "
                          f"{c} = {d.param(len(base), ctype)} LIMIT {MAX_SEEN_KEYS + 1}",
                          [*base, upper])
            if len(keys) <= MAX_SEEN_KEYS:
                position["pk_seen_at_cursor"] = [_jsonable(k[0]) for k in keys]
        return position

    def _not_seen(self, d: Dialect, t: _Target, c: str, ctype: str | None, first: int,
                  seen: list[Any]) -> str:
        """Rows at exactly the last cursor whose keys were already loaded are skipped."""
        pk = d.quote(t.primary_key[0])
        if isinstance(d, PostgresDialect):
            pk_type = next((col.type_sql for col in t.columns or [] if col.name ==
                            t.primary_key[0]), "text")
            keys = (f"SELECT CAST(x AS {pk_type}) FROM json_array_elements_text("
                    f"CAST({d.param(first + 1)} AS json)) AS x")
        else:
            keys = ", ".join(d.param(first + 1 + i) for i in range(len(seen)))
        return f"NOT ({c} = {d.param(first, ctype)} AND {pk} IN ({keys}))"

    def _seen_params(self, d: Dialect, seen: list[Any]) -> list[Any]:
        if isinstance(d, PostgresDialect):
            import json

            return [json.dumps([str(s) for s in seen])]
        return list(seen)

    def _query_params(self, d: Dialect) -> list[Any]:
        return self._bind_named(self.query, d)[1] if self.query else []

    def _bind_named(self, query: str, d: Dialect) -> tuple[str, list[Any]]:
        """``:name`` placeholders to the dialect's positional ones, values in order."""
        values: list[Any] = []

        def swap(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return match.group(0)
            if name not in self.params:
                raise ConfigError(f"query parameter :{name} has no value",
                                  hint=f"add it under `params:` ({name}: VALUE)")
            value = self.params[name]
            values.append(value)
            return d.param(len(values) - 1, _pg_param_type(value) if isinstance(
                d, PostgresDialect) else None)

        return _NAMED_PARAM.sub(swap, query), values

    # ------------------------------------------------------------------ reading

    def _batches(self, d: Dialect, t: _Target, select: str, where: list[str],
                 params: list[Any]) -> Iterator[Batch]:
        base = self._query_params(d)
        types = d.declared_types(t.columns) if isinstance(d, SQLiteDialect) and \
            t.columns is not None else None
        ranges = self._ranges(d, t, where, [*base, *params])
        sqls = []
        for extra in ranges:
            conds = [*where, *([extra] if extra else [])]
            sql = f"SELECT {select} FROM {t.from_sql}"
            if conds:
                sql += " WHERE " + " AND ".join(f"({w})" for w in conds)
            sqls.append(sql)
        log.info("sql_read", source=t.label, ranges=len(sqls), cursor=self.cursor)
        offset = 0
        for batch in _parallel(d, sqls, [*base, *params], self.batch_rows, types):
            if batch.num_rows == 0:
                continue
            table = pa.Table.from_batches([batch])
            table = self._mark_deleted(table, t)
            table = table.append_column(
                POSITION, pa.array(np.arange(offset, offset + table.num_rows, dtype=np.int64)))
            offset += table.num_rows
            yield Batch(data=table)

    def _ranges(self, d: Dialect, t: _Target, where: list[str], params: list[Any]) -> list[str]:
        """Key ranges for a parallel read (``[""]``: one read of everything)."""
        if self.parallel <= 1:
            return [""]
        column = self.split_by
        if column is None and len(t.primary_key) == 1:
            column = t.primary_key[0]
        if column is None:
            log.warning("parallel_needs_key", source=t.label,
                        hint="set split_by to an integer column")
            return [""]
        k = d.quote(column)
        cond = (" WHERE " + " AND ".join(f"({w})" for w in where)) if where else ""
        lo, hi = d.rows(f"SELECT min({k}), max({k}) FROM {t.from_sql}{cond}", params)[0]
        if not isinstance(lo, int) or not isinstance(hi, int):
            if lo is not None:
                log.warning("parallel_needs_integer_key", source=t.label, column=column)
            return [""]
        n = min(self.parallel, max(hi - lo + 1, 1))
        bounds = [lo + (hi - lo + 1) * i // n for i in range(n + 1)]
        # integers from the database formatted by int(): safe to write into the SQL
        out = [f"{k} >= {int(a)} AND {k} < {int(b)}" for a, b in itertools.pairwise(bounds)]
        out[-1] = f"{k} >= {int(bounds[-2])} AND {k} <= {int(hi)}"
        out[0] = f"({out[0]}) OR {k} IS NULL" if column != (t.primary_key or [None])[0] \
            else out[0]
        return out

    def _mark_deleted(self, table: pa.Table, t: _Target) -> pa.Table:
        if not self.soft_delete:
            return table
        if self.soft_delete not in table.column_names:
            raise SourceError(f"soft_delete column '{self.soft_delete}' is not in {t.key}",
                              hint="columns there: " + ", ".join(table.column_names))
        col = table[self.soft_delete]
        if self.deleted_when == "true":
            flag = pc.fill_null(pc.cast(col, pa.bool_()), False)
        else:
            flag = pc.is_valid(col)
        return table.append_column(DELETED, flag)


def _parallel(d: Dialect, sqls: list[str], params: list[Any], batch_rows: int,
              types: list[pa.DataType | None] | None) -> Iterator[pa.RecordBatch]:
    """Run the range queries on their own connections and threads; yield batches as they come.

    At most two batches per range wait in the queue, so memory stays bounded. With one range the
    thread still reads ahead: the database streams the next batch while the pipeline checks and
    writes this one.
    """
    done = object()
    q: queue.Queue[Any] = queue.Queue(maxsize=2 * len(sqls))
    stop = threading.Event()

    def work(sql: str) -> None:
        try:
            for batch in d.read(sql, params, batch_rows=batch_rows, types=types):
                while not stop.is_set():
                    try:
                        q.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:
            q.put(exc)

    threads = [threading.Thread(target=work, args=(sql,), daemon=True, name=f"hw-sql-{i}")
               for i, sql in enumerate(sqls)]
    for thread in threads:
        thread.start()
    remaining = len(threads)
    try:
        while remaining:
            item = q.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        while True:  # unblock workers waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                break
        for thread in threads:
            thread.join(timeout=5)


def _pg_param_type(value: Any) -> str | None:
    """PostgreSQL binds query parameters as text: numbers and booleans are cast back.

    Text stays text; compare it with a timestamp as ``:since::timestamptz``.
    """
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double precision"
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, int | str | float) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)

"""One interface over PostgreSQL (ADBC), MySQL/MariaDB (pymysql) and SQLite (sqlite3).

Each dialect opens its own connection per read (so parallel range reads never share one), streams
Arrow batches with bounded memory, quotes identifiers and binds values. Metadata (tables, columns,
primary keys) comes from SQLAlchemy's inspector.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from headwater.core import ConfigError, NotFoundError, SourceError, redact, require
from headwater.ingest.sources._sql_types import (
    mysql_type,
    pg_plain,
    rows_to_batch,
    sqlite_type,
)
from headwater.monitor import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Column:
    """A column of a table as the database declares it."""

    name: str
    type_sql: str
    sa_type: Any = None


class Dialect(ABC):
    """What differs between databases. Subclasses: PostgreSQL, MySQL, SQLite."""

    name = "sql"
    #: Short kind for logs and run records.
    kind = "sql"

    def __init__(self, url: str, *, root: Path | None = None) -> None:
        self.url = url
        self.root = root or Path(".")
        self._engine: Any = None

    # -- names and values
    def quote(self, identifier: str) -> str:
        """Quote an identifier (a table or column name from config)."""
        return '"' + identifier.replace('"', '""') + '"'

    def table_ref(self, table: str, schema: str | None) -> str:
        """``schema.table``, both quoted."""
        return f"{self.quote(schema)}.{self.quote(table)}" if schema else self.quote(table)

    def param(self, index: int, type_sql: str | None = None) -> str:
        """The placeholder of the ``index``-th bound value (0-based)."""
        return "?"

    def bind(self, value: Any) -> Any:
        """A Python value as the driver binds it."""
        return value

    def select_expr(self, column: Column, source: str | None = None) -> str:
        """The select-list expression for a column (casts types the reader cannot map)."""
        return source or self.quote(column.name)

    # -- reading
    @abstractmethod
    def read(self, sql: str, params: Sequence[Any] = (), *, batch_rows: int = 100_000,
             types: list[pa.DataType | None] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream the result of ``sql`` as Arrow batches."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A small result as Python tuples (metadata, min/max)."""
        out: list[tuple[Any, ...]] = []
        for batch in self.read(sql, params):
            cols = [c.to_pylist() for c in batch.columns]
            out.extend(zip(*cols, strict=True))
        return out

    # -- metadata
    @property
    def engine(self) -> Any:
        """A SQLAlchemy engine for metadata (NullPool: no connection kept)."""
        if self._engine is None:
            import sqlalchemy as sa

            self._engine = sa.create_engine(self.sqlalchemy_url(), poolclass=sa.pool.NullPool)
        return self._engine

    def sqlalchemy_url(self) -> str:
        """The URL with the driver SQLAlchemy should use."""
        return self.url

    def inspector(self) -> Any:
        """A SQLAlchemy inspector; connection failures become a SourceError."""
        import sqlalchemy as sa

        try:
            return sa.inspect(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise self.error("cannot connect", exc) from None

    def tables(self, schema: str | None) -> list[str]:
        """Tables (and views) in ``schema`` (the default schema when None)."""
        insp = self.inspector()
        return sorted(insp.get_table_names(schema=schema) + insp.get_view_names(schema=schema))

    def columns(self, table: str, schema: str | None) -> list[Column]:
        """The columns of ``table``; a missing table is an error listing those that exist."""
        import sqlalchemy as sa

        insp = self.inspector()
        try:
            cols = insp.get_columns(table, schema=schema)
        except sa.exc.NoSuchTableError:
            cols = []
        except sa.exc.SQLAlchemyError as exc:
            raise self.error(f"cannot read the columns of {table}", exc) from None
        if not cols:
            known = self.tables(schema)
            where = f"schema '{schema}'" if schema else "the default schema"
            raise NotFoundError(
                f"{self.name}: no table '{table}' in {where}",
                hint="tables there: " + (", ".join(known[:50]) or "none") +
                (" ..." if len(known) > 50 else ""),
            )
        return [Column(c["name"], self._compile(c["type"]), c["type"]) for c in cols]

    def primary_key(self, table: str, schema: str | None) -> list[str]:
        """The primary key columns of ``table`` (empty if it has none)."""
        pk = self.inspector().get_pk_constraint(table, schema=schema)
        return list(pk.get("constrained_columns") or [])

    def _compile(self, sa_type: Any) -> str:
        try:
            return str(sa_type.compile(dialect=self.engine.dialect))
        except Exception:  # a type SQLAlchemy does not know (SQLite: none declared)
            return ""

    def error(self, what: str, exc: BaseException) -> SourceError:
        """A driver error as a SourceError, secrets removed."""
        text = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return SourceError(f"{self.name}: {what}: {text}",
                           hint="check the database is up and the url, user and grants in "
                           "headwater.yaml; the next run resumes from the last commit")

    @contextmanager
    def _reading(self, errors: type[BaseException] | tuple[type[BaseException], ...] = Exception
                 ) -> Iterator[Any]:
        """A connection for one read: driver ``errors`` become SourceError, and it is closed
        (quietly) however the read ends, including a consumer that stops early."""
        con = self.connect()
        try:
            yield con
        except SourceError:
            raise
        except errors as exc:
            raise self.error("read failed", exc) from None
        finally:
            try:
                con.close()
            except Exception:
                log.debug("close_failed")

    def close(self) -> None:
        """Dispose of the metadata engine."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


# ---------------------------------------------------------------- PostgreSQL


# types ADBC returns as plain Arrow; everything else is read as text so nothing is lost
_PG_NATIVE = re.compile(
    r"^(SMALLINT|INTEGER|BIGINT|REAL|DOUBLE PRECISION|FLOAT(\(\d+\))?|NUMERIC(\(.*\))?|BOOLEAN|"
    r"TEXT|VARCHAR(\(\d+\))?|CHAR(\(\d+\))?|BYTEA|DATE|TIME(\(\d\))?( WITHOUT TIME ZONE)?|"
    r"TIMESTAMP(\(\d\))?( WITHOUT TIME ZONE)?|TIMESTAMP(\(\d\))? WITH TIME ZONE|"
    r"INTERVAL.*|JSON|JSONB|NAME|OID|UUID)(\[\])*$",
    re.IGNORECASE,
)


class PostgresDialect(Dialect):
    """PostgreSQL through ADBC: the COPY binary protocol straight into Arrow."""

    name = "postgresql"
    kind = "postgres"

    def adbc_uri(self) -> str:
        """A libpq URI (no SQLAlchemy driver suffix)."""
        return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", self.url)

    def sqlalchemy_url(self) -> str:
        """psycopg 3 for metadata."""
        return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", self.url)

    def param(self, index: int, type_sql: str | None = None) -> str:
        """Values are bound with set_config and read back typed: COPY allows no parameters."""
        expr = f"current_setting('headwater.p{index}')"
        return f"CAST({expr} AS {type_sql})" if type_sql else expr

    def bind(self, value: Any) -> Any:
        """Everything is bound as text and cast back to the column's type in SQL."""
        if value is None:
            return None
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return str(value)

    def select_expr(self, column: Column, source: str | None = None) -> str:
        """Types ADBC cannot map (enums, inet, ...) are read as their text."""
        expr = source or self.quote(column.name)
        if _PG_NATIVE.match(column.type_sql.strip()):
            return expr
        cast = "text[]" if column.type_sql.endswith("[]") else "text"
        return f"CAST({expr} AS {cast}) AS {self.quote(column.name)}"

    def connect(self, *, autocommit: bool = False) -> Any:
        """A raw ADBC connection."""
        dbapi = require("adbc_driver_postgresql.dbapi", "postgres")
        try:
            return dbapi.connect(self.adbc_uri(), autocommit=autocommit)
        except Exception as exc:
            raise self.error("cannot connect", exc) from None

    def read(self, sql: str, params: Sequence[Any] = (), *, batch_rows: int = 100_000,
             types: list[pa.DataType | None] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream through COPY; bound values travel as session settings, never pasted."""
        with self._reading() as con:
            cur = con.cursor()
            for i, value in enumerate(params):
                cur.execute("SELECT set_config($1, $2, false)",
                            (f"headwater.p{i}", self.bind(value)))
                cur.fetchall()
            cur.execute(sql)
            reader = cur.fetch_record_batch()
            empty = True
            for batch in reader:
                empty = False
                yield pg_plain(batch)
            if empty:  # an empty result still tells its column types
                yield pg_plain(pa.RecordBatch.from_pylist([], schema=reader.schema))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement with real bound parameters (autocommit); small results only."""
        con = self.connect(autocommit=True)
        try:
            cur = con.cursor()
            try:
                cur.execute(sql, tuple(params) or None)
                try:
                    return [tuple(r) for r in cur.fetchall()]
                except Exception:
                    return []
            except Exception as exc:
                raise self.error("statement failed", exc) from None
        finally:
            con.close()


# ---------------------------------------------------------------- MySQL / MariaDB


class MySQLDialect(Dialect):
    """MySQL and MariaDB through pymysql's unbuffered (server-side) cursor."""

    name = "mysql"
    kind = "mysql"

    def quote(self, identifier: str) -> str:
        """Backticks, doubled inside."""
        return "`" + identifier.replace("`", "``") + "`"

    def param(self, index: int, type_sql: str | None = None) -> str:
        """pymysql's format style."""
        return "%s"

    def bind(self, value: Any) -> Any:
        """Aware datetimes go as UTC (the session runs in UTC)."""
        import datetime as dt

        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def sqlalchemy_url(self) -> str:
        """pymysql for metadata too."""
        return re.sub(r"^(mysql|mariadb)(\+\w+)?://", "mysql+pymysql://", self.url)

    def connect(self) -> Any:
        """A pymysql connection in UTC with a server-side cursor class."""
        pymysql = require("pymysql", "mysql")
        from sqlalchemy.engine import make_url

        url = make_url(self.sqlalchemy_url())
        try:
            con = pymysql.connect(
                host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username,
                password=url.password or "", database=url.database, charset="utf8mb4",
                cursorclass=pymysql.cursors.SSCursor, connect_timeout=10,
            )
        except Exception as exc:
            raise self.error("cannot connect", exc) from None
        with con.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
        return con

    def read(self, sql: str, params: Sequence[Any] = (), *, batch_rows: int = 100_000,
             types: list[pa.DataType | None] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream rows in batches of ``batch_rows``; Arrow types from the column descriptions."""
        with self._reading() as con:
            cur = con.cursor()
            cur.execute(sql, [self.bind(v) for v in params] or None)
            fields = cur._result.fields if cur._result is not None else []
            names = [d[0] for d in cur.description or []]
            col_types = types or [
                mysql_type(f.type_code, f.length, f.scale, f.flags, f.charsetnr)
                for f in fields
            ]
            while True:
                rows = cur.fetchmany(batch_rows)
                if not rows:
                    break
                yield rows_to_batch(rows, names, col_types, where=self.name,
                                    db_types=[f"mysql:{f.type_code}" for f in fields])


# ---------------------------------------------------------------- SQLite


class SQLiteDialect(Dialect):
    """SQLite through the standard library; a relative path is relative to the project."""

    name = "sqlite"
    kind = "sqlite"

    def path(self) -> Path:
        """The database file."""
        from sqlalchemy.engine import make_url

        database = make_url(self.url).database
        if not database or database == ":memory:":
            raise ConfigError("a sqlite url needs a file: sqlite:///data/app.db",
                              hint="an in-memory database has nothing to read")
        path = Path(database).expanduser()
        return path if path.is_absolute() else self.root / path

    def sqlalchemy_url(self) -> str:
        """The file resolved against the project, opened read-only (never created)."""
        return f"sqlite:///file:{self.path()}?mode=ro&uri=true"

    def inspector(self) -> Any:
        """A missing file is an error, not a new empty database."""
        path = self.path()
        if not path.exists():
            raise SourceError(f"sqlite: no database file {path}",
                              hint="check the url in headwater.yaml (relative to the project)")
        return super().inspector()

    def connect(self) -> Any:
        """A read-only sqlite3 connection."""
        import sqlite3

        path = self.path()
        if not path.exists():
            raise SourceError(f"sqlite: no database file {path}",
                              hint="check the url in headwater.yaml (relative to the project)")
        try:
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self.error("cannot open", exc) from None

    def read(self, sql: str, params: Sequence[Any] = (), *, batch_rows: int = 100_000,
             types: list[pa.DataType | None] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream rows in batches; types from the declared column types where given."""
        import sqlite3

        with self._reading(sqlite3.Error) as con:
            cur = con.execute(sql, [self.bind(v) for v in params])
            names = [d[0] for d in cur.description or []]
            col_types = types or [None] * len(names)
            while True:
                rows = cur.fetchmany(batch_rows)
                if not rows:
                    break
                yield rows_to_batch(rows, names, col_types, where=self.name)

    def bind(self, value: Any) -> Any:
        """SQLite keeps timestamps as text: datetimes are bound as ``YYYY-MM-DD HH:MM:SS``."""
        import datetime as dt

        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            return value.isoformat(sep=" ")
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    def declared_types(self, columns: list[Column]) -> list[pa.DataType | None]:
        """Arrow types from the declared column types."""
        return [sqlite_type(c.type_sql) for c in columns]


def dialect_for(url: str, *, root: Path | None = None) -> Dialect:
    """The dialect of a SQLAlchemy URL.

    >>> dialect_for("sqlite:///x.db").name
    'sqlite'
    """
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme in {"postgresql", "postgres"}:
        return PostgresDialect(url, root=root)
    if scheme in {"mysql", "mariadb"}:
        return MySQLDialect(url, root=root)
    if scheme == "sqlite":
        return SQLiteDialect(url, root=root)
    raise ConfigError(f"sql url scheme '{scheme}' is not supported",
                      hint="use postgresql://, mysql+pymysql:// (MariaDB too) or sqlite:///")

"""The metadata database that run records, alert state and deployment history share: SQLite
under ``.headwater/`` by default, PostgreSQL (or any SQLAlchemy URL) by ``metadata.url``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from headwater.core import SinkError


def metadata_url(folder: str | Path) -> str:
    """The embedded default: ``folder/metadata.db`` as a SQLite URL (the folder is created).

    >>> import tempfile
    >>> metadata_url(tempfile.mkdtemp()).startswith("sqlite:///")
    True
    """
    Path(folder).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(folder).resolve() / 'metadata.db'}"


def metadata_engine(url: str, tables: sa.MetaData, *, what: str = "the metadata store"
                    ) -> sa.Engine:
    """An engine on the metadata database with ``tables`` created if missing.

    ``postgresql://`` means psycopg 3; SQLite connections wait for each other (several
    processes — a pipeline, ``alerts watch``, the dashboard — share the file). A database that
    cannot be opened raises a SinkError naming ``what``.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        engine = sa.create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_wait)
        _create_tables(engine, tables)
    except sa.exc.SQLAlchemyError as exc:
        raise SinkError(f"cannot open {what}: {exc.__class__.__name__}: "
                        f"{str(exc).splitlines()[0]}",
                        hint="check metadata.url in headwater.yaml") from None
    return engine


def _create_tables(engine: sa.Engine, tables: sa.MetaData, attempts: int = 3) -> None:
    """Create what is missing. Two processes (or threads) opening a new store at once race
    between looking and creating: the loser finds the table there on its next look."""
    for attempt in range(attempts):
        try:
            tables.create_all(engine)
            return
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
            if attempt == attempts - 1:
                raise


def _sqlite_wait(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout = 10000")

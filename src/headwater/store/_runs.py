"""Run records in a metadata store: SQLite under .headwater/ by default, PostgreSQL by URL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from headwater.core import NotFoundError
from headwater.store._metadata import metadata_engine, metadata_url

_meta = sa.MetaData()
RUNS = sa.Table(
    "headwater_runs", _meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rows_read", sa.BigInteger, default=0),
    sa.Column("rows_loaded", sa.BigInteger, default=0),
    sa.Column("rows_quarantined", sa.BigInteger, default=0),
    sa.Column("rows_dropped", sa.BigInteger, default=0),
    sa.Column("bytes_read", sa.BigInteger, default=0),
    sa.Column("duration_s", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("report", sa.Text),  # JSON: quality report, leaderboard, ...
)

_FIELDS = ("id", "kind", "pipeline", "started_at", "ended_at", "status", "rows_read",
           "rows_loaded", "rows_quarantined", "rows_dropped", "bytes_read", "error")


class RunStore:
    """Where run records are kept.

    Parameters
    ----------
    url:
        A SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).

    >>> import tempfile
    >>> from headwater.monitor import Run
    >>> runs = RunStore(f"sqlite:///{tempfile.mkdtemp()}/m.db")
    >>> r = Run(kind="ingest", pipeline="orders", status="succeeded")
    >>> runs.record(r); runs.get(r.id)["pipeline"]
    'orders'
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None

    @classmethod
    def at(cls, folder: str | Path) -> RunStore:
        """The embedded default: ``folder/metadata.db``."""
        return cls(metadata_url(folder))

    @property
    def engine(self) -> sa.Engine:
        """The engine; tables are created on first use."""
        if self._engine is None:
            self._engine = metadata_engine(self.url, _meta)
        return self._engine

    def record(self, run: Any) -> None:
        """Insert or update a run record from a :class:`headwater.monitor.Run`."""
        values = {name: getattr(run, name) for name in _FIELDS}
        values["duration_s"] = run.duration_s
        values["report"] = json.dumps(run.report, default=str)
        with self.engine.begin() as con:
            updated = con.execute(sa.update(RUNS).where(RUNS.c.id == run.id).values(**values))
            if updated.rowcount == 0:
                con.execute(sa.insert(RUNS).values(**values))

    def list(self, *, limit: int = 20, pipeline: str | None = None,
             kind: str | None = None, since: datetime | None = None,
             reports: bool = False) -> list[dict[str, Any]]:
        """The newest runs first, optionally of one pipeline or kind, started at or after
        ``since``; ``reports=True`` adds each run's report (parsed) in one query."""
        columns = list(RUNS.c) if reports else [c for c in RUNS.c if c.name != "report"]
        query = sa.select(*columns).order_by(RUNS.c.started_at.desc()).limit(limit)
        if pipeline:
            query = query.where(RUNS.c.pipeline == pipeline)
        if kind:
            query = query.where(RUNS.c.kind == kind)
        if since is not None:
            query = query.where(RUNS.c.started_at >= since)
        with self.engine.connect() as con:
            rows = [_utc(dict(row._mapping)) for row in con.execute(query)]
        if reports:
            for row in rows:
                row["report"] = json.loads(row["report"] or "{}")
        return rows

    def get(self, run_id: str) -> dict[str, Any]:
        """One run with its report; a unique prefix of the id is enough."""
        with self.engine.connect() as con:
            rows = con.execute(sa.select(RUNS).where(RUNS.c.id.startswith(run_id, autoescape=True))
                               .limit(2)).fetchall()
        if len(rows) != 1:
            what = "no run" if not rows else "more than one run"
            raise NotFoundError(f"{what} with id '{run_id}'",
                                hint="`headwater runs` lists the runs with their ids")
        record = _utc(dict(rows[0]._mapping))
        record["report"] = json.loads(record["report"] or "{}")
        return record


def _utc(record: dict[str, Any]) -> dict[str, Any]:
    for key in ("started_at", "ended_at"):
        value = record.get(key)
        if isinstance(value, datetime) and value.tzinfo is None:
            record[key] = value.replace(tzinfo=UTC)
    return record

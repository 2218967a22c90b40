"""Where alerts live: their state, their history, silences, the delivery outbox and metric
history, in the metadata database (SQLite under .headwater/ by default, PostgreSQL by URL).

Tables (all in the metadata database beside ``headwater_runs``):

- ``headwater_alerts``: one row per alert (rule + labels = ``fingerprint``) while it is pending
  or firing, and its last state after it resolved.
- ``headwater_alert_events``: every change (``firing``, ``resolved``), the alert history.
- ``headwater_silences``: matchers and an expiry; ``unsilence`` ends one early.
- ``headwater_alert_deliveries``: the outbox; one row per notification and sink, with attempts,
  the next attempt's time and the last error.
- ``headwater_metric_samples``: metric values over time, for rate rules and the dashboard.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from headwater.core import NotFoundError
from headwater.monitor.alerts._samples import Sample, matches
from headwater.store import metadata_engine, metadata_url

_meta = sa.MetaData()

ALERTS = sa.Table(
    "headwater_alerts", _meta,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("rule", sa.String(200), nullable=False, index=True),
    sa.Column("origin", sa.String(16), nullable=False),  # rule | stream
    sa.Column("status", sa.String(16), nullable=False, index=True),  # pending|firing|resolved
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("labels", sa.Text, nullable=False),  # JSON
    sa.Column("value", sa.Float),
    sa.Column("summary", sa.Text),
    sa.Column("pending_since", sa.Float),  # Unix seconds
    sa.Column("fired_at", sa.Float),
    sa.Column("resolved_at", sa.Float),
    sa.Column("evaluated_at", sa.Float),
    sa.Column("notified_at", sa.Float),
    sa.Column("silenced_by", sa.String(64)),
    sa.Column("inhibited", sa.Boolean, default=False),
)
EVENTS = sa.Table(
    "headwater_alert_events", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("fingerprint", sa.String(64), nullable=False, index=True),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # firing | resolved
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("summary", sa.Text),
)
SILENCES = sa.Table(
    "headwater_silences", _meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("matchers", sa.Text, nullable=False),  # JSON: label -> glob
    sa.Column("starts_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.Float, nullable=False, index=True),
    sa.Column("comment", sa.Text),
    sa.Column("created_by", sa.String(200)),
)
DELIVERIES = sa.Table(
    "headwater_alert_deliveries", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sink", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # pending|delivered|failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False, index=True),
    sa.Column("delivered_at", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.Column("payload", sa.Text, nullable=False),  # JSON notification, never a secret
)
SAMPLES = sa.Table(
    "headwater_metric_samples", _meta,
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
)


@dataclass
class Silence:
    """Alerts whose labels match ``matchers`` are not sent until ``ends_at`` (Unix seconds)."""

    id: str
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    comment: str | None = None
    created_by: str | None = None

    def covers(self, labels: dict[str, str], now: float) -> bool:
        """Active at ``now`` and matching these labels."""
        return self.starts_at <= now < self.ends_at and matches(labels, self.matchers)


class AlertStore:
    """Alert state, history, silences, outbox and metric history in one database.

    Parameters
    ----------
    url:
        A SQLAlchemy URL (``sqlite:///path`` or ``postgresql://...``).

    >>> import tempfile
    >>> store = AlertStore(f"sqlite:///{tempfile.mkdtemp()}/m.db")
    >>> store.active_alerts()
    []
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None

    @classmethod
    def at(cls, folder: str | Path) -> AlertStore:
        """The embedded default: ``folder/metadata.db`` (the run records' database)."""
        return cls(metadata_url(folder))

    @property
    def engine(self) -> sa.Engine:
        """The engine; tables are created on first use."""
        if self._engine is None:
            self._engine = metadata_engine(self.url, _meta, what="the alert store")
        return self._engine

    # -- alert state -------------------------------------------------------------------------

    def open_alerts(self, origin: str | None = None) -> dict[str, dict[str, Any]]:
        """Pending and firing alerts by fingerprint."""
        query = sa.select(ALERTS).where(ALERTS.c.status.in_(("pending", "firing")))
        if origin:
            query = query.where(ALERTS.c.origin == origin)
        with self.engine.connect() as con:
            return {row.fingerprint: _alert(row) for row in con.execute(query)}

    def save_alerts(self, alerts: Iterable[dict[str, Any]],
                    events: Iterable[dict[str, Any]] = (),
                    deleted: Iterable[str] = ()) -> None:
        """Upsert alert rows, append events and drop pending alerts, in one transaction."""
        alerts, events, deleted = list(alerts), list(events), list(deleted)
        if not (alerts or events or deleted):
            return
        with self.engine.begin() as con:
            if deleted:
                con.execute(sa.delete(ALERTS).where(ALERTS.c.fingerprint.in_(deleted)))
            for alert in alerts:
                row = _alert_row(alert)
                updated = con.execute(sa.update(ALERTS).where(
                    ALERTS.c.fingerprint == row["fingerprint"]).values(**row))
                if updated.rowcount == 0:
                    con.execute(sa.insert(ALERTS).values(**row))
            if events:
                con.execute(sa.insert(EVENTS), [_event_row(e) for e in events])

    def active_alerts(self, now: float | None = None) -> list[dict[str, Any]]:
        """Alerts firing now, newest first; each says whether it is silenced (by a silence in
        force now) or inhibited (at the last evaluation)."""
        query = sa.select(ALERTS).where(ALERTS.c.status == "firing").order_by(
            ALERTS.c.fired_at.desc())
        with self.engine.connect() as con:
            alerts = [_alert(row) for row in con.execute(query)]
        now = time.time() if now is None else now
        silences = self.silences(now)
        for alert in alerts:
            alert["silenced_by"] = next((s.id for s in silences
                                         if s.covers(alert["labels"], now)), None)
        return alerts

    def alert_history(self, since: float | datetime | None = None, *, limit: int = 200,
                      rule: str | None = None) -> list[dict[str, Any]]:
        """Alert events (``firing``, ``resolved``) newest first, since a time (Unix or datetime)."""
        query = sa.select(EVENTS).order_by(EVENTS.c.at.desc(), EVENTS.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(EVENTS.c.at >= _unix(since))
        if rule:
            query = query.where(EVENTS.c.rule == rule)
        with self.engine.connect() as con:
            return [{**row._mapping, "labels": json.loads(row.labels),
                     "time": _dt(row.at)} for row in con.execute(query)]

    # -- silences ----------------------------------------------------------------------------

    def add_silence(self, silence: Silence) -> Silence:
        """Store a silence."""
        with self.engine.begin() as con:
            con.execute(sa.insert(SILENCES).values(
                id=silence.id, matchers=json.dumps(silence.matchers, sort_keys=True),
                starts_at=silence.starts_at, ends_at=silence.ends_at, comment=silence.comment,
                created_by=silence.created_by))
        return silence

    def end_silence(self, silence_id: str, now: float | None = None) -> Silence:
        """End a silence now (a unique prefix of its id is enough)."""
        now = time.time() if now is None else now
        with self.engine.begin() as con:
            rows = con.execute(sa.select(SILENCES).where(
                SILENCES.c.id.startswith(silence_id, autoescape=True)).limit(2)).fetchall()
            if len(rows) != 1:
                raise NotFoundError(
                    f"{'no silence' if not rows else 'more than one silence'} with id "
                    f"'{silence_id}'", hint="`headwater alerts list` shows the silences")
            con.execute(sa.update(SILENCES).where(SILENCES.c.id == rows[0].id).values(
                ends_at=min(rows[0].ends_at, now)))
        ended = _silence(rows[0])
        ended.ends_at = min(ended.ends_at, now)
        return ended

    def silences(self, now: float | None = None, *, include_expired: bool = False
                 ) -> list[Silence]:
        """Silences in force at ``now`` (or every one), latest expiry first."""
        now = time.time() if now is None else now
        query = sa.select(SILENCES).order_by(SILENCES.c.ends_at.desc())
        if not include_expired:
            query = query.where(SILENCES.c.ends_at > now)
        with self.engine.connect() as con:
            return [_silence(row) for row in con.execute(query)]

    # -- the delivery outbox -----------------------------------------------------------------

    def enqueue(self, sink: str, payload: dict[str, Any], now: float) -> None:
        """Add a notification for ``sink`` to the outbox."""
        with self.engine.begin() as con:
            con.execute(sa.insert(DELIVERIES).values(
                created_at=now, sink=sink, status="pending", attempts=0, next_attempt_at=now,
                payload=json.dumps(payload, default=str)))

    def due_deliveries(self, now: float, limit: int = 50) -> list[dict[str, Any]]:
        """Pending notifications whose next attempt is due, oldest first."""
        query = sa.select(DELIVERIES).where(DELIVERIES.c.status == "pending",
                                            DELIVERIES.c.next_attempt_at <= now).order_by(
            DELIVERIES.c.id).limit(limit)
        with self.engine.connect() as con:
            return [{**row._mapping, "payload": json.loads(row.payload)}
                    for row in con.execute(query)]

    def next_attempt(self) -> float | None:
        """When the earliest pending notification is due (None: nothing pending)."""
        with self.engine.connect() as con:
            return con.execute(sa.select(sa.func.min(DELIVERIES.c.next_attempt_at)).where(
                DELIVERIES.c.status == "pending")).scalar()

    def delivery_done(self, delivery_id: int, *, attempts: int, now: float,
                      error: str | None = None, retry_at: float | None = None) -> None:
        """Record an attempt: delivered, retried later at ``retry_at``, or failed for good."""
        status = "delivered" if error is None else ("pending" if retry_at else "failed")
        with self.engine.begin() as con:
            con.execute(sa.update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(
                status=status, attempts=attempts, last_error=error,
                next_attempt_at=retry_at or now,
                delivered_at=now if error is None else None))

    def deliveries(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest notifications with their outcome."""
        query = sa.select(DELIVERIES).order_by(DELIVERIES.c.id.desc()).limit(limit)
        with self.engine.connect() as con:
            return [{**row._mapping, "payload": json.loads(row.payload)}
                    for row in con.execute(query)]

    # -- metric history ----------------------------------------------------------------------

    def record_samples(self, samples: Iterable[Sample], at: float) -> None:
        """Keep these samples (histogram buckets excepted) as the values at ``at``."""
        rows = [{"at": at, "name": s.name, "labels": json.dumps(dict(s.labels)), "value": s.value}
                for s in samples if not s.name.endswith("_bucket")]
        if rows:
            with self.engine.begin() as con:
                con.execute(sa.insert(SAMPLES), rows)

    def samples_before(self, name: str, at: float) -> list[tuple[float, Sample]]:
        """For each series of ``name``, its newest sample at or before ``at``."""
        names = (name, f"{name}_total")
        latest = sa.select(SAMPLES.c.name, SAMPLES.c.labels,
                           sa.func.max(SAMPLES.c.at).label("at")).where(
            SAMPLES.c.name.in_(names), SAMPLES.c.at <= at).group_by(
            SAMPLES.c.name, SAMPLES.c.labels).subquery()
        query = sa.select(SAMPLES).join(latest, sa.and_(
            SAMPLES.c.name == latest.c.name, SAMPLES.c.labels == latest.c.labels,
            SAMPLES.c.at == latest.c.at))
        with self.engine.connect() as con:
            return [(row.at, Sample(row.name, tuple(sorted(json.loads(row.labels).items())),
                                    row.value)) for row in con.execute(query)]

    def metric_history(self, name: str, since: float | datetime | None = None,
                       match: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Values of metric ``name`` over time: ``{"time", "labels", "value"}``, oldest first."""
        query = sa.select(SAMPLES).where(SAMPLES.c.name.in_((name, f"{name}_total"))).order_by(
            SAMPLES.c.at)
        if since is not None:
            query = query.where(SAMPLES.c.at >= _unix(since))
        with self.engine.connect() as con:
            rows = [{"time": _dt(row.at), "labels": json.loads(row.labels), "value": row.value}
                    for row in con.execute(query)]
        return [r for r in rows if matches(r["labels"], match or {})]

    def prune(self, before: float) -> None:
        """Forget metric samples, events and finished deliveries older than ``before``."""
        with self.engine.begin() as con:
            con.execute(sa.delete(SAMPLES).where(SAMPLES.c.at < before))
            con.execute(sa.delete(EVENTS).where(EVENTS.c.at < before))
            con.execute(sa.delete(DELIVERIES).where(DELIVERIES.c.status != "pending",
                                                    DELIVERIES.c.created_at < before))


def _unix(value: float | datetime) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _alert(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out["labels"] = json.loads(out["labels"])
    out["inhibited"] = bool(out["inhibited"])
    return out


def _alert_row(alert: dict[str, Any]) -> dict[str, Any]:
    row = {c.name: alert.get(c.name) for c in ALERTS.c}
    row["labels"] = json.dumps(alert["labels"], sort_keys=True)
    row["inhibited"] = bool(alert.get("inhibited"))
    return row


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    row = {c.name: event.get(c.name) for c in EVENTS.c if c.name != "id"}
    row["labels"] = json.dumps(event["labels"], sort_keys=True)
    return row


def _silence(row: Any) -> Silence:
    return Silence(id=row.id, matchers=json.loads(row.matchers), starts_at=row.starts_at,
                   ends_at=row.ends_at, comment=row.comment, created_by=row.created_by)

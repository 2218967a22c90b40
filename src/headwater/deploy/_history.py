"""Deployment history in the metadata store: what went where, when, from which commit, and how.

A deployment row is written when a rollout starts (status ``in_progress``) and updated when it
ends (``succeeded``, ``rolled_back`` or ``failed``). A row still ``in_progress`` at the next
start means a deploy command was killed: the next rollout first puts that target back.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from headwater.store import metadata_engine

_meta = sa.MetaData()
DEPLOYMENTS = sa.Table(
    "headwater_deployments", _meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("previous_version", sa.Integer),
    sa.Column("target", sa.String(200), nullable=False, index=True),
    sa.Column("strategy", sa.String(32), nullable=False),
    sa.Column("commit", sa.String(64)),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text),  # JSON: steps with their health, the reason of a rollback
)


@dataclass
class Deployment:
    """One rollout of a model version to a target."""

    model: str
    version: int
    target: str
    strategy: str
    previous_version: int | None = None
    commit: str | None = None
    status: str = "in_progress"
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""

    def row(self) -> dict[str, Any]:
        """The row for the history table."""
        return {"id": self.id, "model": self.model, "version": self.version,
                "previous_version": self.previous_version, "target": self.target,
                "strategy": self.strategy, "commit": self.commit,
                "started_at": self.started_at, "ended_at": self.ended_at, "status": self.status,
                "detail": json.dumps({"steps": self.steps, "reason": self.reason})}


class DeploymentHistory:
    """The ``headwater_deployments`` table, next to the run records (same database)."""

    def __init__(self, url: str) -> None:
        self.engine = metadata_engine(url, _meta, what="the deployment history")

    def save(self, deployment: Deployment) -> None:
        """Insert or update ``deployment``."""
        row = deployment.row()
        with self.engine.begin() as c:
            done = c.execute(DEPLOYMENTS.update().where(DEPLOYMENTS.c.id == deployment.id)
                             .values(**row)).rowcount
            if not done:
                c.execute(DEPLOYMENTS.insert().values(**row))

    def list(self, *, target: str | None = None, model: str | None = None,
             limit: int = 20) -> list[dict[str, Any]]:
        """Newest first."""
        q = DEPLOYMENTS.select().order_by(DEPLOYMENTS.c.started_at.desc()).limit(limit)
        if target:
            q = q.where(DEPLOYMENTS.c.target == target)
        if model:
            q = q.where(DEPLOYMENTS.c.model == model)
        with self.engine.connect() as c:
            rows = [dict(r._mapping) for r in c.execute(q)]
        for r in rows:
            r.update(json.loads(r.pop("detail") or "{}"))
        return rows

    def unfinished(self, target: str) -> dict[str, Any] | None:
        """The rollout on ``target`` a killed command left ``in_progress``, if any."""
        rows = [r for r in self.list(target=target, limit=50) if r["status"] == "in_progress"]
        return rows[0] if rows else None

    def last_succeeded(self, target: str, *, before: int | None = None) -> dict[str, Any] | None:
        """The newest successful rollout on ``target`` (of a version other than ``before``)."""
        for r in self.list(target=target, limit=200):
            if r["status"] == "succeeded" and r["version"] != before:
                return r
        return None

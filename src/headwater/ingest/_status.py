"""Where each declared pipeline stands: its last run and the positions it has committed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from headwater.config import Project
from headwater.store import open_store, run_store


@dataclass(frozen=True)
class PipelineStatus:
    """One pipeline of headwater.yaml: what it loads, its last ingest run (``None`` if it never
    ran) and how many positions (files, cursors, offsets) its store has committed for it."""

    pipeline: str
    source: str
    table: str
    positions: int
    last_run: str | None = None
    started_at: datetime | None = None
    status: str | None = None
    rows_loaded: int | None = None
    rows_quarantined: int | None = None


def pipeline_status(project: Project) -> list[PipelineStatus]:
    """The status of every pipeline declared in ``project``, in the order of headwater.yaml."""
    runs = run_store(project)
    found = []
    for name, spec in project.pipelines.items():
        last = runs.list(limit=1, pipeline=name, kind="ingest")
        store = open_store(project, spec.store)
        try:
            positions = len(store.state(name))
        finally:
            store.close()
        row = last[0] if last else {}
        found.append(PipelineStatus(
            pipeline=name, source=spec.source.kind, table=spec.table, positions=positions,
            last_run=row.get("id"), started_at=row.get("started_at"), status=row.get("status"),
            rows_loaded=row.get("rows_loaded"), rows_quarantined=row.get("rows_quarantined")))
    return found

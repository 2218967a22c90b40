"""A run: one id that appears in every log line, a timer, and a status."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from headwater.monitor._logging import get_logger
from headwater.monitor._metrics import LAST_RUN_FAILED, LAST_SUCCESS, RUN_SECONDS, RUNS

log = get_logger(__name__)


def new_run_id() -> str:
    """A sortable, unique run id: ``20261126T140501-3f9a1c``."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class Run:
    """What is known about a run while it happens; stored as a run record when it ends."""

    kind: str
    pipeline: str
    id: str = field(default_factory=new_run_id)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    status: str = "running"
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_dropped: int = 0
    bytes_read: int = 0
    error: str | None = None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Seconds from start to end (or to now while running)."""
        end = self.ended_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()


@contextmanager
def run(kind: str, pipeline: str, *, run_id: str | None = None) -> Iterator[Run]:
    """Bind a run id to every log line inside the block and time it.

    The run's status becomes ``succeeded`` or ``failed`` (with the error) when the block ends;
    the exception propagates. Callers store the record (``headwater.store.RunStore``).
    """
    current = Run(kind=kind, pipeline=pipeline, **({"id": run_id} if run_id else {}))
    tokens = structlog.contextvars.bind_contextvars(run_id=current.id, pipeline=pipeline, kind=kind)
    start = time.perf_counter()
    log.info("run_started")
    try:
        yield current
    except BaseException as exc:
        current.status = "failed"
        current.error = current.error or f"{type(exc).__name__}: {exc}"
        raise
    else:
        if current.status == "running":
            current.status = "succeeded"
    finally:
        current.ended_at = datetime.now(UTC)
        RUN_SECONDS.labels(kind, pipeline).observe(time.perf_counter() - start)
        RUNS.labels(kind, pipeline, current.status).inc()
        LAST_RUN_FAILED.labels(kind, pipeline).set(current.status == "failed")
        if current.status == "succeeded":
            LAST_SUCCESS.labels(kind, pipeline).set_to_current_time()
        log.info("run_finished", status=current.status, duration_s=round(current.duration_s, 3),
                 rows_read=current.rows_read, rows_loaded=current.rows_loaded,
                 rows_quarantined=current.rows_quarantined, error=current.error)
        structlog.contextvars.reset_contextvars(**tokens)

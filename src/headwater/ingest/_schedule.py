"""Run pipelines on intervals or cron expressions, one run per pipeline at a time (the locks of
``_locks.py``), and backfill."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from headwater.config import Project
from headwater.core import ConfigError, HeadwaterError, parse_duration
from headwater.ingest._locks import PipelineBusy, pipeline_lock
from headwater.monitor import Run, get_logger

log = get_logger(__name__)

_EVERY = re.compile(r"^\s*every\s+(.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Schedule:
    """When a pipeline runs: ``every 15m`` or a five-field cron expression (UTC).

    >>> s = Schedule.parse("every 15m")
    >>> s.next_after(dt.datetime(2026, 1, 1, 10, 7, tzinfo=dt.UTC)).isoformat()
    '2026-01-01T10:15:00+00:00'
    >>> Schedule.parse("0 3 * * *").next_after(dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)).day
    2
    """

    text: str
    interval: int | None = None

    @classmethod
    def parse(cls, text: str, *, where: str = "schedule") -> Schedule:
        """Validate ``every <duration>`` (``every 15m``, ``every 1h30m``) or a cron expression."""
        match = _EVERY.match(text)
        if match:
            try:
                seconds = parse_duration(match.group(1), where=where).total_seconds()
            except ConfigError as exc:
                raise ConfigError(exc.message, hint="e.g. every 15m, every 1h30m or "
                                  "'0 3 * * *'") from None
            if seconds < 1 or seconds != int(seconds):
                raise ConfigError(f"{where}: '{text}' is not a whole number of seconds (>= 1s)",
                                  hint="e.g. every 15m")
            return cls(text, int(seconds))
        from headwater.core import require

        croniter = require("croniter", "schedule")
        if not croniter.croniter.is_valid(text):
            raise ConfigError(f"{where}: '{text}' is neither 'every <duration>' nor a cron "
                              "expression", hint="e.g. every 15m, every 1h or '0 3 * * *'")
        return cls(text)

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first run time strictly after ``moment`` (intervals align to the epoch)."""
        if self.interval is not None:
            epoch = int(moment.timestamp())
            nxt = (epoch // self.interval + 1) * self.interval
            return dt.datetime.fromtimestamp(nxt, dt.UTC)
        from croniter import croniter

        return croniter(self.text, moment.astimezone(dt.UTC)).get_next(dt.datetime)

    def previous_before(self, moment: dt.datetime) -> dt.datetime:
        """The last run time at or before ``moment``."""
        if self.interval is not None:
            epoch = int(moment.timestamp())
            return dt.datetime.fromtimestamp(epoch // self.interval * self.interval, dt.UTC)
        from croniter import croniter

        return croniter(self.text, moment.astimezone(dt.UTC)).get_prev(dt.datetime)


# ---------------------------------------------------------------- the scheduler

RunFn = Callable[[Project, str], Run]


@dataclass
class Planned:
    """A scheduled pipeline and when it runs next."""

    pipeline: str
    schedule: Schedule
    next_run: dt.datetime
    last_run: dt.datetime | None = None
    last_status: str | None = None


class Scheduler:
    """Runs every pipeline that has a ``schedule:`` when it is due.

    Parameters
    ----------
    project:
        The project; pipelines without ``schedule`` are ignored.
    run:
        Runs one pipeline (default :func:`headwater.ingest.run_pipeline`).
    only:
        Restrict to these pipelines.
    clock:
        Returns now (UTC); tests pass a fake clock.

    A pipeline that missed its last run while the scheduler was down runs once at start (not
    once per missed slot). A run still going when the next one is due is skipped, not queued.
    """

    def __init__(self, project: Project, *, run: RunFn | None = None,
                 only: list[str] | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.project = project
        self.run_fn = run
        self.only = only
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.plan_: list[Planned] | None = None

    def plan(self) -> list[Planned]:
        """Scheduled pipelines with their next run time."""
        if self.plan_ is not None:
            return self.plan_
        now = self.clock()
        out = []
        for name, spec in sorted(self.project.pipelines.items()):
            if self.only and name not in self.only:
                continue
            if not spec.schedule:
                continue
            schedule = Schedule.parse(spec.schedule, where=f"pipelines.{name}.schedule")
            last, status = self._last_run(name)
            due = schedule.previous_before(now)
            next_run = now if last is None or last < due else schedule.next_after(now)
            out.append(Planned(name, schedule, next_run, last, status))
        if self.only:
            missing = set(self.only) - {p.pipeline for p in out}
            if missing:
                raise ConfigError(f"no schedule for pipeline(s): {', '.join(sorted(missing))}",
                                  hint="add `schedule: every 15m` (or a cron expression) to them")
        self.plan_ = out
        return out

    def _last_run(self, name: str) -> tuple[dt.datetime | None, str | None]:
        try:
            from headwater.store import run_store

            runs = run_store(self.project).list(pipeline=name, kind="ingest", limit=1)
        except HeadwaterError:
            return None, None
        if not runs:
            return None, None
        return runs[0]["started_at"], runs[0]["status"]

    def tick(self) -> list[tuple[str, str]]:
        """Run what is due now; return ``(pipeline, outcome)`` for each run attempted."""
        now = self.clock()
        done = []
        for planned in self.plan():
            if planned.next_run > now:
                continue
            outcome = self.run_one(planned.pipeline)
            planned.last_run, planned.last_status = now, outcome
            planned.next_run = planned.schedule.next_after(max(now, self.clock()))
            done.append((planned.pipeline, outcome))
        return done

    def run_one(self, name: str) -> str:
        """One run under the pipeline's lock: ``succeeded``, ``failed`` or ``busy``."""
        run_fn = self.run_fn
        if run_fn is None:
            from headwater.ingest._run import run_pipeline

            run_fn = run_pipeline
        try:
            with pipeline_lock(self.project, name):
                log.info("scheduled_run", pipeline=name)
                result = run_fn(self.project, name)
                return result.status
        except PipelineBusy as exc:
            log.warning("scheduled_run_skipped", pipeline=name, reason=exc.message)
            return "busy"
        except HeadwaterError as exc:
            log.error("scheduled_run_failed", pipeline=name, error=exc.message)
            return "failed"
        except Exception as exc:
            log.error("scheduled_run_crashed", pipeline=name, error=repr(exc), exc_info=True)
            return "failed"

    def seconds_to_next(self) -> float:
        """Seconds until the next pipeline is due (0 if one is due now)."""
        plan = self.plan()
        if not plan:
            return 60.0
        soonest = min(p.next_run for p in plan)
        return max((soonest - self.clock()).total_seconds(), 0.0)

    def run_forever(self, stop: threading.Event | None = None, *,
                    on_run: Callable[[str, str], None] | None = None,
                    metrics_port: int | None = None) -> None:
        """Tick until ``stop`` is set (Ctrl-C in the CLI). Meanwhile the project's alert rules
        are evaluated on a clock and, with ``metrics_port``, ``/metrics`` is served (see
        :func:`headwater.monitor.alerts.monitoring`)."""
        from headwater.monitor.alerts import monitoring

        stop = stop or threading.Event()
        if not self.plan():
            raise ConfigError("no pipeline has a schedule",
                              hint="add `schedule: every 15m` to a pipeline in headwater.yaml")
        with monitoring(self.project, job="schedule", metrics_port=metrics_port):
            while not stop.is_set():
                for name, outcome in self.tick():
                    if on_run is not None:
                        on_run(name, outcome)
                stop.wait(min(self.seconds_to_next(), 60.0))


# ---------------------------------------------------------------- backfill


def windows(start: Any, end: Any, step: Any) -> list[tuple[Any, Any]]:
    """Split ``[start, end)`` into windows of ``step`` (a timedelta or a number).

    >>> windows(0, 25, 10)
    [(0, 10), (10, 20), (20, 25)]
    """
    if step is None or (isinstance(step, int | float) and step <= 0) or (
            isinstance(step, dt.timedelta) and step.total_seconds() <= 0):
        raise ConfigError("backfill step must be positive", hint="e.g. --step 1d or --step 1000")
    out = []
    lo = start
    while lo < end:
        hi = min(lo + step, end)
        out.append((lo, hi))
        lo = hi
    return out


def parse_bound(text: str) -> Any:
    """A backfill bound: an integer, an ISO date or an ISO timestamp (UTC if no offset).

    >>> parse_bound("2026-01-02").isoformat()
    '2026-01-02T00:00:00+00:00'
    """
    if re.fullmatch(r"-?\d+", text.strip()):
        return int(text)
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"'{text}' is neither a number nor an ISO date/time",
                          hint="e.g. 2026-01-01 or 2026-01-01T06:00:00+00:00") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_step(text: str) -> Any:
    """A backfill step: ``1d``, ``6h``, ``1h30m`` -> timedelta; ``1000`` -> 1000 (id cursors).

    >>> parse_step("1h30m"), parse_step("500")
    (datetime.timedelta(seconds=5400), 500)
    """
    if re.fullmatch(r"\s*\d+\s*", text):
        return int(text)
    try:
        return parse_duration(text, where="step")
    except ConfigError as exc:
        raise ConfigError(exc.message, hint=f"{exc.hint} (or a number for id cursors)") from None


def backfill(project: Project, name: str, *, start: Any, end: Any, step: Any,
             progress: Callable[[int, int, tuple[Any, Any], Run], None] | None = None
             ) -> list[Run]:
    """Load pipeline ``name`` window by window over ``[start, end)``.

    Each window is read with the cursor (SQL) or since/until parameters (REST) limited to it,
    and remembered separately from the incremental position: a window already loaded is
    skipped, so a backfill interrupted half-way is simply run again.
    """
    from headwater.ingest._pipeline import ingest
    from headwater.ingest._run import load_contract
    from headwater.ingest.sources import build_source
    from headwater.store import open_store, run_store

    spec = project.pipeline(name)
    if spec.mode == "replace":
        raise ConfigError(f"pipeline '{name}' uses mode replace; a backfill window would replace "
                          "the whole table", hint="use mode: merge (or append) to backfill")
    parts = windows(start, end, step)
    runs: list[Run] = []
    with pipeline_lock(project, name):
        store = open_store(project, spec.store)
        try:
            contract = load_contract(spec.contract, project.root)
            for i, window in enumerate(parts):
                source = build_source(spec.source, project, window=window)
                result = ingest(source, store, table=spec.table, pipeline=name,
                                contract=contract, mode=spec.mode,
                                primary_key=spec.primary_key or None, runs=run_store(project))
                result.report["window"] = [str(window[0]), str(window[1])]
                runs.append(result)
                if progress is not None:
                    progress(i + 1, len(parts), window, result)
                if result.status == "failed":
                    log.error("backfill_stopped", pipeline=name, window=[str(w) for w in window])
                    break
        finally:
            store.close()
    return runs


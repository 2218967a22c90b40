"""What the dashboard shows, gathered from run records, the stores, the stream processors and
the model registry. Pure functions turn run records into series; :func:`collect` does the I/O.

Every panel is gathered on its own: a store that is busy or a registry that is down leaves a
note in ``Snapshot.problems`` and an empty panel, never a broken page.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from headwater.config import Project
from headwater.core import HeadwaterError

#: A point of a time series: (when, value).
Point = tuple[datetime, float]
#: Series by name (a pipeline, a rule, a table).
Series = dict[str, list[Point]]


@dataclass
class PipelineView:
    """One pipeline of headwater.yaml and what its runs say."""

    name: str
    source: str
    table: str
    schedule: str | None
    last: dict[str, Any] | None
    history: list[str]              # statuses of recent runs, oldest first
    last_success: datetime | None
    age_s: float | None             # seconds since the last successful run ended


@dataclass
class RuleView:
    """One rule of one table in the newest run that checked it."""

    table: str
    rule: str
    checked: int
    failed: int
    pass_rate: float


@dataclass
class Snapshot:
    """Everything one page shows, taken at ``taken_at``."""

    project: str
    taken_at: datetime
    pipelines: list[PipelineView] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    rates: Series = field(default_factory=dict)
    loaded: Series = field(default_factory=dict)
    durations: Series = field(default_factory=dict)
    quality: Series = field(default_factory=dict)
    rule_quality: dict[str, Series] = field(default_factory=dict)
    rules: list[RuleView] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    quarantine_rows: list[dict[str, Any]] = field(default_factory=list)
    quarantine_waiting: int = 0     # rows waiting in the quarantine, every table and store
    quarantined: Series = field(default_factory=dict)
    processors: list[dict[str, Any]] = field(default_factory=list)
    #: firing now (rules and streams); fired / resolved events, newest first; silences
    alerts: list[dict[str, Any]] = field(default_factory=list)
    alert_events: list[dict[str, Any]] = field(default_factory=list)
    silences: list[dict[str, Any]] = field(default_factory=list)
    #: the stream processors' alerts tables, when their alerts are not routed as alerts
    stream_alerts: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def firing(self) -> list[dict[str, Any]]:
        """Alerts firing now that nobody silenced and no greater alert inhibits."""
        return ([a for a in self.alerts if not a.get("silenced_by") and not a.get("inhibited")]
                + [a for a in self.stream_alerts if a.get("status") == "firing"])



# --- pure: run records -> what the panels show ------------------------------------------------

def _when(run: dict[str, Any]) -> datetime:
    return run.get("ended_at") or run["started_at"]


def ingestion_series(runs: Iterable[dict[str, Any]]) -> tuple[Series, Series, Series, Series]:
    """Per pipeline, oldest first: rows read per second, rows loaded, run seconds and rows
    quarantined, one point per finished ingest run (at its end).

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> run = {"kind": "ingest", "pipeline": "orders", "status": "succeeded", "started_at": t,
    ...        "ended_at": t, "rows_read": 100, "rows_loaded": 90, "rows_quarantined": 10,
    ...        "duration_s": 2.0}
    >>> rates, loaded, seconds, quarantined = ingestion_series([run])
    >>> rates["orders"][0][1], loaded["orders"][0][1], quarantined["orders"][0][1]
    (50.0, 90.0, 10.0)
    """
    rates: Series = {}
    loaded: Series = {}
    seconds: Series = {}
    quarantined: Series = {}
    for run in sorted(runs, key=_when):
        if run.get("kind") != "ingest" or run.get("status") == "running":
            continue
        at, name = _when(run), run["pipeline"]
        duration = float(run.get("duration_s") or 0.0)
        read = float(run.get("rows_read") or 0)
        rates.setdefault(name, []).append((at, read / duration if duration > 0 else 0.0))
        loaded.setdefault(name, []).append((at, float(run.get("rows_loaded") or 0)))
        seconds.setdefault(name, []).append((at, duration))
        quarantined.setdefault(name, []).append((at, float(run.get("rows_quarantined") or 0)))
    return rates, loaded, seconds, quarantined


def _qualities(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The quality reports of one run's report by table (a routed run has several)."""
    found = {}
    if report.get("quality") and report.get("table"):
        found[report["table"]] = report["quality"]
    for table, sub in (report.get("tables") or {}).items():
        if sub and sub.get("quality"):
            found[table] = sub["quality"]
    return found


def quality_series(runs: Iterable[dict[str, Any]]) -> tuple[Series, dict[str, Series],
                                                           list[RuleView]]:
    """From runs with reports: the pass rate per table over time, per table the pass rate of
    each rule that ever failed over time, and every rule of the newest run of each table.

    Runs that checked no rows are left out (a re-run that found nothing new says nothing about
    quality).
    """
    overall: Series = {}
    per_rule: dict[str, Series] = {}
    newest: dict[str, tuple[datetime, dict[str, Any]]] = {}
    for run in sorted(runs, key=_when):
        for table, quality in _qualities(run.get("report") or {}).items():
            if not (quality.get("valid", 0) + quality.get("invalid", 0)):
                continue
            at = _when(run)
            overall.setdefault(table, []).append((at, float(quality.get("pass_rate", 1.0))))
            newest[table] = (at, quality)
            for rule, stats in (quality.get("rules") or {}).items():
                per_rule.setdefault(table, {}).setdefault(rule, []).append(
                    (at, float(stats.get("pass_rate", 1.0))))
    flaky = {table: {rule: points for rule, points in rules.items()
                     if any(value < 1.0 for _, value in points)}
             for table, rules in per_rule.items()}
    rules = [RuleView(table, rule, int(s.get("checked", 0)), int(s.get("failed", 0)),
                      float(s.get("pass_rate", 1.0)))
             for table, (_, quality) in sorted(newest.items())
             for rule, s in (quality.get("rules") or {}).items()]
    rules.sort(key=lambda r: (r.pass_rate, r.table, r.rule))
    return overall, {t: r for t, r in flaky.items() if r}, rules


def pipeline_views(project: Project, runs: Iterable[dict[str, Any]], *, now: datetime,
                   history: int = 20) -> list[PipelineView]:
    """Every pipeline of headwater.yaml (and any other that has ingest runs) with its newest
    run, the statuses of its recent runs and how long ago it last succeeded."""
    by_pipeline: dict[str, list[dict[str, Any]]] = {}
    for run in sorted(runs, key=lambda r: r["started_at"]):
        if run.get("kind") == "ingest":
            by_pipeline.setdefault(run["pipeline"], []).append(run)
    views = []
    names = list(project.pipelines) + sorted(set(by_pipeline) - set(project.pipelines))
    for name in names:
        spec = project.pipelines.get(name)
        mine = by_pipeline.get(name, [])
        done = [r for r in mine if r["status"] == "succeeded"]
        success = _when(done[-1]) if done else None
        views.append(PipelineView(
            name=name,
            source=spec.source.kind if spec else "files",
            table=spec.table if spec else (mine[-1].get("report") or {}).get("table", name),
            schedule=spec.schedule if spec else None,
            last=mine[-1] if mine else None,
            history=[r["status"] for r in mine[-history:]],
            last_success=success,
            age_s=(now - success).total_seconds() if success else None))
    return views


def processor_view(status: Any, *, now: datetime) -> dict[str, Any]:
    """One processor's status (``headwater.stream.ProcessorStatus``) as the page shows it:
    lag in records, event-time delay of the watermark, throughput and alerts of its newest
    member's run."""
    last = status.members[0] if status.members else {}
    watermark = last.get("watermark_ms")
    delay = (now.timestamp() - watermark / 1000) if watermark is not None else None
    return {"name": status.name, "topic": status.topic, "lag": status.lag,
            "partitions": len(status.end) or len(status.committed),
            "status": last.get("status"), "started_at": last.get("started_at"),
            "events": last.get("events"), "events_per_second": last.get("events_per_second"),
            "watermark_delay_s": delay, "late": last.get("late"),
            "duplicates": last.get("duplicates"), "open_windows": last.get("open_windows"),
            "active_alerts": last.get("active_alerts"), "anomalies": last.get("anomalies")}


def alert_rate(events: Iterable[dict[str, Any]], *, bucket_s: int = 3600) -> Series:
    """Alerts that fired per ``bucket_s`` (an hour), by severity, oldest first.

    >>> t = datetime(2026, 1, 1, 10, 20, tzinfo=UTC)
    >>> alert_rate([{"status": "firing", "severity": "critical", "time": t},
    ...             {"status": "resolved", "severity": "critical", "time": t}])["critical"][0][1]
    1.0
    """
    counts: dict[str, dict[float, int]] = {}
    for event in events:
        if event.get("status") != "firing" or event.get("time") is None:
            continue
        start = event["time"].timestamp() // bucket_s * bucket_s
        by = counts.setdefault(event.get("severity") or "warning", {})
        by[start] = by.get(start, 0) + 1
    return {severity: [(datetime.fromtimestamp(t, UTC), float(n)) for t, n in sorted(by.items())]
            for severity, by in sorted(counts.items())}


# --- I/O ---------------------------------------------------------------------------------------

def _panel(problems: list[str], what: str, read: Callable[[], Any], default: Any) -> Any:
    try:
        return read()
    except HeadwaterError as exc:
        problems.append(f"{what}: {exc.message}")
    except Exception as exc:  # a panel that cannot be read must not take the page down
        problems.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    return default


def _stream_alerts(project: Project, limit: int) -> list[dict[str, Any]]:
    from headwater.store import open_store, quote

    found: list[dict[str, Any]] = []
    for name, spec in sorted(project.processors.items()):
        table = spec.outputs.alerts.format(name=name)
        store = open_store(project, spec.outputs.store, read_only=True)
        try:
            if table not in store.tables():
                continue
            rows = store.query(f"SELECT * FROM {quote(table)} "
                               f"ORDER BY status = 'firing' DESC, last_seen DESC LIMIT {limit}")
        finally:
            store.close()
        for row in rows.to_pylist():
            row["processor"] = name
            row["series"] = " ".join(str(row[k]) for k in spec.keys if k in row)
            found.append(row)
    found.sort(key=lambda a: (a["status"] != "firing", -_ms(a.get("last_seen"))))
    return found[:limit]


def _ms(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp() * 1000
    return float(value or 0)


def _quarantine(project: Project, stores: list[str], samples: int
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    from headwater.ingest._quarantine import quarantine_counts, quarantine_sample, waiting

    counts: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    total = 0
    for store in stores:
        total += waiting(project, store=store)
        found = quarantine_counts(project, store=store).to_pylist()
        for row in found:
            row["store"] = store
        counts.extend(found)
        for table in dict.fromkeys(r["table_name"] for r in found):
            for row in quarantine_sample(project, table=table, limit=samples,
                                         store=store).to_pylist():
                row["store"] = store
                rows.append(row)
    counts.sort(key=lambda r: -r["n_rows"])
    return counts, rows, total


def _alert_panels(project: Project, since: datetime
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    from headwater.monitor.alerts import active_alerts, alert_history, alert_store

    store = alert_store(project)
    silences = [{**vars(s), "ends": datetime.fromtimestamp(s.ends_at, UTC)}
                for s in store.silences()]
    return active_alerts(store), alert_history(store, since, limit=200), silences


def _models(project: Project) -> list[dict[str, Any]]:
    if project.ml.tracking_uri is None and not (project.state_dir / "mlflow.db").exists():
        return []
    from headwater.ml._tracking import Tracker

    return Tracker.for_project(project).models()


@dataclass
class _Cached:
    value: Any = None
    at: float = float("-inf")


_MODELS: dict[str, _Cached] = {}


def collect(project: Project, *, now: datetime | None = None, days: float = 7,
            max_runs: int = 500, samples: int = 5, models_every_s: float = 60) -> Snapshot:
    """Gather a :class:`Snapshot` of ``project``: runs of the last ``days`` (at most
    ``max_runs``), the quarantine of every store pipelines write to (``samples`` rows per
    table), the stream processors and their alerts, and the registered models (read at most
    every ``models_every_s`` seconds: MLflow is slow to load)."""
    from headwater.store import run_store

    now = now or datetime.now(UTC)
    snap = Snapshot(project=project.project, taken_at=now)
    problems = snap.problems
    runs = _panel(problems, "run records", lambda: run_store(project).list(
        limit=max_runs, since=now - timedelta(days=days), reports=True), [])
    snap.runs = [{k: v for k, v in r.items() if k != "report"} for r in runs[:50]]
    snap.pipelines = pipeline_views(project, runs, now=now)
    snap.rates, snap.loaded, snap.durations, snap.quarantined = ingestion_series(runs)
    snap.quality, snap.rule_quality, snap.rules = quality_series(runs)
    stores = sorted({spec.store for spec in project.pipelines.values()} or {"warehouse"})
    stores = [s for s in stores if s in project.stores]
    snap.quarantine, snap.quarantine_rows, snap.quarantine_waiting = _panel(
        problems, "quarantine", lambda: _quarantine(project, stores, samples), ([], [], 0))
    snap.alerts, snap.alert_events, snap.silences = _panel(
        problems, "alerts", lambda: _alert_panels(project, now - timedelta(days=days)),
        ([], [], []))
    if project.processors:
        from headwater.stream import processor_status

        statuses = _panel(problems, "stream processors", lambda: processor_status(project), [])
        snap.processors = [processor_view(s, now=now) for s in statuses]
        if not project.alerts.stream:  # else they are among the alerts above
            snap.stream_alerts = _panel(problems, "stream alerts",
                                        lambda: _stream_alerts(project, 50), [])
    cached = _MODELS.setdefault(str(project.root), _Cached())
    if time.monotonic() - cached.at >= models_every_s:
        cached.value = _panel(problems, "models", lambda: _models(project), [])
        cached.at = time.monotonic()
    snap.models = cached.value or []
    return snap

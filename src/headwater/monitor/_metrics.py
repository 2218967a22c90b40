"""Prometheus metrics shared by every process, written to a textfile or a Pushgateway."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, write_to_textfile

REGISTRY = CollectorRegistry(auto_describe=True)

ROWS = Counter(
    "headwater_rows",
    "Rows by pipeline, source, table and outcome (read, loaded, quarantined, dropped).",
    ["pipeline", "source", "table", "outcome"],
    registry=REGISTRY,
)
BYTES = Counter(
    "headwater_bytes_read", "Bytes read from sources.", ["pipeline", "source"], registry=REGISTRY
)
QUARANTINED = Counter(
    "headwater_quarantined_rows",
    "Quarantined rows by rule.",
    ["pipeline", "table", "rule"],
    registry=REGISTRY,
)
RUN_SECONDS = Histogram(
    "headwater_run_duration_seconds",
    "Duration of runs.",
    ["kind", "pipeline"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
    registry=REGISTRY,
)
RUNS = Counter(
    "headwater_runs",
    "Runs by kind, pipeline and status.",
    ["kind", "pipeline", "status"],
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "headwater_last_success_timestamp_seconds",
    "When a pipeline last succeeded.",
    ["kind", "pipeline"],
    registry=REGISTRY,
)


LAST_RUN_FAILED = Gauge(
    "headwater_last_run_failed", "1 when a pipeline's latest run failed, else 0.",
    ["kind", "pipeline"], registry=REGISTRY,
)
ROWS_PER_SECOND = Gauge(
    "headwater_rows_per_second", "Rows read per second by the latest run.", ["kind", "pipeline"],
    registry=REGISTRY,
)
BYTES_PER_SECOND = Gauge(
    "headwater_bytes_per_second", "Bytes read per second by the latest run.",
    ["kind", "pipeline"], registry=REGISTRY,
)
PASS_RATE = Gauge(
    "headwater_quality_pass_rate",
    "Share of checked rows passing a contract rule (rule=\"*\": every rule), latest run.",
    ["pipeline", "table", "rule"], registry=REGISTRY,
)
NULL_RATE = Gauge(
    "headwater_null_rate", "Share of loaded rows that are null, per column, latest run.",
    ["pipeline", "table", "column"], registry=REGISTRY,
)
LATENCY_BUCKETS = (0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)
INGEST_LATENCY = Histogram(
    "headwater_ingest_latency_seconds",
    "From the source's time (a file's modification, a record's timestamp) to stored.",
    ["pipeline", "table"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
LAST_LOAD = Gauge(
    "headwater_last_load_timestamp_seconds",
    "When rows last reached a table (freshness = now - this).",
    ["pipeline", "table"], registry=REGISTRY,
)
STREAM_RECORDS = Counter(
    "headwater_stream_records", "Records read by a stream processor or gateway.",
    ["processor"], registry=REGISTRY,
)
STREAM_LAG = Gauge(
    "headwater_stream_lag_records", "Records a consumer is behind the end of its topic.",
    ["processor", "topic"], registry=REGISTRY,
)
WATERMARK_DELAY = Gauge(
    "headwater_watermark_delay_seconds", "Wall clock minus the processor's watermark.",
    ["processor"], registry=REGISTRY,
)
EVENT_LATENCY = Histogram(
    "headwater_stream_event_latency_seconds", "From an event's time to its window being stored.",
    ["processor"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
ERRORS = Counter(
    "headwater_errors", "Errors by component and kind (failed extracts, deliveries, ...).",
    ["component", "error"], registry=REGISTRY,
)
ALERTS_FIRING = Gauge(
    "headwater_alerts_firing", "Alerts firing now, by rule and severity.", ["rule", "severity"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "headwater_alert_deliveries", "Alert notifications by sink and outcome.", ["sink", "outcome"],
    registry=REGISTRY,
)
DASHBOARD_SNAPSHOT = Histogram(
    "headwater_dashboard_snapshot_seconds",
    "Time the dashboard takes to read runs, alerts, quarantine and models for one refresh.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY,
)


def observe_batch_age(histogram: Histogram, labels: Sequence[str], times_ms: Any) -> None:
    """One observation per batch, never one per record: how old the batch's median event is
    now, from ``times_ms`` (a Polars Series of epoch milliseconds)."""
    middle = times_ms.median() if len(times_ms) else None
    if middle is not None:
        histogram.labels(*labels).observe(max(0.0, time.time() - float(middle) / 1000))


def write_metrics(directory: str | Path, job: str) -> Path:
    """Write the registry to ``directory/job.prom`` (node_exporter's textfile format)."""
    path = Path(directory) / f"{job}.prom"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), REGISTRY)
    return path


def push_metrics(gateway: str, job: str) -> None:
    """Push the registry to a Prometheus Pushgateway."""
    from prometheus_client import push_to_gateway

    push_to_gateway(gateway, job=job, registry=REGISTRY)


def publish_metrics(job: str, *, textfile_dir: str | Path | None,
                    pushgateway: str | None) -> None:
    """Write the metrics textfile and/or push to a Pushgateway, as headwater.yaml says."""
    if textfile_dir:
        write_metrics(textfile_dir, job)
    if pushgateway:
        push_metrics(pushgateway, job)


def record_run_metrics(run: Any) -> dict[str, Any]:
    """Set the latest-run gauges (rates, pass rates, null rates, last load) from a finished
    run and return the same figures, which the caller keeps in the run record
    (``run.report["metrics"]``) for history without a Prometheus server."""
    seconds = max(run.duration_s, 1e-9)
    out: dict[str, Any] = {"rows_per_second": run.rows_read / seconds,
                           "bytes_per_second": run.bytes_read / seconds,
                           "duration_s": run.duration_s, "pass_rate": {}, "null_rate": {}}
    ROWS_PER_SECOND.labels(run.kind, run.pipeline).set(out["rows_per_second"])
    BYTES_PER_SECOND.labels(run.kind, run.pipeline).set(out["bytes_per_second"])
    report = run.report
    tables = {report.get("table"): report.get("quality")}
    tables.update({name: t.get("quality") for name, t in report.get("tables", {}).items()})
    for table, quality in tables.items():
        if not table or not quality:
            continue
        rates = {"*": quality["pass_rate"],
                 **{rule: s["pass_rate"] for rule, s in quality.get("rules", {}).items()}}
        nulls = {col: s["null_rate"] for col, s in quality.get("columns", {}).items()}
        for rule, rate in rates.items():
            PASS_RATE.labels(run.pipeline, table, rule).set(rate)
        for column, rate in nulls.items():
            NULL_RATE.labels(run.pipeline, table, column).set(rate)
        out["pass_rate"][table] = rates
        out["null_rate"][table] = nulls
        if run.rows_loaded:
            LAST_LOAD.labels(run.pipeline, table).set_to_current_time()
    return out

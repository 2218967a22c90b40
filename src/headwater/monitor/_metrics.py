"""Prometheus metrics shared by every process, written to a textfile or a Pushgateway."""

from __future__ import annotations

from pathlib import Path

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

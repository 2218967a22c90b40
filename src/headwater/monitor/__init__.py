"""Monitoring: structured logs, Prometheus metrics, run ids."""

from headwater.monitor import _metrics as metrics
from headwater.monitor._logging import configure_logging, get_logger
from headwater.monitor._logread import format_line, read_logs
from headwater.monitor._metrics import publish_metrics, push_metrics, write_metrics
from headwater.monitor._run import Run, new_run_id, run
from headwater.monitor._serve import (
    MetricsServer,
    metrics_response,
    process_registry,
    serve_metrics,
)

__all__ = [
    "MetricsServer",
    "Run",
    "configure_logging",
    "format_line",
    "get_logger",
    "metrics",
    "metrics_response",
    "new_run_id",
    "process_registry",
    "publish_metrics",
    "push_metrics",
    "read_logs",
    "run",
    "serve_metrics",
    "write_metrics",
]

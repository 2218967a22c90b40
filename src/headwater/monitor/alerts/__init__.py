"""Alerting: rules from headwater.yaml judged on metrics and runs, routed to sinks.

Library surface for the CLI, the dashboard and long-running processes:

- :func:`alert_store` — the project's :class:`AlertStore` (state, history, silences, outbox,
  metric history, in the metadata database).
- :func:`active_alerts`, :func:`alert_history`, :func:`silence`, :func:`unsilence`.
- :func:`check_rules` after a batch run; :class:`Watcher` and :func:`monitoring` for
  long-running processes; :func:`record_alerts` for alerts raised by the stream processor.
- :func:`send_test` for ``headwater alerts test``.
"""

from headwater.monitor.alerts._delivery import Dispatcher, backoff, deliver_due
from headwater.monitor.alerts._engine import Evaluation, evaluate, fingerprint, record_alerts
from headwater.monitor.alerts._export import alerting_rules, alertmanager_config, export, promql
from headwater.monitor.alerts._project import (
    AlertHandOff,
    Watcher,
    active_alerts,
    alert_history,
    alert_store,
    check_rules,
    deliver_pending,
    monitoring,
    observe,
    send_test,
    silence,
    unsilence,
)
from headwater.monitor.alerts._rules import Hit, Observation, hits
from headwater.monitor.alerts._samples import Sample, quantiles, registry_samples, textfile_samples
from headwater.monitor.alerts._sinks import DeliveryError
from headwater.monitor.alerts._store import AlertStore, Silence

__all__ = [
    "AlertHandOff",
    "AlertStore",
    "DeliveryError",
    "Dispatcher",
    "Evaluation",
    "Hit",
    "Observation",
    "Sample",
    "Silence",
    "Watcher",
    "active_alerts",
    "alert_history",
    "alert_store",
    "alerting_rules",
    "alertmanager_config",
    "backoff",
    "check_rules",
    "deliver_due",
    "deliver_pending",
    "evaluate",
    "export",
    "fingerprint",
    "hits",
    "monitoring",
    "observe",
    "promql",
    "quantiles",
    "record_alerts",
    "registry_samples",
    "send_test",
    "silence",
    "textfile_samples",
    "unsilence",
]

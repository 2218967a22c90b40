"""The production hand-off: Prometheus scrape config and alerting rules, an Alertmanager
configuration for the same sinks, and a Grafana dashboard, generated from headwater.yaml.

headwater's own evaluation and Prometheus's judge the same metrics with the same conditions:
each rule kind becomes the PromQL below (counters get their ``_total``).

=========== ===================================================================================
threshold   ``metric{match} > above`` (or ``< below``)
rate        ``rate(counter{match}[window])`` (``deriv`` for a gauge) against the bound
absent      ``absent(metric{match})``
stale       ``time() - headwater_last_success_timestamp_seconds{pipeline=~glob} > max_age``
quality     ``headwater_quality_pass_rate{table, rule} < below``
latency     ``histogram_quantile(q, sum by (le, ...) (metric_bucket{match})) > above``
run_failed  ``headwater_last_run_failed{pipeline=~glob} == 1``
lag         ``headwater_stream_lag_records{processor} > above``
=========== ===================================================================================
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from headwater.monitor._metrics import REGISTRY
from headwater.monitor.alerts._rules import duration_s

#: Files ``export`` writes, by what they are.
FILES = {"scrape": "prometheus.yml", "rules": "headwater-rules.yml",
         "alertmanager": "alertmanager.yml", "grafana": "grafana-dashboard.json"}


def _kinds() -> dict[str, str]:
    return {family.name: family.type for family in REGISTRY.collect()}


def _series(name: str, kinds: dict[str, str]) -> str:
    """The exposed name of a metric: counters end in ``_total``."""
    return f"{name}_total" if kinds.get(name) == "counter" else name


def glob_regex(glob: str) -> str:
    """A label glob as an (anchored) PromQL regex: ``orders*`` -> ``orders.*``.

    >>> glob_regex("eu.orders*")
    'eu\\\\.orders.*'
    """
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)


def _matchers(match: dict[str, str], literal: frozenset[str] = frozenset()) -> str:
    if not match:
        return ""
    parts = []
    for key, value in sorted(match.items()):
        if key not in literal and any(c in value for c in "*?"):
            parts.append(f'{key}=~"{glob_regex(value)}"')
        else:
            parts.append(f'{key}="{value}"')
    return "{" + ", ".join(parts) + "}"


def _bound(rule: Any) -> str:
    return f"> {rule.above:g}" if rule.above is not None else f"< {rule.below:g}"


def _seconds(text: str) -> str:
    return f"{int(duration_s(text))}s"


def promql(rule: Any, kinds: dict[str, str] | None = None) -> str:
    """The PromQL expression that fires when ``rule`` would."""
    kinds = _kinds() if kinds is None else kinds
    kind = rule.kind
    if kind == "threshold":
        return f"{_series(rule.metric, kinds)}{_matchers(rule.match)} {_bound(rule)}"
    if kind == "rate":
        name = rule.metric.removesuffix("_total")
        fn = "rate" if kinds.get(name) == "counter" or rule.metric.endswith("_total") \
            else "deriv"
        series = f"{name}_total" if fn == "rate" else rule.metric
        return f"{fn}({series}{_matchers(rule.match)}[{_seconds(rule.window)}]) {_bound(rule)}"
    if kind == "absent":
        return f"absent({_series(rule.metric, kinds)}{_matchers(rule.match)})"
    if kind == "stale":
        if rule.metric is not None:
            series = f"{rule.metric}{_matchers(rule.match)}"
        else:
            last = "headwater_last_success_timestamp_seconds"
            series = f"{last}{_matchers({'pipeline': rule.pipeline})}"
        return f"time() - {series} > {duration_s(rule.max_age):g}"
    if kind == "quality":
        match = {"rule": rule.rule or "*", **({"table": rule.table} if rule.table else {})}
        literal = frozenset({"rule"}) if rule.rule is None else frozenset()  # "*": every rule
        return f"headwater_quality_pass_rate{_matchers(match, literal)} < {rule.below:g}"
    if kind == "latency":
        keep = ", ".join(["le", "job", "instance", *sorted(rule.match)])
        return (f"histogram_quantile({rule.quantile:g}, sum by ({keep}) "
                f"({rule.metric}_bucket{_matchers(rule.match)})) > {rule.above:g}")
    if kind == "run_failed":
        match = {"pipeline": rule.pipeline} if rule.pipeline != "*" else {}
        if rule.run_kind:
            match["kind"] = rule.run_kind
        return f"headwater_last_run_failed{_matchers(match)} == 1"
    if kind == "lag":
        match = {"processor": rule.processor} if rule.processor else {}
        return f"headwater_stream_lag_records{_matchers(match)} > {rule.above:g}"
    raise ValueError(f"rule kind {kind!r} has no PromQL form")


def alerting_rules(spec: Any) -> dict[str, Any]:
    """Prometheus alerting rules (``rule_files``) for every rule of ``alerts.rules``."""
    kinds = _kinds()
    rules = []
    for name, rule in spec.rules.items():
        entry: dict[str, Any] = {"alert": name, "expr": promql(rule, kinds)}
        if duration_s(rule.for_) > 0:
            entry["for"] = _seconds(rule.for_)
        entry["labels"] = {**rule.labels, "severity": rule.severity, "rule": name}
        summary = rule.summary or f"{name}: {rule.kind} rule from headwater.yaml"
        entry["annotations"] = {"summary": _template(summary),
                                "value": "{{ $value }}"}
        rules.append(entry)
    return {"groups": [{"name": "headwater",
                        "interval": _seconds(spec.evaluate_every), "rules": rules}]}


def _template(text: str) -> str:
    """headwater's ``{value}`` / ``{pipeline}`` placeholders as Prometheus templates."""
    return re.sub(r"\{(\w+)\}", lambda m: "{{ $value }}" if m.group(1) == "value"
                  else f"{{{{ $labels.{m.group(1)} }}}}", text)


def scrape_config(spec: Any, targets: list[str], *, alertmanager: str | None,
                  scrape_interval: str = "15s") -> dict[str, Any]:
    """A Prometheus configuration: scrape ``targets``, load the rules, send to Alertmanager."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval,
                   "evaluation_interval": _seconds(spec.evaluate_every)},
        "rule_files": [FILES["rules"]],
        "scrape_configs": [{"job_name": "headwater", "metrics_path": "/metrics",
                            "static_configs": [{"targets": targets}]}],
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [
            {"targets": [alertmanager]}]}]}
    return config


def _receiver(name: str, sinks: list[str], spec: Any, secrets: bool) -> dict[str, Any]:
    def secret(value: Any) -> str:
        return value.get_secret_value() if secrets else "<secret: export with --secrets>"

    receiver: dict[str, Any] = {"name": name}
    for sink_name in sinks:
        sink = spec.sinks[sink_name]
        if sink.kind == "webhook" and sink.format == "slack":
            receiver.setdefault("slack_configs", []).append({
                "api_url": secret(sink.url), "send_resolved": True,
                "title": "[{{ .Status | toUpper }}:{{ .Alerts | len }}] "
                         "{{ .GroupLabels.alertname }}",
                "text": "{{ range .Alerts }}{{ .Labels.severity }}: "
                        "{{ .Annotations.summary }}\n{{ end }}"})
        elif sink.kind == "webhook":  # generic JSON; Teams through a bridge such as
            # prometheus-msteams (Alertmanager 0.25 has no msteams_configs)
            receiver.setdefault("webhook_configs", []).append({
                "url": secret(sink.url), "send_resolved": True})
        elif sink.kind == "email":
            mail: dict[str, Any] = {"to": ", ".join(sink.to), "from": sink.sender,
                                    "smarthost": f"{sink.host}:{sink.port}",
                                    "require_tls": sink.security != "none",
                                    "send_resolved": True}
            if sink.username:
                mail["auth_username"] = sink.username
            if sink.password is not None:
                mail["auth_password"] = secret(sink.password)
            receiver.setdefault("email_configs", []).append(mail)
        elif sink.kind == "pagerduty":
            receiver.setdefault("pagerduty_configs", []).append({
                "routing_key": secret(sink.routing_key), "url": sink.url,
                "send_resolved": True})
        # kind log: headwater's own log file; Alertmanager has nothing to send there
    return receiver


def _am_matchers(match: dict[str, str]) -> list[str]:
    out = []
    for key, value in sorted(match.items()):
        if any(c in value for c in "*?"):
            out.append(f'{key}=~"{glob_regex(value)}"')
        else:
            out.append(f'{key}="{value}"')
    return out


def alertmanager_config(spec: Any, *, secrets: bool = False,
                        group_wait: str = "30s") -> dict[str, Any]:
    """An Alertmanager configuration routing the exported rules to the same sinks, with the
    same grouping, repeat interval and inhibitions. Secrets are left out unless asked for."""
    repeat = _seconds(spec.repeat_after)
    receivers = [{"name": "default-null"}]
    routes = []
    if spec.routes:
        for i, route in enumerate(spec.routes):
            name = f"route-{i}-" + "-".join(route.sinks)
            receivers.append(_receiver(name, route.sinks, spec, secrets))
            entry: dict[str, Any] = {"receiver": name,
                                     "group_by": ["alertname", *route.group_by]}
            if route.match:
                entry["matchers"] = _am_matchers(route.match)
            if route.continue_:
                entry["continue"] = True
            routes.append(entry)
        root_receiver = "default-null"
    else:
        root_receiver = "all-sinks"
        receivers.append(_receiver(root_receiver, sorted(spec.sinks), spec, secrets))
    config: dict[str, Any] = {
        "route": {"receiver": root_receiver, "group_by": ["alertname", "rule"],
                  "group_wait": group_wait, "group_interval": "1m",
                  "repeat_interval": repeat, **({"routes": routes} if routes else {})},
        "receivers": receivers,
    }
    if spec.inhibit:
        config["inhibit_rules"] = [{"source_matchers": _am_matchers(r.source),
                                    "target_matchers": _am_matchers(r.target),
                                    "equal": list(r.equal)} for r in spec.inhibit]
    return config


_PANELS: list[tuple[str, str, str]] = [
    ("Rows read per second",
     'sum by (pipeline) (rate(headwater_rows_total{outcome="read"}[5m]))', "rows/s"),
    ("Rows per second, latest run", "headwater_rows_per_second", "rows/s"),
    ("Bytes read per second", "sum by (pipeline) (rate(headwater_bytes_read_total[5m]))",
     "Bps"),
    ("Quality: pass rate per table and rule", "headwater_quality_pass_rate", "percentunit"),
    ("Null rate per column", "headwater_null_rate", "percentunit"),
    ("Quarantined rows by reason", "sum by (table, rule) (headwater_quarantined_rows_total)",
     "short"),
    ("Ingest latency p95 (source time to stored)",
     "histogram_quantile(0.95, sum by (le, pipeline) (headwater_ingest_latency_seconds_bucket))",
     "s"),
    ("Freshness per table", "time() - headwater_last_load_timestamp_seconds", "s"),
    ("Stream consumer lag", "headwater_stream_lag_records", "short"),
    ("Watermark delay", "headwater_watermark_delay_seconds", "s"),
    ("Stream event latency p95",
     "histogram_quantile(0.95, sum by (le, processor) "
     "(rate(headwater_stream_event_latency_seconds_bucket[5m])))", "s"),
    ("Errors", "sum by (component, error) (rate(headwater_errors_total[5m]))", "short"),
    ("Run durations p95",
     "histogram_quantile(0.95, sum by (le, kind, pipeline) "
     "(headwater_run_duration_seconds_bucket))", "s"),
    ("Alerts firing", "sum by (rule, severity) (headwater_alerts_firing)", "short"),
    ("Alert deliveries", "sum by (sink, outcome) (headwater_alert_deliveries_total)", "short"),
]


def grafana_dashboard(project: str) -> dict[str, Any]:
    """A Grafana dashboard with the dashboard's panels, on a Prometheus data source chosen
    at import (``DS_PROMETHEUS``)."""
    panels = []
    for i, (title, expr, unit) in enumerate(_PANELS):
        panels.append({
            "id": i + 1, "type": "timeseries", "title": title,
            "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
            "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "expr": expr,
                         "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}}],
        })
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                      "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "title": f"headwater — {project}",
        "uid": f"headwater-{re.sub(r'[^a-z0-9-]', '-', project.lower())}"[:40],
        "tags": ["headwater"], "timezone": "utc", "schemaVersion": 39, "version": 1,
        "refresh": "30s", "time": {"from": "now-6h", "to": "now"}, "panels": panels,
    }


def export(project: Any, folder: str | Path, *, targets: list[str] | None = None,
           alertmanager: str | None = "localhost:9093", secrets: bool = False,
           scrape_interval: str = "15s", group_wait: str = "30s") -> dict[str, Path]:
    """Write the four files into ``folder``; return their paths by what they are.

    ``targets`` are the ``host:port`` of headwater processes serving ``/metrics``
    (default ``localhost:9108``). Sink secrets are written only with ``secrets=True``.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    spec = project.alerts
    documents = {
        "scrape": scrape_config(spec, targets or ["localhost:9108"], alertmanager=alertmanager,
                                scrape_interval=scrape_interval),
        "rules": alerting_rules(spec),
        "alertmanager": alertmanager_config(spec, secrets=secrets, group_wait=group_wait),
    }
    paths = {}
    for what, data in documents.items():
        paths[what] = out / FILES[what]
        paths[what].write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                               encoding="utf-8")
    paths["grafana"] = out / FILES["grafana"]
    paths["grafana"].write_text(json.dumps(grafana_dashboard(project.project), indent=2),
                                encoding="utf-8")
    return paths

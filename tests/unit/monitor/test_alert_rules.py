"""Alert rules: pending → firing → resolved, de-duplication, silences, inhibition, routes and
groups, and each rule kind on samples and runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.config import parse_project
from headwater.core import ConfigError
from headwater.monitor.alerts import (
    AlertStore,
    Observation,
    Sample,
    evaluate,
    quantiles,
    record_alerts,
    silence,
    unsilence,
)

RULES = """
project: t
alerts:
  sinks:
    hook: {kind: webhook, url: "http://127.0.0.1:9/x"}
  routes:
    - match: {severity: critical}
      sinks: [hook]
      group_by: [pipeline]
    - sinks: [log]
  inhibit:
    - source: {severity: critical}
      target: {severity: warning}
      equal: [pipeline]
  rules:
    quarantine_high:
      kind: threshold
      metric: headwater_rows
      match: {outcome: quarantined}
      above: 10
      for: 1m
    failed:
      kind: run_failed
      severity: critical
"""


def _samples(quarantined: float, pipeline: str = "orders") -> list[Sample]:
    return [Sample("headwater_rows_total", (("outcome", "quarantined"), ("pipeline", pipeline)),
                   quarantined)]


@pytest.fixture
def store(tmp_path) -> AlertStore:
    return AlertStore(f"sqlite:///{tmp_path}/m.db")


def _outbox(store: AlertStore) -> list[tuple[str, str, list[str]]]:
    return [(d["sink"], d["payload"]["status"], [a["rule"] for a in d["payload"]["alerts"]])
            for d in reversed(store.deliveries())]


def test_threshold_waits_for_its_duration_then_fires_once_and_resolves(store) -> None:
    spec = parse_project(RULES).alerts
    first = evaluate(spec, store, Observation(now=1000, samples=_samples(50)))
    assert [a["rule"] for a in first.pending] == ["quarantine_high"] and not first.firing
    assert evaluate(spec, store, Observation(now=1030, samples=_samples(50))).pending
    fired = evaluate(spec, store, Observation(now=1061, samples=_samples(60)))
    assert [a["labels"]["pipeline"] for a in fired.firing] == ["orders"]
    again = evaluate(spec, store, Observation(now=1100, samples=_samples(70)))
    assert again.firing and again.notifications == 0  # de-duplicated: sent once
    assert store.active_alerts()[0]["value"] == 70
    done = evaluate(spec, store, Observation(now=1200, samples=_samples(5)))
    assert [a["rule"] for a in done.resolved] == ["quarantine_high"]
    assert store.active_alerts() == []
    assert _outbox(store) == [("log", "firing", ["quarantine_high"]),
                              ("log", "resolved", ["quarantine_high"])]
    history = store.alert_history(since=datetime.fromtimestamp(0, UTC))
    assert [e["status"] for e in history] == ["resolved", "firing"]


def test_pending_that_clears_leaves_no_trace(store) -> None:
    spec = parse_project(RULES).alerts
    evaluate(spec, store, Observation(now=1000, samples=_samples(50)))
    evaluate(spec, store, Observation(now=1010, samples=_samples(1)))
    assert store.open_alerts() == {} and store.alert_history() == [] and _outbox(store) == []


def _runs(*statuses: tuple[str, str]) -> list[dict]:
    return [{"id": f"r{i}", "kind": "ingest", "pipeline": p, "status": s, "error": "boom",
             "started_at": datetime.fromtimestamp(900 - i, UTC),
             "ended_at": datetime.fromtimestamp(900 - i, UTC)}
            for i, (p, s) in enumerate(statuses)]


def test_critical_inhibits_warning_on_the_same_pipeline_and_routes_by_severity(store) -> None:
    spec = parse_project(RULES.replace("for: 1m", "for: 0s")).alerts
    obs = Observation(now=1000, samples=_samples(50) + _samples(50, "users"),
                      runs=_runs(("orders", "failed"), ("users", "succeeded")))
    result = evaluate(spec, store, obs)
    by = {(a["rule"], a["labels"]["pipeline"]): a for a in result.firing}
    assert by[("quarantine_high", "orders")]["inhibited"]
    assert not by[("quarantine_high", "users")]["inhibited"]
    assert _outbox(store) == [("log", "firing", ["quarantine_high"]),
                              ("hook", "firing", ["failed"])]


def test_a_later_success_resolves_a_failed_run(store) -> None:
    spec = parse_project(RULES).alerts
    evaluate(spec, store, Observation(now=1000, runs=_runs(("orders", "failed"))))
    result = evaluate(spec, store, Observation(
        now=1010, runs=_runs(("orders", "succeeded"), ("orders", "failed"))))
    assert [a["rule"] for a in result.resolved] == ["failed"]
    assert [s for _, s, _ in _outbox(store)] == ["firing", "resolved"]


def test_grouping_sends_one_message_per_group(store) -> None:
    spec = parse_project(RULES.replace("group_by: [pipeline]", "group_by: [severity]")).alerts
    evaluate(spec, store, Observation(now=1000, runs=_runs(("a", "failed"), ("b", "failed"))))
    assert _outbox(store) == [("hook", "firing", ["failed", "failed"])]


def test_silence_holds_back_until_unsilenced_and_expires(store) -> None:
    spec = parse_project(RULES).alerts
    quiet = silence(store, {"rule": "failed"}, duration="1h", now=990)
    evaluate(spec, store, Observation(now=1000, runs=_runs(("orders", "failed"))))
    assert _outbox(store) == []
    assert store.active_alerts(now=1000)[0]["silenced_by"] == quiet.id
    unsilence(store, quiet.id[:6], now=1005)
    evaluate(spec, store, Observation(now=1010, runs=_runs(("orders", "failed"))))
    assert _outbox(store) == [("hook", "firing", ["failed"])]
    with pytest.raises(ConfigError):
        silence(store, {}, duration="1h")


def test_stream_alerts_share_routes_and_history(store) -> None:
    spec = parse_project(RULES).alerts
    change = {"id": "sensors:zscore:d1:t:1", "rule": "zscore", "status": "firing",
              "severity": "critical", "labels": {"processor": "sensors", "device": "d1"}}
    record_alerts(spec, store, [change], now=1000)
    record_alerts(spec, store, [change], now=1005)  # still firing: not sent again
    assert [a["rule"] for a in store.active_alerts()] == ["zscore"]
    evaluate(spec, store, Observation(now=1006))  # rule evaluation leaves stream alerts alone
    assert store.active_alerts()
    record_alerts(spec, store, [{**change, "status": "resolved"}], now=1010)
    assert store.active_alerts() == []
    assert _outbox(store) == [("hook", "firing", ["zscore"]), ("hook", "resolved", ["zscore"])]


def test_rate_stale_quality_latency_lag_and_absent(store) -> None:
    text = """
alerts:
  rules:
    slow: {kind: rate, metric: headwater_rows, match: {outcome: read}, window: 1m, below: 1}
    stale: {kind: stale, pipeline: "orders*", max_age: 1h}
    quality: {kind: quality, table: orders, below: 0.99}
    latency: {kind: latency, metric: lat, quantile: 0.9, above: 5}
    lag: {kind: lag, above: 100}
    gone: {kind: absent, metric: headwater_stream_records, match: {processor: sensors}}
"""
    spec = parse_project(text).alerts
    read = (("outcome", "read"), ("pipeline", "orders"))
    store.record_samples([Sample("headwater_rows_total", read, 100)], at=900)
    buckets = [("1", 10), ("10", 20), ("+Inf", 20)]
    obs = Observation(
        now=1000, pipelines=["orders", "orders_eu"],
        samples=[Sample("headwater_rows_total", read, 130),
                 Sample("headwater_quality_pass_rate",
                        (("pipeline", "orders"), ("rule", "*"), ("table", "orders")), 0.9),
                 *[Sample("lat_bucket", (("le", le), ("pipeline", "orders")), n)
                   for le, n in buckets],
                 Sample("headwater_stream_lag_records", (("processor", "p"), ("topic", "t")),
                        500)],
        runs=_runs(("orders", "succeeded")), history=store.samples_before)
    firing = {a["rule"]: a for a in evaluate(spec, store, obs).firing}
    assert firing["slow"]["value"] == pytest.approx(0.3)
    assert firing["stale"]["labels"]["pipeline"] == "orders_eu"  # orders succeeded at 900
    assert firing["quality"]["value"] == 0.9
    assert firing["latency"]["value"] == pytest.approx(8.2)
    assert firing["lag"]["labels"]["processor"] == "p"
    assert firing["gone"]["labels"] == {"processor": "sensors", "rule": "gone",
                                        "severity": "warning"}


@given(st.lists(st.floats(0, 1000), min_size=1, max_size=200), st.floats(0.01, 0.99))
def test_quantile_lies_within_the_bucket_holding_it(values, q) -> None:
    bounds = [1, 10, 100, 1000]
    samples = [Sample("h_bucket", (("le", str(b)),), float(sum(v <= b for v in values)))
               for b in bounds]
    samples.append(Sample("h_bucket", (("le", "+Inf"),), float(len(values))))
    value = quantiles(samples, "h", q, {})[()]
    ordered = sorted(values)
    exact = ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]
    bucket = next(b for b in bounds if exact <= b)
    lower = max([0, *[b for b in bounds if b < bucket]])
    assert lower <= value <= bucket


def test_an_invalid_rule_names_key_and_line() -> None:
    text = "project: t\nalerts:\n  rules:\n    bad:\n      kind: threshold\n" \
           "      metric: m\n      above: 1\n      below: 2\n"
    with pytest.raises(ConfigError) as err:
        parse_project(text)
    assert "line 4, alerts.rules.bad: " in err.value.message
    assert "exactly one of `above` or `below`" in err.value.message
    with pytest.raises(ConfigError) as err:
        parse_project("alerts:\n  rules:\n    x:\n      kind: stale\n      pipeline: a\n"
                      "      max_age: soon\n")
    assert "line 6, alerts.rules.x.max_age" in err.value.message
    with pytest.raises(ConfigError) as err:
        parse_project("alerts:\n  routes:\n    - sinks: [pager]\n")
    assert "'pager' is not a sink" in err.value.message

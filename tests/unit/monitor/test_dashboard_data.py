"""The dashboard's page data: series from run records, the views, the charts and the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from headwater.config import parse_project
from headwater.monitor.dashboard._charts import bars, line_chart, nice_ticks, run_strip
from headwater.monitor.dashboard._data import (
    Snapshot,
    ingestion_series,
    pipeline_views,
    processor_view,
    quality_series,
)
from headwater.monitor.dashboard._page import ago, content, page

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def ingest_run(pipeline: str, minutes: int, *, status: str = "succeeded", read: int = 100,
               loaded: int = 90, quarantined: int = 10, seconds: float = 2.0,
               quality: dict | None = None, table: str | None = None) -> dict:
    started = T0 + timedelta(minutes=minutes)
    return {"id": f"{pipeline}-{minutes}", "kind": "ingest", "pipeline": pipeline,
            "status": status, "started_at": started,
            "ended_at": started + timedelta(seconds=seconds), "rows_read": read,
            "rows_loaded": loaded, "rows_quarantined": quarantined, "rows_dropped": 0,
            "bytes_read": read * 10, "duration_s": seconds, "error": None,
            "report": {"table": table or pipeline, **({"quality": quality} if quality else {})}}


def quality(valid: int, invalid: int, rules: dict[str, tuple[int, int]]) -> dict:
    return {"rows": valid + invalid, "valid": valid, "invalid": invalid,
            "pass_rate": valid / (valid + invalid) if valid + invalid else 1.0,
            "rules": {r: {"failed": f, "checked": c, "pass_rate": 1 - f / c if c else 1.0}
                      for r, (f, c) in rules.items()}}


PROJECT = parse_project("""
project: shop
pipelines:
  orders: {source: {kind: files, path: orders}, table: orders, schedule: every 15m}
  customers: {source: {kind: files, path: customers}, table: customers}
""")


def test_ingestion_series_one_point_per_finished_run_oldest_first() -> None:
    runs = [ingest_run("orders", 10, read=400, seconds=4.0), ingest_run("orders", 0),
            ingest_run("orders", 20, status="running"),
            {**ingest_run("model", 5), "kind": "train"}]
    rates, loaded, seconds, quarantined = ingestion_series(runs)
    assert set(rates) == {"orders"}  # training runs and running runs are not ingestion points
    assert [v for _, v in rates["orders"]] == [50.0, 100.0]
    assert [v for _, v in loaded["orders"]] == [90.0, 90.0]
    assert [v for _, v in seconds["orders"]] == [2.0, 4.0]
    assert [v for _, v in quarantined["orders"]] == [10.0, 10.0]
    assert rates["orders"][0][0] < rates["orders"][1][0]


def test_a_run_that_took_no_time_has_rate_zero_not_a_crash() -> None:
    rates, *_ = ingestion_series([ingest_run("orders", 0, seconds=0.0)])
    assert rates["orders"][0][1] == 0.0


def test_quality_series_keeps_rules_that_failed_and_skips_empty_runs() -> None:
    runs = [
        ingest_run("orders", 0, quality=quality(90, 10, {"type(amount)": (10, 100),
                                                          "not_null(id)": (0, 100)})),
        ingest_run("orders", 10, quality=quality(100, 0, {"type(amount)": (0, 100),
                                                           "not_null(id)": (0, 100)})),
        ingest_run("orders", 20, quality=quality(0, 0, {})),  # a re-run that found nothing
    ]
    overall, per_rule, rules = quality_series(runs)
    assert [v for _, v in overall["orders"]] == [0.9, 1.0]
    assert set(per_rule["orders"]) == {"type(amount)"}  # not_null(id) never failed
    assert [v for _, v in per_rule["orders"]["type(amount)"]] == [0.9, 1.0]
    assert [(r.rule, r.failed) for r in rules] == [("not_null(id)", 0), ("type(amount)", 0)]


def test_quality_of_a_routed_run_counts_for_each_table() -> None:
    run = ingest_run("shop", 0, quality=quality(9, 1, {"a": (1, 10)}), table="orders")
    run["report"]["tables"] = {"lines": {"quality": quality(5, 5, {"b": (5, 10)})}}
    overall, _, rules = quality_series([run])
    assert {t: pts[0][1] for t, pts in overall.items()} == {"orders": 0.9, "lines": 0.5}
    assert rules[0].table == "lines" and rules[0].pass_rate == 0.5


def test_pipeline_views_list_every_declared_pipeline_with_its_freshness() -> None:
    runs = [ingest_run("orders", 0), ingest_run("orders", 10, status="failed"),
            ingest_run("adhoc", 5, table="eu_orders")]
    now = T0 + timedelta(minutes=60)
    views = {v.name: v for v in pipeline_views(PROJECT, runs, now=now)}
    assert list(views) == ["orders", "customers", "adhoc"]
    orders = views["orders"]
    assert orders.history == ["succeeded", "failed"] and orders.last["status"] == "failed"
    assert orders.age_s == (now - (T0 + timedelta(seconds=2))).total_seconds()
    assert orders.schedule == "every 15m" and orders.source == "files"
    assert views["customers"].last is None and views["customers"].age_s is None
    assert views["adhoc"].table == "eu_orders"


def test_processor_view_turns_the_watermark_into_a_delay() -> None:
    from headwater.stream import ProcessorStatus

    status = ProcessorStatus("sensors", "readings", {0: 3}, {0: 10}, 7, [{
        "status": "succeeded", "watermark_ms": T0.timestamp() * 1000,
        "events_per_second": 1200.0, "active_alerts": 2}])
    view = processor_view(status, now=T0 + timedelta(seconds=30))
    assert view["watermark_delay_s"] == 30 and view["lag"] == 7 and view["partitions"] == 1
    assert view["active_alerts"] == 2


@given(st.floats(-1e6, 1e6), st.floats(0, 1e6))
def test_ticks_cover_the_range_in_order(low: float, width: float) -> None:
    ticks = nice_ticks(low, low + width)
    assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)
    assert ticks[0] <= low + 1e-9 * max(1, abs(low))
    assert ticks[-1] >= low + width - 1e-9 * max(1, abs(low + width))
    assert 2 <= len(ticks) <= 12


def test_line_chart_draws_every_point_and_escapes_names() -> None:
    series = {"<script>x</script>": [(T0, 1.0), (T0 + timedelta(minutes=5), 3.0)],
              "b": [(T0, 2.0)]}
    svg = line_chart(series, label="rate")
    assert 'data-points="3"' in svg and svg.count("<circle") == 3 and svg.count("<path") == 1
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "no data yet" in line_chart({}, label="rate")


def test_bars_and_strip() -> None:
    html = bars([("orders · type(amount)", 10), ("orders · parse", 5)])
    assert html.count('class="bar-row"') == 2 and "width:50.0%" in html
    assert run_strip(["succeeded", "failed"]).count("<span class=\"tick-") == 2


def test_silenced_and_inhibited_alerts_are_not_firing() -> None:
    snap = Snapshot(project="p", taken_at=T0, alerts=[
        {"rule": "a", "status": "firing"}, {"rule": "b", "status": "firing", "silenced_by": "x"},
        {"rule": "c", "status": "firing", "inhibited": True}])
    assert [a["rule"] for a in snap.firing] == ["a"]
    html = content(snap, actions=True)
    assert html.count("badge-silenced") == 1 and html.count("badge-inhibited") == 1
    assert html.count('data-url="/api/alerts/silence"') == 2  # not on the silenced one


def test_ago() -> None:
    assert ago(5) == "5 s ago" and ago(None) == "never"


def test_page_shows_every_panel_and_the_firing_alert() -> None:
    runs = [ingest_run("orders", 0, quality=quality(9, 1, {"type(amount)": (1, 10)}))]
    snap = Snapshot(project="shop", taken_at=T0 + timedelta(minutes=1), runs=runs,
                    pipelines=pipeline_views(PROJECT, runs, now=T0 + timedelta(minutes=1)))
    snap.rates, snap.loaded, snap.durations, snap.quarantined = ingestion_series(runs)
    snap.quality, snap.rule_quality, snap.rules = quality_series(runs)
    snap.stream_alerts = [{"processor": "sensors", "detector": "jump", "series": "pump-7 temp",
                           "status": "firing", "severity": "critical", "count": 2,
                           "first_seen": T0, "last_seen": T0, "reason": "jumped by 20"}]
    html = page(snap, refresh_s=3)
    for panel in ("alerts", "pipelines", "chart-rate", "chart-loaded", "chart-quality",
                  "chart-latency", "rules", "freshness", "quarantine", "runs"):
        assert f'id="{panel}"' in html, panel
    assert "1 alert(s) firing" in html and "pump-7 temp" in html
    assert 'data-refresh="3"' in html and "read-only" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from elsewhere
    assert content(snap) in html

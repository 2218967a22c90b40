"""The dashboard app on a real project: the page, JSON, static files, /metrics, the actions."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from headwater.config import load_project
from headwater.ingest import run_pipeline
from headwater.monitor.dashboard import collect, create_app
from headwater.quickstart._init import init_project

KEY = "test-key-0123456789"
RULES = """
alerts:
  rules:
    orders_quality: {kind: quality, table: orders, below: 0.99, severity: critical}
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = init_project(tmp_path_factory.mktemp("dash") / "shop")
    with (root / "headwater.yaml").open("a") as file:
        file.write(RULES)
    project = load_project(root)
    for name in project.pipelines:
        run_pipeline(project, name)
    return project


def test_collect_reads_runs_quality_and_the_quarantine(shop) -> None:
    snap = collect(shop)
    assert not snap.problems
    assert [p.name for p in snap.pipelines] == list(shop.pipelines)
    assert all(p.last["status"] == "succeeded" for p in snap.pipelines)
    assert set(snap.rates) == set(shop.pipelines) and set(snap.quality) == {"orders", "customers"}
    assert snap.quarantine_waiting > 0 and snap.quarantine and snap.quarantine_rows
    assert {r["table_name"] for r in snap.quarantine} == {"orders", "customers"}
    assert all(r["reasons"] for r in snap.quarantine_rows)
    assert snap.models == [] and snap.processors == []
    assert [a["rule"] for a in snap.alerts] == ["orders_quality"]
    assert [a["rule"] for a in snap.firing] == ["orders_quality"]
    assert [e["status"] for e in snap.alert_events] == ["firing"]


def test_page_static_files_and_json(shop) -> None:
    client = TestClient(create_app(shop, refresh_s=2))
    index = client.get("/")
    assert index.status_code == 200 and "default-src 'self'" in index.headers[
        "content-security-policy"]
    assert 'data-refresh="2"' in index.text and "orders" in index.text
    for asset, kind in (("dashboard.js", "javascript"), ("dashboard.css", "css"),
                        ("favicon.svg", "svg")):
        got = client.get(f"/static/{asset}")
        assert got.status_code == 200 and kind in got.headers["content-type"], asset
    part = client.get("/content")
    assert part.status_code == 200 and "<html" not in part.text and 'id="pipelines"' in part.text
    data = client.get("/api/snapshot").json()
    assert data["project"] == shop.project and data["pipelines"][0]["name"] == "orders"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "headwater_runs_total" in metrics.text
    # the dashboard's own figure (how long a refresh reads) and the process's
    refreshes = re.search(r"^headwater_dashboard_snapshot_seconds_count (\S+)$", metrics.text,
                          re.M)
    assert refreshes and float(refreshes[1]) >= 1
    assert "process_cpu_seconds_total" in metrics.text


def test_actions_need_the_key(shop) -> None:
    closed = TestClient(create_app(shop))
    refused = closed.post("/api/quarantine/replay", json={"table": "orders"})
    assert refused.status_code == 403 and "HEADWATER_MONITOR_API_KEY" in refused.json()["detail"]
    client = TestClient(create_app(shop, api_key=KEY))
    assert client.post("/api/quarantine/replay", json={"table": "orders"}).status_code == 401
    wrong = client.post("/api/quarantine/replay", json={"table": "orders"},
                        headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    before = collect(shop).quarantine_waiting
    done = client.post("/api/quarantine/replay", json={"table": "customers"},
                       headers={"Authorization": f"Bearer {KEY}"})
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["status"] == "succeeded" and answer["read"] > 0
    # nothing changed in the contract: every replayed row is quarantined again, none lost
    assert answer["quarantined"] + answer["loaded"] == answer["read"]
    assert collect(shop).quarantine_waiting == before


def test_silence_and_unsilence_from_the_dashboard(shop) -> None:
    client = TestClient(create_app(shop, api_key=KEY))
    key = {"X-API-Key": KEY}
    body = {"matchers": {"rule": "orders_quality"}, "duration": "2h", "comment": "feed fix"}
    assert client.post("/api/alerts/silence", json=body).status_code == 401
    made = client.post("/api/alerts/silence", json=body, headers=key)
    assert made.status_code == 200, made.text
    assert "rule=orders_quality" in made.json()["message"]
    snap = collect(shop)
    assert snap.firing == [] and snap.alerts[0]["silenced_by"] == made.json()["id"]
    assert snap.silences[0]["comment"] == "feed fix"
    page = client.get("/content").text
    assert "badge-silenced" in page and "feed fix" in page
    bad = client.post("/api/alerts/silence", json={**body, "duration": "soon"}, headers=key)
    assert bad.status_code == 400  # a user's mistake, said as such
    ended = client.post("/api/alerts/unsilence", json={"id": made.json()["id"]}, headers=key)
    assert ended.status_code == 200 and [a["rule"] for a in collect(shop).firing] == [
        "orders_quality"]


def test_without_fastapi_the_error_names_the_extra(shop, monkeypatch) -> None:
    import sys

    from headwater.core import MissingExtraError

    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingExtraError) as caught:
        create_app(shop)
    assert "headwater[serve]" in caught.value.hint

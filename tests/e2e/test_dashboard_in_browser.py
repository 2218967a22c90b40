"""``headwater monitor`` in a real headless Chromium: after real runs the page loads without
console errors, its charts have data, a fired alert appears within one refresh, and the replay
action works with the API key. Screenshots are kept in the test's tmp folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HEADWATER = str(Path(sys.executable).with_name("headwater"))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
KEY = "dash-e2e-key-4f1c"
REFRESH_S = 2
PROCESSOR = """
alerts:
  rules:
    orders_quality:
      kind: quality
      table: orders
      below: 0.99
      severity: critical
      summary: "orders: only {value} of the rows pass the contract"
processors:
  sensors:
    input: {topic: readings}
    detectors:
      - {kind: jump, delta: 4, severity: critical}
"""


def ok(result):
    assert result.code == 0, result.out + result.err
    return result.out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readings(path: Path) -> None:
    """Twenty readings of one pump, one of them 20 degrees off: the jump detector fires."""
    start = int(time.time() * 1000) - 60_000
    path.write_text("".join(json.dumps({"device": "pump-7", "metric": "temp",
                                        "event_time": start + i * 1000,
                                        "value": 40.0 if i == 12 else 20.0,
                                        "message_id": f"m{i}"}) + "\n" for i in range(20)))


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `scripts/browser.sh` (`make test` does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def served(hw):
    """A project with real ingest runs, and ``headwater monitor`` serving it."""
    ok(hw("init", "shop"))
    root = hw.cwd / "shop"
    (root / "headwater.yaml").write_text((root / "headwater.yaml").read_text() + PROCESSOR)
    ok(hw("-p", str(root), "ingest", "run", "--all"))
    # a second delivery, so the charts have a history
    (root / "orders" / "orders_late.csv").write_bytes(
        (root / "orders" / "orders_eu.csv").read_bytes())
    ok(hw("-p", str(root), "ingest", "run", "orders"))
    port = free_port()
    env = {**os.environ, "HEADWATER_MONITOR_API_KEY": KEY, "NO_COLOR": "1"}
    log = (hw.cwd / "monitor.log").open("w")
    server = subprocess.Popen([HEADWATER, "-p", str(root), "monitor", "--port", str(port),
                               "--refresh", str(REFRESH_S)], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the dashboard did not start: " + served_log(hw.cwd))
                time.sleep(0.1)
        yield root, url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def served_log(folder: Path) -> str:
    """What the dashboard server printed."""
    return (folder / "monitor.log").read_text()


def test_dashboard_after_real_runs(hw, served, browser, tmp_path: Path) -> None:
    root, url = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))

    page.goto(url)
    page.wait_for_selector("#pipelines")
    for chart in ("chart-rate", "chart-loaded", "chart-quality", "chart-latency"):
        points = page.get_attribute(f"#{chart} svg.chart", "data-points")
        assert points is not None and int(points) >= 2, chart
        assert page.locator(f"#{chart} circle.dot").count() == int(points)
    box = page.locator("#chart-rate svg.chart").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100  # drawn, not collapsed
    assert page.locator("#rules svg.chart").count() >= 1  # a chart per table with failing rules
    assert page.locator("#pipelines .badge-succeeded").count() == 2
    assert "orders · type(ordered_at)" in page.inner_text("#quarantine")
    assert page.locator("#quarantine ul.reasons li").count() >= 5
    # the quality rule fired after the ingest run
    assert "orders_quality" in page.inner_text("#alerts")
    assert page.inner_text("[data-tile='alerts firing'] .tile-value") == "1"
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    # an alert fires: it is on the page within one refresh, without reloading
    readings(root / "readings.jsonl")
    ok(hw("-p", str(root), "stream", "publish", str(root / "readings.jsonl"), "--topic",
          "readings"))
    ok(hw("-p", str(root), "stream", "run", "sensors", "--flush"))
    fired = time.monotonic()
    # expect() polls from Playwright's own world: the page's CSP forbids eval, which a string
    # predicate given to wait_for_function needs
    from playwright.sync_api import expect

    expect(page.locator("[data-tile='alerts firing'] .tile-value")).to_have_text(
        "2", timeout=(2 * REFRESH_S + 3) * 1000)
    assert time.monotonic() - fired <= 2 * REFRESH_S + 3
    alerts = page.inner_text("#alerts")
    assert "device=pump-7" in alerts and "jump" in alerts and "metric=temp" in alerts
    assert "sensors" in page.inner_text("#freshness")
    page.screenshot(path=str(tmp_path / "dashboard-alert.png"), full_page=True)

    # silence the quality alert from the page with the API key (asked once per tab)
    page.once("dialog", lambda dialog: dialog.accept(KEY))
    page.locator("#alerts tr", has_text="orders_quality").locator("button").click()
    page.wait_for_selector("#toast.show")
    assert "silenced for 1h" in page.inner_text("#toast"), served_log(hw.cwd)
    page.wait_for_selector("#alerts .badge-silenced")
    assert "silenced from the dashboard" in page.inner_text("#alerts")
    assert page.inner_text("[data-tile='alerts firing'] .tile-value") == "1"
    page.wait_for_selector("#toast:not(.show)")

    # replay a quarantine: the key is remembered
    page.click("#quarantine button:has-text('replay customers')")
    page.wait_for_selector("#toast.show")
    assert "replayed customers" in page.inner_text("#toast"), served_log(hw.cwd)
    assert page.evaluate("document.body.dataset.actions") == "on"

    assert not problems, problems
    assert not outside, outside  # nothing from a CDN or anywhere else
    assert (tmp_path / "dashboard.png").stat().st_size > 100_000

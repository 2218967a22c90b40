"""Every long-running command serves ``/metrics`` the one way (``--metrics-port``): the stream
processor, the IoT gateway, the scheduler and a followed pipeline, each started as a user
starts it and scraped over HTTP while it runs. Each shows its own figures: ingestion rate,
quality, latency, lag and watermark delay where they apply, and the process's CPU and memory.
(The model server and the dashboard answer ``/metrics`` on their own port: their tests are in
tests/integration/serve and tests/unit/monitor/test_dashboard_app.py.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HEADWATER = str(Path(sys.executable).with_name("headwater"))
EXTRA = """
processors:
  sensors:
    input: {topic: readings}
    windows:
      - {name: w10s, kind: tumbling, size: 10s}
    detectors:
      - {kind: jump, delta: 4}
"""

Samples = dict[tuple[str, frozenset], float]


def ok(result):
    assert result.code == 0, result.out + result.err
    return result.out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sum of ``name``'s samples whose labels include ``labels`` (None: no such sample)."""
    found = [v for (n, ls), v in samples.items()
             if n == name and set(labels.items()) <= set(ls)]
    return sum(found) if found else None


def watch(args: list[str], cwd: Path, until: Callable[[Samples], bool],
          timeout: float = 60) -> Samples:
    """Start ``headwater ARGS --metrics-port P``, scrape until ``until`` holds, stop it with
    SIGINT (Ctrl-C) and return the last scrape; the process must exit cleanly."""
    port = free_port()
    log = (cwd / "process.log").open("w")
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.Popen([HEADWATER, *args, "--metrics-port", str(port)], cwd=cwd, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    last: Samples = {}
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, (cwd / "process.log").read_text()
            try:
                last = scrape(port)
            except httpx.TransportError:
                last = {}
            if last and until(last):
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"{args}: /metrics never showed what was expected; last scrape:\n"
                        + "\n".join(sorted(f"{n} {dict(ls)} {v}" for (n, ls), v in last.items()
                                           if n.startswith("headwater")))
                        + "\n" + (cwd / "process.log").read_text())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert value(last, "process_resident_memory_bytes"), "no process metrics"
    return last


@pytest.fixture
def shop(hw) -> Path:
    ok(hw("init", "shop"))
    root = hw.cwd / "shop"
    (root / "headwater.yaml").write_text((root / "headwater.yaml").read_text() + EXTRA)
    return root


def test_stream_processor(hw, shop: Path) -> None:
    start = int(time.time() * 1000) - 60_000
    (shop / "readings.jsonl").write_text("".join(json.dumps({
        "device": "pump-7", "metric": "temp", "event_time": start + i * 1000,
        "value": 40.0 if i == 12 else 20.0, "message_id": f"m{i}"}) + "\n" for i in range(20)))
    ok(hw("-p", str(shop), "stream", "publish", str(shop / "readings.jsonl"), "--topic",
          "readings"))
    seen = watch(["-p", str(shop), "stream", "run", "sensors", "--follow"], hw.cwd,
                 lambda s: value(s, "headwater_stream_records_total", processor="sensors") == 20
                 and value(s, "headwater_watermark_delay_seconds", processor="sensors")
                 is not None)
    assert value(seen, "headwater_stream_lag_records", processor="sensors",
                 topic="readings") == 0
    assert value(seen, "headwater_watermark_delay_seconds", processor="sensors") >= 50
    assert value(seen, "headwater_stream_event_latency_seconds_count", processor="sensors") >= 1
    assert value(seen, "headwater_rows_total", outcome="loaded", table="sensors_readings") == 20
    # the alert hand-off and the rule watcher open the new alert store at once: no race
    assert "failed" not in (hw.cwd / "process.log").read_text()


def test_gateway(hw, shop: Path) -> None:
    ok(hw("-p", str(shop), "iot", "simulate", "--devices", "4", "--seconds", "5",
          "--faults", "malformed"))
    seen = watch(["-p", str(shop), "iot", "gateway", "--follow"], hw.cwd,
                 lambda s: (value(s, "headwater_rows_total", pipeline="gateway:gateway",
                                  outcome="read") or 0) > 0)
    read = value(seen, "headwater_rows_total", pipeline="gateway:gateway", outcome="read")
    loaded = value(seen, "headwater_rows_total", pipeline="gateway:gateway", outcome="loaded")
    rejected = value(seen, "headwater_rows_total", pipeline="gateway:gateway",
                     outcome="quarantined")
    assert loaded and rejected and loaded + rejected <= read + rejected
    rate = value(seen, "headwater_quality_pass_rate", pipeline="gateway:gateway")
    assert rate == pytest.approx(loaded / (loaded + rejected))
    assert value(seen, "headwater_ingest_latency_seconds_count", pipeline="gateway:gateway")
    assert value(seen, "headwater_stream_records_total", processor="gateway:gateway") == read


def test_scheduler(hw, shop: Path) -> None:
    text = (shop / "headwater.yaml").read_text()
    (shop / "headwater.yaml").write_text(text.replace(
        "    table: orders\n", "    table: orders\n    schedule: every 1h\n"))
    seen = watch(["-p", str(shop), "schedule", "run"], hw.cwd,
                 lambda s: value(s, "headwater_runs_total", kind="ingest", pipeline="orders",
                                 status="succeeded") == 1)
    assert value(seen, "headwater_rows_per_second", pipeline="orders") > 0
    assert value(seen, "headwater_rows_total", pipeline="orders", outcome="loaded") > 0
    assert 0 < value(seen, "headwater_quality_pass_rate", table="orders", rule="*") < 1
    assert value(seen, "headwater_quarantined_rows_total", table="orders") > 0
    assert value(seen, "headwater_ingest_latency_seconds_count", pipeline="orders") >= 1
    assert value(seen, "headwater_last_load_timestamp_seconds", table="orders") > time.time() - 120


def test_followed_pipeline(hw, shop: Path) -> None:
    text = (shop / "headwater.yaml").read_text().replace("pipelines:\n", """pipelines:
  events:
    source: {kind: stream, topic: events, window: 1s}
    table: events
""", 1)
    (shop / "headwater.yaml").write_text(text)
    (shop / "events.jsonl").write_text("".join(json.dumps({"id": i, "kind": "click"}) + "\n"
                                               for i in range(50)))
    ok(hw("-p", str(shop), "stream", "publish", str(shop / "events.jsonl"), "--topic", "events"))
    seen = watch(["-p", str(shop), "ingest", "run", "events", "--follow"], hw.cwd,
                 lambda s: value(s, "headwater_rows_total", pipeline="events",
                                 outcome="loaded") == 50
                 and value(s, "headwater_rows_per_second", pipeline="events") is not None)
    assert value(seen, "headwater_quality_pass_rate", table="events", rule="*") == 1


def test_a_taken_port_is_one_line(hw, shop: Path) -> None:
    text = (shop / "headwater.yaml").read_text()
    (shop / "headwater.yaml").write_text(text.replace(
        "    table: orders\n", "    table: orders\n    schedule: every 1h\n"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = hw("-p", str(shop), "schedule", "run", "--metrics-port", str(port))
    assert result.code == 1 and "Traceback" not in result.out + result.err
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.out + result.err
    bad = hw("-p", str(shop), "ingest", "run", "orders", "--metrics-port", "9000")
    assert bad.code == 2 and "--follow" in bad.out + bad.err

"""The MQTT device side on the machine's Mosquitto: devices publish with QoS 1, gateways take
their messages through a persistent, shared subscription and acknowledge them only once they
are in the stream log. A gateway killed with -9 and restarted loses nothing; two gateways of
one group split the messages between them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import polars as pl
import pytest

from headwater.brokers import EmbeddedBroker
from headwater.contract import Contract
from headwater.store import DuckDBStore
from headwater.stream.iot import (
    MqttSubscription,
    publish_mqtt,
    run_mqtt_gateway,
    simulate,
)

pytestmark = pytest.mark.integration

URL = "mqtt://127.0.0.1:1883"
CONTRACT = Path(__file__).parents[2] / "examples" / "iot" / "contracts" / "readings.yaml"

GATEWAY = """
import sys
from headwater.brokers import EmbeddedBroker
from headwater.store import DuckDBStore
from headwater.stream.iot import run_mqtt_gateway
log, wh, prefix, group, client = sys.argv[1:6]
broker, store = EmbeddedBroker(log), DuckDBStore(wh)
print("ready", flush=True)
run_mqtt_gateway("mqtt://127.0.0.1:1883", broker, "readings", store=store,
                 topics=[prefix + "/#"], group=group, client_id=client, idle_s=None)
"""


@pytest.fixture
def tag() -> str:
    from tests.conftest import require_service

    require_service("mosquitto")
    return uuid.uuid4().hex[:10]


def _log_ids(path: Path) -> pl.DataFrame:
    """message_id and device of every reading in the log (copies included)."""
    broker = EmbeddedBroker(path)
    try:
        with broker.consumer("readings", group=f"check-{uuid.uuid4().hex[:6]}") as consumer:
            consumer.seek("earliest")
            values = []
            while True:
                batch = consumer.poll(max_records=100_000, timeout=0.2)
                if not batch.num_rows:
                    break
                values += batch.column("value").to_pylist()
    finally:
        broker.close()
    return pl.DataFrame([json.loads(v) for v in values]) if values else \
        pl.DataFrame(schema={"message_id": pl.String, "device": pl.String})


def _expected(sim) -> set[str]:
    return set(sim.messages.filter(~pl.col("malformed"))["message_id"].to_list())


def test_qos1_through_the_gateway_with_a_contract(tmp_path, tag):
    sim = simulate(devices=20, gateways=4, seconds=10, faults=["malformed", "duplicate"],
                   seed=5)
    broker, store = EmbeddedBroker(tmp_path / "log"), DuckDBStore(tmp_path / "wh.duckdb")
    prefix = f"hwtest/{tag}"
    out = {}
    gateway = threading.Thread(target=lambda: out.update(result=run_mqtt_gateway(
        URL, broker, "readings", store=store, topics=[f"{prefix}/#"], group=f"g-{tag}",
        client_id=f"gw-{tag}", contract=Contract.load(CONTRACT), idle_s=4)))
    gateway.start()
    time.sleep(0.5)
    sent = publish_mqtt(sim, URL, prefix=prefix, qos=1)
    gateway.join(30)
    result = out["result"]
    assert sent == sim.messages.height
    # conservation: every message is a reading or quarantined, with its topic and reason
    assert result.payloads == sent
    assert result.readings + result.rejected + result.dropped == sent
    assert result.rejected == int(sim.messages["malformed"].sum()) > 0
    rows = store.query("SELECT source, unit, reasons FROM _hw_quarantine").to_pylist()
    assert all(r["source"].startswith(f"{prefix}/gw-") and r["unit"] == "message"
               for r in rows)
    assert all("not valid JSON" in r["reasons"][0] for r in rows)
    readings = _log_ids(tmp_path / "log")
    assert set(readings["message_id"]) == _expected(sim)
    # the gateway is the topic's gateway level; one topic per gateway and device
    assert sorted(set(readings["gateway"])) == sorted(set(sim.messages["gateway"]))
    store.close()
    broker.close()


@pytest.mark.slow
def test_a_gateway_killed_and_restarted_with_its_session_loses_nothing(tmp_path, tag):
    # 150 messages/s: the few seconds the gateway is away stay under Mosquitto's default
    # max_queued_messages (1000) for an offline session (see docs/iot.md)
    sim = simulate(devices=50, gateways=5, seconds=8, rate=1, seed=9)
    prefix, group, client = f"hwtest/{tag}", f"g-{tag}", f"gw-{tag}"
    args = [sys.executable, "-c", GATEWAY, str(tmp_path / "log"), str(tmp_path / "wh.duckdb"),
            prefix, group, client]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(0.8)                                      # connected and subscribed
        return proc

    first = start()
    publisher = threading.Thread(target=publish_mqtt, args=(sim, URL),
                                 kwargs={"prefix": prefix, "qos": 1, "speed": 1.0})
    publisher.start()
    time.sleep(1.5)
    first.send_signal(signal.SIGKILL)                        # mid-stream, acks outstanding
    first.wait()
    second = start()                                         # same client id: same session
    publisher.join(60)
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            time.sleep(1)
            if _expected(sim) <= set(_log_ids(tmp_path / "log")["message_id"]):
                break
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    readings = _log_ids(tmp_path / "log")
    missing = _expected(sim) - set(readings["message_id"])
    assert not missing, f"{len(missing)} messages lost"
    # what was written but not acknowledged came again: copies, never gaps
    assert readings.height >= len(_expected(sim))


def test_two_gateways_in_one_group_split_the_messages(tmp_path, tag):
    sim = simulate(devices=30, gateways=6, seconds=6, seed=2)
    prefix, group = f"hwtest/{tag}", f"g-{tag}"
    results: dict[str, object] = {}
    threads = []
    for i in range(2):
        broker = EmbeddedBroker(tmp_path / f"log{i}")
        store = DuckDBStore(tmp_path / f"wh{i}.duckdb")
        threads.append(threading.Thread(target=lambda i=i, b=broker, s=store: results.update(
            {f"gw{i}": run_mqtt_gateway(URL, b, "readings", store=s, topics=[f"{prefix}/#"],
                                        group=group, client_id=f"gw{i}-{tag}", idle_s=4)})))
    for t in threads:
        t.start()
    time.sleep(0.8)
    publish_mqtt(sim, URL, prefix=prefix, qos=1)
    for t in threads:
        t.join(30)
    counts = [results[f"gw{i}"].payloads for i in range(2)]
    assert sum(counts) == sim.messages.height
    assert min(counts) > sim.messages.height // 4            # both got a share
    ids = [set(_log_ids(tmp_path / f"log{i}")["message_id"]) for i in range(2)]
    assert ids[0] | ids[1] == _expected(sim)


def test_the_inflight_window_is_what_keeps_mosquitto_from_dropping(tag):
    """A subscriber that holds its acks behind a small window makes Mosquitto queue, then
    drop (max_queued_messages, 1000 by default): measured here, prevented by INFLIGHT."""
    sim = simulate(devices=40, gateways=4, seconds=10, seed=4)     # 1,200 messages
    n = sim.messages.height
    got = {}
    for inflight in (10, 65_535):
        prefix = f"hwtest/{tag}/{inflight}"
        sub = MqttSubscription(URL, topics=[f"{prefix}/#"], group=None,
                               client_id=f"hold-{tag}-{inflight}", inflight=inflight,
                               session_expiry_s=0).start()
        try:
            publish_mqtt(sim, URL, prefix=prefix, qos=1)
            time.sleep(0.5)
            held = sub.take(max_messages=n, timeout=0.5)     # nothing acknowledged yet
            sub.ack(held)
            rest = sub.take(max_messages=n, timeout=1.5)
            got[inflight] = len(held) + len(rest)
        finally:
            sub.close()
    assert got[65_535] == n
    assert got[10] < n              # 10 in flight + 1000 queued: the rest dropped, silently

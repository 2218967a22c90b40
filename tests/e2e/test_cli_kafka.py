"""``headwater stream`` and a ``kind: stream`` pipeline on Kafka, the way the docs show them.

The cluster is librdkafka's mock cluster, served by a small process of its own
(tests/integration/cases/kafka_mock.py) that outlives every CLI call; the CLI reaches it
through ``bootstrap_servers`` like any cluster. The mock has no CreateTopics API, so that
process creates the topics.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MOCK = Path(__file__).parents[1] / "integration" / "cases" / "kafka_mock.py"
EVENTS = "".join(json.dumps({"id": i, "device": f"d{i % 3}", "temp": 20 + i}) + "\n"
                 for i in range(12)) + "not json\n"


@pytest.fixture
def kafka_servers() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(MOCK), "events:3", "iot_raw:2",
                             "iot_readings:2"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    servers = proc.stdout.readline().strip()
    assert servers, "the mock cluster did not start"
    yield servers
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=20)


def lags(table: str) -> list[str]:
    return [line.strip("│ ").split()[-1] for line in table.splitlines() if line[:1] == "│"]


def test_stream_commands_and_a_pipeline_on_kafka(hw, kafka_servers: str) -> None:
    (hw.cwd / "headwater.yaml").write_text(
        "brokers:\n  kafka:\n    kind: kafka\n    bootstrap_servers: ${HW_TEST_KAFKA}\n"
        "    partitions: 3\n    config: {session.timeout.ms: '1500', "
        "heartbeat.interval.ms: '300'}\n"
        "pipelines:\n  events:\n"
        "    source: {kind: stream, broker: kafka, topic: events, format: json}\n"
        "    table: events\n"
        "    contract:\n      columns:\n        id: {type: integer, nullable: false}\n"
        "        device: {type: string}\n        temp: {type: float}\n")
    env = {"HW_TEST_KAFKA": kafka_servers}
    (hw.cwd / "events.jsonl").write_text(EVENTS.replace("not json\n", ""))
    done = hw("stream", "publish", "events.jsonl", "--topic", "events", "--key", "device",
              "--broker", "kafka", env=env)
    assert done.code == 0, done.out + done.err
    assert "published 12 records" in done.out and "Kafka broker 'kafka'" in done.out
    listed = hw("stream", "topics", "--broker", "kafka", env=env)
    assert listed.code == 0, listed.err
    assert "events" in listed.out and "12" in listed.out
    tail = hw("stream", "tail", "events", "-n", "2", "--broker", "kafka", env=env)
    assert tail.code == 0, tail.err
    shown_ids = {int(part.split(",")[0]) for part in tail.out.split('{"id":')[1:]}
    assert len(shown_ids) == 2 and shown_ids <= {9, 10, 11}, tail.out  # the newest, one time

    shown = hw("stream", "positions", "events", "--group", "loader", "--broker", "kafka",
               env=env)
    assert shown.code == 0, shown.err
    assert sorted(int(v) for v in lags(shown.out)) == [4, 4, 4], "one device, one partition"
    moved = hw("stream", "positions", "events", "--group", "loader", "--reset", "latest",
               "--broker", "kafka", env=env)
    assert moved.code == 0, moved.err
    assert lags(moved.out) == ["0", "0", "0"]

    first = hw("ingest", "run", "events", env=env)
    assert first.code == 0, first.out + first.err
    again = hw("ingest", "run", "events", env=env)
    assert again.code == 0, again.err
    loaded = hw("sql", "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM events", env=env)
    assert loaded.code == 0, loaded.err
    assert "12" in loaded.out and loaded.out.count("12") >= 2, loaded.out
    positions = hw("stream", "positions", "events", "--group", "headwater-events",
                   "--broker", "kafka", env=env)
    assert lags(positions.out) == ["0", "0", "0"], "the pipeline's group committed to the end"


KAFKA = ("brokers:\n  kafka:\n    kind: kafka\n    bootstrap_servers: ${HW_TEST_KAFKA}\n"
         "    config: {session.timeout.ms: '1500', heartbeat.interval.ms: '300'}\n")
PROCESSOR = """
processors:
  sensors:
    input: {broker: kafka, topic: iot_readings}
    windows:
      - {name: w10s, kind: tumbling, size: 10s}
    detectors:
      - {kind: jump, delta: 4}
"""


def test_iot_devices_through_the_gateway_and_the_processor_on_kafka(hw, kafka_servers) -> None:
    """simulate → iot_raw (Kafka) → gateway → iot_readings (Kafka) → stream run."""
    env = {"HW_TEST_KAFKA": kafka_servers}
    assert hw("init", "p").code == 0
    root = hw.cwd / "p"
    text = (root / "headwater.yaml").read_text()
    (root / "headwater.yaml").write_text(KAFKA + text + PROCESSOR)
    p = ["-p", str(root)]
    sent = hw(*p, "iot", "simulate", "--devices", "10", "--seconds", "10", "--faults",
              "spike,malformed", "--broker", "kafka", env=env)
    assert sent.code == 0, sent.out + sent.err
    gateway = hw(*p, "iot", "gateway", "--broker", "kafka", env=env)
    assert gateway.code == 0, gateway.out + gateway.err
    assert "rejected" in gateway.out
    run = hw(*p, "stream", "run", "sensors", "--flush", env=env)
    assert run.code == 0, run.out + run.err
    read = re.search(r"records read\s*│\s*([\d,]+)\s*│", run.out)
    assert read and int(read.group(1).replace(",", "")) > 0, run.out
    assert "window results" in run.out
    again = hw(*p, "stream", "run", "sensors", env=env)
    assert re.search(r"records read\s*│\s*0\s*│", again.out), again.out


def test_a_kafka_cluster_that_is_down_is_one_line(hw) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (hw.cwd / "headwater.yaml").write_text(
        f"brokers:\n  bus:\n    kind: kafka\n    bootstrap_servers: 127.0.0.1:{port}\n"
        "    retries: 1\n    timeout: 1\n")
    done = hw("stream", "topics", "--broker", "bus")
    assert done.code == 1
    errors = [line for line in done.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Kafka broker 'bus'" in errors[0], done.err
    assert "brokers.bus.bootstrap_servers" in done.err and "Traceback" not in done.err

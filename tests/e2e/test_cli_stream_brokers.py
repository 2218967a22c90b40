"""``headwater stream`` on the server brokers: the same commands, lag from the broker, and a
broker that is down is one line that names it and the setting (no traceback)."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

pytestmark = pytest.mark.e2e

EVENTS = "".join(json.dumps({"device": f"d{i % 3}", "temp": 20 + i}) + "\n" for i in range(12))


def _nats_up() -> None:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError:
        pytest.fail("nats is not reachable on 127.0.0.1:4222: run `scripts/services.sh start`")


def lags(table: str) -> list[str]:
    return [line.strip("│ ").split()[-1] for line in table.splitlines() if line[:1] == "│"]


def test_stream_commands_on_nats(hw) -> None:
    _nats_up()
    prefix = f"hwe2e{uuid.uuid4().hex[:8]}"
    (hw.cwd / "headwater.yaml").write_text(
        "brokers:\n  bus:\n    kind: nats\n    servers: ['${HW_TEST_NATS}']\n"
        f"    stream_prefix: {prefix}\n    partitions: 3\n")
    env = {"HW_TEST_NATS": "nats://127.0.0.1:4222"}
    (hw.cwd / "events.jsonl").write_text(EVENTS)
    done = hw("stream", "publish", "events.jsonl", "--topic", "events", "--key", "device",
              "--broker", "bus", env=env)
    assert done.code == 0, done.out + done.err
    assert "published 12 records" in done.out and "NATS broker 'bus'" in done.out

    shown = hw("stream", "positions", "events", "--group", "loader", "--broker", "bus", env=env)
    assert shown.code == 0, shown.err
    assert sorted(int(v) for v in lags(shown.out)) == [4, 4, 4], "lag counted by JetStream"
    moved = hw("stream", "positions", "events", "--group", "loader", "--reset", "latest",
               "--broker", "bus", env=env)
    assert lags(moved.out) == ["0", "0", "0"]
    listed = hw("stream", "topics", "--broker", "bus", env=env)
    assert listed.code == 0, listed.err
    assert "events" in listed.out and "12" in listed.out and "loader: 0" in listed.out


def test_a_broker_that_is_down_is_one_line(hw) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (hw.cwd / "headwater.yaml").write_text(
        f"brokers:\n  bus:\n    kind: nats\n    servers: ['nats://127.0.0.1:{port}']\n"
        "    retries: 1\n")
    done = hw("stream", "topics", "--broker", "bus")
    assert done.code == 1
    errors = [line for line in done.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "NATS broker 'bus'" in errors[0], done.err
    assert "brokers.bus.servers" in done.err and "Traceback" not in done.err

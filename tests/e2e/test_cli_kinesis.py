"""Amazon Kinesis from the command line, against moto's server on loopback (real HTTP): the
``headwater stream`` commands, a ``kind: stream`` pipeline that loads once, and the IoT path
(simulate → gateway → ``stream run``) with Kinesis as the stream."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EVENTS = "".join(json.dumps({"device": f"d{i % 4}", "temp": 20 + i}) + "\n" for i in range(24))


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def project(moto: str, prefix: str, extra: str = "") -> str:
    return (
        "brokers:\n  aws:\n    kind: kinesis\n    region: eu-west-1\n"
        "    endpoint_url: ${HW_TEST_KINESIS}\n"
        f"    stream_prefix: {prefix}-\n    lease_table: {prefix}-leases\n    partitions: 3\n"
        + extra)


def env(moto: str) -> dict[str, str]:
    # credentials come from the environment, as on a real machine
    return {"HW_TEST_KINESIS": moto, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing"}


def ok(result) -> str:
    assert result.code == 0, result.out + result.err
    return result.out


def lags(table: str) -> list[str]:
    return [line.strip("│ ").split()[-1] for line in table.splitlines() if line[:1] == "│"]


PIPELINE = """\
pipelines:
  events:
    source: {kind: stream, broker: aws, topic: events, group: loader}
    table: events
    contract:
      columns:
        device: {type: string, nullable: false}
        temp: {type: float, max: 40}
"""


def test_stream_commands_and_a_pipeline_on_kinesis(hw, moto: str) -> None:
    (hw.cwd / "headwater.yaml").write_text(project(moto, "e2e1", PIPELINE))
    (hw.cwd / "events.jsonl").write_text(EVENTS)
    e = env(moto)
    out = ok(hw("stream", "publish", "events.jsonl", "--topic", "events", "--key", "device",
                "--broker", "aws", env=e))
    assert "published 24 records" in out and "Kinesis broker 'aws'" in out
    listed = ok(hw("stream", "topics", "--broker", "aws", env=e))
    assert re.search(r"events\s*│\s*3\s*│", listed), listed
    tail = ok(hw("stream", "tail", "events", "-n", "5", "--broker", "aws", env=e))
    assert tail.count('"device"') == 5 and '"temp":43' in tail
    shown = ok(hw("stream", "positions", "events", "--group", "loader", "--broker", "aws",
                  env=e))
    assert sum(int(v) for v in lags(shown)) == 24, shown

    loaded = ok(hw("ingest", "run", "events", env=e))
    assert re.search(r"\b21\b", loaded) and re.search(r"\b3\b", loaded), loaded  # 3 too hot
    assert lags(ok(hw("stream", "positions", "events", "--group", "loader", "--broker", "aws",
                      env=e))) == ["0", "0", "0"], "the group acknowledged after the commit"
    rows = ok(hw("sql", "SELECT count(*) AS n, count(DISTINCT temp) AS d FROM events", env=e))
    assert re.search(r"│\s*21\s*│\s*21\s*│", rows), rows
    again = ok(hw("ingest", "run", "events", env=e))
    assert re.search(r"│\s*21\s*│\s*21\s*│", ok(hw(
        "sql", "SELECT count(*) AS n, count(DISTINCT temp) AS d FROM events", env=e))), again
    quarantined = ok(hw("quarantine", "show", "--table", "events", env=e))
    assert "events[" in quarantined and " @ " in quarantined, "shard and sequence number"

    moved = ok(hw("stream", "positions", "events", "--group", "loader", "--reset", "earliest",
                  "--broker", "aws", env=e))
    assert sum(int(v) for v in lags(moved)) == 24
    recent = ok(hw("stream", "positions", "events", "--group", "loader", "--reset", "2h",
                   "--broker", "aws", env=e))
    assert sum(int(v) for v in lags(recent)) == 24, "AT_TIMESTAMP: all arrived within 2h"
    ahead = ok(hw("stream", "positions", "events", "--group", "loader", "--reset", "latest",
                  "--broker", "aws", env=e))
    assert lags(ahead) == ["0", "0", "0"]


PROCESSOR = """
processors:
  sensors:
    input: {broker: aws, topic: iot_readings}
    windows:
      - {name: w10s, kind: tumbling, size: 10s}
    detectors:
      - {kind: jump, delta: 4}
"""


def test_iot_path_on_kinesis(hw, moto: str) -> None:
    ok(hw("init", "p"))
    root = hw.cwd / "p"
    (root / "headwater.yaml").write_text((root / "headwater.yaml").read_text() + "\n" +
                                         project(moto, "e2e2") + PROCESSOR)
    p, e = ["-p", str(root)], env(moto)
    assert "faults injected" in ok(hw(*p, "iot", "simulate", "--devices", "5", "--seconds",
                                      "12", "--faults", "spike,malformed", "--broker", "aws",
                                      env=e))
    assert "rejected" in ok(hw(*p, "iot", "gateway", "--broker", "aws", env=e))
    out = ok(hw(*p, "stream", "run", "sensors", "--flush", env=e))
    assert "window results" in out and "anomalies" in out
    again = ok(hw(*p, "stream", "run", "sensors", env=e))
    assert re.search(r"records read\s*│\s*0\s*│", again), again


def test_kinesis_faults_are_one_line(hw, moto: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (hw.cwd / "headwater.yaml").write_text(
        "brokers:\n  aws:\n    kind: kinesis\n    region: eu-west-1\n"
        f"    endpoint_url: http://127.0.0.1:{port}\n    retries: 1\n"
        "  nowhere:\n    kind: kinesis\n    region: xx-nowhere-1\n")
    for broker, what, fix in (("aws", "cannot reach Kinesis broker 'aws'",
                               "brokers.aws.endpoint_url"),
                              ("nowhere", "unknown AWS region", "brokers.nowhere.region")):
        done = hw("stream", "topics", "--broker", broker, env=env(moto))
        assert done.code == 1
        errors = [line for line in done.err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and what in errors[0], done.err
        assert fix in done.err and "Traceback" not in done.err

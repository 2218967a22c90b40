"""The IoT scenario as the README runs it: simulate, gateway, stream run, status, quickstart."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.e2e

PROCESSOR = """
processors:
  sensors:
    input: {topic: iot_readings}
    windows:
      - {name: w10s, kind: tumbling, size: 10s}
    detectors:
      - {kind: jump, delta: 4}
      - {kind: silent, after: 5s, severity: critical}
"""


def ok(result):
    assert result.code == 0, result.out + result.err
    return result.out


def test_simulate_gateway_process_status(hw):
    ok(hw("init", "p"))
    root = hw.cwd / "p"
    (root / "headwater.yaml").write_text((root / "headwater.yaml").read_text() + PROCESSOR)
    p = ["-p", str(root)]
    assert "faults injected" in ok(hw(*p, "iot", "simulate", "--devices", "20", "--seconds",
                                      "20", "--faults", "spike,malformed,silent"))
    assert "rejected" in ok(hw(*p, "iot", "gateway"))
    out = ok(hw(*p, "stream", "run", "sensors", "--flush"))
    assert "window results" in out and "anomalies" in out
    assert "iot_readings" in ok(hw(*p, "stream", "status"))
    again = ok(hw(*p, "stream", "run", "sensors"))
    assert re.search(r"records read\s*│\s*0\s*│", again)
    assert "malformed" not in ok(hw(*p, "sql", "SELECT count(*) AS n FROM sensors_alerts"))


def test_unknown_processor_is_one_line(hw):
    ok(hw("init", "p"))
    result = hw("-p", str(hw.cwd / "p"), "stream", "run", "nope")
    assert result.code == 1
    assert "no processor 'nope'" in result.out + result.err
    assert "Traceback" not in result.out + result.err


def test_quickstart_iot_step(hw):
    out = ok(hw("quickstart", "demo", "--only", "iot"))
    assert "detectors against the injected faults" in out and "alerts raised" in out

"""The IoT scenario as the README runs it: simulate, gateway, stream run, status, quickstart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from .conftest import HEADWATER

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


LAKE = """
  lake:
    kind: delta
    uri: .headwater/lake
"""


@pytest.mark.integration
@pytest.mark.slow
def test_devices_over_mqtt_through_the_gateway_into_the_lake(hw):
    """simulate → Mosquitto → gateway (contract) → embedded log → processor → Delta, queried
    with `headwater sql --store lake`."""
    import shutil
    import uuid
    from pathlib import Path

    from tests.conftest import require_service
    from tests.e2e.conftest import HEADWATER

    require_service("mosquitto")
    tag = uuid.uuid4().hex[:10]
    ok(hw("init", "p"))
    root = hw.cwd / "p"
    text = (root / "headwater.yaml").read_text().replace("\npipelines:", LAKE + "\npipelines:")
    (root / "headwater.yaml").write_text(text + PROCESSOR.replace(
        "input: {topic: iot_readings}", "input: {topic: iot_readings}\n"
        "    outputs: {store: lake}\n    contract: contracts/readings.yaml"))
    shutil.copy(Path(__file__).parents[2] / "examples" / "iot" / "contracts" / "readings.yaml",
                root / "contracts" / "readings.yaml")
    p = ["-p", str(root)]
    prefix = f"hwtest/{tag}"
    gateway = subprocess.Popen(
        [HEADWATER, *p, "iot", "gateway", "--from", "mqtt://127.0.0.1:1883", "--topics",
         f"{prefix}/#", "--group", f"g-{tag}", "--name", f"gw-{tag}", "--contract",
         "contracts/readings.yaml", "--idle", "10"],
        cwd=hw.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in gateway.stdout:  # devices start once the gateway's subscription exists
        if line.startswith("subscribed to"):
            break
    else:
        raise AssertionError(f"the gateway never subscribed: {gateway.stderr.read()}")
    out = ok(hw(*p, "iot", "simulate", "--devices", "20", "--seconds", "20", "--faults",
                "spike,malformed,duplicate", "--broker", "mqtt://127.0.0.1:1883", "--qos", "1",
                "--prefix", prefix))
    sent = int(re.search(r"published ([\d,]+) messages", out).group(1).replace(",", ""))
    gw_out, gw_err = gateway.communicate(timeout=120)
    assert gateway.returncode == 0, gw_out + gw_err
    row = re.search(r"│\s*([\d,]+)\s*│\s*([\d,]+)\s*│\s*([\d,]+)\s*│", gw_out)
    payloads, readings, rejected = (int(g.replace(",", "")) for g in row.groups())
    assert payloads == sent and readings + rejected == sent and rejected > 0
    ok(hw(*p, "stream", "run", "sensors", "--flush"))
    counted = ok(hw(*p, "sql", "--store", "lake", "--csv",
                    "SELECT count(*) AS n FROM sensors_readings"))
    duplicates = ok(hw(*p, "sql", "--store", "lake", "--csv",
                       "SELECT count(*) - count(DISTINCT message_id) AS d FROM sensors_readings"))
    assert int(duplicates.split()[-1]) == 0
    assert 0 < int(counted.split()[-1]) <= readings
    assert int(ok(hw(*p, "sql", "--store", "lake", "--csv",
                     "SELECT count(*) AS n FROM sensors_windows_w10s")).split()[-1]) > 0
    status = ok(hw(*p, "stream", "status"))
    assert "sensors" in status and "iot_readings" in status


@pytest.mark.slow
def test_status_is_live_while_a_processor_follows(hw):
    """`stream status` shows a following member as live with its figures (its store is
    locked meanwhile: positions come from its reports), then its finished run after SIGTERM."""
    ok(hw("init", "p"))
    root = hw.cwd / "p"
    (root / "headwater.yaml").write_text((root / "headwater.yaml").read_text() + PROCESSOR)
    p = ["-p", str(root)]
    ok(hw(*p, "iot", "simulate", "--devices", "20", "--seconds", "20", "--faults", "spike"))
    ok(hw(*p, "iot", "gateway"))
    follower = subprocess.Popen([HEADWATER, *p, "stream", "run", "sensors", "--follow",
                                 "--member", "0/1"], cwd=hw.cwd, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    try:
        deadline, live = time.monotonic() + 90, None
        while time.monotonic() < deadline and live is None:
            time.sleep(1)
            out = ok(hw(*p, "stream", "status"))
            live = re.search(r"sensors\s*│\s*iot_readings\s*│\s*[\d,]+\s*│\s*0\s*│.*│\s*live ",
                             out)
        assert live, out
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.communicate(timeout=60)
    assert follower.returncode == 0
    out = ok(hw(*p, "stream", "status"))
    assert "succeeded" in out and "live" not in out, out

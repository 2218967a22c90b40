"""A stream as an ingestion source, from the command line: the quickstart step, a drain, and
``--follow`` stopped by Ctrl-C after its current commit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from headwater.brokers import EmbeddedBroker

pytestmark = pytest.mark.e2e

HEADWATER = str(Path(sys.executable).with_name("headwater"))

PROJECT = """\
project: follow
pipelines:
  events:
    source: {kind: stream, topic: events, max_latency: 100ms, window: 1s}
    table: events
    contract:
      columns:
        id: {type: integer, nullable: false}
        temp: {type: float, max: 100}
"""


def count(folder, sql: str) -> int:
    con = duckdb.connect(str(folder / ".headwater" / "warehouse.duckdb"), read_only=True)
    try:
        return con.sql(sql).fetchall()[0][0]
    finally:
        con.close()


def test_quickstart_streams_step_loads_once(hw) -> None:
    done = hw("quickstart", "demo", "--only", "streams")
    assert done.code == 0, done.out + done.err
    assert "2nd (nothing new)" in done.out and "consumer group lag 0" in done.out
    demo = hw.cwd / "demo"
    assert count(demo, "SELECT count(*) FROM clicks") == \
        count(demo, "SELECT count(DISTINCT event_id) FROM clicks") == 5_940
    again = hw("-p", "demo", "ingest", "run", "clicks")
    assert again.code == 0, again.out + again.err
    assert count(demo, "SELECT count(*) FROM clicks") == 5_940
    shown = hw("-p", "demo", "quarantine", "show", "--table", "clicks")
    assert shown.code == 0 and "clicks[" in shown.out, shown.out + shown.err


def test_follow_loads_as_events_arrive_and_ctrl_c_stops_after_a_commit(hw) -> None:
    (hw.cwd / "headwater.yaml").write_text(PROJECT)
    (hw.cwd / "a.jsonl").write_text("".join(json.dumps({"id": i, "temp": 20 + i % 50}) + "\n"
                                            for i in range(100)))
    assert hw("stream", "publish", "a.jsonl", "--topic", "events", "--partitions", "2").code == 0
    broker = EmbeddedBroker(hw.cwd / ".headwater" / "streams")
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.Popen([HEADWATER, "ingest", "run", "events", "--follow"], cwd=hw.cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        published = False
        while time.monotonic() < deadline:
            # the group is acknowledged after each commit (the warehouse is the loader's now)
            loaded = sum(o + 1 for o in broker.consumer("events", group="headwater-events")
                         .committed().values())
            if loaded == 100 and not published:
                (hw.cwd / "b.jsonl").write_text("".join(
                    json.dumps({"id": i, "temp": 999 if i % 10 == 0 else 1}) + "\n"
                    for i in range(100, 150)))
                assert hw("stream", "publish", "b.jsonl", "--topic", "events").code == 0
                published = True
            if loaded == 150:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    assert "following pipeline events" in out and "Traceback" not in err
    assert loaded == 150, "the second batch was not loaded while following"
    assert count(hw.cwd, "SELECT count(*) FROM events") == 145
    assert count(hw.cwd, "SELECT count(*) FROM _hw_quarantine") == 5

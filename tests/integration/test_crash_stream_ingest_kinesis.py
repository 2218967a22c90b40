"""kill -9 at random moments of a Kinesis → warehouse load (moto's server on loopback, real
HTTP; it lives in this process, so it outlives the killed loads), run again: the table and the
quarantine equal a clean run's. The positions are sequence numbers committed in the
warehouse's transaction; the killed loader's leases expire and the next run takes them."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from headwater.brokers import encode_rows

from .cases.brokers import kinesis, moto_endpoint

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADWATER = str(Path(sys.executable).with_name("headwater"))
EVENTS = 4_000
PROJECT = """\
project: crash
brokers:
  aws:
    kind: kinesis
    region: us-east-1
    endpoint_url: {endpoint}
    stream_prefix: {prefix}-
    lease_table: {prefix}-leases
    lease_duration: 2s
pipelines:
  events:
    source: {{kind: stream, broker: aws, topic: events, format: json, max_rows: 400}}
    table: events
    contract:
      columns:
        id: {{type: integer, nullable: false}}
        kind: {{type: string, allowed: [view, click, buy]}}
        amount: {{type: float, min: 0}}
"""
ENV = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def make_project(folder: Path, prefix: str) -> None:
    folder.mkdir(parents=True)
    (folder / "headwater.yaml").write_text(PROJECT.format(endpoint=moto_endpoint(),
                                                          prefix=prefix))
    ids = np.arange(EVENTS)
    rows = pa.table({"id": ids, "kind": np.where(ids % 97 == 0, "nope",
                                                 np.array(["view", "click", "buy"])[ids % 3]),
                     "amount": np.where(ids % 101 == 0, -1.0, (ids % 500) / 4)})
    records = encode_rows(rows, key="id")
    values = records["value"].to_pylist()
    for i in range(0, EVENTS, 503):
        values[i] = b"not json " + str(i).encode()
    records = records.set_column(1, "value", pa.array(values, pa.binary()))
    broker = kinesis(folder)
    broker.stream_prefix = f"{prefix}-"
    broker.create_topic("events", partitions=3)
    broker.produce("events", records)
    broker.close()


def load(folder: Path) -> subprocess.Popen:
    return subprocess.Popen([HEADWATER, "ingest", "run", "events"], cwd=folder, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fingerprint(folder: Path) -> tuple:
    con = duckdb.connect(str(folder / ".headwater" / "warehouse.duckdb"), read_only=True)
    try:
        table = con.sql("SELECT count(*), count(DISTINCT id), sum(hash(id, kind, amount)) "
                        "FROM events").fetchall()[0]
        # the source is `events[shard] @ sequence number`: where each record was, exactly
        quarantine = con.sql("SELECT count(*), count(DISTINCT source), "
                             "sum(hash(split_part(source, ' @ ', 1), raw)) "
                             "FROM _hw_quarantine").fetchall()[0]
        return table, quarantine
    finally:
        con.close()


def test_kill_9_at_random_moments_then_rerun_equals_a_clean_run(tmp_path: Path) -> None:
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    tag = tmp_path.name[-12:].replace("_", "-")
    make_project(clean, f"clean-{tag}")
    make_project(crashed, f"crashed-{tag}")
    assert load(clean).wait(timeout=300) == 0

    log = crashed / ".headwater" / "logs" / "headwater.jsonl"
    chance = random.Random(11)
    kills = 0
    for _ in range(2):
        proc = load(crashed)
        before = log.read_text().count('"extract_loaded"') if log.exists() else 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and log.read_text().count('"extract_loaded"') > before:
                time.sleep(chance.uniform(0.0, 0.3))  # mid-fetch, mid-insert, mid-commit ...
                break
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 1, "the load finished before it could be killed"
    assert load(crashed).wait(timeout=300) == 0
    assert fingerprint(crashed) == fingerprint(clean)
    (rows, distinct, _), (quarantined, places, _) = fingerprint(crashed)
    assert rows == distinct and quarantined == places
    assert rows + quarantined == EVENTS

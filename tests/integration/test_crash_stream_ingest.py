"""kill -9 at random moments of a stream → warehouse load, run again: the table and the
quarantine equal a clean run's (nothing lost, nothing loaded twice)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from headwater.brokers import EmbeddedBroker, encode_rows

from .cases.crash import crash_then_compare, warehouse_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 200_000
PROJECT = """\
project: crash
pipelines:
  events:
    source: {kind: stream, topic: events, format: json, max_rows: 10000}
    table: events
    contract:
      columns:
        id: {type: integer, nullable: false}
        kind: {type: string, allowed: [view, click, buy]}
        amount: {type: float, min: 0}
"""


def make_project(folder: Path) -> None:
    """The same messy events in every project: bad amounts, unknown kinds, broken payloads."""
    folder.mkdir(parents=True)
    (folder / "headwater.yaml").write_text(PROJECT)
    ids = np.arange(EVENTS)
    rows = pa.table({"id": ids, "kind": np.where(ids % 997 == 0, "nope",
                                                 np.array(["view", "click", "buy"])[ids % 3]),
                     "amount": np.where(ids % 1009 == 0, -1.0, (ids % 500) / 4)})
    records = encode_rows(rows, key="id")
    values = records["value"].to_pylist()
    for i in range(0, EVENTS, 5003):
        values[i] = b"not json " + str(i).encode()
    records = records.set_column(1, "value", pa.array(values, pa.binary()))
    broker = EmbeddedBroker(folder / ".headwater" / "streams")
    broker.create_topic("events", partitions=4)
    for start in range(0, EVENTS, 50_000):
        broker.produce("events", records.slice(start, 50_000))
    broker.close()


def fingerprint(folder: Path) -> tuple:
    return warehouse_rows(
        folder, "SELECT count(*), count(DISTINCT id), sum(hash(id, kind, amount)) FROM events",
        "SELECT count(*), count(DISTINCT source || ':' || position), "
        "sum(hash(source, position, raw)) FROM _hw_quarantine")


def test_kill_9_at_random_moments_then_rerun_equals_a_clean_run(tmp_path: Path) -> None:
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    make_project(clean)
    make_project(crashed)
    chance = random.Random(7)  # mid-fetch, mid-insert, mid-commit ...
    pauses = [chance.uniform(0.0, 0.4) for _ in range(4)]
    (rows, distinct, _), (quarantined, places, _) = crash_then_compare(
        clean, crashed, ("ingest", "run", "events"), pauses, fingerprint)
    assert rows == distinct and quarantined == places
    assert rows + quarantined == EVENTS
    broker = EmbeddedBroker(crashed / ".headwater" / "streams")
    ends = broker.end_positions("events")
    assert broker.consumer("events", group="headwater-events").committed() == ends
    broker.close()

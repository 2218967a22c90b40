"""kill -9 at random moments of a stream → warehouse load, run again: the table and the
quarantine equal a clean run's (nothing lost, nothing loaded twice)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from headwater.brokers import EmbeddedBroker

from .cases.crash import crash_then_compare, messy_records, warehouse_rows

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
    records = messy_records(EVENTS, unknown=997, negative=1009, broken=5003)
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

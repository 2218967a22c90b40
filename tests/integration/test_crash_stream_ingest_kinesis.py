"""kill -9 at random moments of a Kinesis → warehouse load (moto's server on loopback, real
HTTP; it lives in this process, so it outlives the killed loads), run again: the table and the
quarantine equal a clean run's. The positions are sequence numbers committed in the
warehouse's transaction; the killed loader's leases expire and the next run takes them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from .cases.brokers import kinesis, moto_endpoint
from .cases.crash import crash_then_compare, messy_records, warehouse_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 4_000
PROJECT = """\
project: crash
brokers:
  aws:
    kind: kinesis
    region: us-east-1
    endpoint_url: {endpoint}
    aws_access_key_id: testing
    aws_secret_access_key: testing
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


def make_project(folder: Path, prefix: str) -> None:
    folder.mkdir(parents=True)
    (folder / "headwater.yaml").write_text(PROJECT.format(endpoint=moto_endpoint(),
                                                          prefix=prefix))
    broker = kinesis(folder)
    broker.stream_prefix = f"{prefix}-"
    broker.create_topic("events", partitions=3)
    broker.produce("events", messy_records(EVENTS, unknown=97, negative=101, broken=503))
    broker.close()


def fingerprint(folder: Path) -> tuple:
    # the source is `events[shard] @ sequence number`: where each record was, exactly
    return warehouse_rows(
        folder, "SELECT count(*), count(DISTINCT id), sum(hash(id, kind, amount)) FROM events",
        "SELECT count(*), count(DISTINCT source), "
        "sum(hash(split_part(source, ' @ ', 1), raw)) FROM _hw_quarantine")


def test_kill_9_at_random_moments_then_rerun_equals_a_clean_run(tmp_path: Path) -> None:
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    tag = tmp_path.name[-12:].replace("_", "-")
    make_project(clean, f"clean-{tag}")
    make_project(crashed, f"crashed-{tag}")
    chance = random.Random(11)  # mid-fetch, mid-insert, mid-commit ...
    pauses = [chance.uniform(0.0, 0.3) for _ in range(2)]
    (rows, distinct, _), (quarantined, places, _) = crash_then_compare(
        clean, crashed, ("ingest", "run", "events"), pauses, fingerprint)
    assert rows == distinct and quarantined == places
    assert rows + quarantined == EVENTS

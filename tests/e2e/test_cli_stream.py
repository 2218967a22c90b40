"""``headwater stream``: publish a file to the embedded log, list topics, tail, move a group."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headwater.brokers import EmbeddedBroker

pytestmark = pytest.mark.e2e

EVENTS = "".join(json.dumps({"device": f"d{i % 3}", "temp": 20 + i, "ok": i % 2 == 0}) + "\n"
                 for i in range(12))


def lags(table: str) -> list[str]:
    """The last column of a printed positions table."""
    return [line.strip("│ ").split()[-1] for line in table.splitlines() if line[:1] == "│"]


def test_publish_topics_tail_positions(hw) -> None:
    (hw.cwd / "events.jsonl").write_text(EVENTS)
    done = hw("stream", "publish", "events.jsonl", "--topic", "events", "--key", "device",
              "--partitions", "3")
    assert done.code == 0, done.out + done.err
    assert "published 12 records" in done.out

    broker = EmbeddedBroker(hw.cwd / ".headwater" / "streams")
    got = broker.consumer("events", group="check").poll(timeout=0)
    assert sorted(json.loads(v)["temp"] for v in got["value"].to_pylist()) == list(range(20, 32))
    by_key = {}
    for k, p in zip(got["key"].to_pylist(), got["partition"].to_pylist(), strict=True):
        by_key.setdefault(k, set()).add(p)
    assert set(by_key) == {b"d0", b"d1", b"d2"} and all(len(v) == 1 for v in by_key.values())

    listed = hw("stream", "topics")
    assert listed.code == 0, listed.err
    assert "events" in listed.out and "12" in listed.out

    last = hw("stream", "tail", "events", "-n", "2")
    assert last.code == 0, last.err
    assert last.out.count('{"device"') == 2
    newest = {}  # one produce call: same timestamp, so "last" is the newest of some partitions
    for p, v in zip(got["partition"].to_pylist(), got["value"].to_pylist(), strict=True):
        newest[p] = json.loads(v)["temp"]
    shown = {int(t) for t in re.findall(r'"temp":(\d+)', last.out)}
    assert len(shown) == 2 and shown <= set(newest.values())

    shown = hw("stream", "positions", "events", "--group", "loader")
    assert shown.code == 0, shown.err
    assert lags(shown.out) == \
        [str(len([k for k in got["partition"].to_pylist() if k == p])) for p in range(3)]

    moved = hw("stream", "positions", "events", "--group", "loader", "--reset", "latest")
    assert moved.code == 0, moved.err
    assert lags(moved.out) == ["0", "0", "0"]
    assert "loader: 0" in hw("stream", "topics").out

    back = hw("stream", "positions", "events", "--group", "loader", "--reset", "earliest")
    assert "loader: 12" in hw("stream", "topics").out, back.out


def test_parquet_and_csv_and_the_errors(hw) -> None:
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), hw.cwd / "rows.parquet")
    (hw.cwd / "rows.csv").write_text("id,name\n4,d\n")
    assert hw("stream", "publish", "rows.parquet", "--topic", "rows").code == 0
    assert hw("stream", "publish", "rows.csv", "--topic", "rows").code == 0
    assert "rows" in hw("stream", "topics").out

    unknown = hw("stream", "tail", "nope")
    assert unknown.code == 1
    assert "no topic 'nope'" in unknown.err and "headwater stream topics" in unknown.err
    assert "Traceback" not in unknown.err

    no_broker = hw("stream", "topics", "--broker", "kafka")
    assert no_broker.code == 1 and "no broker 'kafka'" in no_broker.err

    bad_key = hw("stream", "publish", "rows.csv", "--topic", "rows", "--key", "zip")
    assert bad_key.code == 1 and "no column 'zip'" in bad_key.err

    (hw.cwd / "headwater.yaml").write_text(
        "brokers:\n  mine: {kind: embedded, path: elsewhere, fsync: always}\n")
    assert hw("stream", "publish", "rows.csv", "--topic", "t2", "--broker", "mine").code == 0
    assert (hw.cwd / "elsewhere" / "t2" / "topic.json").exists()

"""The library behind ``headwater stream``: encode rows, publish, tail, lag, reset, follow."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.brokers import (
    BrokerError,
    EmbeddedBroker,
    encode_rows,
    follow,
    group_positions,
    lag,
    parse_start,
    publish,
    reset_positions,
    tail,
)


def test_encode_rows_as_json_with_a_key() -> None:
    rows = pa.table({"id": [1, 2], "city": ["Oslo", None], "t": [datetime(2024, 1, 1), None]})
    out = encode_rows(rows, key="id")
    assert out["key"].to_pylist() == [b"1", b"2"]
    assert out["value"].to_pylist() == [b'{"id":1,"city":"Oslo","t":"2024-01-01 00:00:00"}',
                                        b'{"id":2,"city":null,"t":null}']
    assert encode_rows(rows)["key"].null_count == 2
    with pytest.raises(BrokerError, match="no column 'zip'"):
        encode_rows(rows, key="zip")


def test_publish_tail_and_lag(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path)
    rows = encode_rows(pa.table({"n": list(range(25)), "k": [i % 4 for i in range(25)]}),
                       key="k")
    seen: list[int] = []
    assert publish(broker, "t", rows, partitions=3, batch_rows=10, progress=seen.append) == 25
    assert seen == [10, 20, 25]
    last = tail(broker, "t", 4)
    assert {int(v.decode().split(",")[0][5:]) for v in last["value"].to_pylist()} <= \
        set(range(20, 25)), "from the last produce call"
    assert last.num_rows == 4
    assert tail(broker, "t", 100).num_rows == 25
    assert lag(broker, "t", "g") == 25
    with broker.consumer("t", group="g") as consumer:
        got = consumer.poll(max_records=7, timeout=0)
        consumer.commit({p: got.filter(pa.compute.equal(got["partition"], p))["offset"][-1]
                         .as_py() for p in set(got["partition"].to_pylist())})
    assert lag(broker, "t", "g") == 25 - 7
    rows_by_partition = {r.partition: r for r in group_positions(broker, "t", "g")}
    assert sum(r.lag or 0 for r in rows_by_partition.values()) == 18
    assert tail(broker, "t", 0).num_rows == 0
    broker.close()


def test_reset_to_a_time(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path)
    broker.create_topic("t")
    old = datetime.now(UTC) - timedelta(days=3)
    broker.produce("t", pa.table({"value": [b"old"] * 3, "timestamp": [old] * 3}))
    broker.produce("t", pa.table({"value": [b"new"] * 2}))
    assert reset_positions(broker, "t", "g", "1d") == {0: 2}
    assert broker.consumer("t", group="g").poll(timeout=0)["value"].to_pylist() == [b"new"] * 2
    assert reset_positions(broker, "t", "g", (old - timedelta(hours=1)).isoformat()) == {0: -1}
    broker.close()


def test_parse_start() -> None:
    assert parse_start("earliest") == "earliest"
    when = parse_start("2024-05-01T12:00:00Z")
    assert when == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_start("2024-05-01T12:00:00") == when
    ago = parse_start("2h")
    assert isinstance(ago, datetime)
    assert abs((datetime.now(UTC) - ago) - timedelta(hours=2)) < timedelta(seconds=5)
    with pytest.raises(BrokerError, match="cannot read 'soon'"):
        parse_start("soon")


def test_follow_sees_what_comes_after(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path)
    broker.create_topic("t")
    broker.produce("t", pa.table({"value": [b"before"]}))
    stream = follow(broker, "t", timeout=0.1)

    def later() -> None:
        time.sleep(0.3)
        broker.produce("t", pa.table({"value": [b"after"]}))

    threading.Thread(target=later).start()
    assert next(stream)["value"].to_pylist() == [b"after"]
    stream.close()
    broker.close()

"""One suite every broker passes (``BROKER_CASES``): the embedded log, NATS, Kafka, Kinesis.

Ordering per partition, one key to one partition, at-least-once delivery with redelivery after a
crash, resume from committed positions, seeking, consumers sharing a group by partition
assignment, and the edges (empty topic, unknown topic, large values, empty produce).
Offsets are compared as numbers (``int``) so that Kinesis' sequence-number strings pass too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.brokers import (
    RECORD_SCHEMA,
    Broker,
    BrokerError,
    Consumer,
    Positions,
    partition_for,
    split_partitions,
)

from .cases.brokers import BROKER_CASES

pytestmark = pytest.mark.integration


@pytest.fixture(params=sorted(BROKER_CASES))
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    made = BROKER_CASES[request.param](tmp_path)
    yield made
    made.close()


@pytest.fixture
def topic() -> str:
    return f"conf-{uuid.uuid4().hex[:10]}"


def records(n: int, *, keys: int = 5, start: int = 0, ts: datetime | None = None) -> pa.Table:
    cols: dict[str, list] = {
        "key": [f"k{i % keys}".encode() for i in range(start, start + n)],
        "value": [f"v{i}".encode() for i in range(start, start + n)],
    }
    if ts is not None:
        cols["timestamp"] = [ts] * n
    return pa.table(cols)


def drain(consumer: Consumer, want: int, *, timeout: float = 15.0) -> pa.Table:
    """Poll until ``want`` records arrived (or the time is up), then one short poll more to
    catch any record beyond ``want``."""
    got: list[pa.Table] = []
    total = 0
    deadline = time.monotonic() + timeout
    while total < want and time.monotonic() < deadline:
        table = consumer.poll(max_records=1000, timeout=0.5)
        got.append(table)
        total += table.num_rows
    got.append(consumer.poll(max_records=1000, timeout=0.3))
    return pa.concat_tables(got)


def last_positions(table: pa.Table) -> Positions:
    out: Positions = {}
    for p, o in zip(table["partition"].to_pylist(), table["offset"].to_pylist(), strict=True):
        out[p] = o if p not in out or int(o) > int(out[p]) else out[p]
    return out


def values(table: pa.Table) -> list[bytes]:
    return table["value"].to_pylist()


def test_order_within_each_partition(broker: Broker, topic: str) -> None:
    broker.create_topic(topic, partitions=3)
    for i in range(4):
        assert broker.produce(topic, records(50, start=i * 50)) == 50
    with broker.consumer(topic, group="g") as consumer:
        got = drain(consumer, 200)
    assert got.schema.names == RECORD_SCHEMA.names
    assert got.num_rows == 200
    assert sorted(values(got)) == sorted(f"v{i}".encode() for i in range(200))
    for p in broker.partitions(topic):
        rows = got.filter(pa.compute.equal(got["partition"], p))
        offsets = [int(o) for o in rows["offset"].to_pylist()]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
        produced = [int(v[1:]) for v in values(rows)]
        assert produced == sorted(produced), "records of a partition come in produce order"


def test_one_key_one_partition(broker: Broker, topic: str) -> None:
    broker.create_topic(topic, partitions=4)
    broker.produce(topic, records(120, keys=12))
    with broker.consumer(topic, group="g") as consumer:
        got = drain(consumer, 120)
    seen: dict[bytes, set[int]] = {}
    for k, p in zip(got["key"].to_pylist(), got["partition"].to_pylist(), strict=True):
        seen.setdefault(k, set()).add(p)
    assert all(len(ps) == 1 for ps in seen.values())
    expected = partition_for(got["key"], 4).tolist()
    assert got["partition"].to_pylist() == expected, "the shared key-to-partition rule"


def test_redelivery_after_a_crash(broker: Broker, topic: str) -> None:
    broker.create_topic(topic, partitions=2)
    broker.produce(topic, records(40))
    first = broker.consumer(topic, group="g")
    got = drain(first, 40)
    assert got.num_rows == 40
    first.close()  # "crashes": nothing committed
    with broker.consumer(topic, group="g") as again:
        redelivered = drain(again, 40)
    assert sorted(values(redelivered)) == sorted(values(got))


def test_resume_after_committed_positions(broker: Broker, topic: str) -> None:
    broker.create_topic(topic, partitions=2)
    broker.produce(topic, records(30))
    with broker.consumer(topic, group="g") as consumer:
        first = drain(consumer, 30)
        consumer.commit(last_positions(first))
        assert {p: int(o) for p, o in consumer.committed().items()} == \
            {p: int(o) for p, o in last_positions(first).items()}
    broker.produce(topic, records(20, start=30))
    with broker.consumer(topic, group="g") as resumed:
        rest = drain(resumed, 20)
    assert sorted(values(rest)) == sorted(f"v{i}".encode() for i in range(30, 50))
    with broker.consumer(topic, group="other") as fresh:
        assert drain(fresh, 50).num_rows == 50, "another group starts at earliest"


def test_partly_committed_group_gets_the_rest(broker: Broker, topic: str) -> None:
    broker.create_topic(topic, partitions=1)
    broker.produce(topic, records(10, keys=1))
    with broker.consumer(topic, group="g") as consumer:
        got = drain(consumer, 10)
        consumer.commit({0: got["offset"][3].as_py()})
    with broker.consumer(topic, group="g") as again:
        assert values(drain(again, 6)) == [f"v{i}".encode() for i in range(4, 10)]


def test_seek(broker: Broker, topic: str) -> None:
    broker.create_topic(topic, partitions=2)
    old = datetime.now(UTC) - timedelta(hours=2)
    new = datetime.now(UTC) - timedelta(minutes=1)
    broker.produce(topic, records(20, ts=old))
    cut = new - timedelta(minutes=5)
    if broker.record_time == "arrival":  # the broker's clock: a moment between the two
        time.sleep(1.0)
        cut = datetime.now(UTC)
        time.sleep(0.5)
    broker.produce(topic, records(10, start=20, ts=new))
    with broker.consumer(topic, group="g") as consumer:
        everything = drain(consumer, 30)
        consumer.seek("earliest")
        assert sorted(values(drain(consumer, 30))) == sorted(values(everything))
        consumer.seek(cut)
        assert sorted(values(drain(consumer, 10))) == sorted(f"v{i}".encode()
                                                             for i in range(20, 30))
        consumer.seek("latest")
        assert consumer.poll(timeout=0.5).num_rows == 0
        broker.produce(topic, records(5, start=30))
        assert sorted(values(drain(consumer, 5))) == sorted(f"v{i}".encode()
                                                            for i in range(30, 35))
        one = everything.filter(pa.compute.equal(everything["partition"], 0))
        consumer.seek({0: one["offset"][1].as_py()})
        after = drain(consumer, 35 - 2)
    from_p0 = after.filter(pa.compute.equal(after["partition"], 0))
    assert values(from_p0)[:len(one) - 2] == values(one)[2:]
    assert after.num_rows == 35 - 2, "partitions not named start at earliest"


def test_group_members_share_partitions(broker: Broker, topic: str) -> None:
    broker.create_topic(topic, partitions=4)
    broker.produce(topic, records(200, keys=50))
    parts = broker.partitions(topic)
    a = broker.consumer(topic, group="g", partitions=split_partitions(parts, 0, 2))
    b = broker.consumer(topic, group="g", partitions=split_partitions(parts, 1, 2))
    assert set(a.assignment()).isdisjoint(b.assignment())
    assert sorted(a.assignment() + b.assignment()) == parts
    got_a, got_b = drain(a, 1), drain(b, 1)
    deadline = time.monotonic() + 10
    while got_a.num_rows + got_b.num_rows < 200 and time.monotonic() < deadline:
        got_a = pa.concat_tables([got_a, a.poll(timeout=0.2)])
        got_b = pa.concat_tables([got_b, b.poll(timeout=0.2)])
    a.commit(last_positions(got_a))
    b.commit(last_positions(got_b))
    a.close()
    b.close()
    together = values(got_a) + values(got_b)
    assert sorted(together) == sorted(f"v{i}".encode() for i in range(200)), "each exactly once"
    assert set(got_a["partition"].to_pylist()) <= set(split_partitions(parts, 0, 2))
    with broker.consumer(topic, group="g") as whole:
        assert whole.poll(timeout=0.5).num_rows == 0, "both members' commits hold"


def test_empty_topic(broker: Broker, topic: str) -> None:
    broker.create_topic(topic, partitions=2)
    assert broker.end_positions(topic) == {}
    assert topic in [t.name for t in broker.topics()]
    with broker.consumer(topic, group="g") as consumer:
        empty = consumer.poll(timeout=0.2)
        assert empty.num_rows == 0
        assert empty.schema.names == RECORD_SCHEMA.names
        assert consumer.committed() == {}


def test_unknown_topic(broker: Broker, topic: str) -> None:
    for call in (lambda: broker.partitions(topic),
                 lambda: broker.produce(topic, records(1)),
                 lambda: broker.consumer(topic, group="g").poll(timeout=0.1),
                 lambda: broker.end_positions(topic)):
        with pytest.raises(BrokerError) as err:
            call()
        assert topic in err.value.message
        assert "headwater stream topics" in (err.value.hint or "")


def test_large_values(broker: Broker, topic: str) -> None:
    broker.create_topic(topic, partitions=1)
    size = min(1 << 20, (broker.max_value_bytes or 1 << 20) - 1)  # the key takes a byte
    big = [bytes([i]) * size for i in range(3)]
    broker.produce(topic, pa.table({"key": [b"a", b"b", b"c"], "value": big}))
    with broker.consumer(topic, group="g") as consumer:
        got = drain(consumer, 3)
    assert values(got) == big


def test_empty_produce_and_end_positions(broker: Broker, topic: str) -> None:
    broker.create_topic(topic, partitions=1)
    assert broker.produce(topic, records(0)) == 0
    assert broker.end_positions(topic) == {}
    broker.produce(topic, records(3, keys=1))
    ends = broker.end_positions(topic)
    with broker.consumer(topic, group="g") as consumer:
        got = drain(consumer, 3)
    assert {p: int(o) for p, o in ends.items()} == \
        {p: int(o) for p, o in last_positions(got).items()}

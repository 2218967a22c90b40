"""Kinesis beyond the conformance suite: resharding mid-stream, leases shared by a group, and
PutRecords' partial failures; against moto's server on loopback (real HTTP).

moto moves a split parent's records into its children, copies merged parents' records into the
child, and keeps routing new records to closed parents; AWS keeps the parents' records in the
closed parents (readable until retention), starts the children empty and routes to open shards
only. ``aws_resharding`` makes moto do what AWS does, in this process's server.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from headwater.brokers import Consumer, Positions
from headwater.brokers._kinesis import KinesisBroker

from .cases.brokers import kinesis

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KinesisBroker]:
    made = kinesis(tmp_path, lease_duration_s=1.5)
    assert isinstance(made, KinesisBroker)
    yield made
    made.close()


@pytest.fixture
def topic() -> str:
    return f"kin-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def aws_resharding(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.kinesis.models import Stream

    split, merge = Stream.split_shard, Stream.merge_shards

    def keep_split(self: Stream, shard_to_split: str, new_starting_hash_key: str) -> None:
        shard = self.shards[shard_to_split]
        kept, shard.records = shard.records, OrderedDict()
        try:
            split(self, shard_to_split, new_starting_hash_key)
        finally:
            shard.records = kept

    def keep_merge(self: Stream, shard_to_merge: str, adjacent_shard_to_merge: str) -> None:
        shards = [self.shards[shard_to_merge], self.shards[adjacent_shard_to_merge]]
        kept = [s.records for s in shards]
        for s in shards:
            s.records = OrderedDict()
        try:
            merge(self, shard_to_merge, adjacent_shard_to_merge)
        finally:
            for s, records in zip(shards, kept, strict=True):
                s.records = records

    def open_shard_for_key(self: Stream, partition_key: str, explicit_hash_key: str) -> object:
        key = int(explicit_hash_key) if explicit_hash_key else \
            int(hashlib.md5(partition_key.encode()).hexdigest(), 16)
        return next(s for s in self.shards.values()
                    if s.is_open and s.starting_hash <= key <= s.ending_hash)

    monkeypatch.setattr(Stream, "get_shard_for_key", open_shard_for_key)
    monkeypatch.setattr(Stream, "split_shard", keep_split)
    monkeypatch.setattr(Stream, "merge_shards", keep_merge)


def records(n: int, *, start: int = 0, keys: int = 12) -> pa.Table:
    return pa.table({"key": [f"k{i % keys}".encode() for i in range(start, start + n)],
                     "value": [f"{i % keys}:{i}".encode() for i in range(start, start + n)]})


def read(consumer: Consumer, want: int, *, commit: bool = True,
         timeout: float = 30.0) -> pa.Table:
    got: list[pa.Table] = []
    total = 0
    deadline = time.monotonic() + timeout
    while total < want and time.monotonic() < deadline:
        table = consumer.poll(max_records=37, timeout=0.5)  # small polls: reads cross reshards
        if table.num_rows:
            got.append(table)
            total += table.num_rows
            if commit:
                consumer.commit(last(table))
    tail = consumer.poll(timeout=0.3)
    if commit and tail.num_rows:
        consumer.commit(last(tail))
    got.append(tail)
    return pa.concat_tables(got)


def last(table: pa.Table) -> Positions:
    out: Positions = {}
    for p, o in zip(table["partition"].to_pylist(), table["offset"].to_pylist(), strict=True):
        out[p] = o
    return out


def by_key(table: pa.Table) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for v in table["value"].to_pylist():
        key, i = v.decode().split(":")
        out.setdefault(key, []).append(int(i))
    return out


def shard_ids(broker: KinesisBroker, topic: str) -> dict[str, dict]:
    client = broker._client("kinesis")
    return {s["ShardId"]: s for s in client.list_shards(
        StreamName=broker.stream_name(topic))["Shards"]}


def test_split_and_merge_mid_stream(broker: KinesisBroker, topic: str,
                                    aws_resharding: None) -> None:
    broker.create_topic(topic, partitions=2)
    client = broker._client("kinesis")
    stream = broker.stream_name(topic)
    broker.produce(topic, records(120))
    consumer = broker.consumer(topic, group="g")
    first = read(consumer, 50)
    assert first.num_rows >= 50
    shard0 = shard_ids(broker, topic)["shardId-000000000000"]
    start, end = (int(shard0["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
    client.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000",
                       NewStartingHashKey=str((start + end) // 2))
    broker.produce(topic, records(120, start=120))
    shards = shard_ids(broker, topic)
    assert shards["shardId-000000000002"]["ParentShardId"] == "shardId-000000000000"
    client.merge_shards(StreamName=stream, ShardToMerge="shardId-000000000003",
                        AdjacentShardToMerge="shardId-000000000001")
    broker.produce(topic, records(120, start=240))
    assert len(broker.shards(topic, max_age=0)) == 5
    rest = read(consumer, 360 - first.num_rows)
    consumer.close()
    together = pa.concat_tables([first, rest])
    values = sorted(together["value"].to_pylist())
    assert values == sorted(records(360)["value"].to_pylist()), "every record exactly once"
    for key, seen in by_key(together).items():
        assert seen == sorted(seen), f"key {key} in produce order across the reshards"
    # every record of a parent before any of its children
    order = together["partition"].to_pylist()
    for child, parents in ((2, [0]), (3, [0]), (4, [3, 1])):
        if child in order:
            first_child = order.index(child)
            for parent in parents:
                assert parent not in order[first_child:], (child, parent)
    with broker.consumer(topic, group="g") as again:
        assert again.poll(timeout=1.0).num_rows == 0, "the group finished every shard"
    assert set(broker.end_positions(topic)) == {0, 1, 2, 3, 4}
    assert broker.group_lag(topic, "g") == {0: 0, 1: 0, 2: 0, 3: 0, 4: 0}
    with broker.consumer(topic, group="fresh") as fresh:  # earliest, every parent first
        everything = read(fresh, 360, commit=False)
    assert everything.num_rows == 360
    for key, seen in by_key(everything).items():
        assert seen == sorted(seen), key


def test_crash_mid_reshard_resumes_from_committed(broker: KinesisBroker, topic: str,
                                                   aws_resharding: None) -> None:
    broker.create_topic(topic, partitions=1)
    broker.produce(topic, records(60))
    client = broker._client("kinesis")
    client.split_shard(StreamName=broker.stream_name(topic),
                       ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2 ** 127))
    broker.produce(topic, records(60, start=60))
    crashed = broker.consumer(topic, group="g")
    seen = read(crashed, 100, commit=False)
    crashed.commit(last(seen.slice(0, 80)))  # 80 handled, the rest lost with the crash
    del crashed  # no close: its leases expire
    with broker.consumer(topic, group="g") as resumed:
        rest = read(resumed, 40)
    assert sorted(pa.concat_tables([seen.slice(0, 80), rest])["value"].to_pylist()) == \
        sorted(records(120)["value"].to_pylist())


def test_two_members_share_the_shards_by_lease(broker: KinesisBroker, topic: str) -> None:
    broker.create_topic(topic, partitions=4)
    broker.produce(topic, records(400, keys=40))
    a = broker.consumer(topic, group="g")
    b = broker.consumer(topic, group="g")
    got: dict[str, list[pa.Table]] = {"a": [], "b": []}
    deadline = time.monotonic() + 40
    total = 0
    while total < 400 and time.monotonic() < deadline:
        for name, member in (("a", a), ("b", b)):
            table = member.poll(max_records=20, timeout=0.2)
            if table.num_rows:
                got[name].append(table)
                total += table.num_rows
                member.commit(last(table))
    assignments = (a.assignment(), b.assignment())
    a.close()
    b.close()
    tables = {k: pa.concat_tables(v) if v else None for k, v in got.items()}
    assert all(t is not None and t.num_rows for t in tables.values()), "both members read"
    together = pa.concat_tables([t for t in tables.values() if t is not None])
    assert sorted(together["value"].to_pylist()) == sorted(records(400, keys=40)["value"]
                                                           .to_pylist()), "each exactly once"
    assert set(assignments[0]).isdisjoint(assignments[1])


def test_rejected_records_are_sent_again(broker: KinesisBroker, topic: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.kinesis.models import KinesisBackend

    put = KinesisBackend.put_records
    calls: list[int] = []

    def throttle_every_third(self: KinesisBackend, stream_arn: str, stream_name: str,
                             records: list[dict]) -> dict:
        calls.append(len(records))
        if len(calls) > 1:
            return put(self, stream_arn, stream_name, records)
        kept = [r for i, r in enumerate(records) if i % 3]
        reply = put(self, stream_arn, stream_name, kept)
        done = iter(reply["Records"])
        reply["Records"] = [next(done) if i % 3 else {
            "ErrorCode": "ProvisionedThroughputExceededException",
            "ErrorMessage": "Rate exceeded for shard"} for i in range(len(records))]
        reply["FailedRecordCount"] = len(records) - len(kept)
        return reply

    monkeypatch.setattr(KinesisBackend, "put_records", throttle_every_third)
    broker.create_topic(topic, partitions=2)
    assert broker.produce(topic, records(90)) == 90
    assert calls == [90, 30], "the 30 rejected records, sent again"
    with broker.consumer(topic, group="g") as consumer:
        got = read(consumer, 90)
    assert sorted(got["value"].to_pylist()) == sorted(records(90)["value"].to_pylist())


def test_calls_respect_the_put_records_limits(broker: KinesisBroker, topic: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.kinesis.models import KinesisBackend

    put = KinesisBackend.put_records
    sizes: list[tuple[int, int]] = []

    def record_sizes(self: KinesisBackend, stream_arn: str, stream_name: str,
                     records: list[dict]) -> dict:
        import base64

        sizes.append((len(records), sum(len(base64.b64decode(r["Data"])) for r in records)))
        return put(self, stream_arn, stream_name, records)

    monkeypatch.setattr(KinesisBackend, "put_records", record_sizes)
    broker.create_topic(topic, partitions=1)
    small = pa.table({"key": [b"k"] * 1200, "value": [b"x"] * 1200})
    big = pa.table({"key": [b"k"] * 12, "value": [b"y" * (900 << 10)] * 12})
    assert broker.produce(topic, small) == 1200
    assert broker.produce(topic, big) == 12
    assert [n for n, _ in sizes[:3]] == [500, 500, 200]
    assert all(n <= 500 and total <= 5 << 20 for n, total in sizes)
    assert sum(n for n, _ in sizes[3:]) == 12 and len(sizes) > 4
    ends = broker.end_positions(topic)
    assert int(ends[0]) > 0 and pc.sum(pa.array([n for n, _ in sizes])).as_py() == 1212


@pytest.mark.parametrize(("table", "what"), [
    (pa.table({"key": [b"\xff\xfe"], "value": [b"x"]}), "not UTF-8 text"),
    (pa.table({"key": [b"k" * 300], "value": [b"x"]}), "256-character partition key limit"),
    (pa.table({"key": [b"k"], "value": [b"x" * (1 << 20)]}), "1,048,576-byte limit of Kinesis"),
])
def test_records_kinesis_cannot_take_are_refused_before_sending(
        broker: KinesisBroker, topic: str, table: pa.Table, what: str) -> None:
    from headwater.brokers import BrokerError

    broker.create_topic(topic, partitions=1)
    with pytest.raises(BrokerError) as err:
        broker.produce(topic, table)
    assert what in err.value.message and err.value.hint
    assert broker.end_positions(topic) == {}, "nothing of the batch was sent"


def test_records_without_a_key_come_back_without_one(broker: KinesisBroker,
                                                     topic: str) -> None:
    from headwater.brokers import BrokerError

    with pytest.raises(BrokerError, match="cannot be a Kinesis stream name"):
        broker.create_topic("")
    broker.create_topic(topic, partitions=2)
    broker.produce(topic, pa.table({"key": [None, b"", b"k"], "value": [b"a", b"b", b"c"]}))
    with broker.consumer(topic, group="g") as consumer:
        got = read(consumer, 3)
    assert sorted(zip(got["value"].to_pylist(), got["key"].to_pylist(), strict=True)) == \
        [(b"a", None), (b"b", None), (b"c", b"k")]
    where = dict(zip(got["value"].to_pylist(), got["partition"].to_pylist(), strict=True))
    assert (where[b"a"], where[b"b"]) == (0, 1), "records without a key spread round-robin"

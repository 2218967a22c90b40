"""The embedded log on its own: frames, recovery, retention, fsync policies, the writer lock."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.brokers import (
    PRODUCE_SCHEMA,
    BrokerError,
    EmbeddedBroker,
    partition_for,
    split_partitions,
)
from headwater.brokers._embedded import (
    FRAME_SCHEMA,
    HEADER,
    INDEX_DTYPE,
    encode_frame,
    scan_frames,
)
from headwater.core import ConfigError


def frame_batch(values: list[bytes]) -> pa.RecordBatch:
    n = len(values)
    return pa.record_batch([pa.array([b"k"] * n, pa.binary()), pa.array(values, pa.binary()),
                            pa.array([1_700_000_000_000 + i for i in range(n)],
                                     PRODUCE_SCHEMA.field(2).type)], schema=PRODUCE_SCHEMA)


def segment(batches: list[list[bytes]]) -> tuple[bytes, list[int]]:
    """A segment's bytes from a list of frames, and where each frame ends."""
    out, ends, offset = b"", [], 0
    for values in batches:
        out += encode_frame(frame_batch(values), offset)
        ends.append(len(out))
        offset += len(values)
    return out, ends


FRAMES = st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1,
                  max_size=5)


@given(FRAMES, st.data())
@settings(max_examples=150, deadline=None)
def test_a_truncated_tail_yields_only_whole_frames(frames: list[list[bytes]],
                                                   data: st.DataObject) -> None:
    raw, ends = segment(frames)
    cut = data.draw(st.integers(0, len(raw)))
    entries, valid = scan_frames(raw[:cut], 0)
    whole = [e for e in ends if e <= cut]
    assert valid == (whole[-1] if whole else 0)
    assert len(entries) == len(whole)
    assert entries["count"].tolist() == [len(f) for f in frames[:len(whole)]]


@given(FRAMES, st.data())
@settings(max_examples=150, deadline=None)
def test_a_corrupt_byte_stops_the_scan_at_its_frame(frames: list[list[bytes]],
                                                    data: st.DataObject) -> None:
    raw, ends = segment(frames)
    at = data.draw(st.integers(0, len(raw) - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(raw)
    bad[at] ^= flip
    entries, valid = scan_frames(bytes(bad), 0)
    before = [e for e in ends if e <= at]
    assert len(entries) == len(before), "no frame at or after the damage is read"
    assert valid == (before[-1] if before else 0)
    for (first, position, _ts, count), values in zip(entries.tolist(), frames, strict=False):
        start = position + HEADER.size
        length = HEADER.unpack_from(raw, position)[1]
        batch = pa.ipc.read_record_batch(pa.py_buffer(raw[start:start + length]), FRAME_SCHEMA)
        assert batch.column("value").to_pylist() == values and count == len(values)
        assert first == sum(len(f) for f in frames[:entries["position"].tolist().index(position)])


@given(FRAMES, st.binary(min_size=1, max_size=80))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_garbage_after_the_frames_is_cut_off(frames: list[list[bytes]], junk: bytes) -> None:
    raw, ends = segment(frames)
    entries, valid = scan_frames(raw + junk, 0)
    assert valid == ends[-1] and len(entries) == len(frames)


def produce_values(broker: EmbeddedBroker, topic: str, values: list[bytes], **extra) -> int:
    return broker.produce(topic, pa.table({"value": values, **extra}))


def read_all(broker: EmbeddedBroker, topic: str, group: str = "check") -> pa.Table:
    consumer = broker.consumer(topic, group=group)
    consumer.seek("earliest")
    out = [consumer.poll(max_records=1_000_000, timeout=0)]
    while out[-1].num_rows:
        out.append(consumer.poll(max_records=1_000_000, timeout=0))
    return pa.concat_tables(out)


def test_a_torn_tail_is_truncated_when_a_writer_opens(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path)
    broker.create_topic("t")
    for i in range(3):
        produce_values(broker, "t", [f"{i}-{j}".encode() for j in range(4)])
    broker.close()
    log = tmp_path / "t" / "p0" / f"{0:020d}.log"
    size = log.stat().st_size
    with open(log, "r+b") as f:  # a crash in the middle of the third frame
        f.truncate(size - 7)
    reopened = EmbeddedBroker(tmp_path)
    assert reopened.end_positions("t") == {0: 11}, "readers trust the index until recovery"
    produce_values(reopened, "t", [b"after"])
    got = read_all(reopened, "t")
    assert got["offset"].to_pylist() == list(range(9))
    assert got["value"].to_pylist()[-1] == b"after"
    assert all(v.count(b"-") == 1 for v in got["value"].to_pylist()[:8])
    reopened.close()


def test_a_payload_whose_header_never_came_is_cut_off(tmp_path: Path) -> None:
    """Big frames are written payload first, header last: a crash in between leaves zeros
    where the header goes, which recovery cuts off."""
    broker = EmbeddedBroker(tmp_path)
    broker.create_topic("t")
    produce_values(broker, "t", [b"a" * 1000] * (3 << 10))  # > 1 MiB: the CRC is computed aside
    broker.close()
    log = tmp_path / "t" / "p0" / f"{0:020d}.log"
    whole = log.read_bytes()
    with open(log, "ab") as f:
        f.write(bytes(HEADER.size) + whole[HEADER.size:])
    reopened = EmbeddedBroker(tmp_path)
    produce_values(reopened, "t", [b"b"])
    assert log.stat().st_size > len(whole)  # the new frame, after the cut
    got = read_all(reopened, "t")
    assert got.num_rows == (3 << 10) + 1 and got["offset"].to_pylist() == list(range(got.num_rows))
    reopened.close()


def test_a_sealed_segment_whose_index_lost_its_tail_is_reindexed(tmp_path: Path) -> None:
    """Sealed segments' indexes are not fsynced (the frames are): a writer checks each one's
    end and rebuilds it from the frames."""
    broker = EmbeddedBroker(tmp_path, segment_bytes=4096)
    broker.create_topic("t")
    for i in range(12):
        produce_values(broker, "t", [f"{i}".encode() * 400] * 3)
    broker.close()
    first = tmp_path / "t" / "p0" / f"{0:020d}.idx"
    first.write_bytes(first.read_bytes()[:-INDEX_DTYPE.itemsize])  # the last entry never landed
    reopened = EmbeddedBroker(tmp_path, segment_bytes=4096)
    produce_values(reopened, "t", [b"more"])
    got = read_all(reopened, "t")
    assert got["offset"].to_pylist() == list(range(37))
    reopened.close()


def test_a_reader_steps_over_frames_lost_from_a_sealed_segment(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, segment_bytes=4096)
    broker.create_topic("t")
    for i in range(6):
        produce_values(broker, "t", [f"{i}".encode() * 1500] * 2)  # a segment per call
    broker.close()
    first = tmp_path / "t" / "p0" / f"{0:020d}.idx"
    first.write_bytes(b"")  # as if a power cut under fsync never lost its only frame
    (tmp_path / "t" / "p0" / f"{0:020d}.log").write_bytes(b"")
    got = read_all(EmbeddedBroker(tmp_path), "t")
    assert got["offset"].to_pylist() == list(range(2, 12))


def test_two_writers_are_refused(tmp_path: Path) -> None:
    first, second = EmbeddedBroker(tmp_path), EmbeddedBroker(tmp_path)
    first.create_topic("t")
    produce_values(first, "t", [b"a"])
    with pytest.raises(BrokerError, match="being written by another writer") as err:
        produce_values(second, "t", [b"b"])
    assert str(os.getpid()) in err.value.message
    first.close()
    produce_values(second, "t", [b"b"])  # the lock went with the first writer
    assert read_all(second, "t")["value"].to_pylist() == [b"a", b"b"]
    second.close()


def test_segments_roll_and_seek_by_offset_crosses_them(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, segment_bytes=4096)
    broker.create_topic("t")
    for i in range(40):
        produce_values(broker, "t", [f"{i}:{j}".encode() * 20 for j in range(5)])
    assert len(list((tmp_path / "t" / "p0").glob("*.log"))) > 5
    consumer = broker.consumer("t", group="g")
    consumer.seek({0: 122})
    got = consumer.poll(max_records=10, timeout=0)
    assert got["offset"].to_pylist() == list(range(123, 133))
    broker.close()


def test_retention_by_size_deletes_whole_old_segments(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, segment_bytes=4096, retention_bytes=12_000)
    broker.create_topic("t")
    consumer = broker.consumer("t", group="g")
    for i in range(60):
        produce_values(broker, "t", [bytes([65 + i % 26]) * 300 for _ in range(3)])
    sizes = [f.stat().st_size for f in (tmp_path / "t" / "p0").glob("*.log")]
    assert sum(sizes) <= 12_000 + 4096
    got = consumer.poll(max_records=1000, timeout=0)  # was at offset 0, now expired
    assert got["offset"][0].as_py() > 0
    assert got["offset"].to_pylist() == list(range(got["offset"][0].as_py(), 180))
    info = broker.topics()[0]
    assert info.records == got.num_rows and info.bytes == sum(sizes)
    broker.close()


def test_a_reader_at_the_end_survives_retention_deleting_behind_it(tmp_path: Path) -> None:
    writer = EmbeddedBroker(tmp_path, segment_bytes=4096, retention_bytes=12_000)
    writer.create_topic("t")
    reader = EmbeddedBroker(tmp_path).consumer("t", group="g")
    for i in range(8):  # two segments or so, all read
        produce_values(writer, "t", [bytes([65 + i]) * 300 for _ in range(3)])
    seen = reader.poll(max_records=1000, timeout=0)["offset"].to_pylist()
    # one big append: a new segment, and retention deletes the ones the reader knew
    produce_values(writer, "t", [b"z" * 3000 for _ in range(3)])
    seen += reader.poll(max_records=1000, timeout=0)["offset"].to_pylist()
    assert seen == list(range(27))
    writer.close()


def test_retention_by_age(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, segment_bytes=4096, retention_ms=3_600_000)
    broker.create_topic("t")
    old = datetime.now(UTC) - timedelta(days=2)
    for _ in range(10):
        produce_values(broker, "t", [b"x" * 1000] * 3, timestamp=[old] * 3)
    produce_values(broker, "t", [b"new" * 400] * 3)
    got = read_all(broker, "t")
    assert got["value"].to_pylist() == [b"new" * 400] * 3, "only the fresh segment is kept"
    broker.close()


@pytest.mark.parametrize("policy", ["always", "batch", "never"])
def test_fsync_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    broker = EmbeddedBroker(tmp_path, fsync=policy)  # type: ignore[arg-type]
    broker.create_topic("t", partitions=3)
    produce_values(broker, "t", [b"warm-up"])  # opens the writer
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    keys = [b"a", b"b", b"c", b"d", b"e", b"f"]
    assert broker.produce("t", pa.table({"key": keys, "value": keys})) == 6
    assert broker.produce("t", pa.table({"key": keys[:1], "value": keys[:1]})) == 1
    frames = len(set(partition_for(pa.array(keys), 3).tolist())) + 1
    # always: each frame and its index entry; batch: each partition a produce call wrote
    assert len(calls) == {"always": 2 * frames, "batch": frames, "never": 0}[policy]
    assert read_all(broker, "t").num_rows == 8
    broker.close()


def test_interval_fsync_happens_on_a_timer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    broker = EmbeddedBroker(tmp_path, fsync="interval", fsync_interval_ms=50)
    broker.create_topic("t")
    produce_values(broker, "t", [b"warm-up"])
    time.sleep(0.2)
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    produce_values(broker, "t", [b"a"])
    assert calls == [], "produce returns before the fsync"
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(calls) == 1
    broker.close()


def test_unknown_fsync_policy_and_bad_names(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, fsync="sometimes")  # type: ignore[arg-type]
    broker.create_topic("t")
    with pytest.raises(BrokerError, match="fsync policy"):
        produce_values(broker, "t", [b"a"])
    with pytest.raises(BrokerError, match="not allowed"):
        broker.create_topic("../escape")
    with pytest.raises(BrokerError, match="not allowed"):
        broker.consumer("t", group="a/b")
    with pytest.raises(BrokerError, match=r"partitions 0\.\.0"):
        broker.consumer("t", group="g", partitions=[3])
    with pytest.raises(BrokerError, match="columns key, value"):
        broker.produce("t", pa.table({"payload": [b"x"]}))


def test_text_keys_naive_times_and_reset(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path)
    broker.create_topic("t", partitions=2)
    naive = datetime(2024, 1, 1, 12, 0)
    broker.produce("t", pa.table({"key": ["a", "b"], "value": ["1", "2"],
                                  "timestamp": [naive, None]}))
    got = read_all(broker, "t").sort_by("value")
    assert got["key"].to_pylist() == [b"a", b"b"]
    assert got["timestamp"][0].as_py() == naive.replace(tzinfo=UTC)
    assert got["timestamp"][1].as_py() > datetime.now(UTC) - timedelta(minutes=5)
    assert broker.reset_group("t", "g", "latest") == {0: 0, 1: 0}
    assert broker.groups("t") == ["g"]
    assert broker.consumer("t", group="g").poll(timeout=0).num_rows == 0
    assert broker.reset_group("t", "g", "earliest") == {0: -1, 1: -1}
    assert broker.consumer("t", group="g").poll(timeout=0).num_rows == 2
    broker.close()


def test_check_crcs_reports_a_corrupt_sealed_frame(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, check_crcs=True)
    broker.create_topic("t")
    produce_values(broker, "t", [b"hello world"] * 3)
    broker.close()
    log = tmp_path / "t" / "p0" / f"{0:020d}.log"
    raw = bytearray(log.read_bytes())
    raw[-20] ^= 0xFF
    log.write_bytes(bytes(raw))
    with pytest.raises(BrokerError, match="corrupt frame"):
        read_all(EmbeddedBroker(tmp_path, check_crcs=True), "t")


def test_index_entries_are_fixed_size() -> None:
    assert INDEX_DTYPE.itemsize == 32 and HEADER.size == 32


def test_split_partitions() -> None:
    parts = list(range(7))
    members = [split_partitions(parts, i, 3) for i in range(3)]
    assert sorted(p for member in members for p in member) == parts
    with pytest.raises(ConfigError):
        split_partitions(parts, 3, 3)

"""The embedded log across processes: kill -9 of a writer mid-append, a reader beside a writer.

Child processes run this file as a script: ``write PATH ROUND`` appends batches in a loop and
prints ``ack N`` after each produce returns; ``read PATH N`` follows the topic until it has N
records and prints what it saw. Every record carries its number at both ends of its value,
so a torn or mixed-up record cannot pass for a whole one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.brokers import EmbeddedBroker
from headwater.brokers._embedded import scan_frames

pytestmark = pytest.mark.integration

TOPIC = "crash"
PARTITIONS = 3
_VALUE = re.compile(rb"^r(\d+):(\d{10}):(x*):(\d{10})$")


def _pad(i: int) -> int:
    return 200 + i % 97


def batch(round_: int, start: int, n: int) -> pa.Table:
    nums = range(start, start + n)
    return pa.table({
        "key": [f"k{i % 13}".encode() for i in nums],
        "value": [f"r{round_}:{i:010d}:{'x' * _pad(i)}:{i:010d}".encode() for i in nums],
    })


def problems(table: pa.Table) -> list[str]:
    """Whatever is wrong with records read back: torn values, gaps, disorder, duplicates."""
    out: list[str] = []
    for p in sorted(set(table["partition"].to_pylist())):
        rows = table.filter(pa.compute.equal(table["partition"], p))
        offsets = rows["offset"].to_pylist()
        if offsets != list(range(offsets[0], offsets[0] + len(offsets))):
            out.append(f"partition {p}: offsets not contiguous")
        last: dict[int, int] = {}
        for value in rows["value"].to_pylist():
            m = _VALUE.match(value)
            if not m or m.group(2) != m.group(4) or len(m.group(3)) != _pad(int(m.group(2))):
                out.append(f"partition {p}: torn record {value[:40]!r}")
                continue
            r, n = int(m.group(1)), int(m.group(2))
            if n <= last.get(r, -1):
                out.append(f"partition {p}: record {n} of round {r} out of order")
            last[r] = n
    return out


def read_everything(path: Path) -> pa.Table:
    broker = EmbeddedBroker(path)
    consumer = broker.consumer(TOPIC, group="verify")
    parts = [consumer.poll(max_records=100_000, timeout=0)]
    while parts[-1].num_rows:
        parts.append(consumer.poll(max_records=100_000, timeout=0))
    broker.close()
    return pa.concat_tables(parts)


def child(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def torn_tails(path: Path) -> int:
    """How many partitions end in bytes that are not a whole frame (before a writer recovers)."""
    torn = 0
    for p in range(PARTITIONS):
        last = sorted((path / TOPIC / f"p{p}").glob("*.log"))[-1]
        data = last.read_bytes()
        torn += scan_frames(data, int(last.stem))[1] < len(data)
    return torn


def test_kill_9_mid_append_loses_nothing_acknowledged_and_tears_nothing(tmp_path: Path) -> None:
    """Even rounds: killed from outside while appending without pause. Odd rounds: the writer
    kills itself half-way through writing a frame (round 1: in the payload, round 3: in the
    header), so a torn tail is certain."""
    EmbeddedBroker(tmp_path).create_topic(TOPIC, partitions=PARTITIONS)
    acked: dict[int, int] = {}
    for round_ in range(4):
        writer = child("write", str(tmp_path), str(round_))
        assert writer.stdout is not None
        acked[round_] = 0
        first = writer.stdout.readline()  # started (imports take a while)
        assert first.startswith("ack "), first
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline and writer.poll() is None:
            line = writer.stdout.readline()
            if line.startswith("ack "):
                acked[round_] = int(line.split()[1])
        if writer.poll() is None:
            os.kill(writer.pid, signal.SIGKILL)
        assert writer.wait(timeout=10) == -signal.SIGKILL
        for rest in writer.stdout:  # acks printed before the kill
            if rest.startswith("ack "):
                acked[round_] = int(rest.split()[1])
        assert acked[round_] > 0, "the writer acknowledged nothing before the kill"
        if round_ % 2:
            assert torn_tails(tmp_path) >= 1
        assert problems(read_everything(tmp_path)) == [], "a reader sees no torn record"
    got = read_everything(tmp_path)
    assert problems(got) == []
    seen: dict[int, set[int]] = {}
    for value in got["value"].to_pylist():
        m = _VALUE.match(value)
        assert m is not None
        seen.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    for round_, n in acked.items():
        assert set(range(n)) <= seen.get(round_, set()), f"round {round_} lost acknowledged records"
    assert sum(len(s) for s in seen.values()) == got.num_rows, "no record twice"
    # a writer opening after the last crash cuts the torn tail and goes on from contiguous offsets
    broker = EmbeddedBroker(tmp_path)
    broker.produce(TOPIC, batch(9, 0, 50))
    assert torn_tails(tmp_path) == 0
    after = read_everything(tmp_path)
    assert problems(after) == []
    # whole frames of the produce call that was cut short (not acknowledged) may come back
    assert after.num_rows >= got.num_rows + 50
    assert set(after["offset"].to_pylist()[:1]) == {0}
    broker.close()


def test_a_reader_process_follows_a_writer(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, segment_bytes=64 << 10)
    broker.create_topic(TOPIC, partitions=PARTITIONS)
    total = 20_000
    reader = child("read", str(tmp_path), str(total))
    sent = 0
    while sent < total:
        n = min(700, total - sent)
        broker.produce(TOPIC, batch(0, sent, n))
        sent += n
        time.sleep(0.005)
    out, _ = reader.communicate(timeout=60)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary == {"records": total, "problems": [], "distinct": total}
    broker.close()


def _write(path: str, round_: int) -> None:
    if round_ % 2:
        _die_inside_a_frame(after_writes=5 + round_, keep=lambda frame:
                            frame[:len(frame) // 2] if round_ == 1 else frame[:10])
    broker = EmbeddedBroker(path, segment_bytes=256 << 10)
    start = 0
    size = 1
    while True:
        broker.produce(TOPIC, batch(round_, start, size))
        start += size
        print(f"ack {start}", flush=True)
        size = size * 7 % 1999 + 1


def _die_inside_a_frame(*, after_writes: int, keep: Callable[[bytes], bytes]) -> None:
    """Make the writer SIGKILL itself part-way through a frame write."""
    from headwater.brokers import _embedded

    real = _embedded._pwrite_all
    calls = [0]

    def pwrite_all(fd: int, parts: list, position: int) -> None:
        calls[0] += 1
        if calls[0] > after_writes:
            os.pwrite(fd, keep(b"".join(bytes(memoryview(p)) for p in parts)), position)
            os.kill(os.getpid(), signal.SIGKILL)
        real(fd, parts, position)

    _embedded._pwrite_all = pwrite_all


def _read(path: str, total: int) -> None:
    broker = EmbeddedBroker(path)
    consumer = broker.consumer(TOPIC, group="follower")
    parts: list[pa.Table] = []
    count = 0
    deadline = time.monotonic() + 45
    while count < total and time.monotonic() < deadline:
        table = consumer.poll(max_records=5000, timeout=0.5)
        parts.append(table)
        count += table.num_rows
    got = pa.concat_tables(parts)
    distinct = len(set(got["value"].to_pylist()))
    print(json.dumps({"records": got.num_rows, "problems": problems(got)[:5],
                      "distinct": distinct}))


if __name__ == "__main__":
    mode, where, number = sys.argv[1:4]
    if mode == "write":
        _write(where, int(number))
    else:
        _read(where, int(number))

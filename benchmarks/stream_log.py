"""Benchmark: the embedded log against writing and reading the same Arrow IPC bytes with pyarrow.

Produces N small records (a ~100-byte value, a short key, a timestamp) in Arrow batches through
``EmbeddedBroker`` (fsync policy ``batch``: one fsync per produce call and partition), then
consumes them all through a consumer group. The floor, in the same run on the same batches:
pyarrow alone writes the batches to as many IPC stream files as the log has partitions, with
one fsync per batch (the same durability), then reads them back from memory maps. Rounds
alternate headwater and the floor; the best round of each is reported, with the ratio.

Run::

    .venv/bin/python benchmarks/stream_log.py                       # 10,000,000 records
    .venv/bin/python benchmarks/stream_log.py --records 1000000 --partitions 4
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from headwater.brokers import PRODUCE_SCHEMA, EmbeddedBroker


def make_batches(records: int, batch_rows: int, seed: int = 11) -> list[pa.RecordBatch]:
    """Sensor-like records: key ``dev-NNNNN``, a 100-byte value, a millisecond timestamp."""
    rng = np.random.default_rng(seed)
    out = []
    start_ms = 1_750_000_000_000
    for first in range(0, records, batch_rows):
        n = min(batch_rows, records - first)
        data = rng.integers(97, 123, n * 100, dtype=np.uint8)
        values = pa.Array.from_buffers(pa.binary(), n, [
            None, pa.py_buffer(np.arange(0, n * 100 + 1, 100, dtype=np.int32)),
            pa.py_buffer(data)])
        devices = rng.integers(0, 10_000, n)
        keys = pa.array(np.char.add("dev-", devices.astype(str))).cast(pa.binary())
        ts = pa.array(start_ms + first + np.arange(n, dtype=np.int64)).cast(
            PRODUCE_SCHEMA.field("timestamp").type)
        out.append(pa.record_batch([keys, values, ts], schema=PRODUCE_SCHEMA))
    return out


def headwater_round(batches: list[pa.RecordBatch], folder: Path, partitions: int
                    ) -> tuple[float, float, int]:
    broker = EmbeddedBroker(folder, fsync="batch")
    broker.create_topic("bench", partitions=partitions)
    start = time.perf_counter()
    for batch in batches:
        broker.produce("bench", pa.Table.from_batches([batch]))
    produced = time.perf_counter() - start
    consumer = broker.consumer("bench", group="bench")
    start = time.perf_counter()
    seen = 0
    while True:
        table = consumer.poll(max_records=200_000, timeout=0)
        if not table.num_rows:
            break
        seen += table.num_rows
    consumed = time.perf_counter() - start
    broker.close()
    return produced, consumed, seen


def floor_round(batches: list[pa.RecordBatch], folder: Path, files: int
                ) -> tuple[float, float, int]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part-{i}.arrows" for i in range(files)]
    start = time.perf_counter()
    sinks = [pa.OSFile(str(p), "wb") for p in paths]
    writers = [pa.ipc.new_stream(s, PRODUCE_SCHEMA) for s in sinks]
    for batch in batches:
        if files == 1:
            writers[0].write_batch(batch)
            os.fsync(sinks[0].fileno())
            continue
        step = -(-batch.num_rows // files)  # the same bytes spread over the same file count
        for j in range(files):
            writers[j].write_batch(batch.slice(j * step, step))
        for j in range(files):
            os.fsync(sinks[j].fileno())
    for w, s in zip(writers, sinks, strict=True):
        w.close()
        s.close()
    written = time.perf_counter() - start
    start = time.perf_counter()
    seen = 0
    for p in paths:
        with pa.memory_map(str(p)) as source:
            seen += pa.ipc.open_stream(source).read_all().num_rows
    read = time.perf_counter() - start
    return written, read, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    batches = make_batches(args.records, args.batch_rows)
    nbytes = sum(b.nbytes for b in batches)
    print(f"embedded log benchmark: {args.records:,} records ({nbytes / 1e6:,.0f} MB of Arrow) "
          f"in batches of {args.batch_rows:,}, {args.partitions} partition(s), fsync per batch; "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"pyarrow {pa.__version__}")
    results: dict[str, list[tuple[float, float]]] = {"headwater": [], "floor": []}
    runs: dict[str, Callable[[Path], tuple[float, float, int]]] = {
        "headwater": lambda d: headwater_round(batches, d, args.partitions),
        "floor": lambda d: floor_round(batches, d, args.partitions),
    }
    for r in range(args.rounds):
        for name, run in runs.items():
            folder = Path(tempfile.mkdtemp(prefix=f"hw-bench-{name}-"))
            try:
                write_s, read_s, seen = run(folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            assert seen == args.records, (name, seen)
            results[name].append((write_s, read_s))
            print(f"  round {r + 1} {name:<9} produce {write_s:6.2f} s   consume {read_s:6.2f} s",
                  flush=True)

    def line(label: str, seconds: float) -> str:
        return (f"  {label:<28} {args.records / seconds:>13,.0f} records/s "
                f"{nbytes / seconds / 1e6:>9,.0f} MB/s")

    print("best round:")
    ratios = []
    for way, k in (("produce", 0), ("consume", 1)):
        hw = min(t[k] for t in results["headwater"])
        fl = min(t[k] for t in results["floor"])
        ratios.append(hw / fl)
        print(line(f"{way}: EmbeddedBroker", hw))
        print(line(f"{way}: pyarrow IPC (floor)", fl))
        print(f"  {way}: headwater takes {hw / fl:.2f}x the floor's time (target: within 2x)")
    print("machine shared with parallel work: figures are noisy")


if __name__ == "__main__":
    main()

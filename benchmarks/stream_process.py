"""Stream processor throughput on one core: embedded log → decode → dedupe → windows →
detectors → alerts → DuckDB, against a bare read of the same log (the floor), same run.

    python benchmarks/stream_process.py [--events 1000000] [--rounds 3]

Target: at least 200,000 events/s on one core (Flink's published Nexmark windowed queries reach
about 22,000 events/s per core). Both contenders are pinned to one CPU and Polars to one thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow as pa

from headwater.brokers import EmbeddedBroker
from headwater.config import ProcessorSpec
from headwater.store import DuckDBStore
from headwater.stream import Processor

SPEC = {
    "input": {"topic": "readings"},
    "windows": [{"name": "w10s", "kind": "tumbling", "size": "10s"}],
    "detectors": [{"kind": "zscore"}, {"kind": "jump", "delta": 5}],
    "watermark_delay": "2s",
    "max_records": 100_000,
    "outputs": {"readings": None},
}


def make_log(folder: Path, events: int) -> None:
    """``events`` readings of 1,000 devices × 3 metrics, one a second, as JSON, 4 partitions."""
    broker = EmbeddedBroker(folder)
    broker.create_topic("readings", partitions=4)
    series = 3_000
    n = pl.int_range(events, eager=True)
    frame = pl.DataFrame({
        "device": (n % 1000).cast(pl.String).str.pad_start(4, "0").str.replace(r"^", "dev-"),
        "metric": pl.Series(["temperature", "humidity", "pressure"]).gather(
            (n // 1000) % 3),
        "value": 20 + (n % 97) / 10,
        "event_time": 1_767_225_600_000 + (n // series) * 1000,
        "message_id": n.cast(pl.String),
    })
    payload = frame.select(key=pl.col("device").cast(pl.Binary),
                           value=pl.struct(pl.all()).struct.json_encode().cast(pl.Binary))
    for part in payload.iter_slices(200_000):
        broker.produce("readings", pa.table({"key": part["key"].to_arrow(),
                                             "value": part["value"].to_arrow()}))
    broker.close()


def bare_read(folder: Path) -> tuple[float, float, int]:
    broker = EmbeddedBroker(folder)
    end = broker.end_positions("readings")
    wall, cpu = time.perf_counter(), time.process_time()
    count, seen = 0, {}
    with broker.consumer("readings", group=f"bare-{time.time_ns()}") as consumer:
        while any(seen.get(p, -1) < o for p, o in end.items()):
            records = consumer.poll(max_records=100_000, timeout=0.1)
            count += records.num_rows
            if records.num_rows:
                last = records.group_by("partition").aggregate([("offset", "max")])
                seen.update(zip(last.column("partition").to_pylist(),
                                last.column("offset_max").to_pylist(), strict=True))
    broker.close()
    return time.perf_counter() - wall, time.process_time() - cpu, count


def headwater_run(folder: Path, sink: Path) -> tuple[float, float, int]:
    broker = EmbeddedBroker(folder)
    store = DuckDBStore(sink)
    wall, cpu = time.perf_counter(), time.process_time()
    result = Processor(f"bench{time.time_ns()}", ProcessorSpec.model_validate(SPEC),
                       broker=broker, store=store).run()
    seconds, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    store.close()
    broker.close()
    return seconds, cpu_s, result.totals.records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (pinned to one), "
          f"Python {platform.python_version()}, Polars {pl.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="hw-bench-stream-"))
    try:
        make_log(tmp / "log", args.events)
        floors, ours = [], []
        for i in range(args.rounds):
            floor = bare_read(tmp / "log")
            mine = headwater_run(tmp / "log", tmp / f"sink{i}.duckdb")
            assert floor[2] == mine[2] == args.events, (floor, mine)
            floors.append(floor)
            ours.append(mine)
            print(f"round {i + 1}: bare read {args.events / floor[0]:,.0f} events/s; headwater "
                  f"{args.events / mine[0]:,.0f} events/s ({mine[1]:.1f} CPU s)")
        floor_s = statistics.median(f[0] for f in floors)
        ours_s = statistics.median(m[0] for m in ours)
        print(f"\nbare read of the log (floor): {args.events / floor_s:,.0f} events/s")
        print(f"headwater processor (decode, dedupe, 10 s windows, z-score + jump, alerts, "
              f"DuckDB): {args.events / ours_s:,.0f} events/s on one core")
        print(f"ratio to the floor: {ours_s / floor_s:.1f}x the time; target ≥ 200,000 "
              f"events/s: {'met' if args.events / ours_s >= 200_000 else 'NOT met'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

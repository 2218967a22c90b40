"""Stream → warehouse on one core: JSON events from the embedded log through the contract and
the quarantine into DuckDB, against the file pipeline loading the same events as JSON Lines.

    python benchmarks/stream_ingest.py [--events 1000000] [--rounds 3]

Target: at least 150,000 rows/s on one core. Both contenders run the same contract (types,
allowed values, a range, a not-null key) on the same rows, 1 % of them bad, in interleaved
rounds in this process, pinned to one CPU with Polars and Arrow on one thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

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
from headwater.contract import Contract
from headwater.ingest import ingest, ingest_files
from headwater.ingest.sources._topic import StreamSource
from headwater.store import DuckDBStore

CONTRACT = {
    "columns": {
        "event_id": {"type": "integer", "nullable": False},
        "user_id": {"type": "string", "nullable": False},
        "kind": {"type": "string", "allowed": ["view", "click", "cart", "buy"]},
        "amount": {"type": "float", "min": 0},
        "event_time": {"type": "timestamp"},
    },
}


def make_events(events: int) -> pa.Table:
    """``events`` JSON payloads (about 110 bytes each); every 100th is bad in some way."""
    n = pl.int_range(events, eager=True)
    frame = pl.DataFrame({
        "event_id": n,
        "user_id": (n % 50_000).cast(pl.String).str.replace(r"^", "u-"),
        "kind": pl.Series(["view", "click", "cart", "buy", "view"]).gather(n % 5),
        "amount": ((n * 7919) % 100_000) / 100,
        "event_time": (1_767_225_600_000_000 + n * 1_000_000).cast(
            pl.Datetime("us", "UTC")).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }).with_columns(
        kind=pl.when(n % 200 == 7).then(pl.lit("refund")).otherwise("kind"),
        amount=pl.when(n % 200 == 13).then(-1.0).otherwise("amount"))
    values = frame.select(pl.struct(pl.all()).struct.json_encode()).to_series()
    values = pl.select(pl.when(n % 200 == 99).then(pl.lit("{broken")).otherwise(values)
                       ).to_series()
    return pa.table({"key": frame["user_id"].cast(pl.Binary).to_arrow(),
                     "value": values.cast(pl.Binary).to_arrow()})


def stream_run(log: Path, sink: Path, group: str) -> tuple[float, float, int, int]:
    broker = EmbeddedBroker(log)
    store = DuckDBStore(sink)
    source = StreamSource(broker, "events", group=group, max_rows=250_000)
    wall, cpu = time.perf_counter(), time.process_time()
    run = ingest(source, store, table="events", contract=Contract.from_spec(CONTRACT))
    seconds, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    source.close()
    store.close()
    broker.close()
    assert run.status == "succeeded", run.error
    return seconds, cpu_s, run.rows_loaded, run.rows_quarantined


def file_run(path: Path, sink: Path) -> tuple[float, float, int, int]:
    store = DuckDBStore(sink)
    wall, cpu = time.perf_counter(), time.process_time()
    run = ingest_files(path, store, table="events", contract=CONTRACT, format="jsonl")
    seconds, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    store.close()
    assert run.status == "succeeded", run.error
    return seconds, cpu_s, run.rows_loaded, run.rows_quarantined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (pinned to one), "
          f"Python {platform.python_version()}, pyarrow {pa.__version__}, Polars {pl.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="hw-bench-stream-ingest-"))
    try:
        records = make_events(args.events)
        broker = EmbeddedBroker(tmp / "log")
        broker.create_topic("events", partitions=4)
        for start in range(0, args.events, 200_000):
            broker.produce("events", records.slice(start, 200_000))
        broker.close()
        lines = records["value"].to_numpy(zero_copy_only=False)
        (tmp / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        print(f"{args.events:,} events, {records['value'].nbytes / 1e6:,.0f} MB of JSON, "
              "4 partitions; 1 % bad (broken JSON, unknown kind, negative amount)")
        streams, files = [], []
        for i in range(args.rounds):
            mine = stream_run(tmp / "log", tmp / f"stream{i}.duckdb", f"bench-{i}")
            base = file_run(tmp / "events.jsonl", tmp / f"file{i}.duckdb")
            assert mine[2:] == base[2:], (mine, base)
            assert mine[2] + mine[3] == args.events
            streams.append(mine)
            files.append(base)
            print(f"round {i + 1}: stream {args.events / mine[0]:,.0f} rows/s ({mine[1]:.1f} "
                  f"CPU s); file {args.events / base[0]:,.0f} rows/s ({base[1]:.1f} CPU s); "
                  f"{mine[2]:,} loaded, {mine[3]:,} quarantined")
        stream_s = statistics.median(m[0] for m in streams)
        file_s = statistics.median(f[0] for f in files)
        stream_cpu = statistics.median(m[1] for m in streams)
        file_cpu = statistics.median(f[1] for f in files)
        rate = args.events / stream_s
        print(f"\nheadwater stream → DuckDB (log, decode, contract, quarantine, positions): "
              f"{rate:,.0f} rows/s on one core (median of {args.rounds}); "
              f"{args.events / stream_cpu:,.0f} rows per CPU second")
        print(f"file pipeline, same rows as JSON Lines: {args.events / file_s:,.0f} rows/s; "
              f"{args.events / file_cpu:,.0f} rows per CPU second")
        print(f"ratio stream / file: {file_s / stream_s:.2f} of the file pipeline's rate (time "
              f"{stream_s:.2f} s vs {file_s:.2f} s; CPU {stream_cpu:.2f} s vs {file_cpu:.2f} s); "
              f"target ≥ 150,000 rows/s: {'met' if rate >= 150_000 else 'NOT met'}")
        if stream_s > 1.5 * stream_cpu:
            print(f"note: the wall time is {stream_s / stream_cpu:.1f}x the CPU time: the core "
                  "was shared with other work during this run")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

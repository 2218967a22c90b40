"""Benchmark: ingest a messy 5-million-row orders CSV into the DuckDB warehouse.

Generates ``benchmarks/data/orders_<N>.csv`` (12 columns: timestamps with offsets, quoted amounts
with thousands separators, mixed booleans, free text with commas; 1 % defective rows), then times,
in the same run and each in its own child process (so that peak memory is per contender):

1. headwater: detect, read, cleanse, validate, quarantine and load into a DuckDB warehouse
   (``headwater.ingest.ingest_files``);
2. DuckDB's ``CREATE TABLE … AS SELECT * FROM read_csv(…)`` (no validation: the floor);
3. the headwater file reader alone (read path: detect, decode, parse, rejects, positions);
4. dlt loading the same file into DuckDB, fed Arrow batches (optional peer).

Seconds are wall time; CPU s counts every thread of the child. The contenders run ``--repeat``
times (default 3), interleaved, and the median run of each is reported with the per-round
ratios: on a shared machine one run of the floor alone moves by half its time.

Run::

    .venv/bin/python benchmarks/ingest_csv.py             # 5,000,000 rows
    .venv/bin/python benchmarks/ingest_csv.py --rows 500000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
COLUMNS = ["order_id", "customer_id", "ordered_at", "amount", "currency", "quantity",
           "unit_price", "is_gift", "status", "country", "email", "note"]
DEFECT_RATE = 0.01


# --------------------------------------------------------------------------------------------
# data generation (vectorised: NumPy + Polars, a few seconds for 5 M rows)


def generate(path: Path, rows: int, seed: int = 7) -> dict[str, int]:
    """Write the orders CSV to ``path``; return how many rows of each defect it holds."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    counts: dict[str, int] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.write((",".join(COLUMNS) + "\n").encode())
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            frame, defects = _chunk(rng, start, n)
            for name, value in defects.items():
                counts[name] = counts.get(name, 0) + value
            line = pl.concat_str(pl.all(), separator=",").str.replace("," + _DROP, "", literal=True)
            lines = frame.select(line.alias("line"))
            lines.write_csv(out, include_header=False, quote_style="never")
    return counts


def _chunk(rng, start: int, n: int):
    import numpy as np
    import polars as pl

    idx = np.arange(start, start + n)
    seconds = rng.integers(1_672_531_200, 1_735_689_600, n)  # 2023-01-01 .. 2025-01-01 UTC
    offsets = rng.choice(np.array([0, 60, 120, -300, -420, 330]), n)
    amount = np.round(rng.lognormal(4.5, 1.3, n), 2)
    quantity = rng.integers(1, 20, n)
    unit_price = np.round(rng.uniform(0.5, 500.0, n), 2)
    words = np.array(["fast delivery", "gift wrap, please", "call before", "leave at door",
                      "fragile, handle with care", "no notes", "second order this week",
                      'said "thanks"', "back door, not front", "urgent"])
    frame = pl.DataFrame({
        "order_id": idx + 1,
        "customer_id": rng.integers(1, 200_000, n),
        "seconds": seconds,
        "offset": offsets,
        "amount": amount,
        "currency": rng.choice(np.array(["EUR", "USD", "GBP", "eur", " usd "]), n),
        "quantity": quantity,
        "unit_price": unit_price,
        "is_gift": rng.choice(np.array(["yes", "no", "Y", "N", "true", "false", "1", "0"]), n),
        "status": rng.choice(np.array(["new", "shipped", "delivered", "cancelled", "Shipped"]), n),
        "country": rng.choice(np.array(["DE", "FR", "GB", "US", "NL", "ES", "IT", "PL"]), n),
        "mailbox": rng.integers(1, 1_000_000, n),
        "note": rng.choice(words, n),
        "defect": rng.integers(0, 1_000_000, n),
    })
    local = pl.from_epoch(pl.col("seconds") + pl.col("offset") * 60, time_unit="s")
    sign = pl.when(pl.col("offset") < 0).then(pl.lit("-")).otherwise(pl.lit("+"))
    hours = (pl.col("offset").abs() // 60).cast(pl.String).str.zfill(2)
    minutes = (pl.col("offset").abs() % 60).cast(pl.String).str.zfill(2)
    stamp = local.dt.strftime("%Y-%m-%dT%H:%M:%S")
    ordered_at = (pl.when(pl.col("offset") == 0)
                  .then(stamp + pl.lit("Z"))
                  .otherwise(stamp + sign + hours + pl.lit(":") + minutes))
    amount_text = pl.col("amount").map_batches(_thousands, return_dtype=pl.String)
    note = pl.lit('"') + pl.col("note").str.replace_all('"', '""', literal=True) + pl.lit('"')
    frame = frame.select(
        pl.col("order_id").cast(pl.String),
        (pl.lit("C") + pl.col("customer_id").cast(pl.String).str.zfill(6)).alias("customer_id"),
        ordered_at.alias("ordered_at"),
        (pl.lit('"') + amount_text + pl.lit('"')).alias("amount"),
        pl.col("currency"),
        pl.col("quantity").cast(pl.String),
        pl.col("unit_price").cast(pl.String),
        pl.col("is_gift"),
        pl.col("status"),
        pl.col("country"),
        (pl.lit("user") + pl.col("mailbox").cast(pl.String) + pl.lit("@example.com"))
        .alias("email"),
        note.alias("note"),
        pl.col("defect"),
    )
    # 1 % defective rows, spread over the kinds a real export has. The first two break the CSV
    # structure (the reader rejects them); the others break the contract.
    kinds = [
        ("extra_field", "note", "unquoted, comma in text"),
        ("missing_field", "country", _DROP),
        ("bad_amount", "amount", "twelve"),
        ("bad_timestamp", "ordered_at", "2024-13-45T25:61:00+02:00"),
        ("negative_quantity", "quantity", "-3"),
        ("unknown_status", "status", "lost in space"),
        ("bad_email", "email", "not-an-email"),
        ("null_required", "customer_id", "N/A"),
        ("bad_boolean", "is_gift", "maybe"),
        ("bad_price", "unit_price", "12.3.4"),
    ]
    step = int(1_000_000 * DEFECT_RATE / len(kinds))
    defects: dict[str, int] = {}
    replaced = []
    for i, (kind, column, value) in enumerate(kinds):
        hit = (pl.col("defect") >= i * step) & (pl.col("defect") < (i + 1) * step)
        defects[kind] = int(frame.select(hit.sum()).item())
        replaced.append(pl.when(hit).then(pl.lit(value)).otherwise(pl.col(column)).alias(column))
    frame = frame.with_columns(replaced).drop("defect")
    return frame, defects


#: Marks a field to leave out entirely (with its separator): the row has one field too few.
_DROP = "\x00"


def _thousands(series):
    """1234567.5 -> '1,234,567.50' (vectorised)."""
    import polars as pl

    cents = (series * 100).round(0).cast(pl.Int64)
    whole = (cents // 100).cast(pl.String)
    frac = (cents % 100).cast(pl.String).str.zfill(2)
    # Insert separators by reversing, chunking in threes, and reversing back.
    grouped = (whole.str.reverse().str.extract_all(r"\d{1,3}")
               .list.join(",").str.reverse())
    return grouped + "." + frac


# --------------------------------------------------------------------------------------------
# the contract headwater applies (cleanse, type, validate)

CONTRACT = {
    "columns": {
        "order_id": {"type": "integer", "nullable": False},
        "customer_id": {"type": "string", "nullable": False, "pattern": r"^C\d{6}$"},
        "ordered_at": {"type": "timestamp", "nullable": False},
        "amount": {"type": "decimal(14,2)", "nullable": False, "min": 0},
        "currency": {"type": "string", "cleanse": {"case": "upper"},
                     "allowed": ["EUR", "USD", "GBP"]},
        "quantity": {"type": "integer", "min": 1},
        "unit_price": {"type": "float", "min": 0},
        "is_gift": {"type": "boolean"},
        "status": {"type": "string", "cleanse": {"case": "lower"},
                   "allowed": ["new", "shipped", "delivered", "cancelled"]},
        "country": {"type": "string", "min_length": 2, "max_length": 2},
        "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+\.[a-z]+$"},
        "note": {"type": "string"},
    },
}


# --------------------------------------------------------------------------------------------
# contenders, each run in a child process (python benchmarks/ingest_csv.py --contender NAME)


def run_headwater(csv: Path, work: Path) -> dict:
    from headwater.ingest import ingest_files
    from headwater.store import DuckDBStore

    store = DuckDBStore(work / "headwater.duckdb")
    try:
        run = ingest_files(csv, store, table="orders", contract=CONTRACT)
    finally:
        store.close()
    return {"rows": run.rows_read, "loaded": run.rows_loaded,
            "quarantined": run.rows_quarantined, "status": run.status}


def run_reader(csv: Path, work: Path) -> dict:
    from headwater.core import State
    from headwater.ingest.sources import FileSource

    rows = rejects = 0
    for extract in FileSource(csv).extracts(State()):
        for batch in extract.batches:
            rows += batch.data.num_rows
            rejects += batch.rejects.num_rows if batch.rejects is not None else 0
    return {"rows": rows + rejects, "loaded": rows, "quarantined": rejects}


def run_duckdb(csv: Path, work: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(work / "duckdb.duckdb"))
    try:
        con.sql(f"CREATE TABLE orders AS SELECT * FROM read_csv('{csv}')")
        rows = con.sql("SELECT count(*) FROM orders").fetchall()[0][0]
    finally:
        con.close()
    return {"rows": rows, "loaded": rows, "quarantined": 0}


def run_dlt(csv: Path, work: Path) -> dict:
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ["DLT_DATA_DIR"] = str(work / "dlt_data")
    os.environ["DLT_PROJECT_DIR"] = str(work / "dlt_project")
    import dlt
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def batches():
        # dlt is fed Arrow batches (its fast path); rows with a wrong field count are skipped.
        reader = pacsv.open_csv(
            csv, read_options=pacsv.ReadOptions(block_size=32 << 20),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in COLUMNS}))
        yield from reader

    pipeline = dlt.pipeline(pipeline_name="bench_orders", pipelines_dir=str(work / "dlt_pipes"),
                            destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
                            dataset_name="bench")
    info = pipeline.run(dlt.resource(batches(), name="orders"), write_disposition="replace")
    info.raise_on_failed_jobs()
    import duckdb

    con = duckdb.connect(str(work / "dlt.duckdb"))
    try:
        rows = con.sql("SELECT count(*) FROM bench.orders").fetchall()[0][0]
    finally:
        con.close()
    return {"rows": rows, "loaded": rows, "quarantined": 0}


CONTENDERS = {"headwater": run_headwater, "duckdb": run_duckdb, "reader": run_reader,
              "dlt": run_dlt}
LABELS = {
    "headwater": "headwater ingest (detect, cleanse, validate, quarantine, load)",
    "duckdb": "DuckDB CTAS read_csv (no validation: the floor)",
    "reader": "headwater file reader alone (read path)",
    "dlt": "dlt, fed Arrow batches, into DuckDB",
}


def _child(name: str, csv: Path, work: Path) -> None:
    """Run one contender; print its figures as one JSON line."""
    started = time.perf_counter()
    result = CONTENDERS[name](csv, work)
    result["seconds"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # all threads: the work done
    print("RESULT " + json.dumps(result))


def _measure(name: str, csv: Path, work: Path) -> dict | None:
    target = work / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    proc = subprocess.run([sys.executable, __file__, "--contender", name, "--csv", str(csv),
                           "--work", str(target)], capture_output=True, text=True)
    shutil.rmtree(target, ignore_errors=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    print(f"  {name}: failed ({' / '.join(tail)})", file=sys.stderr)
    return None


def _median(results: list[dict]) -> dict:
    """The run with the median time (its own CPU seconds and peak memory with it)."""
    ordered = sorted(results, key=lambda r: r["seconds"])
    return ordered[(len(ordered) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows to generate")
    parser.add_argument("--only", nargs="*", choices=list(CONTENDERS), default=None,
                        help="contenders to run (default: all)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="interleaved runs per contender; the median is reported")
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        _child(args.contender, Path(args.csv), Path(args.work))
        return

    csv = DATA / f"orders_{args.rows}.csv"
    if not csv.exists():
        print(f"generating {csv.name} ({args.rows:,} rows) ...", flush=True)
        started = time.perf_counter()
        defects = generate(csv, args.rows)
        print(f"  {time.perf_counter() - started:.1f} s; defects: {defects}")
    size = csv.stat().st_size
    print(f"file: {csv} ({size / 2**20:,.0f} MiB, {args.rows:,} rows)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.system()} {platform.release()}")
    work = DATA / "work"
    names = args.only or list(CONTENDERS)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.repeat):  # interleaved, so a busy spell hits every contender
        for name in names:
            if name == "dlt" and round_:
                continue  # slow, and only "faster than dlt" is asked: once is enough
            print(f"round {round_ + 1}/{args.repeat}: {name} ...", flush=True)
            result = _measure(name, csv, work)
            if result is None:
                if name == "dlt":
                    print("  dlt skipped (optional peer)")
                continue
            runs[name].append(result)
    shutil.rmtree(work, ignore_errors=True)
    results = {name: _median(rs) for name, rs in runs.items() if rs}

    print()
    print(f"median of {args.repeat} interleaved runs (dlt: one run)")
    print(f"{'contender':<66} {'rows':>10} {'loaded':>10} {'quarant.':>9} {'seconds':>8} "
          f"{'CPU s':>7} {'rows/s':>11} {'peak MiB':>9}")
    for name, r in results.items():
        rate = r["rows"] / r["seconds"] if r["seconds"] else 0
        print(f"{LABELS[name]:<66} {r['rows']:>10,} {r['loaded']:>10,} {r['quarantined']:>9,} "
              f"{r['seconds']:>8.2f} {r['cpu_seconds']:>7.1f} {rate:>11,.0f} "
              f"{r['peak_rss_mb']:>9,.0f}")
    floor = results.get("duckdb")
    if floor:
        print()
        for name, r in results.items():
            if name != "duckdb":
                print(f"{name} / duckdb time: {r['seconds'] / floor['seconds']:.2f}x")
        pairs = [h["seconds"] / d["seconds"] for h, d in zip(runs.get("headwater", []),
                                                             runs["duckdb"], strict=False)]
        if len(pairs) > 1:
            print("headwater / duckdb per round: " + ", ".join(f"{x:.2f}x" for x in pairs))
    if "headwater" in results and "dlt" in results:
        ratio = results["dlt"]["seconds"] / results["headwater"]["seconds"]
        print(f"dlt / headwater time: {ratio:.2f}x")


if __name__ == "__main__":
    main()

"""Benchmark: load N rows of Arrow into each store, against a plain baseline on the same data.

Times, in the same run and on the same in-memory Arrow table (8 columns: ids, text, decimals,
timestamps with time zone, booleans):

* PostgreSQL: ``PostgresStore`` (one transaction with state; ADBC binary COPY) vs psycopg
  ``COPY … FROM STDIN (FORMAT csv)`` fed by Arrow's CSV writer (no state, no evolution checks);
* Delta (local disk): ``DeltaStore`` (buffered, one idempotent commit + state commit) vs a bare
  ``write_deltalake``;
* DuckDB: ``DuckDBStore`` vs ``CREATE TABLE … AS SELECT * FROM arrow``.

Run::

    .venv/bin/python benchmarks/store_load.py                 # 5,000,000 rows
    .venv/bin/python benchmarks/store_load.py --rows 1000000 --skip postgres
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv


def make_rows(n: int, seed: int = 7) -> pa.Table:
    """An orders-like table, generated column by column."""
    rng = np.random.default_rng(seed)
    cents = rng.integers(1, 10_000_000, n)
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    return pa.table({
        "order_id": pa.array(np.arange(n, dtype=np.int64)),
        "customer": pa.array(np.char.add("c", rng.integers(0, 50_000, n).astype(str))),
        "amount": pa.array(cents / 100).cast(pa.decimal128(14, 2)),
        "ordered_at": pa.array(start + rng.integers(0, 365 * 86_400_000_000, n),
                               pa.timestamp("us", tz="UTC")),
        "is_gift": pa.array(rng.random(n) < 0.1),
        "quantity": pa.array(rng.integers(1, 20, n, dtype=np.int32)),
        "unit_price": pa.array(rng.random(n) * 100),
        "note": pa.array(np.where(rng.random(n) < 0.5, "leave at the door, please", "")),
    })


def timed(label: str, fn: Callable[[], None], rows: int) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<44} {seconds:7.2f} s  {rows / seconds:>12,.0f} rows/s", flush=True)
    return seconds


def bench_postgres(data: pa.Table, url: str) -> None:
    import psycopg

    from headwater.store import PostgresStore

    schema = f"hw_bench_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(url, schema=schema)

    def headwater() -> None:
        with store.transaction("bench", "run") as tx:
            tx.write("orders", data)
            tx.set_state("bench", {"rows": data.num_rows})

    def baseline() -> None:
        with psycopg.connect(url) as con, con.cursor() as cur:
            cur.execute(f'CREATE TABLE "{schema}".plain (order_id int8, customer text, '
                        "amount numeric(14,2), ordered_at timestamptz, is_gift bool, "
                        "quantity int4, unit_price float8, note text)")
            with cur.copy(f'COPY "{schema}".plain FROM STDIN (FORMAT csv)') as copy:
                for batch in data.to_batches(max_chunksize=200_000):
                    buf = io.BytesIO()
                    pacsv.write_csv(pa.Table.from_batches([batch]), buf,
                                    pacsv.WriteOptions(include_header=False))
                    copy.write(buf.getvalue())

    print("PostgreSQL")
    try:
        timed("headwater PostgresStore (ADBC binary COPY)", headwater, data.num_rows)
        timed("baseline psycopg COPY FROM STDIN (csv)", baseline, data.num_rows)
    finally:
        store.query(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        store.close()


def bench_delta(data: pa.Table, folder: Path) -> None:
    from deltalake import write_deltalake

    from headwater.store import DeltaStore

    store = DeltaStore(folder / "lake")

    def headwater() -> None:
        with store.transaction("bench", "run") as tx:
            for batch in data.to_batches(max_chunksize=500_000):  # as a pipeline writes
                tx.write("orders", pa.Table.from_batches([batch]))
            tx.set_state("bench", {"rows": data.num_rows})

    print("Delta Lake (local disk)")
    timed("headwater DeltaStore (buffered, idempotent)", headwater, data.num_rows)
    timed("baseline write_deltalake", lambda: write_deltalake(str(folder / "plain"), data),
          data.num_rows)


def bench_duckdb(data: pa.Table, folder: Path) -> None:
    import duckdb

    from headwater.store import DuckDBStore

    store = DuckDBStore(folder / "w.duckdb")

    def headwater() -> None:
        with store.transaction("bench", "run") as tx:
            tx.write("orders", data)
            tx.set_state("bench", {"rows": data.num_rows})

    def baseline() -> None:
        con = duckdb.connect(str(folder / "plain.duckdb"))
        con.register("incoming", data)
        con.execute("CREATE TABLE plain AS SELECT * FROM incoming")
        con.close()

    print("DuckDB")
    timed("headwater DuckDBStore", headwater, data.num_rows)
    timed("baseline CREATE TABLE AS SELECT (Arrow)", baseline, data.num_rows)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--skip", action="append", default=[],
                        choices=["postgres", "delta", "duckdb"])
    parser.add_argument("--pg", default=os.environ.get(
        "HEADWATER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    data = make_rows(args.rows)
    print(f"{args.rows:,} rows, {data.nbytes / 2**20:,.0f} MiB of Arrow, {os.cpu_count()} cores")
    folder = Path(tempfile.mkdtemp(prefix="headwater-bench-"))
    try:
        if "postgres" not in args.skip:
            bench_postgres(data, args.pg)
        if "delta" not in args.skip:
            bench_delta(data, folder)
        if "duckdb" not in args.skip:
            bench_duckdb(data, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

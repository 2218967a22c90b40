"""Benchmark: a PostgreSQL table into the DuckDB warehouse — headwater vs the floor vs dlt.

A table of ``--rows`` rows (default 5,000,000) and 12 mixed columns is generated with SQL. In the
same run it times:

* the floor: ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` into Arrow through ADBC (read only,
  no warehouse), and the same plus a DuckDB insert;
* headwater: the SQL source through the full pipeline (inferred contract, warehouse write,
  state in the same transaction), serial and with 2 parallel key ranges;
* dlt: ``sql_table(..., backend="pyarrow")`` into DuckDB;
* headwater incremental: 1 % of rows updated, loaded by cursor with merge on the key.

The floor and headwater run ``--repeat`` rounds (default 3), interleaved; medians are reported
with the per-round ratios (on a shared machine the floor alone moves by a third between runs).

Run: ``.venv/bin/python benchmarks/sql_load.py [--rows 5000000] [--url postgresql://...]``
Needs the local PostgreSQL; drops its table afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TABLE = "hw_bench_orders"

DDL = f"""
CREATE TABLE {TABLE} (
    id bigint PRIMARY KEY, customer_id integer NOT NULL, amount numeric(12, 2),
    qty smallint, price double precision, status text, country char(2),
    created_at timestamptz, updated_at timestamptz NOT NULL, is_active boolean,
    note text, ref uuid)
"""

FILL = f"""
INSERT INTO {TABLE}
SELECT g, (g::bigint * 7919) % 100000, round((g % 10000) * 1.37, 2), (g % 50)::smallint,
       (g % 997) * 0.25, (ARRAY['new', 'paid', 'shipped', 'returned'])[1 + g % 4],
       (ARRAY['NO', 'SE', 'DE', 'FR', 'US'])[1 + g % 5],
       timestamptz '2025-01-01' + (g % 31536000) * interval '1 second',
       timestamptz '2025-06-01' + (g % 15768000) * interval '1 second',
       g % 3 <> 0, 'order note ' || (g % 1000),
       md5(g::text)::uuid
FROM generate_series(1, ROWS) AS g
"""


def timed(label: str, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<44} {seconds:8.2f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--url", default=os.environ.get(
        "HEADWATER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--repeat", type=int, default=3,
                        help="interleaved rounds of the floor and headwater; medians reported")
    args = parser.parse_args()

    import adbc_driver_postgresql.dbapi as adbc
    import duckdb
    import psycopg

    from headwater.ingest._pipeline import ingest
    from headwater.ingest.sources import SqlSource
    from headwater.store import DuckDBStore

    url = args.url
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; rows: {args.rows:,}")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"DROP TABLE IF EXISTS {TABLE}")
        con.execute(DDL)
        fill = FILL.replace("ROWS", str(int(args.rows)))
        timed("generate the table (SQL)", lambda: con.execute(fill))
        con.execute(f"CREATE INDEX ON {TABLE} (updated_at)")
        con.execute(f"VACUUM ANALYZE {TABLE}")
    work = Path(tempfile.mkdtemp(prefix="hw-bench-"))
    results: dict[str, float] = {}
    try:
        print("full load:")

        def floor_read() -> None:
            with adbc.connect(url) as c, c.cursor() as cur:
                cur.execute(f"SELECT * FROM {TABLE}")
                rows = sum(b.num_rows for b in cur.fetch_record_batch())
                assert rows == args.rows


        def floor_duckdb() -> None:
            db = duckdb.connect(str(work / "floor.duckdb"))
            with adbc.connect(url) as c, c.cursor() as cur:
                cur.execute(f"SELECT * FROM {TABLE}")
                reader = cur.fetch_record_batch()  # noqa: F841 - read by DuckDB below
                db.execute("CREATE TABLE t AS SELECT * FROM reader")
            db.close()


        def headwater(parallel: int, name: str) -> None:
            store = DuckDBStore(work / f"{name}.duckdb")
            run = ingest(SqlSource(url, tables=[TABLE], parallel=parallel), store,
                         table="orders", pipeline=name, mode="replace")
            assert run.status == "succeeded" and run.rows_loaded == args.rows, run.error
            store.close()

        contenders = {
            "floor": ("floor: COPY binary -> Arrow (ADBC)", floor_read),
            "floor_duckdb": ("floor + DuckDB insert", floor_duckdb),
            "headwater": ("headwater (pipeline, serial)", lambda: headwater(1, "hw1")),
            "headwater_p2": ("headwater (pipeline, 2 key ranges)", lambda: headwater(2, "hw2")),
        }
        rounds: dict[str, list[float]] = {name: [] for name in contenders}
        for round_ in range(args.repeat):  # interleaved: a busy spell hits every contender
            print(f" round {round_ + 1}/{args.repeat}")
            for name, (label, fn) in contenders.items():
                for leftover in work.glob("*.duckdb*"):
                    leftover.unlink()
                rounds[name].append(timed(label, fn))
        results.update({name: statistics.median(times) for name, times in rounds.items()})
        ratios = [h / f for h, f in zip(rounds["headwater"], rounds["floor"], strict=True)]

        if not args.skip_dlt:
            def dlt_load() -> None:
                import dlt
                from dlt.sources.sql_database import sql_table

                pipe = dlt.pipeline(pipeline_name="hw_bench_dlt",
                                    destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
                                    dataset_name="bench", pipelines_dir=str(work / "dlt"))
                source = sql_table(credentials=url.replace("postgresql://",
                                                           "postgresql+psycopg://"),
                                   table=TABLE, backend="pyarrow", chunk_size=100_000)
                pipe.run(source)

            results["dlt"] = timed("dlt sql_table (pyarrow backend) -> DuckDB", dlt_load)

        print("incremental (1 % of rows changed):")
        store = DuckDBStore(work / "inc.duckdb")
        src = SqlSource(url, tables=[TABLE], cursor="updated_at", lookback="1m")
        results["inc_initial"] = timed("headwater initial incremental load", lambda: ingest(
            src, store, table="orders", pipeline="inc", mode="merge", primary_key=["id"]))
        changed = args.rows // 100
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"UPDATE {TABLE} SET status = 'changed', updated_at = now() "
                        f"WHERE id % 100 = 0")

        def incremental() -> None:
            run = ingest(src, store, table="orders", pipeline="inc", mode="merge",
                         primary_key=["id"])
            assert run.rows_loaded >= changed, (run.rows_loaded, changed)

        results["incremental"] = timed(f"headwater incremental ({changed:,} rows)", incremental)
        n = store.query("SELECT count(*) AS n, count(*) FILTER (WHERE status = 'changed') AS c "
                        "FROM orders").to_pylist()[0]
        assert n == {"n": args.rows, "c": changed}, n
        store.close()
    finally:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"DROP TABLE IF EXISTS {TABLE}")
        shutil.rmtree(work, ignore_errors=True)

    rate = args.rows / results["headwater"]
    print(f"\nsummary (medians of {args.repeat} interleaved rounds)")
    print(f"  headwater full load: {results['headwater']:.2f} s ({rate:,.0f} rows/s); "
          f"{results['headwater'] / results['floor']:.2f}x the floor (read only), "
          f"{results['headwater'] / results['floor_duckdb']:.2f}x floor + DuckDB insert; "
          f"2 ranges: {results['headwater_p2']:.2f} s")
    print("  headwater serial / read-only floor per round: "
          + ", ".join(f"{r:.2f}x" for r in ratios))
    if "dlt" in results:
        print(f"  dlt: {results['dlt']:.2f} s -> headwater is "
              f"{results['dlt'] / results['headwater']:.2f}x faster")
    print(f"  incremental 1 %: {results['incremental']:.2f} s = "
          f"{results['incremental'] / results['headwater']:.1%} of the full load")


if __name__ == "__main__":
    main()

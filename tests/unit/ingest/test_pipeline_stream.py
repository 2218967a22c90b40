"""The pipeline streams a file's valid rows into the store in one insert: quarantine after it,
a file that breaks half-way rolled back alone, counts conserved."""

from __future__ import annotations

import gzip
from pathlib import Path

from headwater.ingest import ingest_files
from headwater.store import DuckDBStore

CONTRACT = {"columns": {"id": {"type": "integer", "nullable": False},
                        "amount": {"type": "float", "min": 0}}}


def write_csv(path: Path, rows: int, *, bad_every: int = 0) -> None:
    lines = ["id,amount"]
    for i in range(1, rows + 1):
        amount = "-1" if bad_every and i % bad_every == 0 else f"{i}.5"
        lines.append(f"{i},{amount}")
    path.write_text("\n".join(lines) + "\n")


def test_batches_stream_in_order_and_the_quarantine_follows(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", 5_000, bad_every=100)
    store = DuckDBStore(tmp_path / "w.duckdb")
    run = ingest_files(tmp_path / "a.csv", store, table="t", contract=CONTRACT, batch_rows=700)
    assert (run.rows_read, run.rows_loaded, run.rows_quarantined) == (5_000, 4_950, 50)
    ids = store.query("SELECT id FROM t").column("id").to_pylist()
    assert ids == [i for i in range(1, 5_001) if i % 100]
    q = store.query("SELECT position, raw, rules FROM _hw_quarantine ORDER BY position").to_pylist()
    assert [r["position"] for r in q] == [i + 1 for i in range(100, 5_001, 100)]  # file lines
    assert q[0]["rules"] == ["range(amount)"] and '"amount":"-1"' in q[0]["raw"]


def test_a_file_broken_half_way_is_rolled_back_alone(tmp_path: Path) -> None:
    write_csv(tmp_path / "good.csv", 1_000, bad_every=250)
    whole = "id,amount\n" + "".join(f"{i},{i}.5\n" for i in range(1, 200_001))
    packed = gzip.compress(whole.encode())
    (tmp_path / "broken.csv.gz").write_bytes(packed[: len(packed) * 2 // 3])  # cut off
    store = DuckDBStore(tmp_path / "w.duckdb")
    run = ingest_files([tmp_path / "broken.csv.gz", tmp_path / "good.csv"], store, table="t",
                       contract=CONTRACT, batch_rows=10_000)
    statuses = {Path(r["source"]).name: r["status"] for r in run.report["extracts"]}
    assert statuses == {"broken.csv.gz": "failed", "good.csv": "loaded"}
    assert store.query("SELECT count(*) AS n FROM t").to_pylist() == [{"n": 996}]
    assert store.query("SELECT count(*) AS n FROM _hw_quarantine").to_pylist() == [{"n": 4}]
    assert run.report["conservation"]["holds"]


def test_a_merge_keeps_the_latest_row_of_a_key_within_a_batch_and_counts_the_rest(
        tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,name\n1,old\n2,b\n1,new\n")
    store = DuckDBStore(tmp_path / "w.duckdb")
    run = ingest_files(tmp_path / "a.csv", store, table="t", mode="merge", primary_key=["id"])
    assert run.status == "succeeded", run.error
    assert (run.rows_read, run.rows_loaded, run.rows_dropped) == (3, 2, 1)
    assert run.report["conservation"]["holds"] is True
    assert store.query("SELECT id, name FROM t ORDER BY id").to_pylist() == [
        {"id": 1, "name": "new"}, {"id": 2, "name": "b"}]

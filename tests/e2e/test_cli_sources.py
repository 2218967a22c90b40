"""``headwater contract infer --pipeline``: a contract from a database pipeline's own rows."""

from __future__ import annotations

import sqlite3

import yaml

from headwater.store import DuckDBStore

PROJECT = """\
project: shop
stores:
  warehouse: {kind: duckdb, path: .headwater/warehouse.duckdb}
pipelines:
  refs:
    source: {kind: sql, url: "URL", tables: [TABLE]}
    table: refs
  both:
    source: {kind: sql, url: "URL", tables: [TABLE, TABLE]}
    table: both
"""


def test_a_contract_from_a_postgres_pipeline_then_the_pipeline_runs_with_it(
        hw, postgres_url, unique_name) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"CREATE TABLE {unique_name} (id int PRIMARY KEY, code text, ref uuid, "
                    "raw bytea)")
        con.execute(f"INSERT INTO {unique_name} VALUES (1, '007', gen_random_uuid(), '\\x00'),"
                    " (2, '8', NULL, NULL)")
    try:
        (hw.cwd / "headwater.yaml").write_text(
            PROJECT.replace("URL", postgres_url).replace("TABLE", unique_name))
        made = hw("contract", "infer", "--pipeline", "refs", "-o", "contracts/refs.yaml")
        assert made.code == 0, made.out + made.err
        spec = yaml.safe_load((hw.cwd / "contracts" / "refs.yaml").read_text())
        assert {n: c["type"] for n, c in spec["columns"].items()} == {
            "id": "integer", "code": "string", "ref": "uuid", "raw": "binary"}
        assert not (hw.cwd / ".headwater" / "warehouse.duckdb").exists()  # nothing committed
        text = (hw.cwd / "headwater.yaml").read_text().replace(
            "    table: refs\n", "    table: refs\n    contract: contracts/refs.yaml\n")
        (hw.cwd / "headwater.yaml").write_text(text)
        run = hw("ingest", "run", "refs")
        assert run.code == 0, run.out + run.err
        store = DuckDBStore(hw.cwd / ".headwater" / "warehouse.duckdb")
        try:
            assert store.query("SELECT code FROM refs ORDER BY id").to_pylist() == [
                {"code": "007"}, {"code": "8"}]
        finally:
            store.close()
        several = hw("contract", "infer", "--pipeline", "both")
        assert several.code != 0 and "several tables" in several.out + several.err
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as con:
            con.execute(f"DROP TABLE IF EXISTS {unique_name}")


def test_contract_infer_needs_a_file_or_a_pipeline(hw) -> None:
    con = sqlite3.connect(hw.cwd / "app.db")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, seen TEXT)")
    con.execute("INSERT INTO t VALUES (1, '2026-01-02 03:04:05')")
    con.commit()
    con.close()
    (hw.cwd / "headwater.yaml").write_text(
        PROJECT.replace("URL", "sqlite:///app.db").replace("TABLE", "t"))
    neither = hw("contract", "infer")
    assert neither.code != 0 and "--pipeline" in neither.out + neither.err
    both = hw("contract", "infer", "x.csv", "--pipeline", "refs")
    assert both.code != 0
    sqlite_ = hw("contract", "infer", "--pipeline", "refs")
    assert sqlite_.code == 0, sqlite_.err
    assert yaml.safe_load(sqlite_.out)["columns"]["seen"]["type"] == "timestamp"  # SQLite text

"""PostgreSQL change data capture through a logical replication slot (test_decoding)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from headwater.core import State
from headwater.ingest._pipeline import ingest
from headwater.ingest.sources._cdc import PostgresCdcSource, touched_keys
from headwater.store import DuckDBStore

pytestmark = pytest.mark.integration


def _pg(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _ensure_logical(url: str) -> None:
    """wal_level must be logical; set it and restart the local cluster if it is not."""
    with _pg(url) as con:
        level = con.execute("SHOW wal_level").fetchone()[0]
        if level == "logical":
            return
        con.execute("ALTER SYSTEM SET wal_level = logical")
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").exists() else []
    if not versions:
        pytest.fail("wal_level is not logical and this is not a Debian cluster that the test "
                    "can restart: set wal_level = logical and restart PostgreSQL")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main",
                    "restart"], check=True)
    for _ in range(50):
        try:
            with _pg(url) as con:
                assert con.execute("SHOW wal_level").fetchone()[0] == "logical"
                return
        except Exception:
            time.sleep(0.2)
    pytest.fail("PostgreSQL did not come back with wal_level = logical")


@pytest.fixture
def cdc_table(postgres_url, unique_name):
    _ensure_logical(postgres_url)
    with _pg(postgres_url) as con:
        con.execute(f'CREATE TABLE {unique_name} (id int PRIMARY KEY, "Name" text, '
                    "u uuid DEFAULT gen_random_uuid(), amount numeric(8, 2))")
        con.execute(f'INSERT INTO {unique_name} (id, "Name", amount) '
                    "SELECT g, 'n' || g, g FROM generate_series(1, 100) g")
    source = PostgresCdcSource(postgres_url, tables=[unique_name], slot=f"hw_{unique_name}")
    yield unique_name, source
    source.drop_slot()
    with _pg(postgres_url) as con:
        con.execute(f"DROP TABLE IF EXISTS {unique_name}")


def _load(source, store):
    return ingest(source, store, table="c", pipeline="cdc", mode="merge", primary_key=["id"])


def test_cdc_snapshot_then_inserts_updates_deletes(postgres_url, cdc_table, tmp_path):
    table, source = cdc_table
    store = DuckDBStore(tmp_path / "w.duckdb")
    first = _load(source, store)
    assert first.status == "succeeded", first.error
    assert first.rows_loaded == 100
    with _pg(postgres_url) as con:
        con.execute(f"""UPDATE {table} SET "Name" = 'it''s "new"' WHERE id = 2""")
        con.execute(f"DELETE FROM {table} WHERE id IN (3, 4)")
        con.execute(f'INSERT INTO {table} (id, "Name", amount) VALUES (500, \'five\', 1.25)')
        con.execute(f"UPDATE {table} SET id = 600 WHERE id = 5")  # a key change
        con.execute(f"DELETE FROM {table} WHERE id = 500")  # inserted and deleted: net gone
    second = _load(source, store)
    assert second.status == "succeeded", second.error
    assert second.rows_read == 6  # keys touched: 2, 3, 4, 500, 5 and 600; no more
    live = store.query("SELECT id FROM c WHERE NOT hw_deleted ORDER BY id").to_pylist()
    assert [r["id"] for r in live] == [1, 2, *range(6, 101), 600]
    gone = store.query("SELECT id FROM c WHERE hw_deleted ORDER BY id").to_pylist()
    assert [r["id"] for r in gone] == [3, 4, 5, 500]
    assert store.query("SELECT name FROM c WHERE id = 2").to_pylist() == [
        {"name": "it's \"new\""}]
    third = _load(source, store)
    assert third.rows_read == 0
    store.close()


def test_cdc_crash_before_commit_replays_changes(postgres_url, cdc_table, tmp_path):
    table, source = cdc_table
    store = DuckDBStore(tmp_path / "w.duckdb")
    _load(source, store)
    with _pg(postgres_url) as con:
        con.execute(f"UPDATE {table} SET amount = 0 WHERE id <= 10")
    # a run that read the changes but died before its commit: the slot keeps them
    for extract in source.extracts(store.state("cdc")):
        list(extract.batches)
    again = _load(source, store)
    assert again.rows_read == 10
    assert store.query("SELECT count(*) AS n FROM c WHERE amount = 0").to_pylist() == [{"n": 10}]
    assert store.query("SELECT count(*) AS n, count(DISTINCT id) AS d FROM c").to_pylist() == [
        {"n": 100, "d": 100}]
    store.close()


def test_touched_keys_parses_quotes_nulls_and_key_changes():
    import pyarrow as pa

    changes = pa.table({"lsn": ["0/1"] * 5, "data": [
        "table public.t: INSERT: id[integer]:1 name[text]:'a '' b' x[text]:null",
        "table public.t: UPDATE: old-key: id[integer]:2 new-tuple: id[integer]:3 name[text]:'q'",
        "table public.t: DELETE: id[integer]:4",
        "table public.other: DELETE: id[integer]:99",
        "table public.t: UPDATE: id[integer]:1 name[text]:'again'",
    ]})
    assert sorted(touched_keys(changes, "public.t", ["id"])) == [["1"], ["2"], ["3"], ["4"]]
    text_keys = pa.table({"lsn": ["0/1"], "data": [
        "table public.t: DELETE: code[text]:'it''s' n[integer]:7"]})
    assert touched_keys(text_keys, "public.t", ["code", "n"]) == [["it's", "7"]]


def test_cdc_slot_is_not_advanced_before_the_warehouse_commits(postgres_url, cdc_table):
    table, source = cdc_table
    state: dict = {}
    for extract in source.extracts(State()):
        list(extract.batches)
        state[extract.key] = extract.position
    with _pg(postgres_url) as con:
        con.execute(f"DELETE FROM {table} WHERE id = 1")
    # the previous extracts were never committed: state is still empty, so a snapshot again
    snap = [e for e in source.extracts(State()) if "snapshot" in e.source]
    assert snap and sum(b.data.num_rows for b in snap[0].batches) == 99


def test_cdc_truncate_empties_the_warehouse_table_and_reads_the_table_again(
        postgres_url, cdc_table, tmp_path):
    table, source = cdc_table
    store = DuckDBStore(tmp_path / "w.duckdb")
    _load(source, store)
    with _pg(postgres_url) as con:
        con.execute(f"UPDATE {table} SET amount = 0 WHERE id = 1")
        con.execute(f"TRUNCATE {table}")
        con.execute(f'INSERT INTO {table} (id, "Name", amount) VALUES (7, \'seven\', 7)')
    run = _load(source, store)
    assert run.status == "succeeded", run.error
    got = store.query("SELECT id, name, hw_deleted FROM c ORDER BY id").to_pylist()
    assert got == [{"id": 7, "name": "seven", "hw_deleted": False}]
    with _pg(postgres_url) as con:
        con.execute(f"TRUNCATE {table}")
    assert _load(source, store).status == "succeeded"
    assert store.query("SELECT count(*) AS n FROM c").to_pylist() == [{"n": 0}]
    store.close()


def test_cdc_of_two_tables_keeps_each_in_its_own_warehouse_table(postgres_url, unique_name,
                                                                   tmp_path):
    _ensure_logical(postgres_url)
    a, b = f"{unique_name}_a", f"{unique_name}_b"
    with _pg(postgres_url) as con:
        con.execute(f"CREATE TABLE {a} (id int PRIMARY KEY, v text)")
        con.execute(f"CREATE TABLE {b} (id int PRIMARY KEY, w float8)")
        con.execute(f"INSERT INTO {a} VALUES (1, 'x'), (2, 'y')")
        con.execute(f"INSERT INTO {b} VALUES (1, 0.5)")
    source = PostgresCdcSource(postgres_url, tables=[a, b], slot=f"hw_{unique_name}")
    store = DuckDBStore(tmp_path / "w.duckdb")
    try:
        assert _load(source, store).rows_loaded == 3
        with _pg(postgres_url) as con:
            con.execute(f"DELETE FROM {a} WHERE id = 1")
            con.execute(f"UPDATE {b} SET w = 1.5")
        assert _load(source, store).status == "succeeded"
        assert store.tables() == [f"c_{a}", f"c_{b}"]
        assert store.query(f'SELECT id, hw_deleted FROM "c_{a}" ORDER BY id').to_pylist() == [
            {"id": 1, "hw_deleted": True}, {"id": 2, "hw_deleted": False}]
        assert store.query(f'SELECT w FROM "c_{b}"').to_pylist() == [{"w": 1.5}]
    finally:
        store.close()
        source.drop_slot()
        with _pg(postgres_url) as con:
            con.execute(f"DROP TABLE IF EXISTS {a}, {b}")

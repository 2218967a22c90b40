"""The SQL source against the local PostgreSQL, MariaDB and SQLite: full, incremental, deletes,
types, parallel reads, and a database connection killed mid-run."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from headwater.core import ConfigError, NotFoundError, SourceError, State
from headwater.ingest._pipeline import ingest
from headwater.ingest.sources import SqlSource
from headwater.store import DuckDBStore

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- helpers


def pg(url: str):
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def mysql():
    import pymysql

    return pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)


@pytest.fixture
def store(tmp_path: Path):
    s = DuckDBStore(tmp_path / "w.duckdb")
    yield s
    s.close()


@pytest.fixture
def pg_table(postgres_url, unique_name):
    with pg(postgres_url) as con:
        con.execute(f"CREATE TABLE {unique_name} (id bigint PRIMARY KEY, name text, "
                    "amount numeric(10,2), updated_at timestamptz NOT NULL, "
                    "deleted_at timestamptz)")
        con.execute(f"INSERT INTO {unique_name} SELECT g, 'n' || g, g * 1.5, "
                    "timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute', NULL "
                    "FROM generate_series(1, 1000) g")
    yield unique_name
    with pg(postgres_url) as con:
        con.execute(f"DROP TABLE IF EXISTS {unique_name}")


def _rows(store: DuckDBStore, table: str, cols: str = "id") -> list:
    return store.query(f"SELECT {cols} FROM {table} ORDER BY id").to_pylist()


# ---------------------------------------------------------------- PostgreSQL


def test_pg_full_load(postgres_url, pg_table, store):
    run = ingest(SqlSource(postgres_url, tables=[pg_table]), store, table="t", pipeline="p",
                 mode="replace")
    assert run.status == "succeeded", run.error
    assert run.rows_loaded == 1000
    row = store.query("SELECT * FROM t WHERE id = 7").to_pylist()[0]
    assert row["amount"] == Decimal("10.50")
    assert row["updated_at"] == dt.datetime(2026, 1, 1, 0, 7, tzinfo=dt.UTC)


def test_pg_incremental_lookback_catches_late_commits_and_merge_never_duplicates(
        postgres_url, pg_table, store):
    src = SqlSource(postgres_url, tables=[pg_table], cursor="updated_at", lookback="30m")
    first = ingest(src, store, table="t", pipeline="p", mode="merge", primary_key=["id"])
    assert first.rows_loaded == 1000
    with pg(postgres_url) as con:
        # a row committed late, stamped 10 minutes before the last cursor
        con.execute(f"INSERT INTO {pg_table} VALUES (5000, 'late', 1, "
                    "timestamptz '2026-01-01 16:30:00+00', NULL)")
        con.execute(f"UPDATE {pg_table} SET name = 'changed', "
                    "updated_at = timestamptz '2026-01-02 00:00:00+00' WHERE id = 3")
    second = ingest(src, store, table="t", pipeline="p", mode="merge", primary_key=["id"])
    assert second.status == "succeeded", second.error
    assert second.rows_read < 100  # the lookback window, not the table
    ids = [r["id"] for r in _rows(store, "t")]
    assert len(ids) == len(set(ids)) == 1001
    assert store.query("SELECT name FROM t WHERE id = 3").to_pylist() == [{"name": "changed"}]
    assert store.query("SELECT name FROM t WHERE id = 5000").to_pylist() == [{"name": "late"}]


def test_pg_rows_sharing_the_last_cursor_value_are_not_lost_nor_doubled(
        postgres_url, pg_table, store):
    src = SqlSource(postgres_url, tables=[pg_table], cursor="updated_at")
    ingest(src, store, table="t", pipeline="p")  # append, no lookback
    last = "timestamptz '2026-01-01 16:40:00+00'"  # the cursor value of id 1000
    with pg(postgres_url) as con:
        con.execute(f"INSERT INTO {pg_table} VALUES (1001, 'same ts, later', 1, {last}, NULL)")
    second = ingest(src, store, table="t", pipeline="p")
    assert second.rows_loaded == 1
    ids = [r["id"] for r in _rows(store, "t")]
    assert ids == list(range(1, 1002))


def test_pg_soft_deletes_flag_rows(postgres_url, pg_table, store):
    src = SqlSource(postgres_url, tables=[pg_table], cursor="updated_at", lookback="1m",
                    soft_delete="deleted_at")
    ingest(src, store, table="t", pipeline="p", mode="merge", primary_key=["id"])
    with pg(postgres_url) as con:
        con.execute(f"UPDATE {pg_table} SET deleted_at = now(), updated_at = "
                    "timestamptz '2026-02-01 00:00:00+00' WHERE id IN (10, 11)")
    ingest(src, store, table="t", pipeline="p", mode="merge", primary_key=["id"])
    deleted = store.query("SELECT id FROM t WHERE hw_deleted ORDER BY id").to_pylist()
    assert deleted == [{"id": 10}, {"id": 11}]
    assert store.query("SELECT count(*) AS n FROM t").to_pylist() == [{"n": 1000}]


def test_pg_parallel_ranges_read_every_row_once(postgres_url, pg_table):
    src = SqlSource(postgres_url, tables=[pg_table], parallel=4, batch_rows=100)
    [extract] = list(src.extracts(State()))
    ids = sorted(i for b in extract.batches for i in b.data["id"].to_pylist())
    assert ids == list(range(1, 1001))


def test_pg_query_with_bound_parameters(postgres_url, pg_table):
    src = SqlSource(postgres_url, query=f"SELECT id, name FROM {pg_table} WHERE id > :low "
                    "AND name <> :skip", params={"low": 990, "skip": "n995"})
    [extract] = list(src.extracts(State()))
    ids = sorted(i for b in extract.batches for i in b.data["id"].to_pylist())
    assert ids == [991, 992, 993, 994, 996, 997, 998, 999, 1000]


def test_names_are_quoted_and_a_missing_table_lists_what_exists(postgres_url, pg_table):
    with pytest.raises(NotFoundError) as err:
        list(SqlSource(postgres_url, tables=["no_such_table; DROP TABLE x"]).extracts(State()))
    assert pg_table in (err.value.hint or "")
    with pytest.raises(ConfigError, match="cursor column 'nope'"):
        list(SqlSource(postgres_url, tables=[pg_table], cursor="nope").extracts(State()))


def test_pg_type_mapping_round_trip(postgres_url, unique_name, store):
    enum = f"{unique_name}_mood"
    with pg(postgres_url) as con:
        con.execute(f"CREATE TYPE {enum} AS ENUM ('sad', 'ok', 'happy')")
        con.execute(f"""CREATE TABLE {unique_name} (
            id int PRIMARY KEY, small smallint, big bigint, num numeric(20, 6), free numeric,
            real_ real, dbl double precision, flag boolean, txt text, vc varchar(10),
            ts timestamp, tstz timestamptz, d date, t time, iv interval, js json, jsb jsonb,
            ints int[], texts text[], u uuid, raw bytea, mood {enum}, ip inet)""")
        con.execute(f"""INSERT INTO {unique_name} VALUES (1, -32768, 9223372036854775807,
            12345678901234.123456, 3.14159265358979323846264338327950288, 1.5, 2.25, true,
            'héllo ✓', 'x', '2026-03-01 12:34:56.789012', '2026-03-01 12:34:56.789012+02',
            '2026-03-01', '23:59:59.999999', '1 day 02:03:04', '{{"a": [1, 2]}}',
            '{{"b": {{"c": null}}}}', ARRAY[1, NULL, 3], ARRAY['a', 'b''c'],
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\xdeadbeef', 'happy', '192.168.0.1/24'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
             NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""")
    try:
        [extract] = list(SqlSource(postgres_url, tables=[unique_name]).extracts(State()))
        [batch] = list(extract.batches)
        data = batch.data
        with store.transaction("p", "r1") as tx:
            tx.write("types", data)
        row = store.query("SELECT * FROM types WHERE id = 1").to_pylist()[0]
        assert row["small"] == -32768 and row["big"] == 9223372036854775807
        assert row["num"] == Decimal("12345678901234.123456")
        assert row["free"] == "3.14159265358979323846264338327950288"  # exact, as text
        assert row["real_"] == 1.5 and row["dbl"] == 2.25 and row["flag"] is True
        assert row["txt"] == "héllo ✓" and row["vc"] == "x"
        assert row["ts"] == dt.datetime(2026, 3, 1, 12, 34, 56, 789012)
        assert row["tstz"] == dt.datetime(2026, 3, 1, 10, 34, 56, 789012, tzinfo=dt.UTC)
        assert row["d"] == dt.date(2026, 3, 1)
        assert row["t"] == dt.time(23, 59, 59, 999999)
        assert row["ints"] == [1, None, 3] and row["texts"] == ["a", "b'c"]
        assert row["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        assert bytes(row["raw"]) == b"\xde\xad\xbe\xef"
        assert row["mood"] == "happy" and row["ip"] == "192.168.0.1/24"

        assert json.loads(row["js"]) == {"a": [1, 2]}
        assert json.loads(row["jsb"]) == {"b": {"c": None}}
        assert row["iv"] == "0 mons 1 days 02:03:04.000000"  # months apart: DuckDB reads it
        assert str(data.schema.field("num").type) == "decimal128(20, 6)"
        nulls = store.query("SELECT * FROM types WHERE id = 2").to_pylist()[0]
        assert all(v is None for k, v in nulls.items() if k != "id")
        # and through the pipeline (inferred contract): every value arrives, none quarantined
        run = ingest(SqlSource(postgres_url, tables=[unique_name]), store, table="piped",
                     pipeline="piped")
        assert (run.rows_loaded, run.rows_quarantined) == (2, 0), run.error
        piped = store.query("SELECT * FROM piped WHERE id = 1").to_pylist()[0]
        assert piped["free"] == "3.14159265358979323846264338327950288"  # text, not a float
        assert piped["num"] == Decimal("12345678901234.123456") and piped["big"] == 2**63 - 1
        assert piped["iv"] == row["iv"] and piped["mood"] == "happy" and piped["vc"] == "x"
        assert json.loads(piped["ints"]) == [1, None, 3] and json.loads(piped["texts"]) == [
            "a", "b'c"]
        assert piped["u"] == row["u"] and piped["raw"] == b"\xde\xad\xbe\xef"
        assert json.loads(piped["jsb"]) == {"b": {"c": None}}
    finally:
        with pg(postgres_url) as con:
            con.execute(f"DROP TABLE IF EXISTS {unique_name}")
            con.execute(f"DROP TYPE IF EXISTS {enum}")


def test_pg_uuid_and_bytea_through_the_pipeline(postgres_url, unique_name, store):
    """UUIDs travel as 16 bytes and land as DuckDB UUIDs; bytea is never decoded as text."""
    with pg(postgres_url) as con:
        con.execute(f"CREATE TABLE {unique_name} (id int PRIMARY KEY, u uuid, us uuid[], "
                    "raw bytea)")
        con.execute(f"""INSERT INTO {unique_name} VALUES
            (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
             ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, NULL], '\\xdeadbeef'),
            (2, NULL, NULL, '\\x'), (3, md5('x')::uuid, '{{}}', NULL)""")
    try:
        run = ingest(SqlSource(postgres_url, tables=[unique_name]), store, table="t",
                     pipeline="p")
        assert (run.status, run.rows_loaded, run.rows_quarantined) == ("succeeded", 3, 0)
        types = {r["column_name"]: r["column_type"]
                 for r in store.query("DESCRIBE t").to_pylist()}
        assert types["u"] == "UUID" and types["raw"] == "BLOB"
        got = store.query("SELECT * FROM t ORDER BY id").to_pylist()
        assert got[0]["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        assert json.loads(got[0]["us"]) == ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None]
        assert got[0]["raw"] == b"\xde\xad\xbe\xef" and got[1]["raw"] == b""
        assert got[2]["u"] == str(uuid.UUID(hashlib.md5(b"x").hexdigest()))
    finally:
        with pg(postgres_url) as con:
            con.execute(f"DROP TABLE IF EXISTS {unique_name}")


def test_pg_connection_killed_mid_run_then_resumed(postgres_url, unique_name, store):
    with pg(postgres_url) as con:
        con.execute(f"CREATE TABLE {unique_name} (id bigint PRIMARY KEY, pad text, "
                    "updated_at bigint NOT NULL)")
        con.execute(f"INSERT INTO {unique_name} SELECT g, repeat('x', 200), g "
                    "FROM generate_series(1, 1000) g")
    try:
        src = SqlSource(postgres_url, tables=[unique_name], cursor="updated_at",
                        batch_rows=5000)
        assert ingest(src, store, table="t", pipeline="p").rows_loaded == 1000
        with pg(postgres_url) as con:
            con.execute(f"INSERT INTO {unique_name} SELECT g, repeat('x', 200), g "
                        "FROM generate_series(1001, 400000) g")

        killed: list[int] = []

        def killer() -> None:  # terminate the reading backend while it streams
            deadline = time.time() + 20
            with pg(postgres_url) as con:
                while time.time() < deadline and not killed:
                    rows = con.execute(
                        "SELECT pid FROM pg_stat_activity WHERE query LIKE %s "
                        "AND state = 'active' AND pid <> pg_backend_pid()",
                        [f'COPY (SELECT "id", "pad", "updated_at" FROM "{unique_name}"%']
                    ).fetchall()
                    for (pid,) in rows:
                        con.execute("SELECT pg_terminate_backend(%s)", [pid])
                        killed.append(pid)
                    time.sleep(0.005)

        thread = threading.Thread(target=killer)
        thread.start()
        try:
            broken = ingest(src, store, table="t", pipeline="p")
        finally:
            killed.append(0)  # stop the killer if the read won
            thread.join()
        killed.remove(0)
        assert killed, "the read finished before the backend could be killed"
        assert broken.status == "failed"
        assert store.query("SELECT count(*) AS n FROM t").to_pylist() == [{"n": 1000}]
        resumed = ingest(src, store, table="t", pipeline="p")
        assert resumed.status == "succeeded", resumed.error
        counts = store.query("SELECT count(*) AS n, count(DISTINCT id) AS d, max(id) AS m "
                             "FROM t").to_pylist()[0]
        assert counts == {"n": 400000, "d": 400000, "m": 400000}
    finally:
        with pg(postgres_url) as con:
            con.execute(f"DROP TABLE IF EXISTS {unique_name}")


# ---------------------------------------------------------------- MariaDB


@pytest.fixture
def my_table(mariadb_url, unique_name):
    with mysql() as con, con.cursor() as cur:
        cur.execute(f"CREATE TABLE {unique_name} (id INT PRIMARY KEY, name VARCHAR(50), "
                    "price DECIMAL(12, 3), ts TIMESTAMP(6) NULL, dtm DATETIME(6) NOT NULL, "
                    "doc JSON, big BIGINT UNSIGNED, d DATE, t TIME, "
                    "e ENUM('x', 'y'), deleted TINYINT(1) NOT NULL DEFAULT 0)")
        rows = [(i, f"n{i}", Decimal(i) / 8, f"2026-01-01 00:{i % 60:02d}:00",
                 f"2026-01-01 {i // 60:02d}:{i % 60:02d}:00", '{"k": [1, 2]}',
                 2**64 - i, "2026-05-06", "838:59:59", "y")
                for i in range(1, 301)]
        cur.executemany(f"INSERT INTO {unique_name} (id, name, price, ts, dtm, doc, big, "
                        "d, t, e) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    yield unique_name
    with mysql() as con, con.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {unique_name}")


def test_mariadb_full_types_and_incremental(mariadb_url, my_table, store):
    with mysql() as con, con.cursor() as cur:  # types the contracts do not take yet
        cur.execute(f"ALTER TABLE {my_table} DROP COLUMN t, DROP COLUMN big")
    src = SqlSource(mariadb_url, tables=[my_table], cursor="dtm", lookback="5m",
                    soft_delete="deleted", deleted_when="true")
    first = ingest(src, store, table="m", pipeline="p", mode="merge", primary_key=["id"])
    assert first.status == "succeeded", first.error
    assert first.rows_loaded == 300
    row = store.query("SELECT * FROM m WHERE id = 5").to_pylist()[0]
    assert row["price"] == Decimal("0.625")
    assert row["ts"] == dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)
    with mysql() as con, con.cursor() as cur:
        cur.execute(f"UPDATE {my_table} SET name = 'upd', deleted = 1, "
                    "dtm = '2026-01-01 05:00:00' WHERE id = 7")
        cur.execute(f"INSERT INTO {my_table} (id, name, dtm) VALUES (999, 'late', "
                    "'2026-01-01 04:58:00')")  # committed late, inside the lookback
    second = ingest(src, store, table="m", pipeline="p", mode="merge", primary_key=["id"])
    assert second.rows_read < 20
    assert store.query("SELECT count(*) AS n, count(DISTINCT id) AS d FROM m"
                       ).to_pylist() == [{"n": 301, "d": 301}]
    assert store.query("SELECT name, hw_deleted FROM m WHERE id = 7").to_pylist() == [
        {"name": "upd", "hw_deleted": True}]


def test_mariadb_type_mapping_round_trip(mariadb_url, unique_name, store):
    with mysql() as con, con.cursor() as cur:
        cur.execute(f"CREATE TABLE {unique_name} (id INT PRIMARY KEY, tiny TINYINT, "
                    "ubig BIGINT UNSIGNED, dec_ DECIMAL(30, 10), f FLOAT, dbl DOUBLE, "
                    "ts TIMESTAMP(6) NULL, dtm DATETIME(6), d DATE, t TIME(6), y YEAR, "
                    "doc JSON, bin VARBINARY(8), blob_ BLOB, txt TEXT, e ENUM('x', 'y'), "
                    "bits BIT(4))")
        cur.execute(f"INSERT INTO {unique_name} VALUES (1, -128, 18446744073709551615, "
                    "12345678901234567890.0123456789, 1.5, 2.25, '2026-03-01 12:34:56.789012', "
                    "'2026-03-01 12:34:56.789012', '2026-03-01', '-838:59:59', 2026, "
                    "'{\"a\": 1}', x'00ff', x'dead', 'héllo ✓', 'y', b'1010')")
        cur.execute(f"INSERT INTO {unique_name} (id) VALUES (2)")
    try:
        [extract] = list(SqlSource(mariadb_url, tables=[unique_name]).extracts(State()))
        [batch] = list(extract.batches)
        with store.transaction("p", "r1") as tx:
            tx.write("types", batch.data)
        row = store.query("SELECT * FROM types WHERE id = 1").to_pylist()[0]
        assert row["tiny"] == -128 and row["ubig"] == 18446744073709551615
        assert row["dec_"] == Decimal("12345678901234567890.0123456789")
        assert row["f"] == 1.5 and row["dbl"] == 2.25
        assert row["ts"] == dt.datetime(2026, 3, 1, 12, 34, 56, 789012, tzinfo=dt.UTC)
        assert row["dtm"] == dt.datetime(2026, 3, 1, 12, 34, 56, 789012)
        assert row["d"] == dt.date(2026, 3, 1)
        assert row["t"].nanoseconds == -(838 * 3600 + 59 * 60 + 59) * 10**9  # an INTERVAL
        assert row["y"] == 2026 and row["e"] == "y" and row["txt"] == "héllo ✓"
        assert bytes(row["bin"]) == b"\x00\xff" and bytes(row["blob_"]) == b"\xde\xad"
        assert bytes(row["bits"]) == b"\x0a"
        assert json.loads(row["doc"]) == {"a": 1}
        nulls = store.query("SELECT * FROM types WHERE id = 2").to_pylist()[0]
        assert all(v is None for k, v in nulls.items() if k != "id")
        # and through the pipeline (inferred contract): every value arrives, none quarantined
        run = ingest(SqlSource(mariadb_url, tables=[unique_name]), store, table="piped",
                     pipeline="piped")
        assert (run.rows_loaded, run.rows_quarantined) == (2, 0), run.error
        piped = store.query("SELECT * FROM piped WHERE id = 1").to_pylist()[0]
        assert piped["ubig"] == Decimal(18446744073709551615)  # past int64: decimal(20,0)
        assert piped["e"] == "y"  # an enum label stays text (not the boolean 'yes')
        assert piped["t"] == "-838:59:59.000000" and piped["bin"] == b"\x00\xff"
        assert piped["dec"] == row["dec_"] and piped["txt"] == "héllo ✓"  # names snake_cased
    finally:
        with mysql() as con, con.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {unique_name}")


def test_mariadb_parallel_equals_serial(mariadb_url, my_table):
    def ids(parallel: int) -> list[int]:
        [e] = list(SqlSource(mariadb_url, tables=[my_table], parallel=parallel,
                             batch_rows=50).extracts(State()))
        return sorted(i for b in e.batches for i in b.data["id"].to_pylist())

    assert ids(3) == ids(1) == list(range(1, 301))


# ---------------------------------------------------------------- SQLite


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL, "
                "updated_at TEXT NOT NULL)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                    [(i, f"c{i % 5}", i * 2.5, f"2026-01-01 00:{i:02d}:00") for i in range(1, 51)])
    con.commit()
    con.close()
    return path


def test_sqlite_full_and_incremental_relative_to_project(sqlite_db, store):
    src = SqlSource("sqlite:///app.db", tables=["orders"], cursor="updated_at",
                    lookback="2m", root=sqlite_db.parent)
    assert ingest(src, store, table="o", pipeline="p", mode="merge",
                  primary_key=["id"]).rows_loaded == 50
    con = sqlite3.connect(sqlite_db)
    con.execute("INSERT INTO orders VALUES (51, 'new', 1, '2026-01-01 00:51:00')")
    con.execute("UPDATE orders SET total = 0, updated_at = '2026-01-01 00:52:00' WHERE id = 3")
    con.commit()
    con.close()
    second = ingest(src, store, table="o", pipeline="p", mode="merge", primary_key=["id"])
    assert second.rows_read <= 5
    assert store.query("SELECT count(*) AS n FROM o").to_pylist() == [{"n": 51}]
    assert store.query("SELECT total FROM o WHERE id = 3").to_pylist() == [{"total": 0.0}]


def test_sqlite_missing_file_and_table(sqlite_db):
    with pytest.raises(SourceError, match="no database file"):
        list(SqlSource("sqlite:///nope.db", tables=["x"], root=sqlite_db.parent)
             .extracts(State()))
    with pytest.raises(NotFoundError) as err:
        list(SqlSource(f"sqlite:///{sqlite_db}", tables=["order"]).extracts(State()))
    assert "orders" in (err.value.hint or "")


def test_every_table_of_a_database_when_none_listed(sqlite_db):
    con = sqlite3.connect(sqlite_db)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'ann')")
    con.commit()
    con.close()
    extracts = list(SqlSource(f"sqlite:///{sqlite_db}").extracts(State()))
    assert sorted(e.meta["table"] for e in extracts) == ["customers", "orders"]
    assert all(e.meta["table_suffix"] == e.meta["table"] for e in extracts)
    assert {e.meta["table"]: e.meta["primary_key"] for e in extracts} == {
        "customers": ["id"], "orders": ["id"]}


def test_secrets_stay_out_of_errors():
    secret = f"pw-{uuid.uuid4().hex[:8]}"
    src = SqlSource(f"postgresql://postgres:{secret}@127.0.0.1:1/test", tables=["t"])
    with pytest.raises(SourceError) as err:
        list(src.extracts(State()))
    assert secret not in str(err.value)

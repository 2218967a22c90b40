"""A source that reads several tables loads each into its own table, exactly once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from headwater.ingest import ingest
from headwater.ingest.sources import SqlSource
from headwater.store import DuckDBStore


def make_db(path: Path) -> None:
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE orders (order_no INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL);
        INSERT INTO customers VALUES (1, 'ada'), (2, 'bob');
        INSERT INTO orders VALUES (10, 1, 9.5), (11, 2, 3.0), (12, 2, 7.25);
    """)
    con.commit()
    con.close()


def test_each_table_lands_in_its_own_table_with_its_own_key(tmp_path: Path) -> None:
    make_db(tmp_path / "shop.db")
    store = DuckDBStore(tmp_path / "w.duckdb")
    source = SqlSource(f"sqlite:///{tmp_path / 'shop.db'}", tables=["customers", "orders"])
    run = ingest(source, store, table="shop", mode="merge", pipeline="shop")
    assert run.status == "succeeded", run.error
    assert (run.rows_read, run.rows_loaded) == (5, 5)
    assert store.tables() == ["shop_customers", "shop_orders"]
    assert store.query("SELECT sum(amount) AS s FROM shop_orders").to_pylist() == [{"s": 19.75}]
    assert set(run.report["tables"]) == {"shop_customers", "shop_orders"}
    again = ingest(source, store, table="shop", mode="merge", pipeline="shop")
    assert again.status == "succeeded"
    assert store.query("SELECT count(*) AS n FROM shop_orders").to_pylist() == [{"n": 3}]

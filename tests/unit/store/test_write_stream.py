"""Transaction.write_stream: DuckDB inserts a stream of tables in one statement per schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.core import POSITION, SourceError
from headwater.store import DuckDBStore


def part(start: int, n: int, **extra: list) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({"id": pa.array(ids, pa.int32()), "name": [f"n{i}" for i in ids],
                     POSITION: pa.array(ids, pa.int64()), **extra})


def test_a_stream_lands_in_order_with_its_row_count(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "w.duckdb")
    with store.transaction("p", "r") as tx:
        written = tx.write_stream("t", (part(i * 100, 100) for i in range(7)))
    assert written == 700
    rows = store.query("SELECT id FROM t").column("id").to_pylist()
    assert rows == list(range(700))
    assert POSITION not in store.query("SELECT * FROM t LIMIT 1").column_names


def test_a_table_of_another_schema_evolves_the_table_and_the_stream_goes_on(
        tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "w.duckdb")
    with store.transaction("p", "r") as tx:
        tx.write("t", part(0, 1).cast(pa.schema([("id", pa.int64()), ("name", pa.string()),
                                                   (POSITION, pa.int64())])))
        tables = [part(1, 3), part(4, 3), part(7, 2, extra=["x", "y"]), part(9, 2)]
        assert tx.write_stream("t", iter(tables)) == 10
    got = store.query("SELECT id, extra FROM t ORDER BY id").to_pylist()
    assert [r["id"] for r in got] == list(range(11))
    assert [r["extra"] for r in got if r["extra"]] == ["x", "y"]


def test_replace_replaces_once_and_an_empty_stream_writes_nothing(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "w.duckdb")
    with store.transaction("p", "r") as tx:
        tx.write("t", part(0, 50))
    with store.transaction("p", "r2") as tx:
        assert tx.write_stream("t", [part(100, 5), part(105, 5)], mode="replace") == 10
        assert tx.write_stream("t", []) == 0
    assert store.query("SELECT count(*) AS n, min(id) AS lo FROM t").to_pylist() == [
        {"n": 10, "lo": 100}]


def test_a_merged_stream_equals_merging_table_by_table(tmp_path: Path) -> None:
    def tables() -> list[pa.Table]:
        return [part(0, 5), part(3, 5), pa.table({"id": pa.array([1, 1, None], pa.int32()),
                                                  "name": pa.array(["x", "y", "z"],
                                                                   pa.string_view()),
                                                  POSITION: pa.array([1, 2, 3], pa.int64())}),
                part(6, 2, extra=["e", "f"]), part(9, 1)]
    streamed, one_by_one = DuckDBStore(tmp_path / "s.duckdb"), DuckDBStore(tmp_path / "o.duckdb")
    with streamed.transaction("p", "r") as tx:
        tx.write("t", part(100, 2))  # rows that the stream does not touch stay
        n = tx.write_stream("t", iter(tables()), mode="merge", primary_key=["id"])
    with one_by_one.transaction("p", "r") as tx:
        tx.write("t", part(100, 2))
        m = sum(tx.write("t", t, mode="merge", primary_key=["id"]) for t in tables())
    query = "SELECT id, name, extra FROM t ORDER BY id NULLS FIRST"
    assert n == m == 15  # 5 + 5 + 2 (of 3: id 1 twice) + 2 + 1, as write() counts
    assert streamed.query(query).to_pylist() == one_by_one.query(query).to_pylist()
    got = {r["id"]: r["name"] for r in streamed.query(query).to_pylist()}
    assert got[1] == "y" and got[None] == "z" and got[3] == "n3" and got[9] == "n9"
    assert len(got) == 12  # 0..7, 9, None, 100, 101


def test_an_error_in_the_stream_keeps_its_type_and_rolls_back(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "w.duckdb")

    def broken() -> Iterator[pa.Table]:
        yield part(0, 10)
        yield part(10, 10)
        raise SourceError("orders.csv line 21: cannot read", hint="fix the file")

    with pytest.raises(SourceError, match="line 21"), store.transaction("p", "r") as tx:
        tx.write_stream("t", broken())
    assert "t" not in store.tables()
    with store.transaction("p", "r") as tx:  # the connection is usable afterwards
        assert tx.write_stream("t", [part(0, 3)]) == 3

"""One suite every store passes: DuckDB, PostgreSQL, Delta on local disk, Delta on S3 (moto).

Each test gets a fresh store: a DuckDB file, a PostgreSQL schema of its own (dropped at the end),
a Delta folder, or a prefix in the session's moto bucket.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from headwater.core import ConfigError, SchemaChangeError
from headwater.store import (
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    DeltaStore,
    DuckDBStore,
    PostgresStore,
    Store,
)

pytestmark = pytest.mark.integration

KINDS = ["duckdb", "postgres", "delta-local", "delta-s3"]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each kind."""
    kind = request.param
    if kind == "duckdb":
        made: Store = DuckDBStore(tmp_path / "warehouse.duckdb")
    elif kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        made = PostgresStore(url, schema=f"hw_conf_{uuid.uuid4().hex[:10]}")
    elif kind == "delta-local":
        made = DeltaStore(tmp_path / "lake")
    else:
        s3 = dict(request.getfixturevalue("s3_endpoint"))
        bucket = s3.pop("bucket")
        made = DeltaStore(f"s3://{bucket}/{uuid.uuid4().hex[:10]}", storage_options=s3)
    yield made
    if isinstance(made, PostgresStore) and made._con is not None:
        made.query(f'DROP SCHEMA IF EXISTS "{made.schema}" CASCADE')
    made.close()


def rows(store: Store, table: str, *order: str) -> list[dict[str, Any]]:
    """A table's rows as dicts, sorted (nulls first) by ``order``."""
    data = store.read_table(table).to_pylist()
    return sorted(data, key=lambda r: tuple((r[c] is not None, r[c]) for c in order))


def quarantine_rows(run_id: str, n: int, table: str = "orders") -> pa.Table:
    now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    return pa.table({
        "id": [f"{run_id}:{i}" for i in range(n)],
        "run_id": [run_id] * n,
        "pipeline": ["p"] * n,
        "table_name": [table] * n,
        "source": ["orders.csv"] * n,
        "position": list(range(2, n + 2)),
        "unit": ["line"] * n,
        "raw": [f'{{"id": "x{i}"}}' for i in range(n)],
        "rules": [["type(id)", "not_null(amount)"]] * n,
        "reasons": [["'x' is not a number", "amount is missing"]] * n,
        "quarantined_at": [now] * n,
        "replayed_by": pa.nulls(n, pa.string()),
    }, schema=QUARANTINE_SCHEMA)


# -- write modes ---------------------------------------------------------------------------


def test_append_adds_rows_and_lists_the_table(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        assert tx.write("orders", pa.table({"id": [1, 2], "name": ["a", "b"]})) == 2
    with store.transaction("p", "r2") as tx:
        tx.write("orders", pa.table({"id": [3], "name": ["c"], "_hw_pos": [7]}))
    assert rows(store, "orders", "id") == [
        {"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]
    assert store.tables() == ["orders"]


def test_replace_swaps_the_table_and_later_writes_in_the_transaction_append(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("orders", pa.table({"id": [1, 2, 3], "old": ["x", "y", "z"]}))
    with store.transaction("p", "r2") as tx:
        tx.write("orders", pa.table({"id": ["a"], "new": [1.5]}), mode="replace")
        tx.write("orders", pa.table({"id": ["b"], "new": [2.5]}), mode="replace")
    assert rows(store, "orders", "id") == [{"id": "a", "new": 1.5}, {"id": "b", "new": 2.5}]


def test_merge_upserts_and_the_latest_duplicate_wins(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("orders", pa.table({"id": [1, 2], "v": ["a", "b"]}), mode="merge",
                 primary_key=["id"])
    with store.transaction("p", "r2") as tx:
        written = tx.write("orders", pa.table({"id": [2, 3, 2, 3], "v": ["b1", "c1", "b2", "c2"]}),
                           mode="merge", primary_key=["id"])
        tx.write("orders", pa.table({"id": [4, 1], "v": ["d", "a2"]}), mode="merge",
                 primary_key=["id"])
    assert written == 2
    assert rows(store, "orders", "id") == [
        {"id": 1, "v": "a2"}, {"id": 2, "v": "b2"}, {"id": 3, "v": "c2"}, {"id": 4, "v": "d"}]


def test_merge_on_a_composite_key_with_a_null_part(store: Store) -> None:
    key = ["region", "Order ID"]
    first = pa.table({"region": ["eu", "us", None], "Order ID": [1, 1, 1], "v": [1, 2, 3]})
    with store.transaction("p", "r1") as tx:
        tx.write("sales", first, mode="merge", primary_key=key)
    again = pa.table({"region": [None, "eu"], "Order ID": [1, 2], "v": [30, 4]})
    with store.transaction("p", "r2") as tx:
        tx.write("sales", again, mode="merge", primary_key=key)
    assert rows(store, "sales", "region", "Order ID") == [
        {"region": None, "Order ID": 1, "v": 30},
        {"region": "eu", "Order ID": 1, "v": 1},
        {"region": "eu", "Order ID": 2, "v": 4},
        {"region": "us", "Order ID": 1, "v": 2},
    ]


def test_merge_without_its_key_columns_is_a_config_error(store: Store) -> None:
    with pytest.raises(ConfigError, match="primary key"), store.transaction("p", "r1") as tx:
        tx.write("orders", pa.table({"v": [1]}), mode="merge", primary_key=["id"])


def test_an_empty_first_write_creates_the_table(store: Store) -> None:
    empty = pa.table({"id": pa.array([], pa.int64()), "name": pa.array([], pa.string())})
    with store.transaction("p", "r1") as tx:
        assert tx.write("orders", empty) == 0
    assert "orders" in store.tables()
    assert store.read_table("orders").num_rows == 0
    assert store.read_table("orders").column_names == ["id", "name"]


# -- schema evolution ----------------------------------------------------------------------


def test_a_new_column_is_added_and_old_rows_hold_null(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("orders", pa.table({"id": [1], "name": ["a"]}))
    with store.transaction("p", "r2") as tx:
        tx.write("orders", pa.table({"id": [2], "amount": [Decimal("9.50")]}))
    assert rows(store, "orders", "id") == [
        {"id": 1, "name": "a", "amount": None}, {"id": 2, "name": None, "amount": Decimal("9.50")}]


def test_a_wider_type_widens_the_column(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("orders", pa.table({"id": pa.array([1, 2], pa.int32()), "v": ["a", "b"]}))
    with store.transaction("p", "r2") as tx:
        tx.write("orders", pa.table({"id": pa.array([2**40], pa.int64()), "v": ["c"]}))
    with store.transaction("p", "r3") as tx:  # narrower again: cast up, nothing changes
        tx.write("orders", pa.table({"id": pa.array([3], pa.int16()), "v": ["d"]}))
    table = store.read_table("orders")
    assert table.schema.field("id").type == pa.int64()
    assert sorted(table["id"].to_pylist()) == [1, 2, 3, 2**40]


def test_widening_inside_a_merge(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("t", pa.table({"id": [1, 2], "x": pa.array([1.5, 2.5], pa.float32())}),
                 mode="merge", primary_key=["id"])
    with store.transaction("p", "r2") as tx:
        tx.write("t", pa.table({"id": [2, 3], "x": pa.array([0.1, 0.2], pa.float64())}),
                 mode="merge", primary_key=["id"])
    assert rows(store, "t", "id") == [{"id": 1, "x": 1.5}, {"id": 2, "x": 0.1}, {"id": 3, "x": 0.2}]


def test_a_lossy_type_change_is_refused_and_nothing_commits(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("orders", pa.table({"id": [1], "amount": [10]}))
        tx.set_state("a.csv", {"sha256": "1"})
    with pytest.raises(SchemaChangeError) as caught, store.transaction("p", "r2") as tx:
        tx.write("orders", pa.table({"id": [2], "amount": ["ten"]}))
        tx.set_state("b.csv", {"sha256": "2"})
    message = str(caught.value)
    assert "'orders'" in message and "'amount'" in message and "int64" in message
    assert caught.value.hint and "contract" in caught.value.hint
    assert rows(store, "orders", "id") == [{"id": 1, "amount": 10}]
    assert dict(store.state("p")) == {"a.csv": {"sha256": "1"}}


# -- quarantine, state, rollback -----------------------------------------------------------


def test_quarantine_rows_commit_with_the_data_and_can_be_marked_replayed(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("orders", pa.table({"id": [1]}))
        assert tx.quarantine(quarantine_rows("r1", 3)) == 3
        assert tx.quarantine(quarantine_rows("r1", 0)) == 0
    got = store.query(f"SELECT id, rules, reasons, position, replayed_by FROM {QUARANTINE_TABLE} "
                      "ORDER BY id").to_pylist()
    assert [r["id"] for r in got] == ["r1:0", "r1:1", "r1:2"]
    assert got[0]["rules"] == ["type(id)", "not_null(amount)"]
    assert got[2]["position"] == 4 and got[0]["replayed_by"] is None
    with store.transaction("p", "r2") as tx:
        tx.mark_replayed(["r1:0", "r1:2"], "r2")
    marked = store.query(f"SELECT id, replayed_by FROM {QUARANTINE_TABLE} ORDER BY id").to_pylist()
    assert [r["replayed_by"] for r in marked] == ["r2", None, "r2"]
    assert "orders" in store.tables() and QUARANTINE_TABLE not in store.tables()


def test_state_round_trip_update_and_clear(store: Store) -> None:
    assert dict(store.state("p")) == {}
    position = {"sha256": "ab" * 32, "size": 12, "ranges": [[0, 10], [10, 12]], "at": None}
    with store.transaction("p", "r1") as tx:
        tx.set_state("data/a.csv", position)
        tx.set_state("data/b.csv", {"sha256": "1"})
    with store.transaction("other", "r1") as tx:
        tx.set_state("data/a.csv", {"sha256": "other"})
    assert dict(store.state("p")) == {"data/a.csv": position, "data/b.csv": {"sha256": "1"}}
    with store.transaction("p", "r2") as tx:
        tx.set_state("data/b.csv", {"sha256": "2"})
    assert store.state("p")["data/b.csv"] == {"sha256": "2"}
    with store.transaction("p", "r3") as tx:
        tx.clear_state()
        tx.set_state("data/c.csv", {"sha256": "3"})
    assert dict(store.state("p")) == {"data/c.csv": {"sha256": "3"}}
    assert dict(store.state("other")) == {"data/a.csv": {"sha256": "other"}}


def test_an_exception_rolls_back_rows_quarantine_and_state(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("orders", pa.table({"id": [1]}))
        tx.set_state("a.csv", {"sha256": "1"})
    with pytest.raises(RuntimeError, match="extract failed"), store.transaction("p", "r2") as tx:
        tx.write("orders", pa.table({"id": [2, 3]}))
        tx.write("new_table", pa.table({"x": [1]}))
        tx.quarantine(quarantine_rows("r2", 2))
        tx.set_state("a.csv", {"sha256": "changed"})
        tx.clear_state()
        raise RuntimeError("extract failed")
    assert rows(store, "orders", "id") == [{"id": 1}]
    assert store.tables() == ["orders"]
    assert store.query(f"SELECT count(*) AS n FROM {QUARANTINE_TABLE}").to_pylist() == [{"n": 0}]
    assert dict(store.state("p")) == {"a.csv": {"sha256": "1"}}


# -- identifiers and types -----------------------------------------------------------------


def test_identifiers_that_need_quoting(store: Store) -> None:
    data = pa.table({"order": [1, 2], 'we"ird': ["a", "b"], "Mixed Case": [True, False],
                     "select": [0.5, 1.5]})
    for table in ("order", 'we"ird', "MixedCase"):
        with store.transaction("p", "r1") as tx:
            tx.write(table, data, mode="merge", primary_key=['we"ird'])
        with store.transaction("p", "r2") as tx:
            tx.write(table, data.slice(1), mode="merge", primary_key=['we"ird'])
        assert rows(store, table, "order") == data.to_pylist()
    assert sorted(store.tables()) == sorted(["order", 'we"ird', "MixedCase"])
    got = store.query('SELECT "we""ird" AS w FROM "MixedCase" WHERE "order" = 2').to_pylist()
    assert got == [{"w": "b"}]


def test_types_round_trip(store: Store) -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    big = "é" * 300_000 + "end"
    data = pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "at": pa.array([dt.datetime(2024, 3, 31, 1, 30, tzinfo=dt.UTC), None,
                        dt.datetime(1999, 12, 31, 23, 59, 59, 123456, tzinfo=dt.UTC)],
                       pa.timestamp("us", tz="UTC")),
        "local_at": pa.array([dt.datetime(2024, 6, 1, 12, 0, tzinfo=paris)] * 3,
                             pa.timestamp("us", tz="Europe/Paris")),
        "amount": pa.array([Decimal("12345678901234.5678"), Decimal("-0.0001"), None],
                           pa.decimal128(18, 4)),
        "flag": pa.array([True, False, None]),
        "day": pa.array([dt.date(2024, 2, 29), dt.date(1970, 1, 1), None], pa.date32()),
        "nothing": pa.nulls(3),
        "text": pa.array([big, "", None], pa.large_string()),
        "ratio": pa.array([0.1, float("inf"), None], pa.float64()),
        "small": pa.array([-128, 127, None], pa.int8()),
        "blob": pa.array([b"\x00\xff", b"", None], pa.binary()),
    })
    with store.transaction("p", "r1") as tx:
        tx.write("typed", data)
    got = store.read_table("typed")
    back = sorted(got.to_pylist(), key=lambda r: r["id"])
    want = data.to_pylist()
    for column in ("id", "at", "local_at", "amount", "flag", "day", "text", "ratio", "small",
                   "blob"):
        assert [r[column] for r in back] == [r[column] for r in want], column
    assert [r["nothing"] for r in back] == [None, None, None]
    schema = got.schema
    assert pa.types.is_timestamp(schema.field("at").type) and schema.field("at").type.tz
    assert pa.types.is_decimal(schema.field("amount").type)
    assert schema.field("amount").type.scale == 4
    assert pa.types.is_date(schema.field("day").type)
    assert pa.types.is_boolean(schema.field("flag").type)
    assert pa.types.is_string(schema.field("nothing").type)
    assert got.num_rows == 3


def uuids(*values: uuid.UUID | None) -> pa.Array:
    storage = pa.array([v.bytes if v else None for v in values], pa.binary(16))
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def test_uuids_read_back_as_text_and_append_to_text_columns(store: Store) -> None:
    a, b = uuid.UUID(int=1), uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    with store.transaction("p", "r1") as tx:
        tx.write("refs", pa.table({"id": [1, 2], "ref": uuids(a, None),
                                   "bytes": pa.array([b"\xff", b""], pa.binary_view())}))
        tx.write("refs", pa.table({"id": [3], "ref": uuids(b),
                                   "bytes": pa.array([b"\x00"], pa.large_binary())}))
        tx.write("legacy", pa.table({"id": [1], "ref": [str(a)]}))  # UUIDs once loaded as text
    with store.transaction("p", "r2") as tx:
        tx.write("legacy", pa.table({"id": [2], "ref": uuids(b)}))
        tx.write("refs", pa.table({"id": [4], "ref": [str(a)]}))  # text widens a UUID column
    assert [r["ref"] for r in rows(store, "refs", "id")] == [str(a), None, str(b), str(a)]
    assert [r["bytes"] for r in rows(store, "refs", "id")] == [b"\xff", b"", b"\x00", None]
    assert [r["ref"] for r in rows(store, "legacy", "id")] == [str(a), str(b)]


def test_merge_on_a_uuid_key(store: Store) -> None:
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    with store.transaction("p", "r1") as tx:
        tx.write("refs", pa.table({"k": uuids(a, b), "v": [1, 2]}), mode="merge",
                 primary_key=["k"])
    with store.transaction("p", "r2") as tx:
        tx.write("refs", pa.table({"k": uuids(b, b, a), "v": [3, 4, 5]}), mode="merge",
                 primary_key=["k"])
    assert rows(store, "refs", "k") == [{"k": str(a), "v": 5}, {"k": str(b), "v": 4}]


def test_delete_all_empties_a_table_in_the_transaction(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("orders", pa.table({"id": [1, 2], "v": ["a", "b"]}))
        tx.delete_all("missing")  # no such table: nothing to do
    with store.transaction("p", "r2") as tx:
        tx.write("orders", pa.table({"id": [3], "v": ["c"]}))
        tx.delete_all("orders")
        tx.write("orders", pa.table({"id": [4], "v": ["d"]}), mode="merge", primary_key=["id"])
    assert rows(store, "orders", "id") == [{"id": 4, "v": "d"}]
    with pytest.raises(RuntimeError), store.transaction("p", "r3") as tx:
        tx.delete_all("orders")
        raise RuntimeError("boom")
    assert rows(store, "orders", "id") == [{"id": 4, "v": "d"}]
    assert "missing" not in store.tables()


def test_query_params_and_streaming_batches(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("numbers", pa.table({"n": list(range(2500)), "tag": ["a", "b"] * 1250}))
    got = store.query("SELECT count(*) AS c FROM numbers WHERE tag = ? AND n >= ?", ["a", 1000])
    assert got.to_pylist() == [{"c": 750}]
    batches = list(store.batches("SELECT n FROM numbers ORDER BY n", batch_rows=1000))
    assert all(b.num_rows <= 1000 for b in batches)
    assert sum(b.num_rows for b in batches) == 2500
    assert pa.Table.from_batches(batches)["n"].to_pylist() == list(range(2500))


def test_a_wider_decimal_widens_the_column(store: Store) -> None:
    with store.transaction("p", "r1") as tx:
        tx.write("prices", pa.table({"p": pa.array([Decimal("1.25")], pa.decimal128(6, 2))}))
    with store.transaction("p", "r2") as tx:
        tx.write("prices", pa.table({"p": pa.array([Decimal("123456.1234")],
                                                   pa.decimal128(12, 4))}))
    got = store.read_table("prices")
    assert (got.schema.field("p").type.precision, got.schema.field("p").type.scale) == (12, 4)
    assert sorted(got["p"].to_pylist()) == [Decimal("1.25"), Decimal("123456.1234")]


def test_a_delta_transaction_larger_than_its_memory_budget_spills_and_commits_once(
        tmp_path: Path) -> None:
    lake = DeltaStore(tmp_path / "lake", memory_limit=0)
    with lake.transaction("p", "r1") as tx:
        for i in range(5):
            tx.write("big", pa.table({"n": list(range(i * 1000, (i + 1) * 1000))}))
        tx.write("big", pa.table({"n": [5000], "extra": ["new column mid-transaction"]}))
        tx.set_state("big.csv", {"sha256": "1"})
    table = lake.open_table("big")
    assert table.version() == 0                      # one commit for six writes
    assert lake.read_table("big").num_rows == 5001
    assert lake.query("SELECT count(extra) AS c FROM big").to_pylist() == [{"c": 1}]

"""Contract inference from samples, and the YAML written for people."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import yaml

from headwater.config._contract import parse_contract
from headwater.contract import Contract, dump_contract, infer_contract
from headwater.core import POSITION


def types(spec) -> dict[str, str]:
    return {name: col.type for name, col in spec.columns.items()}


def test_text_columns_get_the_narrowest_type():
    sample = pa.table({
        POSITION: [1, 2, 3, 4],
        "Order ID": ["1", "2", "3", "4"],
        "amount": ["$1,200.50", "3.5", "N/A", "12"],
        "qty": ["1", "2", "", "1,000"],
        "ordered": ["2024-01-05T10:00:00Z", "2024-01-06 11:00", "2024-01-07T00:00:00+02:00",
                    "01/08/2024 10:00"],
        "day": ["13/01/2024", "14/02/2024", "01/03/2024", None],
        "zip": ["01234", "2345", "9", "10"],
        "paid": ["yes", "no", "Y", "0"],
        "flag01": ["0", "1", "1", "0"],
        "at": ["10:00", "11:30", "23:59", "00:00"],
        "note": ["hello", "x", "y", "z"],
        "blank": [None, None, None, None],
    })
    spec = infer_contract(sample)
    assert types(spec) == {"order_id": "integer", "amount": "float", "qty": "integer",
                           "ordered": "timestamp", "day": "date", "zip": "string",
                           "paid": "boolean", "flag01": "integer", "at": "time",
                           "note": "string", "blank": "string"}
    assert spec.columns["day"].day_first is True
    assert spec._hints["primary_key"] == ["order_id"]


def test_typed_columns_keep_their_types():
    sample = pa.table({"i": pa.array([1], pa.int32()), "f": [1.5], "b": [True],
                       "d": pa.array([date(2024, 1, 1)]), "s": [{"x": 1}],
                       "dec": pa.array([1], pa.decimal128(10, 3))})
    assert types(infer_contract(sample)) == {"i": "integer", "f": "float", "b": "boolean",
                                             "d": "date", "s": "json", "dec": "decimal(10,3)"}


def test_a_few_bad_values_do_not_widen_the_type():
    values = [str(i) for i in range(200)] + ["oops"]
    spec = infer_contract(pa.table({"n": values}))
    assert types(spec) == {"n": "integer"}
    out = Contract.from_spec(spec).checker().check(pa.table({"n": values}))
    assert out.invalid.column("rules").to_pylist() == [["type(n)"]]


def test_clashing_names_keep_the_original():
    spec = infer_contract(pa.table({"a b": ["x"], "a_b": ["y"]}))
    assert list(spec.columns) == ["a b", "a_b"]


def test_dump_round_trips_and_has_comments():
    sample = pa.table({"Order ID": ["1", "2"], "when": ["2024-01-01", "2024-01-02"],
                       "v": ["1.5", "2,5"]})
    spec = infer_contract(sample, name="orders")
    text = dump_contract(spec)
    assert "# primary_key: [order_id]" in text
    assert "# headwater contract (format version 1)" in text
    assert "0% null, 2 distinct" in text
    again = parse_contract(yaml.safe_load(text))
    assert again.model_dump() == spec.model_dump()


def test_dump_of_a_full_contract_round_trips(tmp_path):
    spec = Contract.load(
        __import__("pathlib").Path(__file__).parent / "cases" / "contracts" / "orders.yaml").spec
    text = dump_contract(spec)
    path = tmp_path / "again.yaml"
    path.write_text(text)
    assert Contract.load(path).spec.model_dump() == spec.model_dump()


def test_database_columns_keep_their_types_and_uuids_bytes_and_big_unsigned_fit():
    from datetime import timedelta

    from headwater.core._arrow import DB_TYPE

    declared = {DB_TYPE: b"text"}
    sample = pa.table({
        "code": pa.array(["1", "2"]), "flag": pa.array(["y", "n"]),
        "u": pa.ExtensionArray.from_storage(pa.uuid(), pa.array([b"\x01" * 16] * 2,
                                                                 pa.binary(16))),
        "raw": pa.array([b"\xff", b""]), "big": pa.array([2**64 - 1, 0], pa.uint64()),
        "wait": pa.array([timedelta(hours=-838), None], pa.duration("us")),
    }, schema=pa.schema([pa.field("code", pa.string(), metadata=declared),
                         pa.field("flag", pa.string(), metadata=declared),
                         ("u", pa.uuid()), ("raw", pa.binary()), ("big", pa.uint64()),
                         ("wait", pa.duration("us"))]))
    spec = infer_contract(sample)
    assert types(spec) == {"code": "string", "flag": "string", "u": "uuid", "raw": "binary",
                           "big": "decimal(20,0)", "wait": "string"}
    out = Contract.from_spec(spec).checker().check(sample)
    assert out.invalid.num_rows == 0
    assert out.valid.column("wait").to_pylist() == ["-838:00:00.000000", None]
    assert out.valid.column("big").to_pylist()[0] == 2**64 - 1
    undeclared = infer_contract(sample.select(["code"]).cast(pa.schema([("code", pa.string())])))
    assert types(undeclared) == {"code": "integer"}  # text from a file is read for its type

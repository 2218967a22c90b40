"""The messy samples: every defect is caught by the contracts that ship with them."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.csv as pv
import pytest

from headwater.contract import Contract
from headwater.ingest import make_messy_samples


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    return folder, make_messy_samples(folder)


def test_files_and_contracts_are_written(samples):
    folder, paths = samples
    names = sorted(p.relative_to(folder).as_posix() for p in paths)
    assert names == ["contracts/customers.yaml", "contracts/orders.yaml",
                     "customers/customers.jsonl", "customers/customers_legacy.csv",
                     "orders/orders.csv", "orders/orders_archive.parquet", "orders/orders_eu.csv"]
    assert (folder / "orders" / "orders.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    (folder / "orders" / "orders_eu.csv").read_bytes().decode("latin-1")
    with pytest.raises(UnicodeDecodeError):
        (folder / "orders" / "orders_eu.csv").read_bytes().decode("utf-8")
    assert json.loads((folder / "customers" / "customers.jsonl").read_text().splitlines()[0])[
        "address"]


def test_same_arguments_same_files(tmp_path):
    a = make_messy_samples(tmp_path / "a")
    b = make_messy_samples(tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_orders_defects_are_caught(samples):
    folder, _ = samples
    contract = Contract.load(folder / "contracts" / "orders.yaml")
    table = pv.read_csv(folder / "orders" / "orders.csv",
                        read_options=pv.ReadOptions(column_names=None),
                        parse_options=pv.ParseOptions(invalid_row_handler=lambda row: "skip"),
                        convert_options=pv.ConvertOptions(
                            column_types={c: "string" for c in (
                                "order_id", "customer_id", "ordered_at", "shipped_on", "status",
                                "channel", "amount", "quantity", "paid", "weight_lb", "notes")}))
    import pyarrow as pa
    table = table.append_column("_hw_pos", pa.array(range(2, table.num_rows + 2), pa.int64()))
    checker = contract.checker()
    out = checker.check(table)
    rules = Counter(r for rules in out.invalid.column("rules").to_pylist() for r in rules)
    for rule in ("type(amount)", "range(quantity)", "rule(shipped_after_ordered)",
                 "allowed(status)", "not_null(customer_id)", "type(paid)", "type(ordered_at)",
                 "primary_key(order_id)"):
        assert rules[rule] >= 1, rule
    assert out.dropped == 1
    assert out.valid.column("amount_outlier").to_pylist().count(True) >= 1
    statuses = set(out.valid.column("status").to_pylist())
    assert statuses <= {"new", "paid", "shipped", "delivered", "cancelled"}
    assert None not in out.valid.column("channel").to_pylist()

"""The checker's two halves (typed, validate) and text cleansed once per distinct value."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.contract import Contract, clean_text
from headwater.core import POSITION

SPEC = {
    "columns": {
        "code": {"type": "string", "cleanse": {"case": "upper"}, "allowed": ["EUR", "USD"]},
        "flag": {"type": "boolean", "map": {"si": True, "no": False}},
        "amount": {"type": "float", "min": 0, "outliers": {"method": "bounds", "max": 1000,
                                                          "action": "quarantine"}},
    },
}

WORDS = [" eur", "usd ", "Eur", "N/A", "-", "", "gbp", "  usd  ", "null", "x\ty"]


def table(codes: list[str | None], first: int = 1) -> pa.Table:
    n = len(codes)
    return pa.table({
        POSITION: pa.array(range(first, first + n), pa.int64()),
        "code": pa.array(codes, pa.string()),
        "flag": pa.array(["si", "no", "yes", "maybe"] * (n // 4) + ["si"] * (n % 4)),
        "amount": pa.array([str(i % 1500) for i in range(n)]),
    })


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([*WORDS, None]), min_size=1, max_size=12),
       st.integers(min_value=1, max_value=60))
def test_text_cleansed_per_value_equals_cleansing_each_row(values: list, repeat: int) -> None:
    codes = values * repeat  # few distinct values in many rows: the per-value path
    contract = Contract.from_spec(SPEC)
    out = contract.checker().check(table(codes))
    cleanse = contract.columns["code"].cleanse
    expected = pl.Series(codes, dtype=pl.String).to_frame("v").select(
        clean_text(pl.col("v"), cleanse)).to_series().to_list()
    got = dict(zip(out.valid.column(POSITION).to_pylist(), out.valid.column("code").to_pylist(),
                   strict=True))
    for pos, value in got.items():
        assert value == expected[pos - 1]
    assert out.valid.num_rows + out.invalid.num_rows == len(codes)


def test_a_column_with_many_values_is_cleansed_row_by_row_for_the_rest_of_the_run() -> None:
    checker = Contract.from_spec(SPEC).checker()
    many = [f" eur{i}" for i in range(100)]
    checker.check(table(many))
    assert "code" in checker._many
    out = checker.check(table([" eur"] * 100, first=101))
    assert set(out.valid.column("code").to_pylist()) == {"EUR"}


def test_typed_then_validate_is_check() -> None:
    data = table([" eur", "usd", "gbp", "N/A"] * 30)
    whole = Contract.from_spec(SPEC).checker().check(data)
    checker = Contract.from_spec(SPEC).checker()
    typed = checker.typed(data)
    assert typed.rows == data.num_rows
    halves = checker.validate(typed)
    assert halves.valid.equals(whole.valid)
    assert halves.invalid.equals(whole.invalid)
    assert halves.invalid.num_rows > 0


def test_batches_typed_ahead_keep_the_bounds_they_were_typed_with() -> None:
    checker = Contract.from_spec(SPEC).checker()
    first = checker.typed(table(["eur"] * 40))
    second = checker.typed(table(["eur"] * 40, first=41))  # typed before the first is checked
    assert first.bounds == second.bounds == {"amount": (float("-inf"), 1000.0)}
    outs = [checker.validate(first), checker.validate(second)]
    assert sum(o.invalid.num_rows for o in outs) == 2 * 10  # 'maybe' is no boolean
    assert checker.report.rows == 80

"""One parser of numbers and booleans: preparation for models reads raw text exactly as a
contract does (the contract engine types it for both)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.contract import Contract
from headwater.core import POSITION
from headwater.ml import ColumnAuditor
from headwater.ml._prepare import as_booleans, as_numbers

TRICKY = ["1,234.5", " yes ", "TRUE", "", "n/a", "1.234,5", "$12", "(3.50)", "15%", " 7 ",
          "1e3", "no", "off", "N/A", "-", "x", "12,5", "0", "1", None]


def by_contract(values: list[str | None], type_: str) -> list[float]:
    """``values`` through a contract column of ``type_``: the typed value of each valid row,
    NaN for a row read as null or quarantined for its type."""
    contract = Contract.from_spec({"columns": {"v": {"type": type_}}})
    out = contract.checker().check(pa.table({POSITION: pa.array(range(len(values)), pa.int64()),
                                             "v": pa.array(values, pa.string())}))
    got = dict(zip(out.valid[POSITION].to_pylist(), out.valid["v"].to_pylist(), strict=True))
    return [math.nan if got.get(i) is None else float(got[i]) for i in range(len(values))]


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y))
                                    for x, y in zip(a, b, strict=True))


def test_tricky_numbers_read_alike() -> None:
    ml = as_numbers(pd.Series(TRICKY, dtype=object)).tolist()
    assert same(ml, by_contract(TRICKY, "float"))
    assert same(ml[:5], [1234.5, *[math.nan] * 4])
    assert ml[5:11] == [1234.5, 12.0, -3.5, 0.15, 7.0, 1000.0]


def test_tricky_booleans_read_alike() -> None:
    ml = as_booleans(pd.Series(TRICKY, dtype=object)).tolist()
    assert same(ml, by_contract(TRICKY, "boolean"))
    assert same(ml[:5], [math.nan, 1.0, 1.0, math.nan, math.nan])
    assert ml[11:13] == [0.0, 0.0]


def test_the_auditor_converts_through_the_same_parser() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"paid": rng.choice(["1,234.5", " 7 ", "3", "4.25"], 200),
                          "member": rng.choice([" yes ", "TRUE", "", "no", "No"], 200)})
    auditor = ColumnAuditor().fit(frame, pd.Series(rng.integers(0, 2, 200)))
    assert auditor.kinds_ == {"paid": "numeric", "member": "boolean"}
    later = pd.DataFrame({"paid": TRICKY, "member": TRICKY})  # values unseen at fit, too
    out = auditor.transform(later)
    assert same(out["paid"].tolist(), by_contract(TRICKY, "float"))
    assert same(out["member"].tolist(), by_contract(TRICKY, "boolean"))


PIECES = st.sampled_from(["1", "23", ",", ".", " ", "$", "%", "-", "(", ")", "e", "yes", "No",
                          "n/a", "TRUE", "'", "0"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(PIECES, max_size=5).map("".join), min_size=1, max_size=20))
def test_any_text_reads_alike(values: list[str]) -> None:
    raw = pd.Series(values, dtype=object)
    assert same(as_numbers(raw).tolist(), by_contract(values, "float"))
    assert same(as_booleans(raw).tolist(), by_contract(values, "boolean"))

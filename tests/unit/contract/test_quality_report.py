"""The quality report: counts, pass rates, mergeable statistics, JSON, Rich output."""

from __future__ import annotations

import io
import json
from datetime import date

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from headwater.contract import Contract
from headwater.contract._quality import QualityReport, hll_add, hll_estimate, hll_hashes
from headwater.core import POSITION

SPEC = {"primary_key": ["id"],
        "columns": {"id": {"type": "integer"}, "amount": {"type": "float", "min": 0},
                    "day": {"type": "date"}, "tag": {}}}


def checked_report(*batches: dict) -> QualityReport:
    checker = Contract.from_spec(SPEC).checker()
    start = 0
    for columns in batches:
        n = len(columns["id"])
        checker.check(pa.table({**columns, POSITION: pa.array(range(start, start + n))}))
        start += n
    checker.finish()
    return checker.report


def test_counts_rates_and_ranges():
    report = checked_report(
        {"id": ["1", "2", "3", "3"], "amount": ["5", "-1", None, "7"],
         "day": ["2024-01-02", "2024-01-01", "x", "2024-01-03"], "tag": ["a", "b", None, "c"]},
        {"id": ["4", "5"], "amount": ["1.5", "2"], "day": ["2023-12-31", None], "tag": ["a", "a"]},
    )
    # the first row with id 3 fails its date, so the second one keeps the key
    assert (report.rows, report.valid, report.invalid, report.dropped) == (6, 4, 2, 0)
    assert report.rules["range(amount)"].failed == 1
    assert report.rules["type(day)"].failed == 1
    assert report.rules["primary_key(id)"].failed == 0
    assert report.rules["range(amount)"].pass_rate == pytest.approx(5 / 6)
    amount = report.columns["amount"]
    assert (amount.loaded, amount.min, amount.max) == (4, 1.5, 7.0)
    day = report.columns["day"]
    assert day.min == date(2023, 12, 31) and day.max == date(2024, 1, 3)
    assert day.nulls == 1 and day.null_rate == pytest.approx(1 / 4)
    assert report.columns["tag"].distinct == 2
    assert report.columns["id"].pass_rate == 1.0
    assert report.columns["day"].pass_rate == pytest.approx(5 / 6)
    assert report.pass_rate == pytest.approx(4 / 6)


def test_to_dict_is_json_and_round_trips():
    report = checked_report({"id": ["1", "2"], "amount": ["1", "x"], "day": ["2024-01-01", None],
                             "tag": ["a", "b"]})
    data = json.loads(json.dumps(report.to_dict()))
    assert data["rules"]["type(amount)"] == {"failed": 1, "checked": 2, "pass_rate": 0.5}
    assert data["columns"]["day"]["min"] == "2024-01-01"
    again = QualityReport.from_dict(data)
    assert again.to_dict() == data


def test_render_prints_tables():
    report = checked_report({"id": ["1", "1"], "amount": ["1", "2"], "day": [None, None],
                             "tag": ["a", "b"]})
    out = io.StringIO()
    report.render(Console(file=out, width=120))
    text = out.getvalue()
    assert "primary_key(id)" in text and "Columns" in text and "50.00%" in text
    assert "table rule" not in text  # no table rules declared


def test_merge_adds_counts_and_sketches():
    a = checked_report({"id": ["1", "2"], "amount": ["1", "2"], "day": [None, None],
                        "tag": ["a", "b"]})
    b = checked_report({"id": ["3"], "amount": ["-9"], "day": [None], "tag": ["c"]})
    a.merge(b)
    assert (a.rows, a.valid, a.invalid) == (3, 2, 1)
    assert a.rules["range(amount)"].failed == 1 and a.rules["range(amount)"].checked == 3
    assert a.top_reasons() == [("range(amount)", 1)]


def test_rejects_are_counted():
    report = QualityReport()
    report.count_rejects(3)
    assert report.rows == 3 and report.invalid == 3 and report.rules["parse"].failed == 3


def _registers(values: list) -> np.ndarray:
    registers = np.zeros(1 << 12, np.uint8)
    hashes = pl.DataFrame({"v": pl.Series(values, dtype=pl.Int64)}).select(hll_hashes("v"))
    hll_add(registers, hashes.to_series()[0])
    return registers


@pytest.mark.parametrize("n", [0, 1, 10, 1000, 100_000])
def test_distinct_counts_are_close(n):
    estimate = hll_estimate(_registers(list(range(n))))
    assert abs(estimate - n) <= max(1, 0.05 * n)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 10**6), max_size=300), st.lists(st.integers(0, 10**6), max_size=300))
def test_sketches_merge_like_a_union(xs, ys):
    merged = np.maximum(_registers(xs), _registers(ys))
    assert (merged == _registers(xs + ys)).all()

"""Decimals widen when no digit is lost on either side of the point."""

from __future__ import annotations

import pyarrow as pa
import pytest

from headwater.core import SchemaChangeError
from headwater.store import plan_evolution


def test_a_wider_decimal_widens_the_table_and_a_narrower_one_is_cast_up() -> None:
    table = pa.schema([("x", pa.decimal128(10, 2))])
    assert plan_evolution("t", table, pa.schema([("x", pa.decimal128(14, 4))])).widen == [
        pa.field("x", pa.decimal128(14, 4))]
    narrow = pa.schema([("x", pa.decimal128(18, 4))])
    assert plan_evolution("t", narrow, pa.schema([("x", pa.decimal128(6, 2))])).cast == {
        "x": pa.decimal128(18, 4)}


def test_a_decimal_that_would_drop_digits_is_refused() -> None:
    with pytest.raises(SchemaChangeError, match="'x'"):
        plan_evolution("t", pa.schema([("x", pa.decimal128(10, 2))]),
                       pa.schema([("x", pa.decimal128(10, 4))]))

"""Arrow <-> PostgreSQL type mapping, numeric decoding, placeholder translation."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.core import SinkError
from headwater.store._pgtypes import arrow_type, decode, normalise, normalise_type, pg_type
from headwater.store._postgres import _dollar_params, _libpq_url


@pytest.mark.parametrize(("arrow", "pg", "back"), [
    (pa.bool_(), "bool", pa.bool_()),
    (pa.int8(), "int2", pa.int16()),
    (pa.uint16(), "int4", pa.int32()),
    (pa.uint32(), "int8", pa.int64()),
    (pa.uint64(), "numeric(20,0)", pa.decimal128(20, 0)),
    (pa.float16(), "float4", pa.float32()),
    (pa.float64(), "float8", pa.float64()),
    (pa.decimal128(18, 4), "numeric(18,4)", pa.decimal128(18, 4)),
    (pa.decimal256(50, 10), "numeric(50,10)", pa.decimal256(50, 10)),
    (pa.large_string(), "text", pa.string()),
    (pa.string_view(), "text", pa.string()),
    (pa.large_binary(), "bytea", pa.binary()),
    (pa.date64(), "date", pa.date32()),
    (pa.timestamp("ns"), "timestamp", pa.timestamp("us")),
    (pa.timestamp("ms", tz="Asia/Tokyo"), "timestamptz", pa.timestamp("us", tz="UTC")),
    (pa.json_(), "json", pa.json_()),
    (pa.dictionary(pa.int32(), pa.string()), "text", pa.string()),
    (pa.null(), "text", pa.string()),
    (pa.list_(pa.int8()), "int2[]", pa.list_(pa.int16())),
    (pa.large_list(pa.string()), "text[]", pa.list_(pa.string())),
])
def test_type_mapping(arrow: pa.DataType, pg: str, back: pa.DataType) -> None:
    assert pg_type(arrow) == pg
    assert normalise_type(arrow) == back


@given(precision=st.integers(1, 76), scale=st.integers(0, 76))
def test_numeric_typmod_decodes_to_the_declared_decimal(precision: int, scale: int) -> None:
    scale = min(scale, precision)
    typmod = ((precision << 16) | scale) + 4
    got = arrow_type("numeric", typmod)
    assert (got.precision, got.scale) == (precision, scale)
    assert arrow_type("_numeric", typmod) == pa.list_(got)


def test_nested_lists_and_structs_are_refused_with_a_hint() -> None:
    with pytest.raises(SinkError, match="column 'tags'") as caught:
        pg_type(pa.list_(pa.list_(pa.int64())), "tags")
    assert caught.value.hint
    with pytest.raises(SinkError, match="column 'address'"):
        pg_type(pa.struct([("city", pa.string())]), "address")


def test_normalise_refuses_to_truncate_nanoseconds() -> None:
    data = pa.table({"at": pa.array([1_000_000_001], pa.timestamp("ns", tz="UTC"))})
    with pytest.raises(SinkError, match="column 'at'"):
        normalise(data)
    exact = pa.table({"at": pa.array([1_000_000_000], pa.timestamp("ns", tz="Europe/Paris"))})
    assert normalise(exact).schema.field("at").type == pa.timestamp("us", tz="UTC")


def test_decode_turns_numeric_text_into_decimals() -> None:
    numeric = pa.opaque(pa.string(), "numeric", "PostgreSQL")
    storage = pa.array(["12.5", "-0.125", None, "100"])
    typed = pa.field("x", numeric, metadata={"POSTGRESQL:typmod": str(((10 << 16) | 3) + 4)})
    free = pa.field("y", numeric, metadata={"POSTGRESQL:typmod": "-1"})
    odd = pa.field("z", numeric)
    column = pa.ExtensionArray.from_storage(numeric, storage)
    nan = pa.ExtensionArray.from_storage(numeric, pa.array(["1", "NaN", None, "2"]))
    got = decode(pa.table([column, column, nan], schema=pa.schema([typed, free, odd])))
    assert got.schema.field("x").type == pa.decimal128(10, 3)
    assert got.schema.field("y").type == pa.decimal128(6, 3)
    assert got["y"].to_pylist() == [Decimal("12.5"), Decimal("-0.125"), None, Decimal("100")]
    assert got.schema.field("z").type == pa.string()  # NaN has no decimal: kept as text


def test_dollar_params_skips_quoted_question_marks() -> None:
    sql = "SELECT 'a?b', \"c?\" FROM t WHERE x = ? AND y = ?"
    assert _dollar_params(sql) == "SELECT 'a?b', \"c?\" FROM t WHERE x = $1 AND y = $2"
    assert _dollar_params("SELECT $1") == "SELECT $1"


@given(st.lists(st.sampled_from(["a", " ", "?", "'x?'", '"y?"', "="]), max_size=30))
def test_dollar_params_numbers_every_bare_placeholder(parts: list[str]) -> None:
    sql = "".join(parts)
    out = _dollar_params(sql)
    bare = parts.count("?")
    if bare:
        assert [f"${i}" in out for i in range(1, bare + 1)] == [True] * bare
        assert f"${bare + 1}" not in out
    assert out.count("'x?'") == parts.count("'x?'")


def test_libpq_url_drops_the_sqlalchemy_driver() -> None:
    assert _libpq_url("postgresql+psycopg://u:p@h/db") == "postgresql://u:p@h/db"
    assert _libpq_url("postgres://h/db") == "postgresql://h/db"

"""Arrow <-> PostgreSQL types: what a column becomes in PostgreSQL, and what it reads back as.

A load casts its Arrow columns to the type PostgreSQL gives back (``normalise``), so that the
binary COPY matches the table exactly and a schema comparison compares like with like.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from headwater.core import SinkError
from headwater.core._arrow import is_binary, is_text, uuids_as_text

#: PostgreSQL's numeric holds up to 1000 digits; Arrow's widest decimal holds 76.
_MAX_DECIMAL = 76

_SCALARS: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "uuid": pa.string(),
    "bytea": pa.binary(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "interval": pa.month_day_nano_interval(),
    "json": pa.json_(),
    "jsonb": pa.json_(),
}


def pg_type(type_: pa.DataType, column: str = "?") -> str:
    """The PostgreSQL column type for an Arrow type.

    >>> pg_type(pa.timestamp("ns", tz="Europe/Paris"))
    'timestamptz'
    >>> pg_type(pa.list_(pa.decimal128(10, 2)))
    'numeric(10,2)[]'
    """
    if pa.types.is_dictionary(type_):
        return pg_type(type_.value_type, column)
    if isinstance(type_, pa.JsonType):
        return "json"
    if isinstance(type_, pa.BaseExtensionType):
        return pg_type(type_.storage_type, column)
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_integer(type_):
        width = type_.bit_width + (1 if pa.types.is_unsigned_integer(type_) else 0)
        if width <= 16:
            return "int2"
        if width <= 32:
            return "int4"
        if width <= 64:
            return "int8"
        return "numeric(20,0)"
    if pa.types.is_floating(type_):
        return "float4" if type_.bit_width <= 32 else "float8"
    if pa.types.is_decimal(type_):
        return f"numeric({type_.precision},{type_.scale})"
    if is_text(type_):
        return "text"
    if is_binary(type_) or pa.types.is_fixed_size_binary(type_):
        return "bytea"
    if pa.types.is_date(type_):
        return "date"
    if pa.types.is_timestamp(type_):
        return "timestamp" if type_.tz is None else "timestamptz"
    if pa.types.is_time(type_):
        return "time"
    if pa.types.is_duration(type_) or pa.types.is_interval(type_):
        return "interval"
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_list_view(type_):
        inner = pg_type(type_.value_type, column)
        if inner.endswith("[]"):
            raise _unsupported(column, type_, "lists of lists")
        return inner + "[]"
    if pa.types.is_null(type_):
        return "text"
    raise _unsupported(column, type_, "this type")


def arrow_type(typname: str, typmod: int = -1) -> pa.DataType:
    """The Arrow type PostgreSQL's ``typname`` (``pg_type.typname``) reads back as.

    >>> arrow_type("numeric", (12 << 16 | 3) + 4)
    Decimal128Type(decimal128(12, 3))
    >>> arrow_type("_int4")
    ListType(list<item: int32>)
    """
    if typname.startswith("_"):
        return pa.list_(arrow_type(typname[1:], typmod))
    if typname == "numeric":
        if typmod < 4:
            return pa.decimal256(_MAX_DECIMAL, 16)
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(
            min(precision, _MAX_DECIMAL), scale)
    return _SCALARS.get(typname, pa.string())


def normalise_type(type_: pa.DataType, column: str = "?") -> pa.DataType:
    """The Arrow type a column of this type reads back as from PostgreSQL."""
    pg = pg_type(type_, column)
    if pg.startswith("numeric("):
        precision, scale = (int(x) for x in pg.removesuffix("[]")[8:-1].split(","))
        inner = (pa.decimal128(precision, scale) if precision <= 38
                 else pa.decimal256(precision, scale))
        return pa.list_(inner) if pg.endswith("[]") else inner
    if pg.endswith("[]"):
        return pa.list_(_SCALARS[pg[:-2]])
    return _SCALARS[pg]


def normalise(data: pa.Table) -> pa.Table:
    """Cast every column to the type PostgreSQL stores and gives back (exact binary COPY)."""
    data = uuids_as_text(data)
    for i, fld in enumerate(data.schema):
        target = normalise_type(fld.type, fld.name)
        if fld.type.equals(target):
            continue
        column = data.column(i)
        if pa.types.is_dictionary(fld.type):
            column = column.cast(fld.type.value_type)
        elif isinstance(fld.type, pa.BaseExtensionType) and not isinstance(fld.type, pa.JsonType):
            column = pa.chunked_array([c.storage for c in column.chunks],
                                      type=fld.type.storage_type)
        try:
            if isinstance(target, pa.JsonType):
                if not isinstance(column.type, pa.JsonType):
                    column = column.cast(pa.string())
                column = pa.chunked_array([pa.ExtensionArray.from_storage(target, c)
                                           for c in column.chunks], type=target)
            else:
                column = column.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SinkError(
                f"column '{fld.name}': {fld.type} cannot be stored in PostgreSQL as "
                f"{pg_type(fld.type, fld.name)} without loss: {exc}",
                hint=f"give '{fld.name}' a type PostgreSQL holds exactly in the contract "
                "(e.g. timestamps in microseconds)",
            ) from None
        data = data.set_column(i, fld.name, column)
    return data


def decode(data: pa.Table) -> pa.Table:
    """Turn what the driver hands back as text (``numeric``) into decimals."""
    for i, fld in enumerate(data.schema):
        if not isinstance(fld.type, pa.OpaqueType) or fld.type.type_name != "numeric":
            continue
        text = pc.cast(data.column(i), pa.string())
        typmod = int((fld.metadata or {}).get(b"POSTGRESQL:typmod", b"-1"))
        target = arrow_type("numeric", typmod) if typmod >= 4 else _decimal_for(text)
        if target is None:
            data = data.set_column(i, fld.name, text)
        else:
            data = data.set_column(i, pa.field(fld.name, target), text.cast(target))
    return data


def _decimal_for(text: pa.ChunkedArray) -> pa.DataType | None:
    """A decimal type wide enough for numbers given as text, or None if some are not finite."""
    valid = pc.drop_null(text)
    if len(valid) == 0:
        return pa.decimal128(38, 9)
    if pc.any(pc.match_substring_regex(valid, r"[^0-9.\-+]")).as_py():
        return None  # NaN, Infinity: keep the text
    parts = pc.split_pattern(pc.utf8_ltrim(valid, "-+"), ".", max_splits=1)
    whole = pc.max(pc.utf8_length(pc.list_element(parts, 0))).as_py() or 1
    has_fraction = pc.greater(pc.list_value_length(parts), 1)
    fractions = pc.list_element(pc.filter(parts, has_fraction), 1)
    scale = pc.max(pc.utf8_length(fractions)).as_py() or 0
    precision = whole + scale
    if precision > _MAX_DECIMAL:
        return None
    return pa.decimal128(max(precision, 1), scale) if precision <= 38 else pa.decimal256(
        precision, scale)


def _unsupported(column: str, type_: pa.DataType, what: str) -> SinkError:
    return SinkError(
        f"column '{column}': PostgreSQL store cannot hold {what} ({type_})",
        hint="flatten nested data into columns or child tables in the contract, "
        "or cast the column to text",
    )

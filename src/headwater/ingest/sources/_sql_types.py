"""Database types to Arrow types that lose nothing, column by column (never row by row).

PostgreSQL is read through ADBC, which already returns Arrow; what it cannot name (enums, inet,
unconstrained numerics, ...) arrives as an opaque extension and is turned into plain types here.
MySQL/MariaDB and SQLite rows arrive as DB-API tuples and are turned into Arrow columns with the
type the database declared.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.core import SourceError
from headwater.core._arrow import DB_TYPE, uuid_text
from headwater.monitor import get_logger

log = get_logger(__name__)




# ---------------------------------------------------------------- PostgreSQL (ADBC output)


def pg_plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Replace ADBC's extension types by plain Arrow types every engine reads.

    ``numeric(p, s)`` becomes ``decimal128(p, s)`` (``decimal256`` above 38 digits); numeric
    without a declared precision stays exact as text; ``uuid`` stays Arrow's UUID type;
    ``json``/``jsonb`` become text; other opaque types (enums, inet, ...) become their text.
    """
    arrays, fields = [], []
    for fld, col in zip(batch.schema, batch.columns, strict=True):
        new = _pg_column(col, fld)
        arrays.append(new)
        meta = dict(fld.metadata or {})
        pg_type = meta.get(b"POSTGRESQL:type")
        out_meta = {DB_TYPE: pg_type} if pg_type else None
        fields.append(pa.field(fld.name, new.type, nullable=True, metadata=out_meta))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _pg_column(col: pa.Array, fld: pa.Field, *, nested: bool = False) -> pa.Array:
    typ = col.type
    if pa.types.is_interval(typ):
        return interval_text(col)
    if isinstance(typ, pa.BaseExtensionType):
        if nested and typ == pa.uuid():  # uuid[]: a list of text, as JSON holds it
            return uuid_text(col.storage)
        return _pg_extension(col, fld)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        child_field = typ.value_field
        values = _pg_column(col.values, child_field, nested=True)
        if values.type == child_field.type:
            return col
        offsets = col.offsets
        list_type = pa.list_(values.type)
        return pa.ListArray.from_arrays(offsets, values, type=list_type, mask=col.is_null())
    return col


def _pg_extension(col: pa.Array, fld: pa.Field) -> pa.Array:
    typ = col.type
    name = getattr(typ, "extension_name", "")
    storage = col.storage
    if name == "arrow.uuid":
        return col  # 16 bytes, kept: the contract types it uuid, stores keep it native
    if name == "arrow.json":
        return storage.cast(pa.string())
    type_name = getattr(typ, "type_name", "")
    if type_name == "numeric":
        decimal = _numeric_type((fld.metadata or {}).get(b"POSTGRESQL:typmod"))
        if decimal is not None:
            try:
                return pc.cast(storage, decimal)
            except pa.ArrowInvalid:
                log.warning("numeric_kept_as_text", column=fld.name, reason="NaN or infinity")
        return storage.cast(pa.string())
    if pa.types.is_binary(storage.type) or pa.types.is_large_binary(storage.type):
        try:
            return storage.cast(pa.string())  # enums arrive as their label's bytes
        except pa.ArrowInvalid:
            return storage
    return storage


_MONTH_DAY_NANO = np.dtype([("months", "<i4"), ("days", "<i4"), ("nanos", "<i8")])


def interval_text(col: pa.Array) -> pa.Array:
    """PostgreSQL intervals as exact text that PostgreSQL and DuckDB read back as intervals
    (months and days stay apart from the time: a month is not a number of seconds).

    >>> interval_text(pa.array([pa.MonthDayNano([1, -2, -3_500_000_000]), None],
    ...                        pa.month_day_nano_interval())).to_pylist()
    ['1 mons -2 days -00:00:03.500000', None]
    """
    import polars as pl

    from headwater.contract import clock_text

    parts = np.frombuffer(col.buffers()[1], dtype=_MONTH_DAY_NANO)[col.offset:col.offset + len(col)]
    frame = pl.DataFrame({"m": parts["months"], "d": parts["days"],
                          "us": parts["nanos"] // 1000,  # PostgreSQL keeps microseconds
                          "null": col.is_null().to_numpy(zero_copy_only=False)})
    text = pl.concat_str([pl.col("m").cast(pl.String), pl.lit(" mons "),
                          pl.col("d").cast(pl.String), pl.lit(" days "), clock_text(pl.col("us"))])
    out = frame.select(pl.when(~pl.col("null")).then(text)).to_series()
    return out.to_arrow().cast(pa.string())


def _numeric_type(typmod: bytes | None) -> pa.DataType | None:
    """``numeric(p, s)`` from PostgreSQL's typmod; None for an unconstrained numeric."""
    if not typmod:
        return None
    mod = int(typmod)
    if mod < 4:
        return None
    precision, scale = ((mod - 4) >> 16) & 0xFFFF, (mod - 4) & 0xFFFF
    if scale > precision:  # PostgreSQL 15 allows negative or large scales: keep them exact
        return None
    return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)


# ---------------------------------------------------------------- MySQL / MariaDB (pymysql)

# pymysql.constants.FIELD_TYPE values, inlined so this module imports without pymysql
_MY_INTS = {1: pa.int8(), 2: pa.int16(), 3: pa.int32(), 8: pa.int64(), 9: pa.int32(),
            13: pa.int16()}
_MY_UINTS = {1: pa.uint8(), 2: pa.uint16(), 3: pa.uint32(), 8: pa.uint64(), 9: pa.uint32(),
             13: pa.uint16()}
_MY_UNSIGNED_FLAG = 32
_MY_BINARY_CHARSET = 63


def mysql_type(type_code: int, precision: int | None, scale: int | None,
               flags: int = 0, charset: int = 0) -> pa.DataType:
    """Arrow type of a MySQL/MariaDB result column (from the protocol's field description)."""
    if type_code in _MY_INTS:
        return (_MY_UINTS if flags & _MY_UNSIGNED_FLAG else _MY_INTS)[type_code]
    if type_code in (0, 246):  # DECIMAL, NEWDECIMAL
        p = max(int(precision or 38), 1)
        s = int(scale or 0)
        # pymysql's precision is the display length: digits + sign + point
        p = max(p - (1 if s else 0) - (0 if flags & _MY_UNSIGNED_FLAG else 1), s, 1)
        return pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)
    if type_code == 4:
        return pa.float32()
    if type_code == 5:
        return pa.float64()
    if type_code in (7,):  # TIMESTAMP: stored in UTC; the session reads it in UTC
        return pa.timestamp("us", tz="UTC")
    if type_code in (12,):  # DATETIME
        return pa.timestamp("us")
    if type_code in (10, 14):
        return pa.date32()
    if type_code == 11:  # TIME comes back as a timedelta (it may exceed 24h)
        return pa.duration("us")
    if type_code == 16:  # BIT
        return pa.binary()
    if type_code == 245:  # JSON
        return pa.string()
    if type_code in (249, 250, 251, 252, 253, 254, 15, 255):
        return pa.binary() if charset == _MY_BINARY_CHARSET else pa.string()
    return pa.string()


# ---------------------------------------------------------------- SQLite (declared types)


def sqlite_type(declared: str | None) -> pa.DataType | None:
    """Arrow type for a SQLite declared type, by SQLite's affinity rules (None: infer)."""
    decl = (declared or "").upper()
    if "INT" in decl:
        return pa.int64()
    if any(word in decl for word in ("CHAR", "CLOB", "TEXT")):
        return pa.string()
    if any(word in decl for word in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    if "BOOL" in decl:
        return pa.bool_()
    if "BLOB" in decl:
        return pa.binary()
    return None  # NUMERIC, DATE, TIMESTAMP, no type: what the values are


# ---------------------------------------------------------------- DB-API rows to Arrow


def rows_to_batch(rows: Sequence[Sequence[Any]], names: list[str],
                  types: list[pa.DataType | None], *, where: str,
                  db_types: list[str] | None = None) -> pa.RecordBatch:
    """Turn DB-API row tuples into one Arrow batch, column by column.

    ``types[i]`` None lets Arrow infer the column's type; a column whose values do not fit its
    declared type (SQLite stores anything anywhere) is kept as text, with a warning.
    ``db_types`` are recorded in each field's metadata (:data:`DB_TYPE`).
    """
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    fields = []
    arrays = []
    for i, (name, typ, values) in enumerate(zip(names, types, columns, strict=True)):
        arrays.append(_column(values, typ, name=name, where=where))
        meta = {DB_TYPE: db_types[i].encode()} if db_types else None
        fields.append(pa.field(name, arrays[-1].type, metadata=meta))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _column(values: Sequence[Any], typ: pa.DataType | None, *, name: str, where: str) -> pa.Array:
    try:
        if typ is None:
            return _infer(values)
        if pa.types.is_timestamp(typ) and typ.tz is not None:
            return pa.array(values, pa.timestamp(typ.unit)).cast(typ)
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        log.warning("column_kept_as_text", source=where, column=name, declared=str(typ),
                    reason=str(exc)[:200])
        return pa.array([_text(v) for v in values], pa.string())


def _infer(values: Sequence[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([_text(v) for v in values], pa.string())


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


# ---------------------------------------------------------------- cursor values


def parse_lookback(value: str | int | float | None) -> dt.timedelta | Decimal | None:
    """``'10m'`` -> 10 minutes; ``5`` or ``'5'`` -> 5 (for numeric cursors); None -> None.

    >>> parse_lookback("2h")
    datetime.timedelta(seconds=7200)
    >>> parse_lookback(100), parse_lookback("1.5")
    (Decimal('100'), Decimal('1.5'))
    """
    if value is None:
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", value):
        return Decimal(value.strip())
    from headwater.core import ConfigError, parse_duration

    try:
        return parse_duration(value, where="lookback")
    except ConfigError as exc:
        raise ConfigError(exc.message, hint=f"{exc.hint} (or a number for id cursors)") from None


def encode_cursor(value: Any) -> tuple[Any, str]:
    """A cursor value as JSON-able ``(value, kind)`` for the state table."""
    if isinstance(value, dt.datetime):
        return value.isoformat(), "datetime"
    if isinstance(value, dt.date):
        return value.isoformat(), "date"
    if isinstance(value, bool):
        raise SourceError("a boolean column cannot be a cursor",
                          hint="use an updated_at timestamp or an increasing id")
    if isinstance(value, int):
        return value, "int"
    if isinstance(value, Decimal | float):
        return str(value), "decimal"
    return str(value), "text"


def decode_cursor(value: Any, kind: str) -> Any:
    """Inverse of :func:`encode_cursor`."""
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "int":
        return int(value)
    if kind == "decimal":
        return Decimal(value)
    return value


def step_back(value: Any, lookback: dt.timedelta | Decimal | None, *, column: str) -> Any:
    """The cursor value ``lookback`` before ``value`` (text timestamps keep their format)."""
    if lookback is None:
        return value
    if isinstance(value, dt.datetime | dt.date):
        if not isinstance(lookback, dt.timedelta):
            lookback = dt.timedelta(seconds=float(lookback))
        return value - lookback
    if isinstance(value, int | Decimal | float):
        if isinstance(lookback, dt.timedelta):
            raise SourceError(f"cursor column '{column}' is a number; lookback must be one too",
                              hint=f"write lookback: 1000 (ids), not {lookback}")
        stepped = Decimal(str(value)) - lookback
        return int(stepped) if isinstance(value, int) else stepped
    if isinstance(value, str):  # SQLite keeps timestamps as text
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise SourceError(
                f"cursor column '{column}' holds text ('{value[:40]}') that is not a timestamp, "
                "so a lookback cannot be applied", hint="remove lookback or use another cursor"
            ) from None
        delta = lookback if isinstance(lookback, dt.timedelta) else dt.timedelta(
            seconds=float(lookback))
        sep = "T" if "T" in value else " "
        out = (parsed - delta).isoformat(sep=sep)
        return out if "." in value or "." not in out else out.split(".")[0]
    return value

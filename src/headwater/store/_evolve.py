"""Schema evolution: which incoming columns to add, widen or cast, and which changes to refuse."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from headwater.core import SchemaChangeError
from headwater.core._arrow import is_binary, is_text

_INT_ORDER = [pa.int8(), pa.int16(), pa.int32(), pa.int64()]


@dataclass
class Evolution:
    """What a load must do to fit an existing table."""

    add: list[pa.Field] = field(default_factory=list)      # new columns to add to the table
    widen: list[pa.Field] = field(default_factory=list)    # table columns to widen to this type
    cast: dict[str, pa.DataType] = field(default_factory=dict)  # incoming columns to cast

    @property
    def empty(self) -> bool:
        """True when the incoming data fits the table as it is."""
        return not (self.add or self.widen or self.cast)


def plan_evolution(table: str, existing: pa.Schema, incoming: pa.Schema) -> Evolution:
    """Decide how ``incoming`` fits a table with schema ``existing``.

    New columns are added; a narrower incoming type is cast up; a wider lossless one widens the
    table (int32 -> int64, int -> float64, float32 -> float64, date -> timestamp); anything else
    would lose data and raises :class:`SchemaChangeError`.

    >>> plan_evolution("t", pa.schema([("a", pa.int32())]), pa.schema([("a", pa.int64())])).widen
    [pyarrow.Field<a: int64>]
    """
    plan = Evolution()
    have = {f.name: f for f in existing}
    for new in incoming:
        old = have.get(new.name)
        if old is None:
            type_ = pa.string() if pa.types.is_null(new.type) else new.type
            plan.add.append(pa.field(new.name, type_))
        elif old.type.equals(new.type) or (is_text(old.type) and is_text(new.type)) or (
                is_binary(old.type) and is_binary(new.type)):
            continue  # every store takes any of Arrow's three layouts of text (or bytes) alike
        elif pa.types.is_null(new.type) or _lossless(new.type, old.type):
            plan.cast[new.name] = old.type
        elif _lossless(old.type, new.type):
            plan.widen.append(pa.field(new.name, new.type))
        else:
            raise SchemaChangeError(
                f"table '{table}', column '{new.name}': the table holds {old.type} but this load "
                f"brings {new.type}, and converting would lose data",
                hint=f"give '{new.name}' the type {old.type} in the contract (values that do not "
                "convert go to the quarantine), load with --mode replace, or use a new table",
            )
    return plan


def _lossless(src: pa.DataType, dst: pa.DataType) -> bool:
    """True if every value of type ``src`` converts to ``dst`` without loss."""
    if src.equals(dst):
        return True
    if pa.types.is_integer(src) and pa.types.is_integer(dst):
        if pa.types.is_signed_integer(src) != pa.types.is_signed_integer(dst):
            return pa.types.is_unsigned_integer(src) and dst.bit_width > src.bit_width
        return dst.bit_width >= src.bit_width
    if pa.types.is_integer(src) and pa.types.is_floating(dst):
        return src.bit_width <= 32 or dst.bit_width == 64
    if pa.types.is_floating(src) and pa.types.is_floating(dst):
        return dst.bit_width >= src.bit_width
    if pa.types.is_integer(src) and pa.types.is_decimal(dst):
        return dst.precision - dst.scale >= 19
    if pa.types.is_decimal(src) and pa.types.is_decimal(dst):
        return dst.scale >= src.scale and dst.precision - dst.scale >= src.precision - src.scale
    if pa.types.is_date(src) and pa.types.is_timestamp(dst):
        return True
    if pa.types.is_timestamp(src) and pa.types.is_timestamp(dst):
        return src.tz == dst.tz or (src.tz is None) == (dst.tz is None)
    if is_text(src) and is_text(dst):
        return True
    if src == pa.uuid() and is_text(dst):
        return True
    return pa.types.is_dictionary(src) and _lossless(src.value_type, dst)


"""Rules as Polars expressions: each gives a 'fails' mask and a human reason per failing row.

Rule names are what the quarantine records: ``type(amount)``, ``not_null(email)``,
``range(quantity)``, ``allowed(status)``, ``pattern(email)``, ``length(code)``,
``outlier(amount)``, ``unknown(note)``, ``rule(end_after_start)``, ``primary_key(order_id)``,
``unique(email)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import polars as pl

from headwater.config._contract import ColumnSpec
from headwater.contract._expr import kind_of
from headwater.core import ContractError

#: Work columns: the cleaned text before typing, and the type-failure mask.
PRE = "__hw_pre:"
TYPE_FAILED = "__hw_tf:"


@dataclass
class RuleDef:
    """One rule: its name, the columns it is about, where it fails and why."""

    name: str
    columns: list[str]
    fails: pl.Expr
    reason: pl.Expr


def show(e: pl.Expr, quoted: bool = False, width: int = 60) -> pl.Expr:
    """A value as text for a message ('null' for null, long text cut)."""
    text = e.cast(pl.String, strict=False)
    # (no when/then here: Polars 2.1 can panic on string functions inside a ternary)
    cut = text.str.head(width - 1)
    text = pl.concat_str([cut, text.str.slice(width - 1, 1).str.replace(r"(?s).", "…")])
    if quoted:
        text = pl.lit("'") + text + pl.lit("'")
    return text.fill_null("null")


def literal_for(value: Any, type_: str, where: str) -> Any:
    """Convert a bound or allowed value from the contract to the column's type."""
    kind = kind_of(type_)
    try:
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            number = float(value) if isinstance(value, str) else value
            return int(number) if type_ == "integer" and float(number).is_integer() else number
        if kind == "date":
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        if kind == "timestamp":
            stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
        if kind == "time":
            return value if isinstance(value, time) else time.fromisoformat(str(value))
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            raise ValueError
        return str(value)
    except (ValueError, TypeError):
        raise ContractError(f"{where}: {value!r} is not a valid {type_}",
                            hint=f"write a {type_} value (dates as 2024-01-31)") from None


def column_rules(name: str, col: ColumnSpec, *, label: str, typed_from_text: bool,
                 missing: bool, required: bool) -> list[RuleDef]:
    """The rules declared on one column, in a fixed order."""
    c = pl.col(name)
    out: list[RuleDef] = []
    if typed_from_text:
        out.append(RuleDef(
            f"type({name})", [name], pl.col(TYPE_FAILED + name),
            pl.format("{}: {} is not a valid {}", pl.lit(name),
                      show(pl.col(PRE + name), quoted=True), pl.lit(label))))
    if required:
        tf = pl.col(TYPE_FAILED + name) if typed_from_text else pl.lit(False)
        why = ("the input has no such column, and the column may not be null" if missing
               else "missing (null or blank), but the column may not be null")
        out.append(RuleDef(f"not_null({name})", [name], c.is_null() & ~tf,
                           pl.lit(f"{name}: {why}")))
    if col.min is not None or col.max is not None:
        lo = None if col.min is None else literal_for(col.min, col.type, f"columns.{name}.min")
        hi = None if col.max is None else literal_for(col.max, col.type, f"columns.{name}.max")
        below = (c < pl.lit(lo)) if lo is not None else pl.lit(False)
        above = (c > pl.lit(hi)) if hi is not None else pl.lit(False)
        out.append(RuleDef(
            f"range({name})", [name], (below | above).fill_null(False),
            pl.when(below.fill_null(False))
            .then(pl.format("{}: {} is below the minimum {}", pl.lit(name), show(c),
                            pl.lit(str(lo))))
            .otherwise(pl.format("{}: {} is above the maximum {}", pl.lit(name), show(c),
                                 pl.lit(str(hi))))))
    if col.allowed is not None:
        values = [literal_for(v, col.type, f"columns.{name}.allowed") for v in col.allowed]
        listed = ", ".join(str(v) for v in values[:12]) + (", …" if len(values) > 12 else "")
        out.append(RuleDef(
            f"allowed({name})", [name], (~c.is_in(values)).fill_null(False) & c.is_not_null(),
            pl.format("{}: {} is not one of: {}", pl.lit(name), show(c, quoted=True),
                      pl.lit(listed))))
    if col.pattern is not None:
        anchored = f"^(?:{col.pattern})$"
        try:
            pl.Series([""], dtype=pl.String).str.contains(anchored)
        except Exception as exc:
            raise ContractError(
                f"columns.{name}.pattern: invalid regular expression {col.pattern!r}: "
                f"{str(exc).splitlines()[0]}",
                hint="patterns use Rust regex syntax (like Python's re, without look-around)",
            ) from None
        text = c.cast(pl.String, strict=False)
        out.append(RuleDef(
            f"pattern({name})", [name], (~text.str.contains(anchored)).fill_null(False),
            pl.format("{}: {} does not match the pattern {}", pl.lit(name),
                      show(c, quoted=True), pl.lit(col.pattern))))
    if col.min_length is not None or col.max_length is not None:
        length = c.cast(pl.String, strict=False).str.len_chars()
        short = length < col.min_length if col.min_length is not None else pl.lit(False)
        long = length > col.max_length if col.max_length is not None else pl.lit(False)
        expected = (f"{col.min_length} to {col.max_length}" if None not in (
            col.min_length, col.max_length) else f"at least {col.min_length}"
            if col.min_length is not None else f"at most {col.max_length}")
        out.append(RuleDef(
            f"length({name})", [name], (short | long).fill_null(False),
            pl.format("{}: {} has {} characters; expected {}", pl.lit(name),
                      show(c, quoted=True), length, pl.lit(expected))))
    return out


def outlier_rule(name: str, low: float, high: float, quarantine: bool) -> tuple[pl.Expr, RuleDef]:
    """The outside-the-bounds mask of a column, and the rule that quarantines it."""
    c = pl.col(name)
    outside = ((c < low) | (c > high)).fill_null(False)
    rule = RuleDef(f"outlier({name})", [name], outside,
                   pl.format("{}: {} is an outlier (usual range {} to {})", pl.lit(name),
                             show(c), pl.lit(_num(low)), pl.lit(_num(high))))
    return outside, rule


def unknown_rule(name: str) -> RuleDef:
    """A value in a column the contract does not declare (unknown_columns: quarantine)."""
    c = pl.col(name)
    return RuleDef(f"unknown({name})", [], c.is_not_null(),
                   pl.format("{}: {} is in a column the contract does not declare "
                             "(unknown_columns: quarantine)", pl.lit(name), show(c, quoted=True)))


def key_reason(rule: str, key: list[str], primary: bool) -> pl.Expr:
    """Message for a duplicate key."""
    values = [pl.format("{}={}", pl.lit(k), show(pl.col(k), quoted=True)) for k in key]
    joined = pl.concat_str(values, separator=", ")
    what = "primary key" if primary else "unique key"
    return pl.format("{} {} appears again in this run (the first row with it was kept)",
                     pl.lit(what), joined)


def _num(value: float) -> str:
    return f"{value:.6g}"

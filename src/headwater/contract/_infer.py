"""Contract inference: guess column types from a sample, and write the YAML a person edits.

``headwater contract infer FILE`` and loads without a contract use :func:`infer_contract`. Each
text column gets the narrowest type that reads at least ``threshold`` of its non-null sample
values (boolean, integer, float, date, timestamp, time), else string; values that do not fit go
to the quarantine with ``type(column)``, so a few bad values never widen a column to text.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl
import pyarrow as pa
import yaml

from headwater._version import __version__
from headwater.config._contract import CONTRACT_VERSION, CleanseSpec, ColumnSpec, ContractSpec
from headwater.contract._cleanse import (
    FALSE_WORDS,
    TRUE_WORDS,
    _date_attempt,
    clean_text,
    date_formats,
    parser_for,
)
from headwater.core import POSITION
from headwater.core._arrow import DB_TYPE

#: At most this many rows are looked at.
SAMPLE_ROWS = 20_000

_SLASH_DAY_FIRST = r"^(1[3-9]|2\d|3[01])[/.-]\d{1,2}[/.-]\d{2,4}"
_LEADING_ZERO = r"^[+-]?0\d"
_TIME_OF_DAY = r"\d{1,2}:\d{2}"


def infer_contract(sample: pa.Table, *, threshold: float = 0.98, name: str | None = None,
                   ) -> ContractSpec:
    """A contract for data like ``sample``: types, nullability, and notes for people.

    Parameters
    ----------
    sample:
        Rows as a source reads them (``_hw_pos`` is ignored).
    threshold:
        Share of non-null values a type must read to be chosen (default 0.98).
    name:
        The contract's name.

    >>> import pyarrow as pa
    >>> spec = infer_contract(pa.table({"id": ["1", "2"], "when": ["2024-01-05", "2024-02-01"]}))
    >>> {n: c.type for n, c in spec.columns.items()}
    {'id': 'integer', 'when': 'date'}
    """
    uuids = {f.name for f in sample.schema if f.type == pa.uuid()}  # Polars sees only bytes
    declared = {f.name for f in sample.schema if DB_TYPE in (f.metadata or {})}
    frame = pl.DataFrame(sample)
    if POSITION in frame.columns:
        frame = frame.drop(POSITION)
    frame = frame.head(SAMPLE_ROWS)
    columns: dict[str, ColumnSpec] = {}
    hints: dict[str, str] = {}
    names = _names(frame.columns)
    key_guess: list[str] = []
    for source, target in zip(frame.columns, names, strict=True):
        series = frame.get_column(source)
        if source in uuids:
            column, cleaned = ColumnSpec(type="uuid"), series
        elif source in declared:  # the database typed it: text stays text
            column, cleaned = ColumnSpec(type=_type_of(series.dtype)), series
        else:
            column, cleaned = _infer_column(series, threshold)
        if target != _normal(source):
            column = column.model_copy(update={"from_": source})
        columns[target] = column
        hints[target] = _describe(cleaned, frame.height)
        if (not key_guess and cleaned.null_count() == 0 and frame.height >= 2
                and cleaned.n_unique() == frame.height
                and column.type in {"integer", "string", "uuid"}
                and re.search(r"(^id$|_id$|^id_|key$|code$|number$)", target)):
            key_guess = [target]
    spec = ContractSpec(version=CONTRACT_VERSION, name=name, columns=columns)
    spec._hints = {"columns": hints, "primary_key": key_guess, "rows": frame.height}
    return spec


def _names(columns: list[str]) -> list[str]:
    """snake_case names, unless two columns would get the same one (then both keep theirs)."""
    normal = [_normal(c) or c for c in columns]
    return [n if normal.count(n) == 1 and (n == c or n not in columns) else c
            for c, n in zip(columns, normal, strict=True)]


def _normal(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def _infer_column(series: pl.Series, threshold: float) -> tuple[ColumnSpec, pl.Series]:
    dtype = series.dtype
    if dtype != pl.String and dtype != pl.Null:
        return ColumnSpec(type=_type_of(dtype), nullable=True), series
    cleanse = CleanseSpec()
    cleaned = series.to_frame("v").select(clean_text(pl.col("v").cast(pl.String), cleanse)
                                          ).to_series()
    values = cleaned.drop_nulls()
    if values.is_empty():
        return ColumnSpec(type="string"), cleaned
    lowered = set(values.str.to_lowercase().unique().to_list())
    words = set(TRUE_WORDS) | set(FALSE_WORDS)
    if lowered <= words and not lowered <= {"0", "1"}:
        return ColumnSpec(type="boolean"), cleaned
    leading_zero = bool(values.str.contains(_LEADING_ZERO).any())
    day_first = bool(values.str.contains(_SLASH_DAY_FIRST).any())
    has_time = values.str.contains(_TIME_OF_DAY).mean() or 0.0
    candidates: list[ColumnSpec] = []
    if not leading_zero:
        candidates += [ColumnSpec(type="integer"), ColumnSpec(type="float")]
    if has_time < 0.5:
        candidates.append(ColumnSpec(type="date", day_first=day_first))
    candidates.append(ColumnSpec(type="timestamp", day_first=day_first))
    candidates.append(ColumnSpec(type="time"))
    for candidate in candidates:
        parser = parser_for(candidate, cleanse)
        attempts = parser.attempts
        if candidate.type == "date":  # dates only, not timestamps cut to dates
            attempts = [_date_attempt(f) for f in date_formats(candidate)]
        parsed = values.to_frame("v").select(pl.coalesce(
            [a(pl.col("v")).cast(parser.dtype, strict=False) for a in attempts])).to_series()
        share = 1 - parsed.null_count() / len(values)
        if share >= threshold:
            return candidate, cleaned
    return ColumnSpec(type="string"), cleaned


def _type_of(dtype: pl.DataType) -> str:
    if dtype == pl.UInt64:
        return "decimal(20,0)"  # past int64
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.Decimal):
        return f"decimal({dtype.precision or 38},{dtype.scale or 0})"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if dtype == pl.Time:
        return "time"
    if isinstance(dtype, pl.Struct | pl.List | pl.Array):
        return "json"
    if dtype == pl.Binary:
        return "binary"
    return "string"


def _describe(values: pl.Series, rows: int) -> str:
    nulls = values.null_count()
    distinct = values.drop_nulls().n_unique()
    example = values.drop_nulls().head(1).to_list()
    shown = ""
    if example:
        text = str(example[0])
        shown = f", e.g. {text[:30]!r}"
    return f"{nulls / rows:.0%} null, {distinct:,} distinct{shown}" if rows else "no rows"


# ------------------------------------------------------------------------------------ dump

_COMMENTS = {
    "unknown_columns": "keep | drop | quarantine: input columns not listed below",
    "dedupe": "'exact', or {by: [key], latest: column}",
}


def dump_contract(spec: ContractSpec) -> str:
    """The contract as YAML for a person to edit, with comments; ``load`` reads it back.

    >>> text = dump_contract(ContractSpec(columns={"id": ColumnSpec(type="integer")}))
    >>> "type: integer" in text
    True
    """
    hints: dict[str, Any] = getattr(spec, "_hints", {}) or {}
    data = spec.model_dump(by_alias=True, exclude_defaults=True, exclude_none=True)
    lines = [f"# headwater contract (format version {CONTRACT_VERSION}), written by headwater "
             f"{__version__}."]
    if hints.get("rows"):
        lines.append(f"# Inferred from {hints['rows']:,} sample rows: check the types, then add "
                     "rules.")
    lines += ["# Every key is described in docs/contracts.md. Use it with",
              "#   headwater ingest file DATA --table NAME --contract THIS_FILE",
              "# or as `contract: THIS_FILE` on a pipeline in headwater.yaml.",
              f"version: {CONTRACT_VERSION}"]
    for key in ("name", "description"):
        if key in data:
            lines.append(f"{key}: {_flow(data[key])}")
    lines.append(_commented(f"unknown_columns: {spec.unknown_columns}",
                            _COMMENTS["unknown_columns"]))
    if spec.primary_key:
        lines.append(f"primary_key: {_flow(spec.primary_key)}")
    elif hints.get("primary_key"):
        lines.append(_commented(f"# primary_key: {_flow(hints['primary_key'])}",
                                "looks like a key: unique and never null in the sample"))
    for key in ("unique", "rename"):
        if key in data:
            lines.append(f"{key}: {_flow(data[key])}")
    if "dedupe" in data:
        dedupe = "exact" if not data["dedupe"] else _flow(data["dedupe"])
        lines.append(_commented(f"dedupe: {dedupe}", _COMMENTS["dedupe"]))
    if "cleanse" in data:
        lines.append("cleanse:")
        lines += [f"  {k}: {_flow(v)}" for k, v in data["cleanse"].items()]
    lines.append("columns:")
    column_hints = hints.get("columns", {})
    for name, column in data.get("columns", {}).items():
        head = f"  {_key(name)}:"
        lines.append(_commented(head, column_hints.get(name, "")))
        lines.append(f"    type: {spec.columns[name].type}")
        for key, value in column.items():
            if key != "type":
                lines.append(f"    {key}: {_flow(value)}")
    if "rules" in data:
        lines.append("rules:")
        for rule, value in data["rules"].items():
            lines.append(f"  {_key(rule)}: {_flow(value)}")
    else:
        lines += ["# rules:                         # row rules: name: expression",
                  "#   end_after_start: end_date >= start_date"]
    if "table" in data:
        lines.append("table:")
        lines += [f"  {k}: {_flow(v)}" for k, v in data["table"].items()]
    else:
        lines += ["# table:                         # checked when a run ends",
                  "#   min_rows: 1",
                  "#   freshness: {column: updated_at, max_age: 2d}"]
    return "\n".join(lines) + "\n"


def _commented(text: str, comment: str) -> str:
    return f"{text:<32} # {comment}" if comment else text


def _flow(value: Any) -> str:
    """One YAML value in flow style, quoted where YAML needs it."""
    text = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=10_000,
                          sort_keys=False).strip()
    return text[1:-1]


def _key(name: str) -> str:
    return _flow(name)

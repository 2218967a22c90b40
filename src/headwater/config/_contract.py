"""Contract specifications: the columns, types, cleansing and rules a table's rows must meet.

A contract lives in its own YAML file (``contracts/orders.yaml``) or inline under a pipeline's
``contract:`` key in headwater.yaml. ``docs/contracts.md`` describes every key with an example.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from headwater.config._yaml import dotted, line_of, load_yaml, read_text
from headwater.core import ConfigError, check_duration

#: The contract format this version of headwater writes and reads.
CONTRACT_VERSION = 1

#: Base type names; ``decimal(p,s)`` carries its precision and scale.
BASE_TYPES = (
    "string", "integer", "float", "decimal", "boolean", "date", "timestamp", "time", "json",
    "uuid", "binary",
)

_ALIASES = {
    "str": "string", "text": "string", "varchar": "string",
    "int": "integer", "bigint": "integer", "long": "integer", "int64": "integer",
    "double": "float", "number": "float", "float64": "float", "real": "float",
    "bool": "boolean",
    "datetime": "timestamp", "timestamptz": "timestamp",
    "numeric": "decimal",
    "bytea": "binary", "bytes": "binary", "blob": "binary",
}
_DECIMAL = re.compile(r"^decimal\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")


def normalise_type(value: str) -> str:
    """Canonical spelling of a column type: ``'INT'`` -> ``'integer'``, ``'numeric(10, 2)'`` ->
    ``'decimal(10,2)'``.

    >>> normalise_type("Numeric(10, 2)")
    'decimal(10,2)'
    """
    text = str(value).strip().lower()
    text = _ALIASES.get(text, text)
    if text.startswith("numeric"):
        text = "decimal" + text[len("numeric"):]
    if text == "decimal":
        return "decimal(18,2)"
    match = _DECIMAL.match(text)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2) or 0)
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(f"decimal({precision},{scale}): precision must be 1..38 and "
                             "scale at most the precision")
        return f"decimal({precision},{scale})"
    if re.match(r"^decimal\s*\(\s*\d+\s*$", text):
        raise ValueError(f"{value!r} is cut at the comma: inside {{ }} YAML splits 'decimal(10,2)' "
                         "in two; quote it: type: 'decimal(10,2)'")
    if text not in BASE_TYPES:
        raise ValueError(f"unknown type {value!r}; use one of: string, integer, float, "
                         "decimal(p,s), boolean, date, timestamp, time, json, uuid, binary")
    return text


def decimal_parts(type_: str) -> tuple[int, int]:
    """``'decimal(12,2)'`` -> ``(12, 2)``."""
    match = _DECIMAL.match(type_)
    if not match:
        raise ValueError(f"{type_!r} is not a decimal type")
    return int(match.group(1)), int(match.group(2) or 0)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CleanseSpec(_Spec):
    """How text values are cleaned before they are typed. Set for the whole table under
    ``cleanse:``; a column's own ``cleanse:`` overrides single keys."""

    trim: bool = Field(True, description="strip leading and trailing whitespace")
    whitespace: bool = Field(
        False, description="collapse runs of whitespace inside a value to one space"
    )
    case: Literal["lower", "upper", "title"] | None = Field(
        None, description="normalise the letter case of text"
    )
    default_nulls: bool = Field(
        True,
        description="read '', '-', '--', 'N/A', 'NA'-style tokens ('n/a', 'null', 'none', 'nan', "
        "'#N/A', 'nil') as null, in any letter case",
    )
    null_values: list[str] = Field(
        default_factory=list, description="more values to read as null, e.g. ['?', 'unknown']"
    )
    numbers: bool = Field(
        True,
        description="numbers may carry thousands separators, currency signs or codes, a percent "
        "sign and accounting parentheses: '$1,234.50', '(12.00)', '15%'",
    )
    decimal: Literal["auto", "point", "comma"] = Field(
        "auto",
        description="decimal separator: 'point' (1,234.5), 'comma' (1.234,5) or 'auto' (per value: "
        "'12,50' and '1.234,5' are read with a decimal comma, '1,234' as one thousand two "
        "hundred and thirty-four)",
    )
    percent: Literal["fraction", "number"] = Field(
        "fraction", description="'15%' becomes 0.15 ('fraction') or 15 ('number')"
    )


class OutlierSpec(_Spec):
    """Values far from the rest: found by IQR, z-score or fixed bounds; clipped, flagged or
    quarantined."""

    method: Literal["iqr", "zscore", "bounds"] = Field(
        "iqr", description="iqr: outside [q1 - k*iqr, q3 + k*iqr]; zscore: |x - mean| > z*std; "
        "bounds: outside [min, max]"
    )
    action: Literal["clip", "flag", "quarantine"] = Field(
        "flag",
        description="clip to the bounds, flag in a boolean column '<column>_outlier', or send "
        "the row to the quarantine with rule outlier(<column>)",
    )
    k: float = Field(1.5, gt=0, description="iqr: the multiple of the interquartile range")
    z: float = Field(3.0, gt=0, description="zscore: how many standard deviations")
    min: float | None = Field(None, description="bounds: the lowest usual value")
    max: float | None = Field(None, description="bounds: the highest usual value")

    @model_validator(mode="after")
    def _bounds_given(self) -> OutlierSpec:
        if self.method == "bounds" and self.min is None and self.max is None:
            raise ValueError("method 'bounds' needs min, max or both")
        return self


class UnitSpec(_Spec):
    """Unit conversion after typing: ``{from: lb, to: kg}``, or ``{factor: 0.001}`` (and
    ``offset``): value * factor + offset."""

    from_: str | None = Field(None, alias="from", description="the unit the data is in, e.g. lb")
    to: str | None = Field(None, description="the unit to store, e.g. kg")
    factor: float | None = Field(None, description="multiply by this (instead of from/to)")
    offset: float = Field(0.0, description="then add this (with factor)")

    @model_validator(mode="after")
    def _one_way(self) -> UnitSpec:
        named = self.from_ is not None or self.to is not None
        if named and self.factor is not None:
            raise ValueError("give either from/to units or a factor, not both")
        if not named and self.factor is None:
            raise ValueError("give from and to (e.g. from: lb, to: kg) or a factor")
        if named and (self.from_ is None or self.to is None):
            raise ValueError("unit conversion needs both from and to")
        return self


class FillSpec(_Spec):
    """Fill nulls: with a constant value, or with the previous non-null value (forward)."""

    strategy: Literal["value", "forward"] = Field(
        "value", description="value: use `value`; forward: carry the last non-null value down"
    )
    value: Any = Field(None, description="the constant for strategy 'value'")

    @model_validator(mode="after")
    def _value_given(self) -> FillSpec:
        if self.strategy == "value" and self.value is None:
            raise ValueError("fill with strategy 'value' needs a value, e.g. fill: {value: 0}")
        return self


class ColumnSpec(_Spec):
    """One column: its type, whether it may be null, how it is cleaned and which rules it meets."""

    type: str = Field("string", description="string, integer, float, decimal(p,s), boolean, "
                      "date, timestamp (stored in UTC), time, json, uuid or binary")
    nullable: bool = Field(True, description="false: a null or blank value fails not_null(col)")
    description: str | None = Field(None, description="what the column means, for people")
    from_: str | None = Field(
        None, alias="from", description="the column's name in the input, when it differs"
    )
    # per-type options
    formats: list[str] | None = Field(
        None,
        description="date/timestamp/time: strftime formats to try in order (e.g. '%d.%m.%Y'); "
        "the common formats are tried after them",
    )
    day_first: bool = Field(
        False, description="date/timestamp: read 03/04/2024 as 3 April (default: 4 March)"
    )
    timezone: str = Field(
        "UTC",
        description="timestamp: the time zone of values without an offset (e.g. Europe/Paris); "
        "values are stored in UTC",
    )
    epoch: Literal["s", "ms", "us"] | None = Field(
        None, description="timestamp: numbers are seconds / milliseconds / microseconds since 1970"
    )
    encoding: Literal["base64", "hex"] = Field(
        "base64", description="binary: how text values spell the bytes (hex may start with "
        "\\x or 0x)"
    )
    true_values: list[str] | None = Field(
        None, description="boolean: words read as true (default yes, y, true, t, 1, on)"
    )
    false_values: list[str] | None = Field(
        None, description="boolean: words read as false (default no, n, false, f, 0, off)"
    )
    # cleansing
    cleanse: CleanseSpec | None = Field(None, description="overrides of the table's cleanse keys")
    map: dict[str, Any] | None = Field(
        None, description="replace values after cleaning and before typing, e.g. {M: male}"
    )
    unit: UnitSpec | None = Field(None, description="convert units after typing")
    outliers: OutlierSpec | None = Field(None, description="find and handle outliers")
    fill: FillSpec | None = Field(None, description="fill nulls before the rules are checked")
    # rules
    min: float | int | str | None = Field(
        None, description="the lowest allowed value (inclusive; a date text for dates)"
    )
    max: float | int | str | None = Field(
        None, description="the highest allowed value (inclusive; a date text for dates)"
    )
    allowed: list[Any] | None = Field(None, description="the only values allowed")
    pattern: str | None = Field(
        None, description="a regular expression the whole text value must match"
    )
    min_length: int | None = Field(None, ge=0, description="fewest characters")
    max_length: int | None = Field(None, ge=0, description="most characters")
    unique: bool = Field(False, description="no two rows of a run share a non-null value")

    @field_validator("type")
    @classmethod
    def _type_known(cls, value: str) -> str:
        return normalise_type(value)

    @model_validator(mode="after")
    def _lengths_ordered(self) -> ColumnSpec:
        if (self.min_length is not None and self.max_length is not None
                and self.min_length > self.max_length):
            raise ValueError("min_length is greater than max_length")
        return self


class RowRuleSpec(_Spec):
    """A row rule: an expression every row must meet, with an optional message."""

    check: str = Field(description="e.g. end_date >= start_date and quantity * price < 1e6")
    message: str | None = Field(None, description="what to tell people when a row fails it")


class FreshnessSpec(_Spec):
    """The newest value of a timestamp column must be at most ``max_age`` old."""

    column: str = Field(description="a date or timestamp column")
    max_age: str = Field(description="e.g. 36h, 2d, 90m, 1w")

    @field_validator("max_age")
    @classmethod
    def _age_parses(cls, value: str) -> str:
        return check_duration(value)


class TableRulesSpec(_Spec):
    """Rules on the whole run's rows, checked when the run ends."""

    min_rows: int | None = Field(None, ge=0, description="fewest valid rows a run must load")
    max_rows: int | None = Field(None, ge=0, description="most valid rows a run may load")
    freshness: FreshnessSpec | None = Field(None, description="the newest row must be recent")
    severity: Literal["error", "warning"] = Field(
        "error", description="error: the run fails; warning: it is reported"
    )


class DedupeSpec(_Spec):
    """Duplicates to drop (counted): exact copies, or rows sharing a key (the latest wins)."""

    by: list[str] | None = Field(None, description="key columns; omit for exact duplicates")
    latest: str | None = Field(
        None,
        description="with `by`: keep the row with the greatest value of this column (a number, "
        "date or timestamp); without it the last row read wins",
    )

    @field_validator("by", mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _latest_needs_key(self) -> DedupeSpec:
        if self.latest is not None and not self.by:
            raise ValueError("dedupe.latest needs dedupe.by (the key columns)")
        return self


class ContractSpec(_Spec):
    """A contract: the columns a table has and the rules its rows meet."""

    version: int = Field(CONTRACT_VERSION, description="contract format version")
    name: str | None = Field(None, description="a name for people (default: the file name)")
    description: str | None = Field(None, description="what the table holds")
    columns: dict[str, ColumnSpec] = Field(
        default_factory=dict, description="the columns in table order: name -> spec"
    )
    primary_key: list[str] = Field(
        default_factory=list,
        description="columns that identify a row: never null, unique within a run (a duplicate "
        "beyond the first is quarantined unless dedupe keeps the latest)",
    )
    unique: list[list[str]] = Field(
        default_factory=list, description="more unique keys: [[email], [region, code]]"
    )
    rules: dict[str, str | RowRuleSpec] = Field(
        default_factory=dict,
        description="row rules: name -> expression (or {check, message}), "
        "e.g. end_after_start: end_date >= start_date",
    )
    table: TableRulesSpec = Field(default_factory=TableRulesSpec,
                                  description="rules on the whole run")
    dedupe: DedupeSpec | None = Field(
        None, description="'exact', or {by: [key], latest: column}"
    )
    rename: dict[str, str] = Field(
        default_factory=dict, description="input name -> column name, applied before anything else"
    )
    unknown_columns: Literal["keep", "drop", "quarantine"] = Field(
        "keep",
        description="input columns the contract does not declare: keep them (added to the "
        "table), drop them, or quarantine rows that have a value in one",
    )
    cleanse: CleanseSpec = Field(
        default_factory=CleanseSpec, description="cleansing for every column (columns override)"
    )
    #: Notes for people from `contract infer` (sample statistics, suggested keys); not saved.
    _hints: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("primary_key", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("unique", mode="before")
    @classmethod
    def _unique_lists(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [[value]]
        if isinstance(value, list):
            return [[v] if isinstance(v, str) else v for v in value]
        return value

    @field_validator("dedupe", mode="before")
    @classmethod
    def _dedupe_word(cls, value: Any) -> Any:
        if value == "exact":
            return {}
        if isinstance(value, str):
            raise ValueError("dedupe is 'exact' or {by: [key columns], latest: column}")
        return value

    @field_validator("version")
    @classmethod
    def _version_known(cls, value: int) -> int:
        if value > CONTRACT_VERSION:
            raise ValueError(f"this contract has format version {value}, but this headwater "
                             f"reads version {CONTRACT_VERSION}: upgrade headwater")
        return value

    @model_validator(mode="after")
    def _names_declared(self) -> ContractSpec:
        declared = set(self.columns)
        if not self.columns:
            return self  # a contract of rules only: columns come from the data
        checks: list[tuple[str, list[str]]] = [("primary_key", self.primary_key)]
        checks += [(f"unique[{i}]", key) for i, key in enumerate(self.unique)]
        if self.dedupe is not None:
            checks.append(("dedupe.by", self.dedupe.by or []))
            checks.append(("dedupe.latest", [self.dedupe.latest] if self.dedupe.latest else []))
        if self.table.freshness is not None:
            checks.append(("table.freshness.column", [self.table.freshness.column]))
        for key, names in checks:
            missing = [n for n in names if n not in declared]
            if missing:
                raise ValueError(f"{key} names {missing}, which are not under columns "
                                 f"(columns: {', '.join(self.columns)})")
        return self


def parse_contract(data: Any, *, origin: str = "contract", lines: dict | None = None,
                   ) -> ContractSpec:
    """Validate contract data (already parsed YAML); errors name every bad key and its line."""
    if isinstance(data, ContractSpec):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a contract is a mapping with `columns:` and rules",
                          hint="see docs/contracts.md, or run `headwater contract infer FILE`")
    try:
        return ContractSpec.model_validate(data)
    except ValidationError as exc:
        out = [f"{origin} has {exc.error_count()} problem(s):"]
        for err in exc.errors(include_url=False):
            loc = _file_loc(err["loc"], lines or {})
            line = line_of(lines or {}, loc)
            where = f"line {line}, " if line else ""
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
            out.append(f"  {where}{dotted(loc)}: {err['msg']}{shown}")
        raise ConfigError("\n".join(out),
                          hint="docs/contracts.md lists every key with an example") from None


_UNION_TAGS = {"str", "int", "float", "bool", "RowRuleSpec", "list[any]", "dict[str,any]"}


def _file_loc(loc: tuple, lines: dict) -> tuple:
    """Drop the parts of a pydantic error location that are not keys (union tags, validators)."""
    out: tuple = ()
    for part in loc:
        if (*out, part) in lines:
            out = (*out, part)
        elif isinstance(part, str) and (part.startswith("function-") or part in _UNION_TAGS):
            continue
        else:
            out = (*out, part)
    return out


def load_contract_file(path: str | Path) -> tuple[ContractSpec, dict]:
    """Read and validate a contract YAML file; returns the spec and the key -> line map."""
    file = Path(path)
    data, lines = load_yaml(read_text(file), origin=str(file))
    spec = parse_contract(data, origin=str(file), lines=lines)
    if spec.name is None:
        spec.name = file.stem
    return spec, lines

"""Contracts: cleanse, type and validate batches; valid rows out, failing rows with every reason.

    contract = Contract.load("contracts/orders.yaml")
    checker = contract.checker()              # one per run: keys, dedupe and stats span batches
    for batch in batches:
        checked = checker.check(batch.data)   # valid, invalid (raw + rules + reasons), dropped
    problems = checker.finish()               # table rules (row count, freshness)
    checker.report.render(console)

Everything runs as Polars expressions over whole batches; nothing calls Python per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from headwater.config._contract import (
    CleanseSpec,
    ColumnSpec,
    ContractSpec,
    RowRuleSpec,
    load_contract_file,
    parse_contract,
)
from headwater.contract._cleanse import (
    UUID_LABEL,
    Parser,
    as_text,
    clean_text,
    parser_for,
    promotable,
    unit_factor,
)
from headwater.contract._expr import ExprError, compile_rule, kind_of
from headwater.contract._keys import KeySet, LatestMap
from headwater.contract._quality import Finding, QualityReport
from headwater.contract._rules import (
    PRE,
    TYPE_FAILED,
    RuleDef,
    column_rules,
    key_reason,
    literal_for,
    outlier_rule,
    show,
    unknown_rule,
)
from headwater.core import POSITION, ContractError, parse_duration

#: Schema of :attr:`Checked.invalid`.
INVALID_SCHEMA = pa.schema([
    (POSITION, pa.int64()), ("raw", pa.string()),
    ("rules", pa.list_(pa.string())), ("reasons", pa.list_(pa.string())),
])

_KEY_SEED = 0x4B3
#: Up to this many unread values, the other attempts run in one query rather than in turn.
_FEW = 20_000
#: A text column is cleansed once per distinct value when a batch has at most one distinct
#: value in this many rows (codes, statuses, countries): cheaper than cleansing every row.
_ROWS_PER_VALUE = 20


@dataclass
class Checked:
    """The outcome of checking one batch.

    ``valid`` holds cleansed rows typed per the contract, columns in contract order (then kept
    extra columns and outlier flags), with ``_hw_pos``. ``invalid`` holds ``_hw_pos``, ``raw``
    (the row as it came in, as a JSON object), ``rules`` and ``reasons`` (one message per failed
    rule). ``dropped`` counts duplicates the contract drops.
    """

    valid: pa.Table
    invalid: pa.Table
    dropped: int = 0

    @property
    def rows(self) -> int:
        """Rows in the input batch: valid + invalid + dropped."""
        return self.valid.num_rows + self.invalid.num_rows + self.dropped


@dataclass
class Typed:
    """One batch cleansed and typed (:meth:`Checker.typed`), waiting for its rules."""

    original: pl.DataFrame   # the batch as read, with ``_hw_pos``
    work: pl.DataFrame       # cleansed and typed columns, raw text and type-failure flags
    text_typed: list[str]    # columns typed from text: they get a type(...) rule
    missing: list[str]       # contract columns the batch lacks
    extras: list[str]        # batch columns the contract does not declare
    bounds: dict[str, tuple[float, float]]  # outlier bounds as fitted when it was typed

    @property
    def rows(self) -> int:
        """Rows in the batch."""
        return self.original.height


@dataclass
class _Column:
    name: str
    spec: ColumnSpec
    cleanse: CleanseSpec
    parser: Parser
    required: bool
    unit: tuple[float, float] | None = None
    fill: Any = None


@dataclass
class _Key:
    rule: str
    columns: list[str]
    primary: bool


class Contract:
    """A compiled contract: build it with :meth:`from_spec` or :meth:`load`.

    >>> c = Contract.from_spec({"columns": {"id": {"type": "integer", "nullable": False}}})
    >>> import pyarrow as pa
    >>> out = c.checker().check(pa.table({"id": ["1", "x"], "_hw_pos": [1, 2]}))
    >>> out.valid.column("id").to_pylist(), out.invalid.column("rules").to_pylist()
    ([1], [['type(id)']])
    """

    def __init__(self, spec: ContractSpec, *, origin: str = "contract",
                 lines: dict | None = None) -> None:
        self.spec = spec
        self.origin = origin
        self.lines = lines or {}
        self.name = spec.name or Path(origin).stem
        self._compile()

    # ------------------------------------------------------------------ building
    @classmethod
    def from_spec(cls, spec: ContractSpec | dict, *, origin: str = "contract") -> Contract:
        """Compile a contract from a spec or a plain dict (as in headwater.yaml).

        Raises ConfigError for keys that do not validate and ContractError for rules that do
        not fit the columns (an unknown column in a rule, a bad pattern, a bound of the wrong
        type).
        """
        return cls(parse_contract(spec, origin=origin), origin=origin)

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        """Read a contract YAML file; errors name the key and its line."""
        spec, lines = load_contract_file(path)
        return cls(spec, origin=str(path), lines=lines)

    def _where(self, *loc: str | int) -> str:
        line = None
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.lines:
                line = self.lines[loc[:end]]
                break
        dotted = ".".join(str(p) for p in loc)
        return f"{self.origin}{f' line {line}' if line else ''}, {dotted}"

    def _compile(self) -> None:
        spec = self.spec
        if not spec.columns:
            raise ContractError(f"{self.origin}: the contract declares no columns",
                                hint="add `columns:`, or write one with "
                                "`headwater contract infer FILE`")
        keyed = set(spec.primary_key)
        self.columns: dict[str, _Column] = {}
        self.kinds = {name: kind_of(c.type) for name, c in spec.columns.items()}
        self.uuid_columns = [name for name, c in spec.columns.items() if c.type == "uuid"]
        for name, col in spec.columns.items():
            cleanse = spec.cleanse
            if col.cleanse is not None:
                cleanse = spec.cleanse.model_copy(update={
                    k: getattr(col.cleanse, k) for k in col.cleanse.model_fields_set})
            try:
                parser = parser_for(col, cleanse)
                unit = unit_factor(col.unit) if col.unit else None
            except ContractError as exc:
                raise ContractError(f"{self._where('columns', name)}: {exc.message}",
                                    hint=exc.hint) from None
            kind = self.kinds[name]
            if ((col.unit or col.outliers) and kind != "number") or (
                    col.unit and col.type == "integer"):
                raise ContractError(
                    f"{self._where('columns', name)}: unit conversion and outliers need a "
                    f"float or decimal column, not {col.type}",
                    hint="set type: float (or decimal(p,s)) on this column")
            given = [k for k in ("min", "max", "allowed", "pattern", "min_length", "max_length",
                                 "map") if getattr(col, k) is not None]
            if kind == "binary" and given:
                raise ContractError(
                    f"{self._where('columns', name)}: {', '.join(given)} do not apply to a "
                    f"{col.type} column", hint="a uuid or binary column takes nullable, unique, "
                    "primary_key and row rules (e.g. `ref is not null`); remove the others")
            if kind == "string" and (col.min is not None or col.max is not None):
                raise ContractError(
                    f"{self._where('columns', name)}: min and max apply to numbers, dates and "
                    "times; text columns use min_length, max_length, allowed or pattern",
                    hint="remove min/max, or give the column a number or date type")
            fill = None
            if col.fill is not None and col.fill.strategy == "value":
                fill = literal_for(col.fill.value, col.type, self._where("columns", name, "fill"))
            self.columns[name] = _Column(name, col, cleanse, parser,
                                         required=not col.nullable or name in keyed,
                                         unit=unit, fill=fill)
            for bound in ("min", "max"):
                value = getattr(col, bound)
                if value is not None:
                    literal_for(value, col.type, self._where("columns", name, bound))
            if col.formats:
                _check_formats(parser, self._where("columns", name, "formats"))
            try:  # builds every rule once: bad patterns and allowed values fail here
                column_rules(name, col, label="", typed_from_text=False, missing=False,
                             required=False)
            except ContractError as exc:
                raise ContractError(f"{self._where('columns', name)}: {exc.message}",
                                    hint=exc.hint) from None
        self.row_rules: list[tuple[str, Any, str | None]] = []
        for rule_name, rule in spec.rules.items():
            text, message = ((rule.check, rule.message) if isinstance(rule, RowRuleSpec)
                             else (rule, None))
            try:
                compiled = compile_rule(text, self.kinds, rule_name)
            except ExprError as exc:
                raise ContractError(f"{self._where('rules', rule_name)}: {exc.message}",
                                    hint=exc.hint) from None
            self.row_rules.append((rule_name, compiled, message))
        dedupe = spec.dedupe
        self.dedupe_key = list(dedupe.by or []) if dedupe is not None else []
        self.dedupe_exact = dedupe is not None and not dedupe.by
        self.dedupe_latest = dedupe.latest if dedupe is not None else None
        if self.dedupe_latest and self.kinds[self.dedupe_latest] not in {
                "number", "date", "timestamp"}:
            raise ContractError(
                f"{self._where('dedupe', 'latest')}: '{self.dedupe_latest}' is a "
                f"{spec.columns[self.dedupe_latest].type}; the latest row is found by a number, "
                "date or timestamp", hint="name a column such as updated_at")
        self.keys: list[_Key] = []
        if spec.primary_key and spec.primary_key != self.dedupe_key:
            self.keys.append(_Key(f"primary_key({','.join(spec.primary_key)})",
                                  spec.primary_key, True))
        for key in spec.unique:
            if key != self.dedupe_key:
                self.keys.append(_Key(f"unique({','.join(key)})", key, False))
        for name, col in spec.columns.items():
            if col.unique and [name] != self.dedupe_key and [name] != spec.primary_key and [
                    name] not in spec.unique:
                self.keys.append(_Key(f"unique({name})", [name], False))
        fresh = spec.table.freshness
        if fresh is not None and self.kinds[fresh.column] not in {"date", "timestamp"}:
            raise ContractError(
                f"{self._where('table', 'freshness', 'column')}: '{fresh.column}' is a "
                f"{spec.columns[fresh.column].type}, not a date or timestamp",
                hint="name a date or timestamp column")

    def checker(self) -> Checker:
        """A new checker for one run (it remembers keys and statistics across batches)."""
        return Checker(self)

    def rule_names(self) -> list[str]:
        """Every rule this contract can report, in order."""
        names: list[str] = []
        for name, col in self.columns.items():
            typed = col.spec.type not in {"string"}
            names += [r.name for r in column_rules(name, col.spec, label="", typed_from_text=typed,
                                                   missing=False, required=col.required)]
            if col.spec.outliers is not None and col.spec.outliers.action == "quarantine":
                names.append(f"outlier({name})")
        names += [f"rule({n})" for n, _, _ in self.row_rules]
        names += [k.rule for k in self.keys]
        return names


class Checker:
    """Checks the batches of one run against a contract; see :class:`Contract`.

    State kept across batches: hashes of keys seen (uniqueness, dedupe), the last value of
    forward-filled columns, fitted outlier bounds, the newest value for freshness, and the
    mergeable statistics of :attr:`report`.
    """

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.report = QualityReport(contract.name)
        self.report.declare(contract.rule_names(),
                            {n: c.spec.type for n, c in contract.columns.items()})
        self._keys = {k.rule: KeySet() for k in contract.keys}
        self._exact = KeySet()
        self._latest = LatestMap()
        self._last_seen: dict[str, Any] = {}
        self._bounds: dict[str, tuple[float, float]] = {}
        self._first: dict[str, int] = {}  # column -> the attempt tried first (see _promote)
        self._many: set[str] = set()  # text columns with too many distinct values to map
        self._newest: Any = None
        self._positions = 0
        self._built_rules: dict[tuple[Any, ...], list[RuleDef]] = {}

    # ------------------------------------------------------------------ one batch
    def check(self, data: pa.Table) -> Checked:
        """Cleanse, type and validate one batch (with ``_hw_pos``)."""
        return self.validate(self.typed(data))

    def typed(self, data: pa.Table) -> Typed:
        """The first half of :meth:`check`: cleanse and type one batch.

        :meth:`typed` and :meth:`validate` keep separate state, so a pipeline may type batch
        *n + 1* on one thread while another validates batch *n* (each half in batch order).
        """
        contract = self.contract
        original = pl.DataFrame(data)
        if POSITION not in original.columns:
            original = original.with_columns(
                pl.int_range(self._positions + 1, self._positions + 1 + original.height,
                             dtype=pl.Int64).alias(POSITION))
        self._positions += original.height
        original = original.with_columns(pl.col(POSITION).cast(pl.Int64))
        frame = self._rename(original)
        extras = [c for c in frame.columns if c not in contract.columns and c != POSITION]
        missing = [c for c in contract.columns if c not in frame.columns]

        work, text_typed = self._type(frame, extras)
        work = self._post(work)
        return Typed(original, work, text_typed, missing, extras, dict(self._bounds))

    def validate(self, typed: Typed) -> Checked:
        """The second half of :meth:`check`: rules, keys, dedupe and statistics of a typed
        batch; valid rows out, failing rows with every reason."""
        contract = self.contract
        original, work, text_typed = typed.original, typed.work, typed.text_typed
        missing, extras = typed.missing, typed.extras
        rules = self._rules(text_typed, missing, extras, typed.bounds)
        masks = work.select([r.fails.alias(f"f{i}") for i, r in enumerate(rules)]) if rules \
            else pl.DataFrame(schema={})
        failed = (masks.select(pl.any_horizontal(pl.all())).to_series() if rules
                  else _falses("failed", work.height))
        dropped = self._dedupe_exact(work, extras)
        key_rules, key_masks, failed = self._check_keys(work, failed, dropped)
        if key_rules:
            masks = masks.hstack(key_masks) if rules else key_masks
            rules += key_rules
        dropped = self._dedupe_key(work, failed, dropped)

        keep = ~dropped
        checked = int(keep.sum())
        invalid_mask = failed & keep
        valid_mask = ~failed & keep
        kept = extras if contract.spec.unknown_columns == "keep" else []
        flags = [c for c in work.columns if c.startswith("__hw_flag:")]
        out_cols = [*contract.columns, *kept, *flags, POSITION]
        valid = work.select(out_cols)
        if int(valid_mask.sum()) != work.height:
            valid = valid.filter(valid_mask)
        valid = valid.rename({c: c.removeprefix("__hw_flag:") for c in valid.columns
                              if c.startswith("__hw_flag:")})
        invalid = self._invalid(original, work, masks, rules, invalid_mask)

        kept = masks if checked == original.height else masks.filter(keep)
        counts = kept.sum().row(0) if rules else ()
        report = self.report
        report.rows += original.height
        report.valid += valid.height
        report.invalid += invalid.num_rows
        report.dropped += original.height - checked
        report.count_rules({r.name: n for r, n in zip(rules, counts, strict=True)}, checked)
        per_column: dict[str, int] = {}
        if rules:
            per_col_exprs = []
            for name in contract.columns:
                cols = [m for m, r in zip(masks.columns, rules, strict=True) if name in r.columns]
                if cols:
                    per_col_exprs.append(pl.any_horizontal(cols).sum().alias(name))
            if per_col_exprs:
                per_column = kept.select(per_col_exprs).row(0, named=True)
        report.count_columns(per_column, checked)
        report.describe(valid)
        self._track(valid)
        # Arrow's view layout is Polars' own: no copy of the text (every store reads it)
        out = _arrow_uuids(valid.to_arrow(compat_level=pl.CompatLevel.newest()),
                           contract.uuid_columns)
        return Checked(out, invalid, original.height - checked)

    # ------------------------------------------------------------------ steps
    def _rename(self, frame: pl.DataFrame) -> pl.DataFrame:
        spec = self.contract.spec
        mapping: dict[str, str] = {}
        for old, new in spec.rename.items():
            if old in frame.columns:
                mapping[old] = new
        for name, col in spec.columns.items():
            if not col.from_:
                continue
            found = [c for c in frame.columns if c == col.from_] or [
                c for c in frame.columns if _normal(c) == _normal(col.from_)]
            if len(found) == 1 and found[0] not in mapping:
                mapping[found[0]] = name
        taken = set(mapping.values())
        present = [c for c in frame.columns if c not in mapping]
        for name in spec.columns:
            if name in taken or name in present:
                continue
            matches = [c for c in present if _normal(c) == _normal(name) and c not in spec.columns]
            if len(matches) == 1:
                mapping[matches[0]] = name
        targets = [mapping.get(c, c) for c in frame.columns]
        clashes = {t for t in targets if targets.count(t) > 1}
        if clashes:
            raise ContractError(
                f"contract {self.contract.name}: more than one input column maps to "
                f"{sorted(clashes)} (input columns: {', '.join(frame.columns)})",
                hint="rename one of them in the input, or map it with rename: {old: new}")
        return frame.rename(mapping) if mapping else frame

    def _type(self, frame: pl.DataFrame, extras: list[str]) -> tuple[pl.DataFrame, list[str]]:
        """Clean and type every column.

        Text typed as numbers, dates, ... takes the fast path: the first attempt reads the raw
        text; only the values it could not read are cleaned (trim, null words) and tried with
        every attempt. Columns with a value map are cleaned first, then typed.
        """
        exprs: list[pl.Expr] = []
        parsed: list[pl.Expr] = []
        text_typed: list[str] = []  # columns typed from text: they get a type(...) rule
        raw: list[str] = []         # typed from the raw text (PRE holds it)
        cleaned_first: list[str] = []  # typed from cleaned text (PRE holds that)
        for name, col in self.contract.columns.items():
            parser = col.parser
            if name not in frame.columns:
                exprs.append(pl.lit(None, dtype=parser.dtype).alias(name))
                continue
            source = frame.schema[name]
            typed = None
            if source not in (pl.String, pl.Null) and not col.spec.map:
                typed = parser.from_typed(pl.col(name), source)
            if typed is not None:
                exprs.append(typed.alias(name))
                if source != parser.dtype or parser.label == UUID_LABEL:  # 16 bytes or fail
                    exprs.append(as_text(pl.col(name), source, keep=True).alias(PRE + name))
                    text_typed.append(name)
                continue
            text = as_text(pl.col(name), source)
            if col.spec.type in {"string", "binary"} or col.spec.map:  # null words decode
                cleaned = (self._clean_by_value(frame, name, col) if source == pl.String
                           else self._clean(text, col))
                if col.spec.type == "string":
                    exprs.append(cleaned.alias(name))
                    continue
                exprs.append(cleaned.alias(PRE + name))
                cleaned_first.append(name)
            else:
                exprs.append(text.alias(PRE + name))
                raw.append(name)
            first = parser.attempts[self._first.get(name, 0)]
            # NaN to null once the column is typed: inside one eager expression Polars would
            # parse the text twice (fill_nan reads its input for the test and for the value)
            parsed.append(_typed(first(pl.col(PRE + name)), col, nan_to_null=False).alias(name))
            text_typed.append(name)
        exprs += [pl.col(c) for c in extras]
        exprs.append(pl.col(POSITION))
        work = frame.select(exprs).with_columns(parsed)
        nan_cols = [n for n in cleaned_first + raw if _nan_is_null(self.contract.columns[n])]
        if nan_cols:
            work = work.with_columns(pl.col(n).fill_nan(None) for n in nan_cols)
        failed: list[pl.Series | pl.Expr] = [
            (pl.col(PRE + n).is_not_null() & pl.col(n).is_null()).alias(TYPE_FAILED + n)
            for n in text_typed if n not in raw]
        for name in cleaned_first + raw:
            col = self.contract.columns[name]
            value, text = work.get_column(name), work.get_column(PRE + name)
            if value.null_count() == text.null_count():
                if name in raw:
                    failed.append(pl.lit(False).alias(TYPE_FAILED + name))
                continue  # every value was read (null counts are known without a scan)
            index = (value.is_null() & text.is_not_null()).arg_true()
            pending = text.gather(index)
            tried = self._first.get(name, 0)
            if name in raw:  # clean what the fast attempt could not read, then try them all
                pending = pending.to_frame("v").select(self._clean(pl.col("v"), col)).to_series()
                values, hits = _fallback(pending, col, skip=None, rows=work.height)
                mask = _falses(TYPE_FAILED + name, work.height)
                mask.scatter(index, pending.is_not_null() & values.is_null())
                failed.append(mask)
            else:
                values, hits = _fallback(pending, col, skip=tried, rows=work.height)
            self._promote(name, hits, work.height)
            column = value.clone()
            column.scatter(index, values)
            work = work.with_columns(column.alias(name))
        if failed:
            work = work.with_columns(failed)
        return work, text_typed

    def _promote(self, name: str, hits: dict[int, int], rows: int) -> None:
        """Try first, from the next batch on, an attempt that read most of this batch."""
        if not hits:
            return
        best, count = max(hits.items(), key=lambda kv: kv[1])
        attempt = self.contract.columns[name].parser.attempts[best]
        if count * 2 > rows and promotable(attempt):
            self._first[name] = best

    def _clean_by_value(self, frame: pl.DataFrame, name: str, col: _Column) -> pl.Expr:
        """Cleansing of a text column; one with few distinct values is cleansed once per value
        and mapped back (the same result as cleansing each row, at a fraction of the work).

        A column that once shows many distinct values is cleansed row by row for the rest of
        the run, so finding out costs one ``unique`` per column.
        """
        if name not in self._many and frame.height >= _ROWS_PER_VALUE:
            values = frame.get_column(name).unique().drop_nulls()
            if len(values) * _ROWS_PER_VALUE <= frame.height:
                cleaned = values.to_frame("v").select(self._clean(pl.col("v"), col)).to_series()
                return pl.col(name).replace_strict(values, cleaned, default=None,
                                                   return_dtype=pl.String)
            self._many.add(name)
        return self._clean(pl.col(name), col)

    def _clean(self, text: pl.Expr, col: _Column) -> pl.Expr:
        cleaned = clean_text(text, col.cleanse)
        if col.spec.map:
            old = list(col.spec.map)
            new = [None if v is None else _text(v) for v in col.spec.map.values()]
            cleaned = cleaned.replace(old, new)
        return cleaned

    def _post(self, work: pl.DataFrame) -> pl.DataFrame:
        """Unit conversion, outliers (clip or flag), fills."""
        exprs: list[pl.Expr] = []
        for name, col in self.contract.columns.items():
            if col.unit is not None:
                factor, offset = col.unit
                exprs.append((pl.col(name).cast(pl.Float64) * factor + offset)
                             .cast(col.parser.dtype, strict=False).alias(name))
        if exprs:
            work = work.with_columns(exprs)
        self._fit_outliers(work)
        exprs = []
        for name, (low, high) in self._bounds.items():
            action = self.contract.columns[name].spec.outliers.action  # type: ignore[union-attr]
            if action == "clip":
                dtype = self.contract.columns[name].parser.dtype
                exprs.append(pl.col(name).cast(pl.Float64).clip(low, high)
                             .cast(dtype, strict=False).alias(name))
            elif action == "flag":
                exprs.append(((pl.col(name) < low) | (pl.col(name) > high)).fill_null(False)
                             .alias(f"__hw_flag:{name}_outlier"))
        exprs += self._fills(work)
        return work.with_columns(exprs) if exprs else work

    def _fit_outliers(self, work: pl.DataFrame) -> None:
        todo = {n: c.spec.outliers for n, c in self.contract.columns.items()
                if c.spec.outliers is not None and n not in self._bounds}
        stats: list[pl.Expr] = []
        for name, spec in todo.items():
            assert spec is not None
            if spec.method == "bounds":
                low = -np.inf if spec.min is None else spec.min
                high = np.inf if spec.max is None else spec.max
                self._bounds[name] = (float(low), float(high))
                continue
            c = pl.col(name).cast(pl.Float64)
            if TYPE_FAILED + name in work.columns:
                c = c.filter(~pl.col(TYPE_FAILED + name))
            stats += [c.quantile(0.25).alias(f"q1:{name}"), c.quantile(0.75).alias(f"q3:{name}"),
                      c.mean().alias(f"mean:{name}"), c.std().alias(f"std:{name}"),
                      c.count().alias(f"n:{name}")]
        if not stats:
            return
        row = work.select(stats).row(0, named=True)
        for name, spec in todo.items():
            assert spec is not None
            if spec.method == "bounds" or not row.get(f"n:{name}"):
                continue
            if spec.method == "iqr":
                q1, q3 = row[f"q1:{name}"], row[f"q3:{name}"]
                self._bounds[name] = (q1 - spec.k * (q3 - q1), q3 + spec.k * (q3 - q1))
            else:
                mean, std = row[f"mean:{name}"], row[f"std:{name}"] or 0.0
                self._bounds[name] = (mean - spec.z * std, mean + spec.z * std)

    def _fills(self, work: pl.DataFrame) -> list[pl.Expr]:
        exprs: list[pl.Expr] = []
        for name, col in self.contract.columns.items():
            fill = col.spec.fill
            if fill is None:
                continue
            # a value that failed its type stays null: the quarantine reports it, not a fill
            keep_null = pl.col(TYPE_FAILED + name) if TYPE_FAILED + name in work.columns \
                else pl.lit(False)
            if fill.strategy == "value":
                filled = pl.col(name).fill_null(pl.lit(col.fill).cast(col.parser.dtype))
            else:
                filled = pl.col(name).fill_null(strategy="forward")
                if name in self._last_seen:
                    filled = filled.fill_null(pl.lit(self._last_seen[name],
                                                     dtype=col.parser.dtype))
                last = work.get_column(name).drop_nulls()
                if len(last):
                    self._last_seen[name] = last[-1]
            exprs.append(pl.when(keep_null).then(pl.col(name)).otherwise(filled).alias(name))
        return exprs

    def _rules(self, text_typed: list[str], missing: list[str], extras: list[str],
               bounds: dict[str, tuple[float, float]]) -> list[RuleDef]:
        """The rules for a batch of this shape; built once per shape (a file's batches share
        one), since building them costs Python time on every batch otherwise."""
        shape = (tuple(text_typed), tuple(missing), tuple(extras), tuple(sorted(bounds.items())))
        if shape not in self._built_rules:
            self._built_rules[shape] = self._build_rules(text_typed, missing, extras, bounds)
        return list(self._built_rules[shape])

    def _build_rules(self, text_typed: list[str], missing: list[str], extras: list[str],
                     bounds: dict[str, tuple[float, float]]) -> list[RuleDef]:
        contract = self.contract
        rules: list[RuleDef] = []
        for name, col in contract.columns.items():
            rules += column_rules(name, col.spec, label=col.parser.label or col.spec.type,
                                  typed_from_text=name in text_typed, missing=name in missing,
                                  required=col.required)
            if name in bounds and col.spec.outliers.action == "quarantine":  # type: ignore[union-attr]
                low, high = bounds[name]
                rules.append(outlier_rule(name, low, high, True)[1])
        for rule_name, compiled, message in contract.row_rules:
            shown = [pl.format("{}={}", pl.lit(c), show(pl.col(c), quoted=contract.kinds[c] ==
                                                        "string")) for c in compiled.columns]
            detail = pl.concat_str(shown, separator=", ") if shown else pl.lit("")
            text = message or f"rule {rule_name} ({compiled.text}) is false"
            rules.append(RuleDef(f"rule({rule_name})", compiled.columns, compiled.fails,
                                 pl.format("{} ({})", pl.lit(text), detail)))
        if contract.spec.unknown_columns == "quarantine":
            rules += [unknown_rule(c) for c in extras]
        return rules

    def _dedupe_exact(self, work: pl.DataFrame, extras: list[str]) -> pl.Series:
        if not self.contract.dedupe_exact:
            return _falses("dropped", work.height)
        cols = [*self.contract.columns, *extras]
        hashes = work.select(pl.struct([pl.col(c).cast(pl.String) if c in extras else pl.col(c)
                                        for c in cols]).hash(_KEY_SEED)).to_series()
        first = hashes.is_first_distinct().to_numpy()
        h = hashes.to_numpy()
        dup = ~first | self._exact.contains(h)
        self._exact.add(h[~dup], new=True)
        return pl.Series(dup)

    def _check_keys(self, work: pl.DataFrame, failed: pl.Series, dropped: pl.Series,
                    ) -> tuple[list[RuleDef], pl.DataFrame, pl.Series]:
        keys = self.contract.keys
        if not keys:
            return [], pl.DataFrame(), failed
        candidate = (~failed & ~dropped).to_numpy()
        hashes = work.select([_key_hash(k.columns).alias(k.rule) for k in keys])
        not_null = work.select([pl.all_horizontal([pl.col(c).is_not_null() for c in k.columns])
                                .alias(k.rule) for k in keys])
        dup_masks: dict[str, np.ndarray] = {}
        for key in keys:
            h = hashes.get_column(key.rule).to_numpy()
            active = candidate & not_null.get_column(key.rule).to_numpy()
            dup = np.zeros(len(h), dtype=bool)
            idx = np.flatnonzero(active)
            if len(idx):
                sub = h[idx]
                first = pl.Series(sub).is_first_distinct().to_numpy()
                dup[idx] = ~first | self._keys[key.rule].contains(sub)
            dup_masks[key.rule] = dup
        any_dup = np.zeros(len(candidate), dtype=bool)
        for dup in dup_masks.values():
            any_dup |= dup
        final = candidate & ~any_dup
        for key in keys:
            self._keys[key.rule].add(hashes.get_column(key.rule).to_numpy()[
                final & not_null.get_column(key.rule).to_numpy()], new=True)
        rules = [RuleDef(k.rule, k.columns, pl.col(f"k{i}"), key_reason(k.rule, k.columns,
                                                                         k.primary))
                 for i, k in enumerate(keys)]
        masks = pl.DataFrame({f"k{i}": dup_masks[k.rule] for i, k in enumerate(keys)})
        return rules, masks, failed | pl.Series(any_dup)

    def _dedupe_key(self, work: pl.DataFrame, failed: pl.Series, dropped: pl.Series) -> pl.Series:
        key = self.contract.dedupe_key
        if not key:
            return dropped
        latest = self.contract.dedupe_latest
        candidate = (~failed & ~dropped).to_numpy()
        idx = np.flatnonzero(candidate)
        if not len(idx):
            return dropped
        frame = work.select(_key_hash(key).alias("h"),
                            (_as_number(pl.col(latest)) if latest else pl.lit(0.0)).alias("v"),
                            pl.int_range(pl.len(), dtype=pl.Int64).alias("i"))[idx]
        frame = frame.with_columns(pl.col("v").fill_null(-np.inf))
        # within the batch: the greatest value wins; ties go to the last row read
        winners = frame.sort(["v", "i"]).group_by("h", maintain_order=False).agg(
            pl.col("i").last(), pl.col("v").last())
        h = winners.get_column("h").to_numpy()
        v = winners.get_column("v").to_numpy()
        found, stored = self._latest.get(h)
        newer = ~found | (v > stored) if latest else np.ones(len(h), dtype=bool)
        keep_rows = winners.get_column("i").to_numpy()[newer]
        self._latest.update(h[newer], v[newer])
        out = dropped.to_numpy().copy()
        out[idx] = True
        out[keep_rows] = False
        return pl.Series(out)

    def _invalid(self, original: pl.DataFrame, work: pl.DataFrame, masks: pl.DataFrame,
                 rules: list[RuleDef], invalid_mask: pl.Series) -> pa.Table:
        if not int(invalid_mask.sum()):
            return INVALID_SCHEMA.empty_table()
        raw_cols = [c for c in original.columns if c != POSITION]
        bad = self._bytes_as_text(original.filter(invalid_mask))
        try:
            raw = bad.select(pl.struct(raw_cols).struct.json_encode()).to_series()
        except Exception:  # exotic types: encode their text
            raw = bad.select(pl.struct([pl.col(c).cast(pl.String) for c in raw_cols])
                             .struct.json_encode()).to_series()
        # rechunk: Polars 2.1 can panic formatting strings of a filtered multi-chunk column
        mask_names = masks.columns
        shown = {POSITION}.union(*(r.reason.meta.root_names() for r in rules))
        sub = pl.concat([work.select([c for c in work.columns if c in shown])
                         .filter(invalid_mask), masks.filter(invalid_mask)],
                        how="horizontal").rechunk()
        failures = _failures(sub, mask_names, rules)
        named = sub.select(POSITION).with_row_index("row").join(
            failures, on="row", how="left", maintain_order="left").select(
            POSITION, raw.alias("raw"), pl.col("rules").fill_null([]),
            pl.col("reasons").fill_null([]))
        return named.to_arrow().cast(INVALID_SCHEMA)

    def _bytes_as_text(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Binary columns as text for the quarantine's raw rows, spelled so that a replay reads
        them back: UUIDs as UUID text, other bytes in the column's encoding (base64 unless the
        contract says hex)."""
        names = self._rename(frame.head(0)).columns  # contract names, in the same order
        exprs = []
        for source, name in zip(frame.columns, names, strict=True):
            dtype, e = frame.schema[source], pl.col(source)
            if isinstance(dtype, pl.List) and dtype.inner == pl.Binary:  # JSON holds no bytes
                exprs.append(e.list.eval(pl.element().bin.encode("base64")))
            if dtype != pl.Binary:
                continue
            spec = self.contract.spec.columns.get(name)
            if spec is not None and spec.type == "uuid":
                text = _uuid_text(e)
            elif spec is not None and spec.type == "binary" and spec.encoding == "hex":
                text = e.bin.encode("hex")
            else:
                text = e.bin.encode("base64")
            exprs.append(text.alias(source))
        return frame.with_columns(exprs) if exprs else frame

    def _track(self, valid: pl.DataFrame) -> None:
        fresh = self.contract.spec.table.freshness
        if fresh is None or valid.height == 0:
            return
        newest = valid.get_column(fresh.column).max()
        if newest is not None and (self._newest is None or newest > self._newest):
            self._newest = newest

    # ------------------------------------------------------------------ end of run
    def finish(self, now: datetime | None = None) -> list[Finding]:
        """Check the table rules; returns the ones that failed (all are in the report)."""
        table = self.contract.spec.table
        findings: list[Finding] = []
        loaded = self.report.valid
        if table.min_rows is not None:
            ok = loaded >= table.min_rows
            findings.append(Finding("min_rows", ok, f"{loaded:,} valid rows; at least "
                                    f"{table.min_rows:,} expected", table.severity))
        if table.max_rows is not None:
            ok = loaded <= table.max_rows
            findings.append(Finding("max_rows", ok, f"{loaded:,} valid rows; at most "
                                    f"{table.max_rows:,} expected", table.severity))
        if table.freshness is not None:
            fresh = table.freshness
            now = now or datetime.now(UTC)
            newest = self._newest
            if newest is None:
                findings.append(Finding(f"freshness({fresh.column})", False,
                                        f"no valid value in {fresh.column}", table.severity))
            else:
                stamp = (datetime(newest.year, newest.month, newest.day, tzinfo=UTC)
                         if isinstance(newest, date) and not isinstance(newest, datetime)
                         else newest)
                age = (now - stamp).total_seconds()
                ok = age <= parse_duration(fresh.max_age).total_seconds()
                findings.append(Finding(
                    f"freshness({fresh.column})", ok,
                    f"newest {fresh.column} is {stamp.isoformat()} ({_age(age)} old); at most "
                    f"{fresh.max_age} allowed", table.severity))
        self.report.findings = findings
        return [f for f in findings if not f.passed]


def _check_formats(parser: Parser, where: str) -> None:
    """Run every attempt once, so a format Polars cannot use fails when the contract loads."""
    probe = pl.DataFrame({"v": ["2024-01-01 00:00:00"]})
    for attempt in parser.attempts:
        try:
            probe.select(attempt(pl.col("v")))
        except pl.exceptions.PolarsError as exc:
            detail = str(exc).strip().splitlines()[0]
            raise ContractError(f"{where}: a format cannot be used: {detail}",
                                hint="formats use strftime codes such as %Y-%m-%d %H:%M "
                                "(give hours and minutes together)") from None


def _falses(name: str, n: int) -> pl.Series:
    return pl.Series(name, np.zeros(n, dtype=bool))


def _uuid_text(e: pl.Expr) -> pl.Expr:
    """16 bytes as canonical UUID text; other lengths as base64 (they are not UUIDs)."""
    digits = e.bin.encode("hex")
    parts = [digits.str.slice(start, length) for start, length in _UUID_GROUPS]
    return pl.when(e.bin.size() == 16).then(pl.concat_str(parts, separator="-")) \
        .otherwise(e.bin.encode("base64"))


_UUID_GROUPS = ((0, 8), (8, 4), (12, 4), (16, 4), (20, 12))


def _arrow_uuids(table: pa.Table, names: list[str]) -> pa.Table:
    """UUID columns (16 bytes each in Polars) as Arrow's UUID type, which stores keep native."""
    for name in names:
        i = table.schema.get_field_index(name)
        storage = table.column(i).cast(pa.binary(16))
        uuids = pa.chunked_array([pa.ExtensionArray.from_storage(pa.uuid(), chunk)
                                  for chunk in storage.chunks], pa.uuid())
        table = table.set_column(i, pa.field(name, pa.uuid()), uuids)
    return table


def _typed(e: pl.Expr, col: _Column, *, nan_to_null: bool = True) -> pl.Expr:
    out = e.cast(col.parser.dtype, strict=False)
    if nan_to_null and _nan_is_null(col):
        out = out.fill_nan(None)  # 'NaN' is a missing value, like 'N/A'
    return out


def _nan_is_null(col: _Column) -> bool:
    return col.parser.dtype == pl.Float64 and col.cleanse.default_nulls


def _fallback(pending: pl.Series, col: _Column, skip: int | None, rows: int,
              ) -> tuple[pl.Series, dict[int, int]]:
    """Type the values the fast attempt could not read: attempts in order (but ``skip``), each
    on what is still unread. Returns the values and how many each attempt read."""
    parser = col.parser
    result = pl.repeat(None, len(pending), dtype=parser.dtype, eager=True).alias("v")
    hits: dict[int, int] = {}
    todo = np.flatnonzero(pending.is_not_null().to_numpy())
    if len(todo) <= min(_FEW, rows // 2):  # a few: every attempt at once, in one query
        frame = pending.gather(todo).to_frame("v")
        # each attempt into its own column, NaN to null on the columns, then the first value
        # read: in one eager expression fill_nan would evaluate every attempt's tree twice
        tries = [_typed(a(pl.col("v")), col, nan_to_null=False).alias(f"a{i}")
                 for i, a in enumerate(parser.attempts) if i != skip]
        if tries:
            read = frame.select(tries)
            if _nan_is_null(col):
                read = read.select(pl.all().fill_nan(None))
            result.scatter(todo, read.select(pl.coalesce(pl.all())).to_series())
        return result, hits
    for i, attempt in enumerate(parser.attempts):
        if not len(todo):
            break
        if i == skip:
            continue
        frame = pending.gather(todo).to_frame("v")
        out = frame.select(_typed(attempt(pl.col("v")), col)).to_series()
        got = out.is_not_null().to_numpy()
        if got.any():
            result.scatter(todo[got], out.filter(pl.Series(got)))
            todo = todo[~got]
            hits[i] = int(got.sum())
    return result, hits


def _failures(sub: pl.DataFrame, mask_names: list[str], rules: list[RuleDef]) -> pl.DataFrame:
    """Per failing row (``row``: its index in ``sub``), the rules it failed and one reason per
    rule, both in rule order. Each reason is formatted only where its rule failed; the long
    form (row, rule, reason) is then grouped, which is far cheaper than a list per row."""
    texts = sub.select([pl.when(pl.col(m)).then(r.reason.cast(pl.String)).alias(str(i))
                        for i, (m, r) in enumerate(zip(mask_names, rules, strict=True))])
    flags = sub.select([pl.col(m).alias(str(i)) for i, m in enumerate(mask_names)])
    long = pl.concat([
        flags.with_row_index("row").unpivot(index="row", variable_name="k", value_name="failed"),
        texts.unpivot(value_name="reason").select("reason"),
    ], how="horizontal").filter(pl.col("failed"))
    k = pl.col("k").cast(pl.Int64)
    rule = k.replace_strict(list(range(len(rules))), [r.name for r in rules],
                            return_dtype=pl.String)
    # unpivot lists rule after rule, so a stable sort on the row keeps each row's rule order
    return long.sort("row", maintain_order=True).group_by(
        "row", maintain_order=True).agg(rule.alias("rules"),
                                        pl.col("reason").drop_nulls().alias("reasons"))


def _key_hash(columns: list[str]) -> pl.Expr:
    if len(columns) == 1:
        return pl.col(columns[0]).hash(_KEY_SEED)
    return pl.struct(columns).hash(_KEY_SEED)


def _as_number(e: pl.Expr) -> pl.Expr:
    return e.to_physical().cast(pl.Float64)


def _normal(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"

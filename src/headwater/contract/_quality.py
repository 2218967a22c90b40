"""The data-quality report of a run: pass rates per rule and column, nulls, distinct counts,
ranges. Built batch by batch from mergeable statistics (counts, min/max, HyperLogLog sketches)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl

#: HyperLogLog precision: 2**12 registers, about 1.6 % standard error on distinct counts.
HLL_BITS = 12
_REGISTERS = 1 << HLL_BITS
_SEED = 0x5EED


@dataclass
class Finding:
    """The outcome of a table rule, checked when a run ends."""

    rule: str
    passed: bool
    message: str
    severity: str = "error"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"rule": self.rule, "passed": self.passed, "message": self.message,
                "severity": self.severity}


@dataclass
class RuleStats:
    """How often one rule was checked and failed."""

    failed: int = 0
    checked: int = 0

    @property
    def pass_rate(self) -> float:
        """Share of checked rows that passed (1.0 when nothing was checked)."""
        return 1.0 if not self.checked else 1 - self.failed / self.checked


@dataclass
class ColumnStats:
    """Mergeable statistics of one column."""

    type: str = "string"
    rows: int = 0          # rows checked
    failed: int = 0        # rows failing a rule on this column
    loaded: int = 0        # valid rows (what the statistics below describe)
    nulls: int = 0         # nulls among the valid rows
    min: Any = None
    max: Any = None
    registers: np.ndarray = field(default_factory=lambda: np.zeros(_REGISTERS, np.uint8))

    @property
    def distinct(self) -> int:
        """Approximate count of distinct non-null values (HyperLogLog)."""
        return hll_estimate(self.registers)

    @property
    def null_rate(self) -> float:
        """Share of loaded rows that are null."""
        return self.nulls / self.loaded if self.loaded else 0.0

    @property
    def pass_rate(self) -> float:
        """Share of checked rows with no failed rule on this column."""
        return 1.0 if not self.rows else 1 - self.failed / self.rows


def hll_estimate(registers: np.ndarray) -> int:
    """Distinct-count estimate from HyperLogLog registers (with the small-range correction)."""
    m = len(registers)
    if not registers.any():
        return 0
    alpha = 0.7213 / (1 + 1.079 / m)
    estimate = alpha * m * m / float(np.sum(np.power(2.0, -registers.astype(np.float64))))
    zeros = int(np.count_nonzero(registers == 0))
    if estimate <= 2.5 * m and zeros:
        estimate = m * math.log(m / zeros)
    return round(estimate)


def hll_hashes(column: str) -> pl.Expr:
    """The hashes :func:`hll_add` takes: one per non-null value of ``column``, as a list."""
    return pl.col(column).drop_nulls().hash(_SEED).implode()


def hll_add(registers: np.ndarray, hashes: pl.Series) -> None:
    """Fold hashes of a column's values (see :func:`hll_hashes`) into HyperLogLog
    ``registers`` (in place)."""
    if hashes.is_empty():
        return
    h = hashes.to_numpy()
    index = (h >> np.uint64(64 - HLL_BITS)).astype(np.intp)
    rest = (h & np.uint64((1 << (64 - HLL_BITS)) - 1)) | np.uint64(1)
    # rank = leading zeros of the remaining bits + 1, read off the float exponent: rest has
    # fewer than 53 bits, so as a float64 it is exact and its biased exponent (the top bits
    # after the sign) is 1023 + floor(log2(rest)); a shift, where np.frexp costs 3x more
    exponent = rest.astype(np.float64).view(np.uint64) >> np.uint64(52)
    rank = (np.uint64(64 - HLL_BITS + 1023) - exponent).astype(np.uint8)
    np.maximum.at(registers, index, rank)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class QualityReport:
    """Data quality of a run: rows, pass rate per rule and per column, null rates, distinct
    counts, min and max. Updated by the :class:`~headwater.contract.Checker` batch by batch.

    >>> r = QualityReport()
    >>> r.rows, r.to_dict()["rules"]
    (0, {})
    """

    def __init__(self, contract: str | None = None) -> None:
        self.contract = contract
        self.rows = 0
        self.valid = 0
        self.invalid = 0
        self.dropped = 0
        self.rules: dict[str, RuleStats] = {}
        self.columns: dict[str, ColumnStats] = {}
        self.findings: list[Finding] = []

    # ---------------------------------------------------------------- building
    def declare(self, rules: list[str], columns: dict[str, str]) -> None:
        """Name the rules and columns up front, so the report lists them in contract order."""
        for rule in rules:
            self.rules.setdefault(rule, RuleStats())
        for name, type_ in columns.items():
            self.columns.setdefault(name, ColumnStats(type=type_))

    def count_rules(self, failed: dict[str, int], checked: int) -> None:
        """Add one batch's failure counts per rule (``checked`` rows were tested)."""
        for rule, n in failed.items():
            stats = self.rules.setdefault(rule, RuleStats())
            stats.failed += int(n)
            stats.checked += checked

    def count_columns(self, failed: dict[str, int], checked: int) -> None:
        """Add one batch's count of rows failing any rule, per column."""
        for name, stats in self.columns.items():
            stats.rows += checked
            stats.failed += int(failed.get(name, 0))

    def describe(self, valid: pl.DataFrame) -> None:
        """Fold the statistics of a batch's valid rows into the column statistics."""
        names = [n for n in self.columns if n in valid.columns]
        if not names or valid.height == 0:
            for n in names:
                self.columns[n].loaded += valid.height
            return
        ranged = [n for n in names if _orderable(valid.schema[n])]
        exprs: list[pl.Expr] = [pl.col(n).null_count().alias(f"n:{n}") for n in names]
        exprs += [pl.col(n).min().alias(f"lo:{n}") for n in ranged]
        exprs += [pl.col(n).max().alias(f"hi:{n}") for n in ranged]
        exprs += [hll_hashes(n).alias(f"h:{n}") for n in names]
        out = valid.select(exprs)  # one query: Polars spreads the columns over its threads
        stats = out.select(pl.exclude("^h:.*$")).row(0, named=True)
        for n in names:
            col = self.columns[n]
            col.loaded += valid.height
            col.nulls += int(stats[f"n:{n}"])
            if n in ranged:
                lo, hi = stats[f"lo:{n}"], stats[f"hi:{n}"]
                if lo is not None and (col.min is None or lo < col.min):
                    col.min = lo
                if hi is not None and (col.max is None or hi > col.max):
                    col.max = hi
            hll_add(col.registers, out.get_column(f"h:{n}")[0])

    def count_rejects(self, rejected: int, rule: str = "parse") -> None:
        """Count rows a source could not parse (they go to the quarantine, rule ``parse``)."""
        self.rows += rejected
        self.invalid += rejected
        stats = self.rules.setdefault(rule, RuleStats())
        stats.failed += rejected
        stats.checked += rejected

    def merge(self, other: QualityReport) -> QualityReport:
        """Fold another report (of the same contract) into this one; returns self."""
        self.rows += other.rows
        self.valid += other.valid
        self.invalid += other.invalid
        self.dropped += other.dropped
        for rule, stats in other.rules.items():
            mine = self.rules.setdefault(rule, RuleStats())
            mine.failed += stats.failed
            mine.checked += stats.checked
        for name, stats in other.columns.items():
            mine = self.columns.setdefault(name, ColumnStats(type=stats.type))
            mine.rows += stats.rows
            mine.failed += stats.failed
            mine.loaded += stats.loaded
            mine.nulls += stats.nulls
            if stats.min is not None and (mine.min is None or stats.min < mine.min):
                mine.min = stats.min
            if stats.max is not None and (mine.max is None or stats.max > mine.max):
                mine.max = stats.max
            np.maximum(mine.registers, stats.registers, out=mine.registers)
        self.findings += other.findings
        return self

    # ---------------------------------------------------------------- reading
    def top_reasons(self, n: int = 5) -> list[tuple[str, int]]:
        """The rules that failed most, with their counts."""
        failed = [(rule, s.failed) for rule, s in self.rules.items() if s.failed]
        return sorted(failed, key=lambda item: (-item[1], item[0]))[:n]

    @property
    def pass_rate(self) -> float:
        """Share of checked rows that were valid (dropped duplicates excluded)."""
        checked = self.valid + self.invalid
        return 1.0 if not checked else self.valid / checked

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, stored with the run record."""
        return {
            "contract": self.contract,
            "rows": self.rows, "valid": self.valid, "invalid": self.invalid,
            "dropped": self.dropped, "pass_rate": round(self.pass_rate, 6),
            "rules": {rule: {"failed": s.failed, "checked": s.checked,
                             "pass_rate": round(s.pass_rate, 6)} for rule, s in self.rules.items()},
            "columns": {name: {"type": s.type, "rows": s.rows, "failed": s.failed,
                               "pass_rate": round(s.pass_rate, 6), "loaded": s.loaded,
                               "nulls": s.nulls, "null_rate": round(s.null_rate, 6),
                               "distinct": s.distinct, "min": _plain(s.min),
                               "max": _plain(s.max)}
                        for name, s in self.columns.items()},
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        """Rebuild a report from :meth:`to_dict` output (distinct counts become fixed numbers)."""
        report = cls(data.get("contract"))
        for key in ("rows", "valid", "invalid", "dropped"):
            setattr(report, key, int(data.get(key, 0)))
        for rule, s in data.get("rules", {}).items():
            report.rules[rule] = RuleStats(int(s["failed"]), int(s["checked"]))
        for name, s in data.get("columns", {}).items():
            col = _FixedColumn(type=s.get("type", "string"), rows=s.get("rows", 0),
                               failed=s.get("failed", 0), loaded=s.get("loaded", 0),
                               nulls=s.get("nulls", 0), min=s.get("min"), max=s.get("max"))
            col.fixed_distinct = int(s.get("distinct", 0))
            report.columns[name] = col
        report.findings = [Finding(**f) for f in data.get("findings", [])]
        return report

    def render(self, console: Any | None = None) -> None:
        """Print the report as Rich tables."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        console.print(
            f"[bold]Data quality[/bold]{f' ({self.contract})' if self.contract else ''}: "
            f"{self.rows:,} rows read, {self.valid:,} valid, {self.invalid:,} quarantined, "
            f"{self.dropped:,} duplicates dropped; pass rate {self.pass_rate:.2%}")
        if self.rules:
            rules = Table(title="Rules", title_justify="left")
            rules.add_column("rule")
            rules.add_column("failed", justify="right")
            rules.add_column("pass rate", justify="right")
            for rule, s in self.rules.items():
                style = "red" if s.failed else ""
                rules.add_row(rule, f"{s.failed:,}", f"{s.pass_rate:.2%}", style=style)
            console.print(rules)
        if self.columns:
            cols = Table(title="Columns (statistics of the valid rows)", title_justify="left")
            for head, justify in (("column", "left"), ("type", "left"), ("pass rate", "right"),
                                  ("nulls", "right"), ("distinct ≈", "right"), ("min", "left"),
                                  ("max", "left")):
                cols.add_column(head, justify=justify)  # type: ignore[arg-type]
            for name, s in self.columns.items():
                cols.add_row(name, s.type, f"{s.pass_rate:.2%}", f"{s.null_rate:.1%}",
                             f"{s.distinct:,}", _short(s.min), _short(s.max))
            console.print(cols)
        for f in self.findings:
            mark = "[green]ok[/green]" if f.passed else (
                "[red]FAILED[/red]" if f.severity == "error" else "[yellow]warning[/yellow]")
            console.print(f"table rule {f.rule}: {mark} {f.message}")


@dataclass
class _FixedColumn(ColumnStats):
    fixed_distinct: int = 0

    @property
    def distinct(self) -> int:  # type: ignore[override]
        return self.fixed_distinct


def _orderable(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype.is_temporal() or dtype in (pl.String, pl.Boolean)


def _short(value: Any, width: int = 24) -> str:
    if value is None:
        return ""
    text = str(_plain(value))
    return text if len(text) <= width else text[: width - 1] + "…"

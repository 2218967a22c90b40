"""Events through a contract: the same contract files, rules, reasons and quarantine as batch
ingestion (``headwater.contract``), on whole batches."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from headwater.contract import Checker
from headwater.core import POSITION, ContractError


@dataclass
class Validated:
    """Events that passed (columns and types as they came in), and the ones that failed:
    ``invalid`` has ``_hw_pos`` (the row in the input), ``raw``, ``rules``, ``reasons``."""

    valid: pl.DataFrame
    invalid: pa.Table
    dropped: int = 0


def validate_events(checker: Checker, events: pl.DataFrame,
                    keep: tuple[str, ...] = ()) -> Validated:
    """Check ``events`` against the contract of ``checker``; what passes keeps the input's
    columns and types (cleansing may have changed values, e.g. trimmed text or converted
    units), so the stream's schema does not depend on how the contract types a column.

    The contract must declare every column it wants to see; undeclared columns are handled
    as its ``unknown_columns`` says (and are kept from the input either way). Columns in
    ``keep`` (e.g. the broker position) bypass the contract.
    """
    data = events.with_row_index(POSITION).with_columns(pl.col(POSITION).cast(pl.Int64))
    checked = checker.check(data.drop(list(keep)).to_arrow())
    valid = pl.from_arrow(checked.valid)
    assert isinstance(valid, pl.DataFrame)
    declared = [c for c in events.columns if c in valid.columns and c not in keep]
    passed = data.join(valid.select(POSITION), on=POSITION, how="semi", maintain_order="left")
    if declared:
        try:
            typed = valid.select(POSITION, *[pl.col(c).cast(events.schema[c]) for c in declared])
        except pl.exceptions.PolarsError as exc:
            raise ContractError(
                f"contract {checker.contract.name!r}: a column it types cannot go back to the "
                f"stream's type ({exc})",
                hint="declare event_time and ingest_time as integer (ms) and value as "
                "float") from None
        passed = passed.drop(declared).join(typed, on=POSITION, how="left",
                                            maintain_order="left")
    return Validated(passed.select(events.columns), checked.invalid, checked.dropped)

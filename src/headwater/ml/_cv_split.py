"""Fold splitters for cross-validation, with the checks that make a bad split a clear error.

Every splitter yields :class:`Fold` objects of row positions; a fold's test rows are never in its
training rows, and with ``group`` no group is on both sides.

>>> import numpy as np, pandas as pd
>>> folds = split_folds(pd.DataFrame({"x": range(20)}), np.arange(20.0), splitter="kfold",
...                     folds=4)
>>> len(folds), sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(20))
(4, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from headwater.core import ConfigError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Fold:
    """One train/test split: row positions, which repetition and which fold it is."""

    repeat: int
    index: int
    train: np.ndarray
    test: np.ndarray

    @property
    def label(self) -> str:
        """``r0f3`` (repetition 0, fold 3)."""
        return f"r{self.repeat}f{self.index}"


def split_folds(frame: pd.DataFrame, y: np.ndarray, *, splitter: str = "kfold", folds: int = 5,
                repeats: int = 1, shuffle: bool = True, seed: int = 42, bins: int = 10,
                group: str | None = None, time: str | None = None, gap: int = 0,
                source: str = "data") -> list[Fold]:
    """The folds of ``splitter`` over the rows of ``frame``.

    Parameters
    ----------
    frame:
        The data (used for the ``group`` and ``time`` columns).
    y:
        The target (used by ``stratified``, which bins it into ``bins`` quantiles).
    splitter:
        ``kfold``, ``repeated``, ``stratified``, ``group`` or ``time``.
    folds, repeats, shuffle, seed:
        k, repetitions (each with a new shuffle), and the seed.
    group, time, gap:
        The group column (``group``), the time column and the rows skipped between train and
        test (``time``).
    source:
        Where the data came from, for error messages.

    Raises
    ------
    ConfigError
        Fewer rows than folds, fewer groups than folds, a missing or unsortable column.
    """
    from sklearn.model_selection import (
        GroupKFold,
        KFold,
        StratifiedKFold,
        TimeSeriesSplit,
    )

    n = len(frame)
    if folds < 2:
        raise ConfigError(f"folds={folds}: cross-validation needs at least 2 folds",
                          hint="use --folds 5 (the usual choice) or more")
    min_rows = folds + 1 if splitter == "time" else folds
    if n < min_rows:
        raise ConfigError(f"{source} has {n} rows, fewer than the {folds} folds asked for",
                          hint=f"use --folds {max(2, n if splitter != 'time' else n - 1)} or "
                          "fewer, or cross-validate on more data")
    if splitter == "repeated":
        repeats = max(repeats, 2)
    out: list[Fold] = []
    if splitter in {"kfold", "repeated"}:
        for r in range(repeats):
            kf = KFold(folds, shuffle=shuffle or repeats > 1,
                       random_state=seed + r if (shuffle or repeats > 1) else None)
            out += [Fold(r, i, tr, te) for i, (tr, te) in enumerate(kf.split(np.zeros(n)))]
    elif splitter == "stratified":
        labels = _target_bins(y, bins, folds)
        for r in range(repeats):
            skf = StratifiedKFold(folds, shuffle=True, random_state=seed + r)
            out += [Fold(r, i, tr, te)
                    for i, (tr, te) in enumerate(skf.split(np.zeros(n), labels))]
    elif splitter == "group":
        groups = _groups(frame, group, folds, source)
        for r in range(repeats):
            gkf = GroupKFold(folds, shuffle=shuffle or repeats > 1,
                             random_state=seed + r if (shuffle or repeats > 1) else None)
            out += [Fold(r, i, tr, te)
                    for i, (tr, te) in enumerate(gkf.split(np.zeros(n), groups=groups))]
    elif splitter == "time":
        order = _time_order(frame, time, source)
        if n - gap <= folds:
            raise ConfigError(f"{source}: {n} rows leave too few for {folds} time splits with "
                              f"gap={gap}", hint="use fewer folds or a smaller gap")
        tss = TimeSeriesSplit(folds, gap=gap)
        out += [Fold(0, i, order[tr], order[te])
                for i, (tr, te) in enumerate(tss.split(np.zeros(n)))]
    else:
        raise ConfigError(f"unknown splitter '{splitter}'",
                          hint="use kfold, repeated, stratified, group or time")
    return out


def holdout_ratio(folds: list[Fold]) -> float:
    """Mean ``n_test / n_train`` over the folds (for the corrected variance)."""
    return float(np.mean([len(f.test) / max(1, len(f.train)) for f in folds]))


def _target_bins(y: np.ndarray, bins: int, folds: int) -> np.ndarray:
    """Quantile bins of the target, merged until every bin has at least ``folds`` rows."""
    edges = np.unique(np.quantile(y, np.linspace(0, 1, bins + 1)[1:-1]))
    labels = np.searchsorted(edges, y, side="right")
    counts = np.bincount(labels)
    while len(counts) > 1 and counts[counts > 0].min() < folds:
        # merge the smallest bin into a neighbour
        present = np.flatnonzero(counts)
        small = present[np.argmin(counts[present])]
        target = present[present != small]
        nearest = target[np.argmin(np.abs(target - small))]
        labels = np.where(labels == small, nearest, labels)
        counts = np.bincount(labels)
    return labels


def _column(frame: pd.DataFrame, name: str | None, what: str, source: str) -> pd.Series:
    if not name:
        raise ConfigError(f"splitter '{what}' needs a {what} column",
                          hint=f"pass --{what} COLUMN or set `{what}:` in ml.cv.<task>")
    if name not in frame.columns:
        raise ConfigError(f"{source}: no {what} column '{name}' "
                          f"(columns: {', '.join(map(str, frame.columns[:30]))})",
                          hint=f"check the spelling of --{what}")
    return frame[name]


def _groups(frame: pd.DataFrame, name: str | None, folds: int, source: str) -> np.ndarray:
    col = _column(frame, name, "group", source)
    if col.isna().any():
        raise ConfigError(f"{source}: group column '{name}' has {int(col.isna().sum())} missing "
                          "value(s)", hint="fill or drop those rows: every row needs a group")
    codes, levels = __import__("pandas").factorize(col)
    if len(levels) < folds:
        raise ConfigError(f"{source}: group column '{name}' has {len(levels)} distinct group(s), "
                          f"fewer than the {folds} folds asked for",
                          hint=f"use --folds {max(2, len(levels))} or fewer, or a finer group "
                          "column")
    return codes


def _time_order(frame: pd.DataFrame, name: str | None, source: str) -> np.ndarray:
    """Row positions sorted by the time column (stable), or an error if it is not sortable."""
    import pandas as pd

    col = _column(frame, name, "time", source)
    if pd.api.types.is_bool_dtype(col):
        keys = None
    elif pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col):
        keys = col
    else:
        text = col.astype("string").str.strip()
        keys = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
        if keys.isna().sum() > text.isna().sum():
            numbers = pd.to_numeric(text, errors="coerce")
            keys = numbers if numbers.notna().sum() >= keys.notna().sum() else keys
        bad = text[keys.isna() & text.notna()]
        if len(bad):
            raise ConfigError(
                f"{source}: time column '{name}' is not sortable as time: "
                f"{len(bad)} value(s) are neither dates nor numbers, e.g. "
                f"{', '.join(repr(v) for v in bad.unique()[:3])}",
                hint="use a date (ISO 8601, e.g. 2024-03-01), a timestamp or a number column")
    if keys is None:
        raise ConfigError(f"{source}: time column '{name}' holds booleans, not times",
                          hint="use a date, timestamp or number column")
    if keys.isna().any():
        raise ConfigError(f"{source}: time column '{name}' has {int(keys.isna().sum())} missing "
                          "value(s)", hint="fill or drop those rows: a time split needs a time "
                          "for every row")
    return np.argsort(keys.to_numpy(), kind="stable")

"""Fold splitters: coverage, no overlap, groups kept whole, time order, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.core import ConfigError
from headwater.ml._cv_split import holdout_ratio, split_folds


def _frame(n: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n), "zip": rng.integers(0, 12, n).astype(str),
                         "day": pd.date_range("2024-01-01", periods=n, freq="D").astype(str)})


def _covers_once(folds: list, n: int) -> bool:
    test = np.concatenate([f.test for f in folds])
    return sorted(test.tolist()) == list(range(n))


def test_kfold_is_shuffled_seeded_and_partitions_rows() -> None:
    frame = _frame()
    y = np.arange(100.0)
    a = split_folds(frame, y, splitter="kfold", folds=5, seed=1)
    b = split_folds(frame, y, splitter="kfold", folds=5, seed=1)
    c = split_folds(frame, y, splitter="kfold", folds=5, seed=2)
    assert len(a) == 5 and _covers_once(a, 100)
    assert all(np.array_equal(f.test, g.test) for f, g in zip(a, b, strict=True))
    assert not np.array_equal(a[0].test, c[0].test)
    assert not np.array_equal(np.sort(a[0].test), np.arange(20))  # shuffled
    for f in a:
        assert not set(f.train) & set(f.test)
    assert holdout_ratio(a) == pytest.approx(0.25)


def test_repeated_kfold_repeats_with_new_shuffles() -> None:
    folds = split_folds(_frame(), np.arange(100.0), splitter="repeated", folds=4, repeats=3)
    assert len(folds) == 12 and {f.repeat for f in folds} == {0, 1, 2}
    for r in range(3):
        assert _covers_once([f for f in folds if f.repeat == r], 100)
    assert not np.array_equal(folds[0].test, folds[4].test)


def test_stratified_balances_target_bins() -> None:
    y = np.r_[np.zeros(90), np.full(10, 1000.0)]  # a rare high band
    folds = split_folds(_frame(), y, splitter="stratified", folds=5, bins=10)
    assert [int((y[f.test] == 1000).sum()) for f in folds] == [2, 2, 2, 2, 2]


def test_group_kfold_keeps_groups_whole() -> None:
    frame = _frame()
    folds = split_folds(frame, np.arange(100.0), splitter="group", folds=4, group="zip")
    assert _covers_once(folds, 100)
    for f in folds:
        assert not set(frame.zip.iloc[f.train]) & set(frame.zip.iloc[f.test])


def test_time_splits_train_on_the_past() -> None:
    frame = _frame().sample(frac=1.0, random_state=3).reset_index(drop=True)
    folds = split_folds(frame, np.arange(100.0), splitter="time", folds=4, time="day", gap=2)
    days = pd.to_datetime(frame.day)
    for f in folds:
        assert days.iloc[f.train].max() < days.iloc[f.test].min()
    assert len(folds) == 4


def test_fewer_rows_than_folds() -> None:
    with pytest.raises(ConfigError, match="3 rows, fewer than the 5 folds") as info:
        split_folds(_frame(3), np.arange(3.0), folds=5)
    assert "--folds" in info.value.hint


def test_fewer_groups_than_folds() -> None:
    frame = _frame().assign(region=lambda f: np.where(f.x > 0, "north", "south"))
    with pytest.raises(ConfigError, match="'region' has 2 distinct group"):
        split_folds(frame, np.arange(100.0), splitter="group", folds=5, group="region")


def test_unsortable_time_column() -> None:
    frame = _frame().assign(when=["soon", "later"] * 50)
    with pytest.raises(ConfigError, match=r"not sortable as time.*'soon'"):
        split_folds(frame, np.arange(100.0), splitter="time", time="when")


def test_missing_columns_are_named() -> None:
    with pytest.raises(ConfigError, match="no group column 'zipcode'"):
        split_folds(_frame(), np.arange(100.0), splitter="group", group="zipcode")
    with pytest.raises(ConfigError, match="needs a time column"):
        split_folds(_frame(), np.arange(100.0), splitter="time")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(10, 200), k=st.integers(2, 10), seed=st.integers(0, 1000),
       kind=st.sampled_from(["kfold", "stratified", "group"]))
def test_every_splitter_partitions_the_rows(n: int, k: int, seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"g": rng.integers(0, max(k, n // 3), n)})
    frame.loc[: k - 1, "g"] = np.arange(k)  # at least k groups
    y = rng.lognormal(size=n)
    folds = split_folds(frame, y, splitter=kind, folds=k, seed=seed, group="g")
    assert len(folds) == k and _covers_once(folds, n)
    for f in folds:
        assert len(f.test) > 0 and not set(f.train) & set(f.test)

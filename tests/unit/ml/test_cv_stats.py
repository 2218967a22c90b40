"""Regression metrics, corrected intervals and the corrected resampled t-test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.ml._stats import compare, corrected_t_test, regression_metrics, summarize


def test_metrics_match_scikit_learn() -> None:
    from sklearn import metrics

    rng = np.random.default_rng(0)
    y = rng.uniform(1, 100, 500)
    p = y + rng.normal(0, 5, 500)
    m = regression_metrics(y, p)
    assert m["rmse"] == pytest.approx(metrics.root_mean_squared_error(y, p))
    assert m["mae"] == pytest.approx(metrics.mean_absolute_error(y, p))
    assert m["r2"] == pytest.approx(metrics.r2_score(y, p))
    assert m["mape"] == pytest.approx(metrics.mean_absolute_percentage_error(y, p))
    assert m["medae"] == pytest.approx(metrics.median_absolute_error(y, p))


def test_mape_leaves_out_zero_actuals() -> None:
    m = regression_metrics(np.array([0.0, 10.0]), np.array([5.0, 11.0]))
    assert m["mape"] == pytest.approx(0.1)


def test_corrected_interval_is_wider_than_naive() -> None:
    values = np.array([10.0, 12.0, 11.0, 13.0, 9.0])
    naive = summarize(values, test_train_ratio=0.0)
    corrected = summarize(values, test_train_ratio=0.25)
    assert corrected.mean == naive.mean == pytest.approx(11.0)
    assert corrected.low < naive.low and corrected.high > naive.high
    # naive 95% t interval: mean ± t(0.975, 4) * s / sqrt(5)
    assert naive.high - naive.mean == pytest.approx(2.776445 * values.std(ddof=1) / math.sqrt(5),
                                                   rel=1e-5)


def test_t_test_matches_the_formula() -> None:
    a = np.array([10.0, 11.0, 12.0, 10.5, 11.5])
    b = np.array([10.5, 12.0, 12.1, 11.0, 12.5])
    diff, t, p = corrected_t_test(a, b, test_train_ratio=0.25)
    d = a - b
    expected_t = d.mean() / math.sqrt((1 / 5 + 0.25) * d.var(ddof=1))
    assert diff == pytest.approx(d.mean())
    assert t == pytest.approx(expected_t)
    from scipy import stats

    assert p == pytest.approx(2 * stats.t.sf(abs(expected_t), 4))


def test_identical_scores_are_no_difference() -> None:
    a = np.array([1.0, 2.0, 3.0])
    assert corrected_t_test(a, a, test_train_ratio=0.5) == (0.0, 0.0, 1.0)
    c = compare("x", a, "y", a, test_train_ratio=0.5)
    assert not c.significant and "no real difference" in c.verdict


def test_compare_names_the_better_model() -> None:
    good = np.array([10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.3, 10.1, 9.9, 10.0])
    bad = good + np.array([3.0, 3.2, 2.9, 3.1, 3.0, 2.8, 3.3, 3.1, 2.9, 3.0])
    c = compare("bad", bad, "good", good, metric="rmse", test_train_ratio=0.25)
    assert c.significant and c.verdict.startswith("good is better")
    r2 = compare("low", np.full(10, 0.5) + np.arange(10) * 1e-3, "high",
                 np.full(10, 0.8) + np.arange(10) * 2e-3, metric="r2", test_train_ratio=0.25)
    assert r2.verdict.startswith("high is better")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=30),
       st.floats(0.0, 1.0))
def test_interval_contains_the_mean(values: list[float], ratio: float) -> None:
    s = summarize(np.array(values), test_train_ratio=ratio)
    assert s.low <= s.mean + 1e-6 * (1 + abs(s.mean))
    assert s.mean <= s.high + 1e-6 * (1 + abs(s.mean))
    assert s.folds == len(values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e4), min_size=3, max_size=20), st.floats(0.01, 100))
def test_t_test_is_antisymmetric(values: list[float], shift: float) -> None:
    a = np.array(values)
    b = a + shift * np.linspace(0.5, 1.5, len(a))
    d1, _, p1 = corrected_t_test(a, b, test_train_ratio=0.25)
    d2, _, p2 = corrected_t_test(b, a, test_train_ratio=0.25)
    assert d1 == pytest.approx(-d2) and p1 == pytest.approx(p2)
    assert 0.0 <= p1 <= 1.0

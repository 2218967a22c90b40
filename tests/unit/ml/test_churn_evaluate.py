"""Metrics, bootstrap intervals, threshold choice, gains and calibration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from headwater.core import ConfigError
from headwater.ml import (
    binary_metrics,
    bootstrap_intervals,
    calibration_table,
    choose_threshold,
    gains_table,
)


def _sample(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p).astype(int)
    return y, p


def test_metrics_match_scikit_learn() -> None:
    y, p = _sample()
    m = binary_metrics(y, p, 0.3)
    pred = (p >= 0.3).astype(int)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (tp, fp, fn, tn)


def _brute(y: np.ndarray, p: np.ndarray, fn) -> list[tuple[float, float]]:
    return [(t, fn(y, (p >= t).astype(int))) for t in np.unique(p)]


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=20, max_value=300))
def test_max_f1_is_the_best_threshold(seed: int, n: int) -> None:
    y, p = _sample(n, seed)
    if y.min() == y.max():
        return
    choice = choose_threshold(y, np.round(p, 2), strategy="max_f1")
    best = max(f for _, f in _brute(y, np.round(p, 2), lambda a, b: skm.f1_score(a, b,
                                                                               zero_division=0)))
    assert choice.f1 == pytest.approx(best)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0.05, max_value=1.0))
def test_target_recall_is_reached_with_the_fewest_flagged(seed: int, target: float) -> None:
    y, p = _sample(200, seed)
    if y.min() == y.max():
        return
    choice = choose_threshold(y, p, strategy="target_recall", target_recall=target)
    assert choice.recall >= target - 1e-12
    higher = p[p > choice.value]
    if len(higher):  # the next higher threshold misses the target
        nxt = higher.min()
        assert skm.recall_score(y, (p >= nxt).astype(int)) < target


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10_000),
       st.floats(min_value=0.1, max_value=20), st.floats(min_value=0.1, max_value=20))
def test_cost_threshold_minimises_the_cost(seed: int, fp_cost: float, fn_cost: float) -> None:
    y, p = _sample(150, seed)
    costs = {"false_positive": fp_cost, "false_negative": fn_cost}
    choice = choose_threshold(y, p, strategy="cost", costs=costs)

    def cost(t: float) -> float:
        pred = p >= t
        return (fp_cost * np.sum(pred & (y == 0)) + fn_cost * np.sum(~pred & (y == 1))) / len(y)

    assert choice.expected_cost == pytest.approx(cost(choice.value))
    assert choice.expected_cost <= min(cost(t) for t in np.unique(p)) + 1e-12


def test_expensive_misses_lower_the_threshold() -> None:
    y, p = _sample()
    cheap = choose_threshold(y, p, strategy="cost", costs={"false_negative": 1.0})
    dear = choose_threshold(y, p, strategy="cost", costs={"false_negative": 20.0})
    assert dear.value < cheap.value and dear.recall > cheap.recall


def test_unknown_strategy_and_bad_recall() -> None:
    y, p = _sample(100)
    with pytest.raises(ConfigError, match="unknown threshold strategy"):
        choose_threshold(y, p, strategy="magic")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="target_recall"):
        choose_threshold(y, p, strategy="target_recall", target_recall=1.5)


def test_bootstrap_intervals_cover_the_estimate() -> None:
    y, p = _sample(1000)
    m = binary_metrics(y, p, 0.3)
    ci = bootstrap_intervals(y, p, 0.3, resamples=200, seed=1)
    for key in ("roc_auc", "pr_auc", "brier", "f1", "recall"):
        lo, hi = ci[key]
        assert lo <= m[key] <= hi and hi - lo < 0.15
    assert bootstrap_intervals(y, p, 0.3, resamples=0) == {}


def test_gains_and_calibration_tables() -> None:
    y, p = _sample(1000)
    rows = gains_table(y, p)
    assert len(rows) == 10 and sum(r["customers"] for r in rows) == 1000
    assert rows[-1]["cumulative_gain"] == pytest.approx(1.0)
    assert rows[0]["lift"] > 1.5 > rows[-1]["lift"]
    gains = [r["cumulative_gain"] for r in rows]
    assert gains == sorted(gains)
    cal = calibration_table(y, p)
    assert all(abs(r["mean_predicted"] - r["observed_rate"]) < 0.12 for r in cal)

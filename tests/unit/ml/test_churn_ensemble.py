"""Ensembles: out-of-fold only, honest nested CV, and a model that logs and predicts like any."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.config import TrainSpec, load_project
from headwater.ml import Tracker, make_dataset, train_classifier
from headwater.ml._ensemble import (
    EnsembleClassifier,
    build_ensemble,
    fit_blend,
    greedy_weights,
    nested_predictions,
)
from headwater.ml._tune import folds_for, score
from headwater.ml.datasets import make_churn


def _oof(rows: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three noisy scorers of one signal: a good one, a weaker one, and noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    signal = y + rng.normal(0, 1.0, rows)
    columns = [1 / (1 + np.exp(-(signal + rng.normal(0, s, rows)))) for s in (0.3, 1.0)]
    columns.append(rng.uniform(size=rows))
    return np.column_stack(columns), y


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_greedy_weights_are_a_distribution_never_worse_than_the_best_member(seed) -> None:
    oof, y = _oof(seed=seed)
    w = greedy_weights(oof, y)
    assert w.shape == (3,) and np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    best_single = max(score("roc_auc", y, oof[:, j]) for j in range(3))
    assert score("roc_auc", y, oof @ w) >= best_single - 1e-12
    assert w[2] < 0.5  # pure noise is never the main member


def test_nested_predictions_never_see_their_own_labels() -> None:
    oof, y = _oof(600, seed=3)
    folds = folds_for(y, "classification", 5, 0)
    for kind in ("vote", "stack"):
        _, before = nested_predictions(kind, oof, y, folds)
        test_idx = folds[0][1]
        flipped = y.copy()
        flipped[test_idx] = 1 - flipped[test_idx]  # change only fold 0's labels
        _, after = nested_predictions(kind, oof, flipped, folds)
        np.testing.assert_array_equal(before[test_idx], after[test_idx])


def test_stack_weights_and_combination() -> None:
    oof, y = _oof(500, seed=1)
    blend = fit_blend("stack", oof, y)
    assert blend.weights.sum() == pytest.approx(1.0) and blend.weights[0] > blend.weights[2]
    p = blend.combine(oof)
    assert p.shape == (500,) and np.all((p > 0) & (p < 1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    project = load_project(root)
    data = make_churn(700, seed=5)
    spec = TrainSpec(algorithms=["logreg", "tree", "lightgbm"], time_budget_s=4.0, trials=3,
                     folds=3, bootstrap=20)
    result = train_classifier(make_dataset(data.frame, "Churn"), spec,
                              tracker=Tracker.for_project(project))
    return project, data, result


def test_ensembles_compete_on_the_leaderboard(trained) -> None:
    _, _, result = trained
    rows = {r["algorithm"]: r for r in result.leaderboard}
    assert {"ensemble", "stack"} <= set(rows)
    for name in ("ensemble", "stack"):
        assert 0.5 < rows[name]["cv_mean"] <= 1 and rows[name]["trials"] == 0
    assert result.best == result.leaderboard[0]["algorithm"]
    assert {r["algorithm"] for r in result.timeline} == {"logreg", "tree", "lightgbm"}


def test_an_ensemble_logs_registers_and_predicts_like_a_single_model(trained) -> None:
    project, data, _ = trained
    # the tuned members, refitted, combined into a vote: log it and load it back
    X, y = make_dataset(data.frame, "Churn").X, make_dataset(data.frame, "Churn").y.to_numpy()
    from headwater.ml._algorithms import Setting, get_algorithm

    setting = Setting(rows=len(X), seed=0)
    fitted = {n: get_algorithm(n).pipeline(get_algorithm(n).defaults(setting), setting).fit(X, y)
              for n in ("logreg", "lightgbm")}
    oof = {n: fitted[n].predict_proba(X)[:, 1] for n in fitted}
    model = build_ensemble("vote", fitted, oof, y)
    assert isinstance(model, EnsembleClassifier) and model.describe()[0]["weight"] > 0
    tracker = Tracker.for_project(project)
    with tracker.start_run("ensemble-check"):
        uri = tracker.log_model(model, input_example=X.head(5), predict_fn="predict_proba")
    tracker.register(uri, "ensemble-check", alias="champion")
    loaded = tracker.load("ensemble-check@champion")
    p = np.asarray(loaded.model.predict_proba(X.head(20)))[:, 1]
    np.testing.assert_allclose(p, model.predict_proba(X.head(20))[:, 1])
    assert set(loaded.input_columns) == set(X.columns)

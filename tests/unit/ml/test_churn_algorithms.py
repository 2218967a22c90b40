"""Every algorithm trains and predicts; tuning respects budgets, seeds and pruning."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from headwater.core import ConfigError
from headwater.ml import ALGORITHMS, Setting, get_algorithm, make_dataset, tune
from headwater.ml.datasets import make_churn


@pytest.fixture(scope="module")
def data():
    ds = make_dataset(make_churn(800, seed=5).frame, "Churn")
    X, y = ds.X, ds.y.to_numpy()
    return X.iloc[:600], y[:600], X.iloc[600:], y[600:]


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_algorithm_trains_and_predicts(name: str, data) -> None:
    X, y, Xt, yt = data
    algorithm = get_algorithm(name)
    setting = Setting(rows=len(X), seed=1)
    model = algorithm.pipeline(algorithm.defaults(setting), setting).fit(X, y)
    proba = model.predict_proba(Xt)[:, 1]
    assert proba.shape == (len(Xt),) and ((proba >= 0) & (proba <= 1)).all()
    assert roc_auc_score(yt, proba) > 0.7
    assert set(model.predict(Xt)) <= {0, 1}


def test_svm_is_sized_for_the_data(data) -> None:
    from sklearn.svm import SVC

    _X, _y, _, _ = data
    svm = get_algorithm("svm")
    small = svm.build(svm.defaults(Setting(rows=500)), Setting(rows=500))
    large = svm.build(svm.defaults(Setting(rows=50_000)), Setting(rows=50_000))
    assert isinstance(small.estimator, SVC)
    assert [s[0] for s in large.estimator.steps] == ["nystroem", "linearsvc"]


def test_class_weights_shift_probabilities_up(data) -> None:
    X, y, Xt, _ = data
    algorithm = get_algorithm("logreg")
    weighted = algorithm.pipeline({"C": 1.0}, Setting(class_weight="balanced")).fit(X, y)
    plain = algorithm.pipeline({"C": 1.0}, Setting(class_weight="none")).fit(X, y)
    assert weighted.predict_proba(Xt)[:, 1].mean() > plain.predict_proba(Xt)[:, 1].mean()


def test_tune_is_seeded_and_bounded(data) -> None:
    X, y, _, _ = data
    algorithm = get_algorithm("tree")
    a = tune(algorithm, X, y, Setting(rows=len(X), seed=3), folds=3, trials=6)
    b = tune(algorithm, X, y, Setting(rows=len(X), seed=3), folds=3, trials=6)
    assert a.params == b.params and a.cv_mean == b.cv_mean
    assert a.trials == 6 and len(a.fold_scores) == 3
    assert a.cv_std == pytest.approx(np.std(a.fold_scores))


def test_tune_time_budget_stops_early(data) -> None:
    X, y, _, _ = data
    result = tune(get_algorithm("logreg"), X, y, Setting(rows=len(X)), folds=3, trials=500,
                  timeout=2.0)
    assert 1 <= result.trials < 500
    assert result.seconds < 30


def test_pruning_stops_bad_trials(data) -> None:
    X, y, _, _ = data
    result = tune(get_algorithm("tree"), X, y, Setting(rows=len(X), seed=0), folds=4,
                  trials=25)
    assert result.pruned > 0


def test_unknown_algorithm() -> None:
    with pytest.raises(ConfigError, match="unknown algorithm 'xgb'"):
        get_algorithm("xgb")


def test_too_many_folds_for_the_rows(data) -> None:
    X, y, _, _ = data
    with pytest.raises(ConfigError, match="cannot be split into 10 folds"):
        tune(get_algorithm("tree"), X.iloc[:15], y[:15], Setting(rows=15), folds=10, trials=1)

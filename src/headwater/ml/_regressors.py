"""The regression models ``headwater cv`` compares, each a full pipeline fitted inside a fold.

A model's pipeline is: :class:`~headwater.ml._prepare.ColumnAuditor` (column kinds) →
:class:`~headwater.ml._cv_features.FeatureSteps` (ratios, interactions, coordinates) →
imputation and encoding (and scaling for linear models and k-NN) → the estimator, all wrapped
in :class:`TargetTransform` (optional log target, predictions clipped to the training range).
Every step is fitted on the training fold only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone

from headwater.core import ConfigError, require

if TYPE_CHECKING:
    import optuna

    from headwater.ml._cv_features import FeatureSteps


class TargetTransform(RegressorMixin, BaseEstimator):
    """Fit ``regressor`` on log(y) (``log=True``) and clip predictions to the training range.

    Clipping matters for capped targets (house values recorded as at most 500,001): no
    prediction goes above the largest or below the smallest training value.

    Parameters
    ----------
    regressor:
        Any scikit-learn regressor or pipeline.
    log:
        Fit on ``log(y)`` and predict ``exp()``; needs a positive target.
    clip:
        Clip predictions to ``[min(y), max(y)]`` of the training fold.
    """

    def __init__(self, regressor: Any = None, *, log: bool = False, clip: bool = True) -> None:
        self.regressor = regressor
        self.log = log
        self.clip = clip

    def fit(self, X: Any, y: Any) -> TargetTransform:
        """Fit a clone of ``regressor`` on (log) ``y``."""
        y = np.asarray(y, dtype="float64")
        if self.log and (y <= 0).any():
            raise ConfigError(f"log target needs positive values; the training fold has "
                              f"{int((y <= 0).sum())} value(s) <= 0",
                              hint="set log_target: off (or --log-target off)")
        self.low_, self.high_ = float(y.min()), float(y.max())
        self.regressor_ = clone(self.regressor).fit(X, np.log(y) if self.log else y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions on the target's own scale."""
        p = np.asarray(self.regressor_.predict(X), dtype="float64")
        if self.log:
            p = np.exp(np.clip(p, np.log(self.low_) - 1, np.log(self.high_) + 1))
        return np.clip(p, self.low_, self.high_) if self.clip else p


@dataclass(frozen=True)
class Regressor:
    """One model family: its estimator, whether it needs scaled inputs, a tuning space."""

    name: str
    title: str
    scale: bool
    build: Callable[[dict[str, Any], int, int], Any]
    space: Callable[[optuna.Trial], dict[str, Any]] = field(default=lambda t: {})

    def pipeline(self, features: FeatureSteps, *, params: dict[str, Any] | None = None,
                 log: bool = False, seed: int = 0, threads: int = 1,
                 drop: tuple[str, ...] = ()) -> TargetTransform:
        """The full pipeline (preparation → features → encoding → estimator) for one fold."""
        from sklearn.pipeline import Pipeline

        from headwater.ml._prepare import build_preprocessor

        prep = build_preprocessor(task="regression", scale=self.scale, drop=drop)
        steps = [("audit", prep.named_steps["audit"]), ("features", clone(features)),
                 ("encode", prep.named_steps["encode"])]
        steps.append(("model", self.build(params or {}, seed, threads)))
        return TargetTransform(Pipeline(steps), log=log)


def _ols(p: dict[str, Any], seed: int, threads: int) -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


def _ridge(p: dict[str, Any], seed: int, threads: int) -> Any:
    from sklearn.linear_model import Ridge, RidgeCV

    if "alpha" in p:
        return Ridge(alpha=p["alpha"])
    return RidgeCV(alphas=np.logspace(-3, 3, 13))


def _lasso(p: dict[str, Any], seed: int, threads: int) -> Any:
    from sklearn.linear_model import Lasso, LassoCV

    if "alpha" in p:
        return Lasso(alpha=p["alpha"], max_iter=5000)
    return LassoCV(alphas=20, cv=3, max_iter=2000, tol=1e-3, precompute=True,
                   random_state=seed)


def _elastic_net(p: dict[str, Any], seed: int, threads: int) -> Any:
    from sklearn.linear_model import ElasticNet, ElasticNetCV

    if "alpha" in p:
        return ElasticNet(alpha=p["alpha"], l1_ratio=p.get("l1_ratio", 0.5), max_iter=5000)
    return ElasticNetCV(l1_ratio=[0.2, 0.5, 0.8], alphas=15, cv=3, max_iter=2000, tol=1e-3,
                        precompute=True, random_state=seed)


def _knn(p: dict[str, Any], seed: int, threads: int) -> Any:
    from sklearn.neighbors import KNeighborsRegressor

    return KNeighborsRegressor(n_neighbors=p.get("n_neighbors", 10),
                               weights=p.get("weights", "distance"), n_jobs=threads)


def _forest(p: dict[str, Any], seed: int, threads: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(
        n_estimators=p.get("n_estimators", 100), max_features=p.get("max_features", 0.33),
        min_samples_leaf=p.get("min_samples_leaf", 2), random_state=seed, n_jobs=threads)


def _lightgbm(p: dict[str, Any], seed: int, threads: int) -> Any:
    lgb = require("lightgbm", "ml")
    defaults = {"n_estimators": 1200, "learning_rate": 0.04, "num_leaves": 63,
                "min_child_samples": 20, "subsample": 0.8, "subsample_freq": 1,
                "colsample_bytree": 0.7, "reg_lambda": 1.0}
    return lgb.LGBMRegressor(**{**defaults, **p}, random_state=seed, n_jobs=threads,
                             verbose=-1)


def _alpha_space(t: optuna.Trial) -> dict[str, Any]:
    return {"alpha": t.suggest_float("alpha", 1e-4, 1e2, log=True)}


def _enet_space(t: optuna.Trial) -> dict[str, Any]:
    return {"alpha": t.suggest_float("alpha", 1e-4, 1e1, log=True),
            "l1_ratio": t.suggest_float("l1_ratio", 0.05, 0.95)}


def _knn_space(t: optuna.Trial) -> dict[str, Any]:
    return {"n_neighbors": t.suggest_int("n_neighbors", 3, 50, log=True),
            "weights": t.suggest_categorical("weights", ["uniform", "distance"])}


def _forest_space(t: optuna.Trial) -> dict[str, Any]:
    return {"n_estimators": t.suggest_int("n_estimators", 50, 200, step=50),
            "max_features": t.suggest_float("max_features", 0.2, 1.0),
            "min_samples_leaf": t.suggest_int("min_samples_leaf", 1, 10)}


def _lightgbm_space(t: optuna.Trial) -> dict[str, Any]:
    return {"n_estimators": t.suggest_int("n_estimators", 200, 1500, step=100),
            "learning_rate": t.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_leaves": t.suggest_int("num_leaves", 15, 127, log=True),
            "min_child_samples": t.suggest_int("min_child_samples", 5, 60, log=True),
            "colsample_bytree": t.suggest_float("colsample_bytree", 0.4, 1.0),
            "reg_lambda": t.suggest_float("reg_lambda", 1e-3, 10.0, log=True)}


#: Every model ``headwater cv`` knows, by name, in report order.
REGRESSORS: dict[str, Regressor] = {r.name: r for r in (
    Regressor("ols", "linear regression (OLS)", True, _ols),
    Regressor("ridge", "ridge (alpha chosen inside the fold)", True, _ridge, _alpha_space),
    Regressor("lasso", "lasso (alpha chosen inside the fold)", True, _lasso, _alpha_space),
    Regressor("elastic_net", "elastic net (alpha, l1 ratio chosen inside the fold)", True,
              _elastic_net, _enet_space),
    Regressor("knn", "k-nearest neighbours (k=10, distance-weighted)", True, _knn, _knn_space),
    Regressor("random_forest", "random forest (100 trees)", False, _forest, _forest_space),
    Regressor("lightgbm", "LightGBM (1,200 trees)", False, _lightgbm, _lightgbm_space),
)}


def get_regressor(name: str) -> Regressor:
    """The model called ``name``, or an error listing the known ones."""
    try:
        return REGRESSORS[name]
    except KeyError:
        raise ConfigError(f"unknown model '{name}'",
                          hint=f"pick from {', '.join(REGRESSORS)}") from None

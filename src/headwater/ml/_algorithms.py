"""The algorithms ``headwater train`` compares: estimators, search spaces and defaults.

Each :class:`Algorithm` builds a full pipeline (preparation + model) from a parameter dict, so
tuning, refitting and the registered model are the same object; preparation is therefore fitted
inside every fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.neural_network import MLPClassifier

from headwater.core import ConfigError, require

if TYPE_CHECKING:
    import optuna
    from sklearn.pipeline import Pipeline

Task = Literal["classification", "regression"]
#: Above this many training rows the SVM uses a Nystroem kernel map and a linear SVM
#: (kernel SVMs grow with the square of the rows).
SVM_EXACT_ROWS = 2000


@dataclass(frozen=True)
class Setting:
    """What an algorithm needs to know about the data and the run."""

    task: Task = "classification"
    rows: int = 1000
    seed: int = 0
    class_weight: Literal["balanced", "none"] = "balanced"
    encoding: Literal["auto", "onehot", "target"] = "auto"
    max_onehot: int = 20
    leak_score: float = 0.98
    feature_selection: Literal["none", "mutual_info", "l1", "permutation"] = "none"
    drop: tuple[str, ...] = ()
    #: LightGBM threads. OpenMP threads spin while they wait, so on a busy machine two threads
    #: can be many times slower than one; the forest parallelises with joblib threads instead.
    threads: int = 1


@dataclass(frozen=True)
class Algorithm:
    """One learning algorithm: how to build it, what to tune, sensible defaults."""

    name: str
    title: str
    scale: bool
    build: Callable[[dict[str, Any], Setting], Any]
    space: Callable[[optuna.Trial, Setting], dict[str, Any]]
    defaults: Callable[[Setting], dict[str, Any]] = field(default=lambda s: {})
    #: Cheap parameter sets tried right after the defaults (cheap first: a quick, decent score
    #: early lets pruning and the shared budget judge this algorithm sooner).
    starts: Callable[[Setting], list[dict[str, Any]]] = field(default=lambda s: [])

    def pipeline(self, params: dict[str, Any], setting: Setting) -> Pipeline:
        """Preparation (fitted inside folds) + optional feature selection + the model."""
        from sklearn.pipeline import Pipeline

        from headwater.ml._prepare import FeatureSelector, build_preprocessor

        prep = build_preprocessor(task=setting.task, scale=self.scale, encoding=setting.encoding,
                                  max_onehot=setting.max_onehot, leak_score=setting.leak_score,
                                  drop=setting.drop, splines=int(params.get("splines", 0)))
        steps = list(prep.steps)
        if setting.feature_selection != "none":
            steps.append(("select", FeatureSelector(method=setting.feature_selection,
                                                    task=setting.task, seed=setting.seed)))
        steps.append(("model", self.build(params, setting)))
        return Pipeline(steps)


def _cw(setting: Setting) -> str | None:
    return "balanced" if setting.class_weight == "balanced" else None


# -- logistic / linear regression ---------------------------------------------------------------
def _logreg(p: dict[str, Any], s: Setting) -> Any:
    if s.task == "regression":
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1.0 / p.get("C", 1.0))
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=p.get("C", 1.0), class_weight=_cw(s), max_iter=2000,
                              random_state=s.seed)


def _logreg_space(t: optuna.Trial, s: Setting) -> dict[str, Any]:
    return {"C": t.suggest_float("C", 1e-3, 1e2, log=True),
            "splines": t.suggest_categorical("splines", [0, 4, 6])}


def _plain_logreg_space(t: optuna.Trial, s: Setting) -> dict[str, Any]:
    return {"C": t.suggest_float("C", 1e-3, 1e2, log=True), "splines": 0}


# -- decision tree ---------------------------------------------------------------------------
def _tree(p: dict[str, Any], s: Setting) -> Any:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    common = {"max_depth": p.get("max_depth", 6), "random_state": s.seed,
              "min_samples_leaf": p.get("min_samples_leaf", 20)}
    if s.task == "regression":
        return DecisionTreeRegressor(**common)
    return DecisionTreeClassifier(**common, criterion=p.get("criterion", "gini"),
                                  class_weight=_cw(s))


def _tree_space(t: optuna.Trial, s: Setting) -> dict[str, Any]:
    out = {"max_depth": t.suggest_int("max_depth", 2, 14),
           "min_samples_leaf": t.suggest_int("min_samples_leaf", 1, 200, log=True)}
    if s.task == "classification":
        out["criterion"] = t.suggest_categorical("criterion", ["gini", "entropy"])
    return out


# -- random forest ---------------------------------------------------------------------------
def _forest(p: dict[str, Any], s: Setting) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    common = {"n_estimators": p.get("n_estimators", 200), "max_depth": p.get("max_depth"),
              "min_samples_leaf": p.get("min_samples_leaf", 5),
              "max_features": p.get("max_features", "sqrt"), "n_jobs": 2,
              "random_state": s.seed}
    if s.task == "regression":
        return RandomForestRegressor(**common)
    return RandomForestClassifier(**common, class_weight="balanced_subsample"
                                  if s.class_weight == "balanced" else None)


def _forest_space(t: optuna.Trial, s: Setting) -> dict[str, Any]:
    depth = t.suggest_int("max_depth", 4, 24)
    return {"n_estimators": t.suggest_int("n_estimators", 100, 400, step=50),
            "max_depth": depth,
            "min_samples_leaf": t.suggest_int("min_samples_leaf", 1, 50, log=True),
            "max_features": t.suggest_categorical("max_features", ["sqrt", 0.3, 0.5])}


# -- SVM, sized for the data --------------------------------------------------------------------
def _svm(p: dict[str, Any], s: Setting) -> Any:
    C, gamma = p.get("C", 1.0), p.get("gamma", 0.05)
    if s.task == "regression":
        from sklearn.kernel_approximation import Nystroem
        from sklearn.pipeline import make_pipeline
        from sklearn.svm import SVR, LinearSVR

        if s.rows <= SVM_EXACT_ROWS:
            return SVR(C=C, gamma=gamma)
        return make_pipeline(Nystroem(gamma=gamma, n_components=min(200, s.rows),
                                      random_state=s.seed),
                             LinearSVR(C=C, dual=False, loss="squared_epsilon_insensitive",
                                       max_iter=5000, random_state=s.seed))
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.kernel_approximation import Nystroem
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC, LinearSVC

    if s.rows <= SVM_EXACT_ROWS:
        base: Any = SVC(C=C, gamma=gamma, class_weight=_cw(s), random_state=s.seed)
    else:
        base = make_pipeline(Nystroem(gamma=gamma, n_components=min(200, s.rows),
                                      random_state=s.seed),
                             LinearSVC(C=C, class_weight=_cw(s), dual=False, max_iter=5000,
                                       random_state=s.seed))
    # Platt scaling on internal folds gives probabilities from the SVM's margins.
    return CalibratedClassifierCV(base, method="sigmoid", cv=3)


def _svm_space(t: optuna.Trial, s: Setting) -> dict[str, Any]:
    return {"C": t.suggest_float("C", 1e-2, 1e1, log=True),
            "gamma": t.suggest_float("gamma", 1e-3, 0.5, log=True)}


# -- neural network ------------------------------------------------------------------------------
_LAYERS = {"32": (32,), "64": (64,), "64-32": (64, 32), "128-64": (128, 64)}


def _mlp(p: dict[str, Any], s: Setting) -> Any:
    from sklearn.neural_network import MLPRegressor

    common = {"hidden_layer_sizes": _LAYERS[p.get("layers", "64")], "alpha": p.get("alpha", 1e-3),
              "learning_rate_init": p.get("learning_rate_init", 1e-3),
              "batch_size": p.get("batch_size", 128), "early_stopping": True,
              "n_iter_no_change": 10, "max_iter": 300, "random_state": s.seed}
    if s.task == "regression":
        return MLPRegressor(**common)
    return WeightedMLP(**common, class_weight=s.class_weight)


def _mlp_space(t: optuna.Trial, s: Setting) -> dict[str, Any]:
    return {"layers": t.suggest_categorical("layers", list(_LAYERS)),
            "alpha": t.suggest_float("alpha", 1e-5, 1.0, log=True),
            "learning_rate_init": t.suggest_float("learning_rate_init", 1e-4, 1e-2, log=True),
            "batch_size": t.suggest_categorical("batch_size", [64, 128, 256])}


class WeightedMLP(MLPClassifier):
    """An MLP classifier that accepts ``class_weight`` (applied as sample weights)."""

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (64,), *, alpha: float = 1e-3,
                 learning_rate_init: float = 1e-3, batch_size: int = 128,
                 early_stopping: bool = True, n_iter_no_change: int = 10, max_iter: int = 300,
                 random_state: int | None = None, class_weight: str = "balanced") -> None:
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, alpha=alpha,
                         learning_rate_init=learning_rate_init, batch_size=batch_size,
                         early_stopping=early_stopping, n_iter_no_change=n_iter_no_change,
                         max_iter=max_iter, random_state=random_state)
        self.class_weight = class_weight

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> WeightedMLP:
        """Fit, weighing classes inversely to their frequency when ``class_weight='balanced'``."""
        if self.class_weight == "balanced" and sample_weight is None:
            from sklearn.utils.class_weight import compute_sample_weight

            sample_weight = compute_sample_weight("balanced", y)
        return super().fit(X, y, sample_weight=sample_weight)


# -- LightGBM ------------------------------------------------------------------------------------
class EarlyStopped(BaseEstimator):
    """A LightGBM model that stops adding trees when a slice of its own training rows stops
    improving (``n_estimators`` is then a ceiling, not a cost).

    The slice (``validation``, stratified for classifiers, seeded) comes out of the rows ``fit``
    gets, so inside CV it is part of the fold's training part and never its test part.
    """

    def __init__(self, model: Any, *, validation: float = 0.1, patience: int = 30,
                 seed: int = 0) -> None:
        self.model = model
        self.validation = validation
        self.patience = patience
        self.seed = seed

    def fit(self, X: Any, y: Any) -> EarlyStopped:
        """Fit on all but the validation slice, stopping at the best round on the slice."""
        from sklearn.model_selection import train_test_split

        lgb = require("lightgbm", "ml")
        y = np.asarray(y)
        classifier = is_classifier(self.model)
        X_fit, X_val, y_fit, y_val = train_test_split(
            X, y, test_size=self.validation, random_state=self.seed,
            stratify=y if classifier else None)
        self.model.fit(X_fit, y_fit, eval_set=[(X_val, y_val)],
                       callbacks=[lgb.early_stopping(self.patience, verbose=False)])
        if classifier:
            self.classes_ = self.model.classes_
        self.best_iteration_ = self.model.best_iteration_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the model at its best round."""
        return self.model.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the model at its best round."""
        return self.model.predict_proba(X)

    def __sklearn_tags__(self) -> Any:
        return self.model.__sklearn_tags__()


def _lightgbm(p: dict[str, Any], s: Setting) -> Any:
    lgb = require("lightgbm", "ml")
    common = {"n_estimators": p.get("n_estimators", 300),
              "learning_rate": p.get("learning_rate", 0.03),
              "num_leaves": p.get("num_leaves", 15),
              "min_child_samples": p.get("min_child_samples", 30),
              "subsample": p.get("subsample", 0.8), "subsample_freq": 1,
              "colsample_bytree": p.get("colsample_bytree", 0.7),
              "reg_lambda": p.get("reg_lambda", 1.0), "random_state": s.seed,
              "n_jobs": s.threads, "verbose": -1}
    if s.task == "regression":
        model: Any = lgb.LGBMRegressor(**common)
    else:
        model = lgb.LGBMClassifier(**common, class_weight=_cw(s))
    return EarlyStopped(model, seed=s.seed)


def _lightgbm_space(t: optuna.Trial, s: Setting) -> dict[str, Any]:
    return {"n_estimators": t.suggest_int("n_estimators", 100, 1500, step=50),
            "learning_rate": t.suggest_float("learning_rate", 0.005, 0.2, log=True),
            "num_leaves": t.suggest_int("num_leaves", 4, 64, log=True),
            "min_child_samples": t.suggest_int("min_child_samples", 5, 200, log=True),
            "subsample": t.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": t.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": t.suggest_float("reg_lambda", 1e-3, 30.0, log=True)}


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a for a in (
        Algorithm("logreg", "logistic regression (spline features for numbers)", True,
                  _logreg, _logreg_space, lambda s: {"C": 1.0, "splines": 4}),
        Algorithm("tree", "decision tree", False, _tree, _tree_space,
                  lambda s: {"max_depth": 6, "min_samples_leaf": 20, "criterion": "gini"}
                  if s.task == "classification" else {"max_depth": 6, "min_samples_leaf": 20}),
        Algorithm("forest", "random forest", False, _forest, _forest_space,
                  lambda s: {"n_estimators": 200, "max_depth": 12, "min_samples_leaf": 5,
                             "max_features": "sqrt"},
                  lambda s: [{"n_estimators": 100, "max_depth": 8, "min_samples_leaf": 10,
                              "max_features": "sqrt"}]),
        Algorithm("svm", "support vector machine", True, _svm, _svm_space,
                  lambda s: {"C": 1.0, "gamma": 0.02}),
        Algorithm("mlp", "neural network (MLP)", True, _mlp, _mlp_space,
                  lambda s: {"layers": "64", "alpha": 1e-2, "learning_rate_init": 1e-3,
                             "batch_size": 128}),
        Algorithm("lightgbm", "gradient boosting (LightGBM)", False, _lightgbm, _lightgbm_space,
                  lambda s: {"n_estimators": 300, "learning_rate": 0.03, "num_leaves": 15,
                             "min_child_samples": 30, "subsample": 0.8,
                             "colsample_bytree": 0.7, "reg_lambda": 1.0},
                  # few, shallow trees at a high learning rate: a tenth of the default's cost
                  lambda s: [{"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 7,
                              "min_child_samples": 50, "subsample": 0.8,
                              "colsample_bytree": 0.7, "reg_lambda": 3.0}]),
    )
}


#: Plain logistic regression (no spline features): the baseline benchmarks compare against.
PLAIN_LOGREG = Algorithm("logreg", "plain logistic regression", True, _logreg,
                         _plain_logreg_space, lambda s: {"C": 1.0, "splines": 0})


def get_algorithm(name: str) -> Algorithm:
    """The algorithm called ``name``, or a ConfigError listing the known ones."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ConfigError(f"unknown algorithm '{name}'",
                          hint=f"choose from {', '.join(ALGORITHMS)}") from None


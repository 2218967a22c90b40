"""Cross-validation of regression models: honest, comparable error estimates.

:func:`cross_validate` runs every model on the same folds (fits in parallel on all cores), with
all preparation and feature engineering fitted inside each fold; it returns a :class:`CVResult`
with per-fold metrics, out-of-fold predictions, mean ± std with corrected confidence intervals,
a paired comparison of each model with the best (corrected resampled t-test), and a learning
curve. The engine only: the glue that runs it for a project (data loading, outputs, MLflow, the run
record) is :func:`headwater.ml._cv_project.run_cv`.

>>> from headwater.config import CVSpec
>>> from headwater.ml.datasets import make_housing
>>> frame = make_housing(300, seed=1).to_pandas()
>>> spec = CVSpec(models=["ridge"], folds=3, learning_curve=False, track=False, jobs=1)
>>> result = cross_validate(frame, "median_house_value", spec)
>>> result.best, len(result.scores)
('ridge', 3)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from headwater.config._cv import CVSpec, parse_pair
from headwater.core import ConfigError, Progress
from headwater.ml._cv_features import FeatureSteps
from headwater.ml._cv_split import Fold, holdout_ratio, split_folds
from headwater.ml._regressors import get_regressor
from headwater.ml._stats import METRICS, compare, regression_metrics, summarize
from headwater.monitor import get_logger

log = get_logger(__name__)

#: Version of results.json; bumped on incompatible changes.
CV_FORMAT = 1
#: Shares of a training fold the learning curve fits on (1.0 comes from the CV itself).
LEARNING_SHARES = (0.1, 0.3, 0.6)
#: Folds (of the first repetition) the learning curve uses.
LEARNING_FOLDS = 2
#: Skewness above which ``log_target: auto`` fits on log(target).
LOG_SKEW = 0.75
# expected relative cost of a fit, to start the slow ones first
_COST = {"lightgbm": 10, "random_forest": 8, "knn": 3, "elastic_net": 3, "lasso": 2}


@dataclass
class CVResult:
    """What a cross-validation run found.

    ``scores`` has one row per model and fold (metrics, train RMSE, fit seconds);
    ``predictions`` one row per model and out-of-fold prediction (``row`` is the position in
    the input); ``summary`` one dict per model, best first.
    """

    target: str
    source: str
    rows: int
    spec: CVSpec
    log_target: bool
    features: list[str]
    scores: pd.DataFrame
    predictions: pd.DataFrame
    summary: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]
    learning_curve: pd.DataFrame
    tuned: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    duration_s: float = 0.0
    run_id: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> str:
        """The model with the lowest mean RMSE."""
        return str(self.summary[0]["model"])

    @property
    def test_train_ratio(self) -> float:
        """Mean n_test / n_train over the folds."""
        first = self.scores[self.scores.model == self.best]
        return float((first.n_test / first.n_train).mean())

    def to_dict(self) -> dict[str, Any]:
        """Everything but the predictions, as plain JSON-able values."""
        return {
            "format": CV_FORMAT, "run_id": self.run_id, "target": self.target,
            "source": self.source, "rows": self.rows, "log_target": self.log_target,
            "best": self.best, "duration_s": round(self.duration_s, 2),
            "splitter": {"kind": self.spec.splitter, "folds": self.spec.folds,
                         "repeats": self.spec.n_repeats, "seed": self.spec.seed,
                         "group": self.spec.group, "time": self.spec.time},
            "features": self.features, "summary": self.summary,
            "comparisons": self.comparisons,
            "folds": _records(self.scores),
            "learning_curve": _records(self.learning_curve),
            "tuned": self.tuned, "outputs": self.outputs,
            "settings": self.spec.model_dump(mode="json"),
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The result as JSON text (also written to ``path`` if given)."""
        text = json.dumps(self.to_dict(), indent=2, default=_jsonable)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        return text


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records")) if len(frame) else []


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# -- checks --------------------------------------------------------------------------------------
def check_target(frame: pd.DataFrame, target: str, *, source: str = "data") -> np.ndarray:
    """The target as float64, or a ConfigError for a missing, non-numeric, NaN, infinite or
    constant target (naming the column and the first bad rows, counted from 1)."""
    from headwater.ml._data import _find_column

    target = _find_column(frame, target, source, what="target column")
    col = frame[target]
    if pd.api.types.is_bool_dtype(col):
        raise ConfigError(f"{source}: target column '{target}' holds true/false values; "
                          "cross-validation here is for a numeric target (regression)",
                          hint="for a yes/no target use `headwater train` (classification)")
    if not pd.api.types.is_numeric_dtype(col):
        numbers = pd.to_numeric(col.astype("string").str.strip(), errors="coerce")
        bad = col[numbers.isna() & col.notna() & (col.astype("string").str.strip() != "")]
        if len(bad):
            where = np.flatnonzero(col.index.isin(bad.index))[:5] + 1
            raise ConfigError(
                f"{source}: target column '{target}' is not numeric: {len(bad)} value(s) such "
                f"as {', '.join(repr(v) for v in bad.unique()[:3])} (data rows "
                f"{', '.join(map(str, where))}{', ...' if len(bad) > 5 else ''})",
                hint="regression needs a number to predict; fix those rows, or choose another "
                "--target")
        col = numbers
    y = col.to_numpy(dtype="float64", na_value=np.nan)
    bad_rows = ~np.isfinite(y)
    if bad_rows.any():
        nan = int(np.isnan(y).sum())
        inf = int(bad_rows.sum()) - nan
        what = " and ".join(p for p in (f"{nan} missing (NaN)" if nan else "",
                                        f"{inf} infinite" if inf else "") if p)
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad_rows)[:5])
        raise ConfigError(f"{source}: target column '{target}' has {what} value(s) "
                          f"(data rows {rows}{', ...' if bad_rows.sum() > 5 else ''})",
                          hint="drop or fix those rows first, e.g. with a query: SELECT * FROM "
                          f"... WHERE \"{target}\" IS NOT NULL AND isfinite(\"{target}\")")
    if len(y) and np.all(y == y[0]):
        raise ConfigError(f"{source}: target column '{target}' is constant ({y[0]:g} in all "
                          f"{len(y)} rows): there is nothing to predict",
                          hint="check the target column and the rows selected")
    return y


def use_log_target(y: np.ndarray, setting: str) -> bool:
    """Whether to fit on log(target): ``on``, ``off`` or ``auto`` (positive and skewed)."""
    if setting == "on":
        if (y <= 0).any():
            raise ConfigError(f"log_target: on needs a positive target; {int((y <= 0).sum())} "
                              "value(s) are <= 0", hint="use log_target: auto or off")
        return True
    if setting == "off" or (y <= 0).any():
        return False
    from scipy.stats import skew

    return bool(skew(y) > LOG_SKEW)


def feature_steps(spec: CVSpec) -> FeatureSteps:
    """The :class:`FeatureSteps` that ``spec.features`` declares."""
    f = spec.features
    ratios = tuple(parse_pair(r, "/") for r in f.ratios)
    products = tuple(parse_pair(r, "*") for r in f.interactions)
    if f.coordinates is not None:
        return FeatureSteps(auto=f.auto, ratios=ratios, interactions=products,
                            coordinates=tuple(f.coordinates.columns),  # type: ignore[arg-type]
                            rotations=tuple(f.coordinates.rotations),
                            neighbours=tuple(f.coordinates.neighbours))
    return FeatureSteps(auto=f.auto, ratios=ratios, interactions=products)


# -- the work of one fold ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    model: str
    fold: Fold
    share: float = 1.0  # < 1: a learning-curve point on a subsample of the training fold


def _fit_fold(task: _Task, X: pd.DataFrame, y: np.ndarray, spec: CVSpec, log_target: bool,
              features: FeatureSteps) -> dict[str, Any]:
    """Fit one model on one training fold (tuning it first under nested CV) and score it."""
    import warnings

    regressor = get_regressor(task.model)
    train = task.fold.train
    if task.share < 1.0:
        keep = max(10, int(len(train) * task.share))
        train = np.random.default_rng(spec.seed + task.fold.index).permutation(train)[:keep]
    params: dict[str, Any] = {}
    started = time.perf_counter()
    cpu_started = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of CV-tuned linear models
        if spec.nested.enabled and task.share == 1.0:
            params = _tune(task.model, X.iloc[train], y[train], spec, log_target, features)
        model = regressor.pipeline(features, params=params, log=log_target, seed=spec.seed,
                                   drop=tuple(spec.drop))
        model.fit(X.iloc[train], y[train])
        fit_s = time.perf_counter() - started
        test = task.fold.test
        predicted = model.predict(X.iloc[test])
        train_rmse = regression_metrics(y[train], model.predict(X.iloc[train]))["rmse"]
    cpu_s = time.process_time() - cpu_started
    added: list[str] = []
    if task.share == 1.0 and task.fold.index == 0 and task.fold.repeat == 0:
        steps = model.regressor_.named_steps
        added = steps["features"].describe()
    return {"model": task.model, "repeat": task.fold.repeat, "fold": task.fold.index,
            "share": task.share, "n_train": len(train), "n_test": len(test),
            "fit_s": fit_s, "cpu_s": cpu_s, "train_rmse": train_rmse, "params": params,
            "added": added,
            "metrics": regression_metrics(y[test], predicted), "test": test,
            "predicted": predicted}


def _tune(name: str, X: pd.DataFrame, y: np.ndarray, spec: CVSpec, log_target: bool,
          features: FeatureSteps) -> dict[str, Any]:
    """Optuna search on an inner k-fold of the outer training fold; the best parameters."""
    regressor = get_regressor(name)
    probe = regressor.space.__name__ != "<lambda>"
    if not probe:
        return {}
    from headwater.core import require

    optuna = require("optuna", "ml")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_default_handler()  # to headwater's log file, not the terminal
    optuna.logging.enable_propagation()
    inner = split_folds(X, y, splitter="kfold", folds=spec.nested.inner_folds,
                        seed=spec.seed + 1000)

    def objective(trial: Any) -> float:
        params = regressor.space(trial)
        errors = []
        for fold in inner:
            model = regressor.pipeline(features, params=params, log=log_target, seed=spec.seed,
                                       drop=tuple(spec.drop))
            model.fit(X.iloc[fold.train], y[fold.train])
            errors.append(regression_metrics(y[fold.test], model.predict(X.iloc[fold.test]))
                          ["rmse"])
        return float(np.mean(errors))

    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=spec.seed))
    study.optimize(objective, n_trials=spec.nested.trials, timeout=spec.nested.timeout_s)
    return dict(study.best_params)


def _run_tasks(tasks: list[_Task], X: pd.DataFrame, y: np.ndarray, spec: CVSpec,
               log_target: bool, features: FeatureSteps, progress: Progress | None,
               done_before: int, total: int) -> list[dict[str, Any]]:
    """Run fold fits in parallel (joblib processes; each fit single-threaded)."""
    from joblib import Parallel, delayed

    ordered = sorted(tasks, key=lambda t: -_COST.get(t.model, 1) * t.share)
    calls = (delayed(_fit_fold)(t, X, y, spec, log_target, features) for t in ordered)
    jobs = 1 if len(ordered) == 1 else spec.jobs
    results = []
    runner = Parallel(n_jobs=jobs, return_as="generator_unordered")
    for i, out in enumerate(runner(calls), start=1):
        results.append(out)
        if progress is not None:
            progress(f"{out['model']} r{out['repeat']}f{out['fold']}", done_before + i, total)
    return results


# -- the whole run --------------------------------------------------------------------------------
def cross_validate(frame: pd.DataFrame, target: str, spec: CVSpec | None = None, *,
                   source: str = "data", progress: Progress | None = None) -> CVResult:
    """Cross-validate ``spec.models`` on ``frame`` to predict the numeric ``target``.

    Parameters
    ----------
    frame:
        The raw table (pandas); columns other than the target (and ``spec.drop``) are features.
    target:
        The numeric column to predict.
    spec:
        Splitter, folds, models, log target, features, nested CV (default: :class:`CVSpec`).
    source:
        Where the data came from, for messages and the report.
    progress:
        Called after each fit with (label, done, total).

    Raises
    ------
    ConfigError
        A non-numeric, constant, NaN or infinite target; fewer rows (or groups) than folds; an
        unsortable time column; an unknown column in a feature step.
    """
    spec = spec or CVSpec()
    started = time.perf_counter()
    y = check_target(frame, target, source=source)
    from headwater.ml._data import _find_column

    target = _find_column(frame, target, source, what="target column")
    drop = [_find_column(frame, c, source, what="column in drop") for c in spec.drop]
    X = frame.drop(columns=[target, *drop]).reset_index(drop=True)
    if X.shape[1] == 0:
        raise ConfigError(f"{source}: no feature columns besides the target '{target}'",
                          hint="the data needs columns to predict from")
    folds = split_folds(frame, y, splitter=spec.splitter, folds=spec.folds,
                        repeats=spec.n_repeats, shuffle=spec.shuffle, seed=spec.seed,
                        bins=spec.bins, group=spec.group, time=spec.time, gap=spec.gap,
                        source=source)
    log_target = use_log_target(y, spec.log_target)
    features = feature_steps(spec)
    models = list(dict.fromkeys(spec.models))
    for name in models:
        get_regressor(name)
    ratio = holdout_ratio(folds)
    curve_folds = ([f for f in folds if f.repeat == 0][:LEARNING_FOLDS] if spec.learning_curve
                   else [])
    total = len(models) * len(folds) + len(curve_folds) * len(LEARNING_SHARES)
    log.info("cv_started", source=source, rows=len(X), models=models, folds=len(folds),
             splitter=spec.splitter, log_target=log_target)

    tasks = [_Task(m, f) for m in models for f in folds]
    results = _run_tasks(tasks, X, y, spec, log_target, features, progress, 0, total)
    scores, predictions, added, tuned = _collect(results, y)
    summary, comparisons = _summarize(scores, ratio, spec)
    best = summary[0]["model"]

    curve = pd.DataFrame(columns=["model", "share", "n_train", "repeat", "fold", "train_rmse",
                                  "test_rmse"])
    if curve_folds:
        extra = [_Task(best, f, s) for f in curve_folds for s in LEARNING_SHARES]
        points = _run_tasks(extra, X, y, spec, log_target, features, progress,
                            len(tasks), total)
        full = [r for r in results if r["model"] == best and r["repeat"] == 0
                and r["fold"] in {f.index for f in curve_folds}]
        curve = pd.DataFrame([{"model": best, "share": p["share"], "n_train": p["n_train"],
                               "repeat": p["repeat"], "fold": p["fold"],
                               "train_rmse": p["train_rmse"], "test_rmse": p["metrics"]["rmse"]}
                              for p in [*points, *full]]
                             ).sort_values(["share", "fold"]).reset_index(drop=True)
    result = CVResult(target=target, source=source, rows=len(X), spec=spec,
                      log_target=log_target, features=added, scores=scores,
                      predictions=predictions, summary=summary, comparisons=comparisons,
                      learning_curve=curve, tuned=tuned,
                      duration_s=time.perf_counter() - started)
    log.info("cv_finished", best=best, rmse=round(summary[0]["rmse"], 4),
             duration_s=round(result.duration_s, 2))
    return result


def _collect(results: list[dict[str, Any]], y: np.ndarray
             ) -> tuple[pd.DataFrame, pd.DataFrame, list[str], dict[str, list[dict[str, Any]]]]:
    rows, parts, added = [], [], []
    tuned: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(results, key=lambda r: (r["model"], r["repeat"], r["fold"])):
        rows.append({"model": r["model"], "repeat": r["repeat"], "fold": r["fold"],
                     **r["metrics"], "train_rmse": r["train_rmse"], "fit_s": r["fit_s"],
                     "cpu_s": r["cpu_s"],
                     "n_train": r["n_train"], "n_test": r["n_test"]})
        parts.append(pd.DataFrame({
            "model": r["model"], "repeat": np.int32(r["repeat"]), "fold": np.int32(r["fold"]),
            "row": r["test"].astype("int64"), "actual": y[r["test"]],
            "predicted": r["predicted"]}))
        added = added or r["added"]
        if r["params"]:
            tuned.setdefault(r["model"], []).append(
                {"repeat": r["repeat"], "fold": r["fold"], **r["params"]})
    return pd.DataFrame(rows), pd.concat(parts, ignore_index=True), added, tuned


def _summarize(scores: pd.DataFrame, ratio: float, spec: CVSpec
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from headwater.ml._regressors import REGRESSORS

    summary = []
    for model, part in scores.groupby("model", sort=False):
        row: dict[str, Any] = {"model": model, "title": REGRESSORS[str(model)].title}
        for metric in METRICS:
            s = summarize(part[metric].to_numpy(), test_train_ratio=ratio,
                          confidence=spec.confidence)
            row[metric] = s.mean
            row[f"{metric}_std"] = s.std
            row[f"{metric}_low"] = s.low
            row[f"{metric}_high"] = s.high
        row["train_rmse"] = float(part.train_rmse.mean())
        row["fit_s"] = float(part.fit_s.mean())
        row["folds"] = len(part)
        summary.append(row)
    summary.sort(key=lambda r: r["rmse"])
    best = summary[0]["model"]
    keyed = scores.set_index(["repeat", "fold"])
    base = keyed[keyed.model == best]["rmse"]
    comparisons = []
    for row in summary:
        row["rank"] = len(comparisons) + 1
        if row["model"] == best:
            row["vs_best"] = "best"
            comparisons.append({"a": best, "b": best, "metric": "rmse", "mean_difference": 0.0,
                                "t": 0.0, "p_value": 1.0, "significant": False,
                                "verdict": "best mean RMSE"})
            continue
        other = keyed[keyed.model == row["model"]]["rmse"].reindex(base.index)
        c = compare(row["model"], other.to_numpy(), best, base.to_numpy(), metric="rmse",
                    test_train_ratio=ratio, alpha=spec.alpha)
        row["vs_best"] = "worse" if c.significant else "tie"
        row["p_value"] = c.p_value
        comparisons.append(c.as_dict())
    return summary, comparisons

"""Hyperparameter tuning with Optuna: stratified k-fold CV, trial/time budget, pruning, seeds,
and optional shared RDB storage so several processes or machines tune one study together.

    result = tune(get_algorithm("lightgbm"), X, y, Setting(rows=len(X)), trials=30, timeout=20)
    result.params, result.cv_mean, result.cv_std

Workers on other machines join the same study by passing the same ``storage`` and
``study_name`` (``headwater tune churn --storage postgresql://... --study churn-lightgbm``).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from headwater.core import ConfigError, require
from headwater.monitor import get_logger

if TYPE_CHECKING:
    import pandas as pd

    from headwater.ml._algorithms import Algorithm, Setting

log = get_logger(__name__)

#: Metrics tuning can maximise (errors are negated so that higher is always better).
METRICS = ("roc_auc", "average_precision", "neg_log_loss", "rmse", "mae", "r2")


@dataclass
class TuneResult:
    """The best parameters of one algorithm and how they scored across the folds."""

    algorithm: str
    params: dict[str, Any]
    metric: str
    cv_mean: float
    cv_std: float
    fold_scores: list[float] = field(default_factory=list)
    trials: int = 0
    pruned: int = 0
    seconds: float = 0.0
    study_name: str = ""


def score(metric: str, y: np.ndarray, prediction: np.ndarray) -> float:
    """``metric`` of ``prediction`` (probabilities of class 1, or values); higher is better."""
    from sklearn import metrics as m

    if metric == "roc_auc":
        return float(m.roc_auc_score(y, prediction))
    if metric == "average_precision":
        return float(m.average_precision_score(y, prediction))
    if metric == "neg_log_loss":
        return -float(m.log_loss(y, np.clip(prediction, 1e-15, 1 - 1e-15), labels=[0, 1]))
    if metric == "rmse":
        return -float(np.sqrt(m.mean_squared_error(y, prediction)))
    if metric == "mae":
        return -float(m.mean_absolute_error(y, prediction))
    if metric == "r2":
        return float(m.r2_score(y, prediction))
    raise ConfigError(f"unknown metric '{metric}'", hint=f"use one of {', '.join(METRICS)}")


def predict_scores(model: Any, X: pd.DataFrame, task: str) -> np.ndarray:
    """Probabilities of class 1 for a classifier, predictions for a regressor."""
    if task == "classification":
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.predict(X), dtype="float64")


def folds_for(y: np.ndarray, task: str, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k folds for classification, shuffled k folds for regression (fixed by seed)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = (StratifiedKFold if task == "classification" else KFold)(
        n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def cross_validate(algorithm: Algorithm, params: dict[str, Any], X: pd.DataFrame, y: np.ndarray,
                   setting: Setting, *, folds: int = 5, metric: str = "roc_auc",
                   ) -> tuple[list[float], np.ndarray]:
    """Fold scores and out-of-fold predictions of one parameter set (preparation in-fold)."""
    oof = np.zeros(len(y), dtype="float64")
    scores = []
    for train_idx, test_idx in folds_for(y, setting.task, folds, setting.seed):
        fold_setting = replace(setting, rows=len(train_idx))
        model = algorithm.pipeline(params, fold_setting).fit(X.iloc[train_idx], y[train_idx])
        oof[test_idx] = predict_scores(model, X.iloc[test_idx], setting.task)
        scores.append(score(metric, y[test_idx], oof[test_idx]))
    return scores, oof


def _open_study(optuna: Any, storage: str | None, name: str, seed: int) -> Any:
    """Create or join a study; workers starting together may race to create it, so retry."""
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(5):
        try:
            rdb = None
            if storage:
                rdb = optuna.storages.RDBStorage(storage_url(storage),
                                                 engine_kwargs={"pool_pre_ping": True})
            return optuna.create_study(
                storage=rdb, study_name=name, direction="maximize", load_if_exists=True,
                sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=8),
                pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1))
        except (optuna.exceptions.DuplicatedStudyError, SQLAlchemyError) as exc:
            if attempt == 4 or not storage:
                from headwater.ml._tracking import _safe

                raise ConfigError(f"cannot open Optuna study '{name}' in {_safe(storage or '')}: "
                                  f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                                  hint="check the storage URL and that the database is "
                                  "reachable") from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def _has_complete(study: Any) -> bool:
    from optuna.trial import TrialState

    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def storage_url(url: str) -> str:
    """Normalise a database URL for SQLAlchemy (``postgresql://`` uses psycopg 3)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def tune(algorithm: Algorithm, X: pd.DataFrame, y: np.ndarray, setting: Setting, *,
         folds: int = 5, trials: int = 40, timeout: float | None = None,
         metric: str = "roc_auc", storage: str | None = None, study_name: str | None = None,
         seed: int | None = None) -> TuneResult:
    """Tune ``algorithm`` with Optuna (TPE sampler, median pruner over folds).

    Parameters
    ----------
    algorithm, setting:
        What to tune and the data/run settings (task, rows, seed, class weights, ...).
    X, y:
        The training part only (never the holdout).
    folds:
        Stratified k-fold CV per trial.
    trials:
        Most trials in the study (all workers together when storage is shared).
    timeout:
        Seconds this process tunes at most (a running trial finishes).
    metric:
        What to maximise (see :data:`METRICS`).
    storage, study_name:
        An RDB URL (``postgresql://...``, ``sqlite:///...``) and study name shared by workers;
        default: an in-memory study.
    seed:
        Sampler seed (default: ``setting.seed``); give each worker its own.
    """
    optuna = require("optuna", "ml")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if len(y) < folds * 2:
        raise ConfigError(f"{len(y)} training rows cannot be split into {folds} folds",
                          hint="use fewer folds (ml.train.<task>.folds) or more data")
    started = time.perf_counter()
    splits = folds_for(y, setting.task, folds, setting.seed)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    name = study_name or f"{algorithm.name}-{setting.task}"
    deadline = None if timeout is None else started + timeout

    def objective(trial: Any) -> float:
        params = algorithm.space(trial, setting)
        trial.set_user_attr("worker", worker)
        scores: list[float] = []
        for step, (train_idx, test_idx) in enumerate(splits):
            fold_setting = replace(setting, rows=len(train_idx))
            model = algorithm.pipeline(params, fold_setting)
            model.fit(X.iloc[train_idx], y[train_idx])
            scores.append(score(metric, y[test_idx],
                                predict_scores(model, X.iloc[test_idx], setting.task)))
            trial.report(float(np.mean(scores)), step)
            if step < len(splits) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
            if (deadline is not None and step < len(splits) - 1
                    and time.perf_counter() > deadline and _has_complete(trial.study)):
                raise optuna.TrialPruned()  # out of time: stop this trial, keep the best
        trial.set_user_attr("fold_scores", scores)
        return float(np.mean(scores))

    study = _open_study(optuna, storage, name, setting.seed if seed is None else seed)
    if not study.trials:
        study.enqueue_trial(algorithm.defaults(setting), skip_if_exists=True)
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    study.optimize(objective, n_trials=trials, timeout=timeout, gc_after_trial=False,
                   callbacks=[optuna.study.MaxTrialsCallback(trials, states=done)])
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ConfigError(f"tuning {algorithm.name} finished no trial within the budget",
                          hint="raise time_budget_s or trials in ml.train.<task>")
    best = study.best_trial
    fold_scores = list(best.user_attrs.get("fold_scores", [best.value]))
    result = TuneResult(
        algorithm=algorithm.name, params={**algorithm.defaults(setting), **best.params},
        metric=metric, cv_mean=float(np.mean(fold_scores)), cv_std=float(np.std(fold_scores)),
        fold_scores=[float(s) for s in fold_scores], trials=len(study.trials),
        pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        seconds=time.perf_counter() - started, study_name=name)
    log.info("tuned", algorithm=algorithm.name, metric=metric, cv_mean=round(result.cv_mean, 4),
             cv_std=round(result.cv_std, 4), trials=result.trials, pruned=result.pruned,
             seconds=round(result.seconds, 1))
    return result

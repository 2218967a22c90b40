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
from collections.abc import Callable
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
    #: Out-of-fold predictions of the best trial (None when another worker ran it).
    oof: np.ndarray | None = field(default=None, repr=False)


def score(metric: str, y: np.ndarray, prediction: np.ndarray) -> float:
    """``metric`` of ``prediction`` (probabilities of class 1, or values); higher is better."""
    from sklearn import metrics as m

    if metric == "roc_auc":  # by ranks: the same value, many times faster (ensemble selection)
        from headwater.ml._evaluate import _auc

        return _auc(np.asarray(y), np.asarray(prediction))
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


def _open_study(optuna: Any, storage: str | None, name: str, seed: int, folds: int) -> Any:
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
                # successive halving across folds: a trial that is poor on its first folds
                # stops early, in Hyperband's brackets so that slow starters get a chance
                pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=folds,
                                                      reduction_factor=3))
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


class Tuner:
    """One algorithm's Optuna study that can be resumed in slices of time (a shared budget).

    Every completed trial's out-of-fold predictions are kept for the best trial, so ensembles
    and the threshold choice need no extra cross-validation. See :func:`tune` for parameters.
    """

    def __init__(self, algorithm: Algorithm, X: pd.DataFrame, y: np.ndarray, setting: Setting,
                 *, folds: int = 5, metric: str = "roc_auc", storage: str | None = None,
                 study_name: str | None = None, seed: int | None = None) -> None:
        self.optuna = require("optuna", "ml")
        self.optuna.logging.set_verbosity(self.optuna.logging.WARNING)
        self.optuna.logging.disable_default_handler()  # to headwater's log file
        self.optuna.logging.enable_propagation()
        if len(y) < folds * 2:
            raise ConfigError(f"{len(y)} training rows cannot be split into {folds} folds",
                              hint="use fewer folds (ml.train.<task>.folds) or more data")
        self.algorithm, self.X, self.y, self.setting = algorithm, X, y, setting
        self.metric = metric
        self.splits = folds_for(y, setting.task, folds, setting.seed)
        self.name = study_name or f"{algorithm.name}-{setting.task}"
        self.study = _open_study(self.optuna, storage, self.name, setting.seed
                                 if seed is None else seed, folds)
        if not self.study.trials:
            for start in (algorithm.defaults(setting), *algorithm.starts(setting)):
                self.study.enqueue_trial(start, skip_if_exists=True)
        self.seconds = 0.0
        self.slices = 0
        self._oof: dict[int, np.ndarray] = {}
        self._worker = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def best_value(self) -> float:
        """The best CV mean so far (-inf before the first completed trial)."""
        return self.study.best_value if _has_complete(self.study) else float("-inf")

    def _objective(self, trial: Any, deadline: float | None) -> float:
        optuna, setting = self.optuna, self.setting
        params = self.algorithm.space(trial, setting)
        trial.set_user_attr("worker", self._worker)
        scores: list[float] = []
        oof = np.zeros(len(self.y), dtype="float64")
        for step, (train_idx, test_idx) in enumerate(self.splits):
            fold_setting = replace(setting, rows=len(train_idx))
            model = self.algorithm.pipeline(params, fold_setting)
            model.fit(self.X.iloc[train_idx], self.y[train_idx])
            oof[test_idx] = predict_scores(model, self.X.iloc[test_idx], setting.task)
            scores.append(score(self.metric, self.y[test_idx], oof[test_idx]))
            trial.report(float(np.mean(scores)), step)
            if step < len(self.splits) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
            if (deadline is not None and step < len(self.splits) - 1
                    and time.perf_counter() > deadline and _has_complete(trial.study)):
                raise optuna.TrialPruned()  # out of time: stop this trial, keep the best
        trial.set_user_attr("fold_scores", scores)
        value = float(np.mean(scores))
        if value > self.best_value:
            self._oof = {trial.number: oof}  # only the best trial's predictions are kept
        return value

    def run(self, *, timeout: float | None, trials: int) -> int:
        """Tune for at most ``timeout`` seconds, up to ``trials`` in the study; trials run."""
        optuna = self.optuna
        started = time.perf_counter()
        deadline = None if timeout is None else started + timeout
        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        before = len(self.study.trials)
        if sum(t.state in done for t in self.study.trials) >= trials:
            return 0
        self.study.optimize(lambda t: self._objective(t, deadline), n_trials=trials,
                            timeout=timeout, gc_after_trial=False,
                            callbacks=[optuna.study.MaxTrialsCallback(trials, states=done)])
        self.seconds += time.perf_counter() - started
        self.slices += 1
        return len(self.study.trials) - before

    def result(self) -> TuneResult:
        """The best parameters so far, their fold scores and out-of-fold predictions."""
        optuna = self.optuna
        complete = [t for t in self.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            raise ConfigError(f"tuning {self.algorithm.name} finished no trial within the "
                              "budget", hint="raise time_budget_s or trials in ml.train.<task>")
        best = self.study.best_trial
        fold_scores = list(best.user_attrs.get("fold_scores", [best.value]))
        return TuneResult(
            algorithm=self.algorithm.name,
            params={**self.algorithm.defaults(self.setting), **best.params},
            metric=self.metric, cv_mean=float(np.mean(fold_scores)),
            cv_std=float(np.std(fold_scores)), fold_scores=[float(s) for s in fold_scores],
            trials=len(self.study.trials),
            pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in self.study.trials),
            seconds=self.seconds, study_name=self.name, oof=self._oof.get(best.number))


def tune(algorithm: Algorithm, X: pd.DataFrame, y: np.ndarray, setting: Setting, *,
         folds: int = 5, trials: int = 40, timeout: float | None = None,
         metric: str = "roc_auc", storage: str | None = None, study_name: str | None = None,
         seed: int | None = None) -> TuneResult:
    """Tune ``algorithm`` with Optuna (TPE sampler, Hyperband pruning over folds).

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
    tuner = Tuner(algorithm, X, y, setting, folds=folds, metric=metric, storage=storage,
                  study_name=study_name, seed=seed)
    tuner.run(timeout=timeout, trials=trials)
    result = tuner.result()
    log.info("tuned", algorithm=algorithm.name, metric=metric, cv_mean=round(result.cv_mean, 4),
             cv_std=round(result.cv_std, 4), trials=result.trials, pruned=result.pruned,
             seconds=round(result.seconds, 1))
    return result


#: Share of a shared budget spent in the first round, split evenly: every algorithm is measured.
FIRST_ROUND = 0.4
#: An algorithm whose best CV score rose less than this in its last slice has plateaued.
MIN_GAIN = 1e-4
#: An algorithm this far (in metric units) behind the leader gets no more time.
MARGIN = 0.01


def tune_all(algorithms: list[Algorithm], X: pd.DataFrame, y: np.ndarray, setting: Setting, *,
             folds: int = 5, trials: int = 40, budget_s: float = 60.0,
             metric: str = "roc_auc", storage: str | None = None, prefix: str | None = None,
             on_progress: Callable[[str, int, int], None] | None = None,
             ) -> tuple[dict[str, TuneResult], list[dict[str, Any]]]:
    """Tune several algorithms on one shared time budget; returns results and where time went.

    Round one gives every algorithm an equal slice of :data:`FIRST_ROUND` of the budget (its
    defaults and cheap starting points first). Each later round splits what is left among the
    algorithms still worth it: not at their trial cap, still improving (more than
    :data:`MIN_GAIN` in their last slice) and within :data:`MARGIN` of the leader. Tuning stops
    when the budget is spent or no algorithm is worth more time, so a plateau returns time early.
    Trial counts depend on the machine's speed; for runs reproducible to the trial, set a
    ``trials`` cap the budget never reaches.
    """
    started = time.perf_counter()
    tuners = {a.name: Tuner(a, X, y, setting, folds=folds, metric=metric, storage=storage,
                            study_name=f"{prefix}-{a.name}" if prefix else None)
              for a in algorithms}
    timeline: list[dict[str, Any]] = []
    gains: dict[str, float] = {}

    def run(name: str, seconds: float, round_: int) -> None:
        tuner = tuners[name]
        best, spent = tuner.best_value, tuner.seconds
        ran = tuner.run(timeout=max(seconds, 0.5), trials=trials)
        gains[name] = tuner.best_value - best
        timeline.append({"round": round_, "algorithm": name, "trials": ran,
                         "seconds": round(tuner.seconds - spent, 2),
                         "best": round(tuner.best_value, 5)})
        if on_progress:  # progress is time: the budget is what the run spends
            elapsed = int(min(time.perf_counter() - started, budget_s))
            on_progress(f"{name}: CV {metric} {tuner.best_value:.4f}", elapsed, int(budget_s))

    first = FIRST_ROUND * budget_s / len(tuners)
    for name in tuners:
        run(name, first, 1)
    round_ = 1
    while (left := budget_s - (time.perf_counter() - started)) > 1.0:
        leader = max(t.best_value for t in tuners.values())
        active = [n for n, t in tuners.items()
                  if gains[n] > MIN_GAIN and t.best_value >= leader - MARGIN
                  and len(t.study.trials) < trials]
        if not active:
            break
        round_ += 1
        share = left / (2 * len(active))  # half of what is left: then look again
        for name in active:
            run(name, share, round_)
    results = {name: tuner.result() for name, tuner in tuners.items()}
    for r in results.values():
        log.info("tuned", algorithm=r.algorithm, metric=metric, cv_mean=round(r.cv_mean, 4),
                 trials=r.trials, pruned=r.pruned, seconds=round(r.seconds, 1))
    return results, timeline

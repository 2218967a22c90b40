"""Compare recommendation models on one split, tune them on a validation split, train the best.

    evaluation = evaluate_recommender(load_interactions("u.data"), split="random", k=10)
    evaluation.leaderboard()          # every model against popularity, on the same split
    trained = train_recommender(load_interactions("u.data"), tracker=tracker)
    trained.recommender.recommend({}, k=10)

The protocol: a per-user split (random, or each user's latest interactions) holds out the test
part. Hyperparameters are tuned with Optuna on a second split of the training part (validation),
the best model is chosen by its validation NDCG@k (never by the test), and every model, refitted
on the whole training part with its chosen parameters, is scored on the test part. The model
that ``train_recommender`` registers is then refitted on every interaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from headwater.core import ConfigError, require
from headwater.ml.recommend._results import BASELINE, Evaluation, ModelResult, TrainedRecommender
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from scipy import sparse

    from headwater.ml._tracking import Tracker
    from headwater.ml.recommend._data import Interactions
    from headwater.ml.recommend._metrics import Split
    from headwater.ml.recommend._models import Model

log = get_logger(__name__)

#: ``on_progress(message, done, total)``, called as models finish.
Progress = Callable[[str, int, int], None]
#: Cut-offs of the metric-by-k curves in the report.
CURVE_KS = (1, 2, 3, 5, 10, 15, 20)


def _fit(model_cls: type[Model], params: dict[str, Any], weights: sparse.csr_matrix,
         times: sparse.csr_matrix, seed: int) -> Model:
    return model_cls(seed=seed, **params).fit(weights, times)


def _ndcg(model: Model, train: sparse.csr_matrix, test: sparse.csr_matrix, k: int) -> float:
    from headwater.ml.recommend._metrics import rank, ranking_metrics

    users = np.flatnonzero(np.diff(test.indptr) > 0)
    recs = rank(model, train, k=k, users=users)
    return ranking_metrics(recs, test, k=k, users=users)[f"ndcg@{k}"]


def tune_model(model_cls: type[Model], fit: tuple[sparse.csr_matrix, sparse.csr_matrix],
               validation: sparse.csr_matrix, *, k: int, trials: int, timeout: float | None,
               seed: int) -> tuple[dict[str, Any], float, int]:
    """Optuna search of ``model_cls``'s space for NDCG@k on ``validation``.

    The defaults are the first trial. Returns (best parameters, best NDCG@k, trials run).
    """
    defaults = model_cls.defaults()
    probe = model_cls.space(_Recorder())
    if trials <= 1 or not probe:
        score = _ndcg(_fit(model_cls, defaults, *fit, seed), fit[0], validation, k)
        return defaults, score, 1
    optuna = require("optuna", "ml")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    def objective(trial: Any) -> float:
        params = {**defaults, **model_cls.space(trial)}
        return _ndcg(_fit(model_cls, params, *fit, seed), fit[0], validation, k)

    study = optuna.create_study(
        study_name=f"recommend-{model_cls.name}", direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(8, max(trials // 3,
                                                                                   1))))
    study.enqueue_trial({name: defaults[name] for name in probe})
    study.optimize(objective, n_trials=trials, timeout=timeout, gc_after_trial=False)
    return {**defaults, **study.best_params}, float(study.best_value), len(study.trials)


class _Recorder:
    """A stand-in Optuna trial that answers each ``suggest_*`` with the low end (to list names)."""

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return low

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return low

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return choices[0]


def evaluate_recommender(interactions: Interactions, *, models: Sequence[str] | None = None,
                         split: Split = "random", fraction: float = 0.25, k: int = 10,
                         trials: int = 20, time_budget_s: float = 120.0, seed: int = 0,
                         on_progress: Progress | None = None) -> Evaluation:
    """Tune, fit and score every model in ``models`` on the same per-user split.

    Parameters
    ----------
    interactions:
        From :func:`load_interactions`.
    models:
        Names from :data:`MODELS` (default :data:`DEFAULT_MODELS`); popularity is always added
        as the baseline.
    split, fraction:
        ``random`` or ``time`` per-user split, and the share of each user's items held out; the
        validation split inside the training part uses the same kind and share.
    k:
        The cut-off of the metrics and of the tuning objective (NDCG@k).
    trials, time_budget_s:
        Optuna trials per model (1: defaults only) and seconds for all tuning together.
    seed:
        Fixes the splits, the samplers and the models.
    """
    from headwater.ml.recommend._metrics import metrics_by_k, rank, ranking_metrics
    from headwater.ml.recommend._metrics import split as split_pairs
    from headwater.ml.recommend._models import DEFAULT_MODELS, get_model

    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}", hint="e.g. --k 10")
    started = time.perf_counter()
    names = list(dict.fromkeys([BASELINE, *(models or DEFAULT_MODELS)]))
    classes = [get_model(n) for n in names]
    encoded = interactions.encode()
    if encoded.weights.nnz < 10 or encoded.shape[0] < 2:
        raise ConfigError(f"{interactions.source}: {encoded.weights.nnz} user-item pairs are "
                          "too few to evaluate", hint="use more interactions")
    (train_w, train_t), (test_w, _) = split_pairs(encoded.weights, encoded.times, kind=split,
                                                  fraction=fraction, seed=seed)
    fit_part, (val_w, _) = split_pairs(train_w, train_t, kind=split, fraction=fraction,
                                       seed=seed + 1)
    popularity = np.bincount(train_w.indices, minlength=encoded.shape[1]) / encoded.shape[0]
    judged = np.flatnonzero(np.diff(test_w.indptr) > 0)
    deepest = max(k, max(CURVE_KS))
    results: list[ModelResult] = []
    total = len(classes)
    for i, model_cls in enumerate(classes):
        if on_progress:
            on_progress(f"tuning {model_cls.name}", i, total)
        left = time_budget_s - (time.perf_counter() - started)
        t0 = time.perf_counter()
        params, validation, n_trials = tune_model(
            model_cls, fit_part, val_w, k=k, trials=trials,
            timeout=max(left / (total - i), 1.0), seed=seed)
        tune_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = _fit(model_cls, params, train_w, train_t, seed)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        recs = rank(model, train_w, k=deepest, users=judged)
        rank_s = time.perf_counter() - t0
        sub = test_w[judged]
        by_k = metrics_by_k(recs, sub, [c for c in CURVE_KS if c <= deepest],
                            popularity=popularity)
        metrics = ranking_metrics(recs, sub, k=k, popularity=popularity)
        results.append(ModelResult(name=model_cls.name, title=model_cls.title, params=params,
                                   validation=validation, metrics=metrics, by_k=by_k,
                                   trials=n_trials, tune_s=tune_s, fit_s=fit_s, rank_s=rank_s))
        log.info("recommender_evaluated", model=model_cls.name, validation_ndcg=round(
            validation, 4), test_ndcg=round(metrics[f"ndcg@{k}"], 4), trials=n_trials)
        if on_progress:
            on_progress(f"{model_cls.name}: NDCG@{k} {metrics[f'ndcg@{k}']:.4f}", i + 1, total)
    best = max(results, key=lambda r: r.validation).name
    fallbacks = [r for r in results if r.name in ("popularity", "trending")]
    fallback = max(fallbacks, key=lambda r: r.validation).name
    return Evaluation(source=interactions.source, split=split, fraction=fraction, k=k,
                      seed=seed, users=encoded.shape[0], items=encoded.shape[1],
                      interactions=len(interactions), pairs=encoded.weights.nnz,
                      test_pairs=test_w.nnz, results=results, best=best, fallback=fallback,
                      seconds=time.perf_counter() - started)


def train_recommender(interactions: Interactions, *, models: Sequence[str] | None = None,
                      split: Split = "random", fraction: float = 0.25, k: int = 10,
                      trials: int = 20, time_budget_s: float = 120.0, seed: int = 0,
                      tracker: Tracker | None = None, registered_name: str = "recommend",
                      alias: str | None = "challenger", register: bool = True,
                      report_path: Path | None = None,
                      on_progress: Progress | None = None) -> TrainedRecommender:
    """Evaluate the models (see :func:`evaluate_recommender`), refit the best on every
    interaction, write the report, log it all to MLflow and register it under ``alias``.

    Parameters are those of :func:`evaluate_recommender`, plus ``tracker`` (None: no MLflow),
    ``registered_name`` and ``alias`` (the registry entry), ``register`` and ``report_path``.
    """
    from headwater.ml.recommend._recommender import Recommender

    evaluation = evaluate_recommender(interactions, models=models, split=split,
                                      fraction=fraction, k=k, trials=trials,
                                      time_budget_s=time_budget_s, seed=seed,
                                      on_progress=on_progress)
    best = evaluation.result(evaluation.best)
    fallback = evaluation.result(evaluation.fallback)
    metadata = {"algorithm": best.name, "params": best.params, "fallback": fallback.name,
                "source": evaluation.source, "split": split, "k": k,
                f"test_ndcg@{k}": best.metrics[f"ndcg@{k}"]}
    recommender = Recommender.fit(interactions, model=best.name, params=best.params,
                                  fallback=fallback.name, fallback_params=fallback.params,
                                  seed=seed, metadata=metadata)
    trained = TrainedRecommender(recommender=recommender, evaluation=evaluation)
    if report_path is not None:
        from headwater.ml.recommend._report import write_report

        trained.report_path = write_report(evaluation, report_path)
    if tracker is not None:
        from headwater.ml.recommend._tracking import track

        track(trained, tracker, registered_name=registered_name, alias=alias,
              register=register)
    log.info("recommender_trained", best=best.name, fallback=fallback.name,
             test_ndcg=round(best.metrics[f"ndcg@{k}"], 4))
    return trained

"""Train, tune and compare classifiers on a dataset; evaluate the best on a holdout; track it.

    dataset = load_dataset("customers.csv", "Churn")
    result = train_classifier(dataset, TrainSpec(), name="churn", tracker=Tracker(...))
    result.leaderboard, result.metrics, result.threshold

The holdout is split off first (stratified) and never seen by tuning, model selection (by CV
mean) or threshold choice (on out-of-fold scores of the training part).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from headwater.core import ConfigError, Progress
from headwater.monitor import get_logger

if TYPE_CHECKING:
    import pandas as pd

    from headwater.config import TrainSpec
    from headwater.ml._data import Dataset
    from headwater.ml._evaluate import ThresholdChoice
    from headwater.ml._prepare import PrepareReport
    from headwater.ml._tracking import Tracker

log = get_logger(__name__)

#: Leaderboard names and titles of the ensembles (``ensembles`` in ml.train.<task>).
ENSEMBLE_NAMES = {"vote": "ensemble", "stack": "stack"}
ENSEMBLE_TITLES = {"vote": "weighted soft vote (greedy selection)",
                   "stack": "stacked logistic regression"}


@dataclass
class TrainResult:
    """Everything a training run found: leaderboard, the best model, its holdout evaluation."""

    name: str
    source: str
    target: str
    positive: Any
    rows: int
    train_rows: int
    holdout_rows: int
    leaderboard: list[dict[str, Any]]
    best: str
    model: Any
    params: dict[str, Any]
    threshold: ThresholdChoice
    metrics: dict[str, Any]
    intervals: dict[str, tuple[float, float]]
    gains: list[dict[str, Any]]
    calibration: list[dict[str, Any]]
    prepare: PrepareReport
    importance: list[dict[str, Any]]
    selection: list[dict[str, Any]] = field(default_factory=list)
    #: Members and weights when the best is an ensemble.
    ensemble: list[dict[str, Any]] = field(default_factory=list)
    #: Where the tuning time went: one row per algorithm per budget round.
    timeline: list[dict[str, Any]] = field(default_factory=list)
    holdout_index: Any = None
    holdout_scores: np.ndarray | None = None
    holdout_y: np.ndarray | None = None
    #: Holdout scores of every leaderboard entry (the figures compare them).
    candidates: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    model_uri: str | None = None
    mlflow_run_id: str | None = None
    registered: dict[str, Any] | None = None
    report_path: Path | None = None
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary for run records."""
        return {
            "task": self.name, "source": self.source, "target": self.target,
            "rows": self.rows, "train_rows": self.train_rows, "holdout_rows": self.holdout_rows,
            "best": self.best, "params": self.params, "leaderboard": self.leaderboard,
            "ensemble": self.ensemble, "timeline": self.timeline,
            "threshold": self.threshold.to_dict(),
            "metrics": {k: v for k, v in self.metrics.items()},
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "dropped_columns": self.prepare.dropped, "model_uri": self.model_uri,
            "registered": self.registered, "report": str(self.report_path or ""),
            "seconds": round(self.seconds, 1),
        }


def _setting(spec: TrainSpec, rows: int, drop: list[str]) -> Any:
    from headwater.ml._algorithms import Setting

    return Setting(task="classification", rows=rows, seed=spec.seed,
                   class_weight=spec.class_weight, encoding=spec.encoding,
                   max_onehot=spec.max_onehot, leak_score=spec.leak_auc,
                   feature_selection=spec.feature_selection, drop=tuple(drop))


def holdout_split(X: pd.DataFrame, y: np.ndarray, *, holdout: float, seed: int
                  ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """The stratified holdout split every churn path uses (training, tuning workers): the same
    ``seed`` gives the same holdout, so a tuning worker never sees the rows training holds out.

    >>> import numpy as np, pandas as pd
    >>> X, y = pd.DataFrame({"a": range(20)}), np.array([0, 1] * 10)
    >>> X_train, X_hold, y_train, y_hold = holdout_split(X, y, holdout=0.25, seed=1)
    >>> len(X_hold), int(y_hold.sum()), list(X_hold.index) == list(holdout_split(
    ...     X, y, holdout=0.25, seed=1)[1].index)
    (5, 3, True)
    """
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=holdout, stratify=y, random_state=seed)


def _board_row(name: str, title: str, metric: str, fold_scores: list[float], y_hold: np.ndarray,
               scores: np.ndarray, *, trials: int, pruned: int, tune_s: float,
               fit_s: float) -> dict[str, Any]:
    from headwater.ml._evaluate import binary_metrics

    m = binary_metrics(y_hold, scores, 0.5)
    return {"algorithm": name, "title": title, "metric": metric,
            "cv_mean": float(np.mean(fold_scores)), "cv_std": float(np.std(fold_scores)),
            "holdout_roc_auc": m["roc_auc"], "holdout_pr_auc": m["pr_auc"],
            "holdout_log_loss": m["log_loss"], "holdout_brier": m["brier"],
            "trials": trials, "pruned": pruned, "tune_s": round(tune_s, 1),
            "fit_s": round(fit_s, 2)}


def train_classifier(dataset: Dataset, spec: TrainSpec, *, name: str = "churn",
                     tracker: Tracker | None = None, report_path: Path | None = None,
                     registered_name: str | None = None, alias: str | None = "challenger",
                     on_progress: Progress | None = None) -> TrainResult:
    """Tune every algorithm in ``spec.algorithms``, pick the best by CV, evaluate it on the holdout.

    Parameters
    ----------
    dataset:
        From :func:`headwater.ml.load_dataset`; must be a binary classification.
    spec:
        Training settings (``ml.train.<name>`` in headwater.yaml).
    name:
        The task name (experiment and registered model name).
    tracker:
        Log runs, plots and the model to MLflow and register the best (None: no tracking).
    report_path:
        Where to write the HTML report (None: no report).
    registered_name, alias:
        The registry name (default ``name``) and alias the best model gets.
    on_progress:
        Called with (message, seconds spent, budget seconds) as tuning goes.
    """
    from headwater.ml import _evaluate as ev
    from headwater.ml._algorithms import get_algorithm
    from headwater.ml._ensemble import build_ensemble, nested_predictions
    from headwater.ml._prepare import ColumnAuditor, selection_report
    from headwater.ml._tune import cross_validate, folds_for, predict_scores, tune_all

    if dataset.task != "classification":
        raise ConfigError(f"'{dataset.target}' looks like a regression target; churn training "
                          "is binary classification",
                          hint="pick a Yes/No target, or set task: classification")
    started = time.perf_counter()
    algorithms = [get_algorithm(a) for a in dict.fromkeys(spec.algorithms)]
    X, y = dataset.X, dataset.y.to_numpy()
    X_train, X_hold, y_train, y_hold = holdout_split(X, y, holdout=spec.holdout, seed=spec.seed)
    if min(np.bincount(y_train, minlength=2)) < spec.folds:
        raise ConfigError(f"{dataset.source}: the training part has fewer than {spec.folds} rows "
                          f"of one class, too few for {spec.folds}-fold CV",
                          hint="use more data or fewer folds")
    setting = _setting(spec, len(X_train), dataset.drop)
    prepare = ColumnAuditor(task="classification", leak_score=spec.leak_auc,
                            drop=tuple(dataset.drop)).fit(X_train, y_train).report_
    for column, why in prepare.dropped.items():
        log.warning("column_dropped", column=column, reason=why)
    metric = spec.metric or "roc_auc"
    if on_progress:
        on_progress("tuning", 0, int(spec.time_budget_s))
    tuned, timeline = tune_all(
        algorithms, X_train, y_train, setting, folds=spec.folds, trials=spec.trials,
        budget_s=spec.time_budget_s, metric=metric,
        storage=spec.storage.get_secret_value() if spec.storage else None,
        prefix=name if spec.storage else None, on_progress=on_progress)
    board: list[dict[str, Any]] = []
    fitted: dict[str, Any] = {}
    holdout_scores: dict[str, np.ndarray] = {}
    oof: dict[str, np.ndarray] = {}
    for algorithm in algorithms:
        result = tuned[algorithm.name]
        t0 = time.perf_counter()
        model = algorithm.pipeline(result.params, setting).fit(X_train, y_train)
        fit_s = time.perf_counter() - t0
        oof[algorithm.name] = result.oof if result.oof is not None else cross_validate(
            algorithm, result.params, X_train, y_train, setting, folds=spec.folds,
            metric=metric)[1]
        fitted[algorithm.name] = model
        holdout_scores[algorithm.name] = predict_scores(model, X_hold, "classification")
        board.append(_board_row(algorithm.name, algorithm.title, metric, result.fold_scores,
                                y_hold, holdout_scores[algorithm.name], trials=result.trials,
                                pruned=result.pruned, tune_s=result.seconds, fit_s=fit_s))
    ensembles: dict[str, Any] = {}
    if len(algorithms) > 1:
        folds = folds_for(y_train, "classification", spec.folds, spec.seed)
        singles = dict(oof)  # ensembles combine the tuned models, never each other
        matrix = np.column_stack(list(singles.values()))
        for kind in spec.ensembles:
            t0 = time.perf_counter()
            fold_scores, nested = nested_predictions(kind, matrix, y_train, folds,
                                                     metric=metric, seed=spec.seed)
            model = build_ensemble(kind, fitted, singles, y_train, metric=metric,
                                   seed=spec.seed)
            label = ENSEMBLE_NAMES[kind]
            fitted[label], oof[label], ensembles[label] = model, nested, model
            holdout_scores[label] = predict_scores(model, X_hold, "classification")
            members = ", ".join(f"{r['member']} {r['weight']:.2f}" for r in model.describe())
            board.append(_board_row(label, f"{ENSEMBLE_TITLES[kind]}: {members}", metric,
                                    fold_scores, y_hold, holdout_scores[label], trials=0,
                                    pruned=0, tune_s=time.perf_counter() - t0, fit_s=0.0))
    board.sort(key=lambda r: -r["cv_mean"])
    best = board[0]["algorithm"]
    model = fitted[best]
    params = (tuned[best].params if best in tuned
              else {f"weight.{r['member']}": r["weight"] for r in model.describe()})
    if on_progress:
        on_progress(f"best by CV: {best}", int(spec.time_budget_s), int(spec.time_budget_s))

    # threshold on out-of-fold scores of the training part, then the holdout at that threshold
    t = spec.threshold
    threshold = ev.choose_threshold(y_train, oof[best], strategy=t.strategy,
                                    target_recall=t.target_recall,
                                    costs=t.cost.model_dump(), value=t.value)
    scores = holdout_scores[best]
    metrics = ev.binary_metrics(y_hold, scores, threshold.value)
    if t.strategy == "cost":
        c = t.cost
        metrics["mean_cost"] = (c.true_positive * metrics["tp"] + c.false_positive * metrics["fp"]
                                + c.false_negative * metrics["fn"]
                                + c.true_negative * metrics["tn"]) / len(y_hold)
    intervals = ev.bootstrap_intervals(y_hold, scores, threshold.value,
                                       resamples=spec.bootstrap, seed=spec.seed)
    importance = permutation_importance_table(model, X_hold, y_hold, seed=spec.seed)
    result = TrainResult(
        name=name, source=dataset.source, target=dataset.target, positive=dataset.positive,
        rows=len(X), train_rows=len(X_train), holdout_rows=len(X_hold), leaderboard=board,
        best=best, model=model, params=params, threshold=threshold, metrics=metrics,
        intervals=intervals, gains=ev.gains_table(y_hold, scores),
        calibration=ev.calibration_table(y_hold, scores), prepare=prepare,
        importance=importance,
        selection=selection_report(model) if best in tuned else [],
        ensemble=model.describe() if best in ensembles else [], timeline=timeline,
        holdout_index=X_hold.index, holdout_scores=scores, holdout_y=y_hold,
        candidates=holdout_scores)
    figures = _figures(result, holdout_scores) if (report_path or tracker) else {}
    try:
        if report_path is not None:
            result.report_path = write_report(result, figures, report_path)
        if tracker is not None:
            _track(result, tracker, tuned, figures, X_train, registered_name or name, alias,
                   register=spec.register_best, spec=spec)
    finally:
        import matplotlib.pyplot as plt

        for fig in figures.values():
            plt.close(fig)
    result.seconds = time.perf_counter() - started
    log.info("trained", task=name, best=best, roc_auc=round(metrics["roc_auc"], 4),
             threshold=round(threshold.value, 4), seconds=round(result.seconds, 1))
    return result


def permutation_importance_table(model: Any, X: pd.DataFrame, y: np.ndarray, *,
                                 seed: int = 0, repeats: int = 5) -> list[dict[str, Any]]:
    """Drop in holdout ROC-AUC when each raw column is shuffled (mean and std), largest first."""
    from sklearn.inspection import permutation_importance

    found = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=repeats,
                                   random_state=seed, n_jobs=1)
    rows = [{"column": str(c), "importance": float(m), "std": float(s)}
            for c, m, s in zip(X.columns, found.importances_mean, found.importances_std,
                               strict=True)]
    return sorted(rows, key=lambda r: -r["importance"])


def _figures(result: TrainResult, scores: dict[str, np.ndarray]) -> dict[str, Any]:
    from headwater.ml import _plots as pl
    from headwater.ml._evaluate import threshold_curve

    y, m = result.holdout_y, result.metrics
    best = result.holdout_scores
    return {
        "roc.png": pl.roc_figure(y, scores),
        "pr.png": pl.pr_figure(y, scores),
        "confusion.png": pl.confusion_figure(m["tp"], m["fp"], m["fn"], m["tn"],
                                             threshold=result.threshold.value),
        "calibration.png": pl.calibration_figure(result.calibration),
        "gains.png": pl.gains_figure(result.gains),
        "threshold.png": pl.threshold_figure(threshold_curve(y, best), result.threshold.value),
        "importance.png": pl.importance_figure(result.importance),
        "leaderboard.png": pl.leaderboard_figure(result.leaderboard),
    }


def model_card(result: TrainResult) -> dict[str, Any]:
    """Key facts about the model for its card and registry description."""
    m, ci = result.metrics, result.intervals
    auc_ci = ci.get("roc_auc")
    return {
        "Model": f"{result.best} ({result.leaderboard[0]['title']}), task '{result.name}'",
        "Intended use": "rank customers by their probability of leaving, so a retention team "
                        "can contact the riskiest first; not for decisions about individuals "
                        "without human review",
        "Training data": f"{result.source}: {result.rows:,} rows; target '{result.target}' "
                         f"(positive = {result.positive!r}); {result.train_rows:,} for training "
                         f"and tuning, {result.holdout_rows:,} held out",
        "Preparation": f"{len(result.prepare.kept)} columns used; dropped: "
                       + (", ".join(f"{c} ({w.split(':')[0]})"
                                    for c, w in result.prepare.dropped.items()) or "none"),
        "Holdout ROC-AUC": f"{m['roc_auc']:.4f}" + (f" (95% CI {auc_ci[0]:.3f}-{auc_ci[1]:.3f})"
                                                     if auc_ci else ""),
        "Decision threshold": f"{result.threshold.value:.4f} ({result.threshold.strategy}); "
                              f"holdout precision {m['precision']:.3f}, recall {m['recall']:.3f}",
        "Limitations": "probabilities are calibrated only as well as the calibration curve "
                       "shows (class weights push them up); performance holds for customers "
                       "like those in the training data; retrain when the population drifts",
        **({"Ensemble members": ", ".join(f"{r['member']} (weight {r['weight']:.2f})"
                                            for r in result.ensemble)}
           if result.ensemble else {}),
        "Parameters": result.params,
    }


def time_spent(result: TrainResult) -> list[dict[str, Any]]:
    """Per algorithm: budget rounds, trials, pruned trials, tuning and final-fit seconds."""
    rows = []
    for row in result.leaderboard:
        rounds = [r for r in result.timeline if r["algorithm"] == row["algorithm"]]
        rows.append({"algorithm": row["algorithm"], "rounds": len(rounds),
                     "trials": row["trials"], "pruned": row["pruned"],
                     "tune_s": row["tune_s"], "fit_s": row["fit_s"]})
    return rows


def write_report(result: TrainResult, figures: dict[str, Any], path: Path) -> Path:
    """The HTML report: leaderboard, metrics with CIs, plots, gains, preparation, model card."""
    from headwater.ml._report import Report

    report = Report(f"Churn model: {result.name}",
                    subtitle=f"{result.source} · best: {result.best}")
    report.add_heading("Model card")
    report.add_model_card(model_card(result))
    report.add_heading("Leaderboard")
    report.add_text("CV: stratified k-fold on the training part (mean ± std of the best trial); "
                    "holdout: rows no tuning saw. The best is chosen by CV, not by holdout.",
                    css="muted")
    report.add_table(result.leaderboard, columns=["algorithm", "cv_mean", "cv_std",
                     "holdout_roc_auc", "holdout_pr_auc", "holdout_log_loss", "holdout_brier",
                     "trials", "pruned", "tune_s", "fit_s"])
    report.add_figure(figures["leaderboard.png"], caption="CV and holdout per algorithm")
    report.add_text("Ensembles are fitted on out-of-fold predictions only; their CV score is "
                    "nested (weights fitted on the other folds), so it compares fairly.",
                    css="muted")
    if result.ensemble:
        report.add_heading("Ensemble members")
        report.add_table(result.ensemble)
    report.add_heading("Where the tuning time went")
    report.add_text("One shared budget: every algorithm gets a first slice, then the time left "
                    "goes to those still improving and near the leader.", css="muted")
    report.add_table(time_spent(result))
    report.add_heading("Holdout metrics (best model)")
    rows = [{"metric": k, "value": result.metrics[k],
             "95% CI low": result.intervals.get(k, (None, None))[0],
             "95% CI high": result.intervals.get(k, (None, None))[1]}
            for k in ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "precision",
                      "recall", "f1")]
    report.add_table(rows)
    for key in ("roc.png", "pr.png", "confusion.png", "calibration.png"):
        report.add_figure(figures[key], caption=key.removesuffix(".png"))
    report.add_heading("Threshold")
    report.add_table([result.threshold.to_dict()])
    report.add_figure(figures["threshold.png"], caption="chosen on out-of-fold scores")
    report.add_heading("Calibration (holdout)")
    report.add_text("Mean predicted probability against the observed churn rate per score "
                    "decile; class weights make a model over-predict.", css="muted")
    report.add_table(result.calibration)
    report.add_heading("Lift and gains (holdout)")
    report.add_table(result.gains)
    report.add_figure(figures["gains.png"], caption="cumulative gains")
    report.add_heading("Feature importance")
    report.add_figure(figures["importance.png"], caption="permutation importance on the holdout")
    report.add_table(result.importance)
    if result.selection:
        report.add_heading("Feature selection")
        report.add_table(result.selection)
    report.add_heading("Preparation")
    report.add_text(str(result.prepare).splitlines()[0])
    report.add_table(result.prepare.to_records())
    return report.write(path)


def _track(result: TrainResult, tracker: Tracker, tuned: dict[str, Any], figures: dict[str, Any],
           X_train: pd.DataFrame, registered_name: str, alias: str | None, *, register: bool,
           spec: TrainSpec) -> None:
    auditor = result.model.named_steps["audit"]
    with tracker.start_run(result.name, run_name=f"{result.name}-{result.best}",
                           tags={"headwater.task": result.name}) as run:
        tracker.log_params({"best_algorithm": result.best, "source": result.source,
                            "target": result.target, "rows": result.rows,
                            "holdout": spec.holdout, "folds": spec.folds, "seed": spec.seed,
                            "threshold_strategy": result.threshold.strategy,
                            **{f"best.{k}": v for k, v in result.params.items()}})
        tracker.log_metrics({f"holdout_{k}": v for k, v in result.metrics.items()
                             if isinstance(v, int | float)})
        tracker.log_metrics({"threshold": result.threshold.value,
                             "cv_mean": result.leaderboard[0]["cv_mean"]})
        for key, (lo, hi) in result.intervals.items():
            tracker.log_metrics({f"holdout_{key}_ci_low": lo, f"holdout_{key}_ci_high": hi})
        for key, fig in figures.items():
            tracker.log_figure(fig, key)  # figures stay drawable after the report closed them
        tracker.log_dict(result.leaderboard, "leaderboard.json")
        tracker.log_dict(result.gains, "gains.json")
        tracker.log_dict(result.prepare.to_records(), "preparation.json")
        if result.report_path is not None:
            tracker.log_artifact(result.report_path, "report")
        if result.ensemble:
            tracker.log_dict(result.ensemble, "ensemble.json")
        tracker.log_dict(result.timeline, "tuning_timeline.json")
        for row in result.leaderboard:
            with tracker.start_run(result.name, run_name=row["algorithm"], nested=True):
                if row["algorithm"] in tuned:
                    tracker.log_params(tuned[row["algorithm"]].params)
                tracker.log_metrics({k: v for k, v in row.items()
                                     if isinstance(v, int | float) and k != "metric"})
        metadata = {"task": result.name, "target": result.target,
                    "positive": str(result.positive), "threshold": result.threshold.value,
                    "threshold_strategy": result.threshold.strategy, "algorithm": result.best,
                    "columns": dict(auditor.kinds_),
                    "holdout_roc_auc": result.metrics["roc_auc"]}
        result.model_uri = tracker.log_model(result.model, input_example=X_train.head(5),
                                             metadata=metadata, predict_fn="predict_proba")
        result.mlflow_run_id = run.info.run_id
    if register:
        version = tracker.register(result.model_uri, registered_name, alias=alias,
                                   tags={"algorithm": result.best,
                                         "holdout_roc_auc": f"{result.metrics['roc_auc']:.4f}"})
        result.registered = {"name": registered_name, "version": version, "alias": alias}

"""Project-level training, tuning workers and scoring: what the ``headwater`` commands call.

Each call is a run: its id is on every log line and a run record lands in the metadata store,
so ``headwater runs`` lists training and scoring next to ingestion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError
from headwater.monitor import get_logger

if TYPE_CHECKING:
    import pandas as pd

    from headwater.config import Project, TrainSpec
    from headwater.core import Progress
    from headwater.ml._train import TrainResult
    from headwater.ml._tune import TuneResult

log = get_logger(__name__)


def task_spec(project: Project, name: str, *, threshold: str | None = None,
              target_recall: float | None = None, **overrides: Any) -> TrainSpec:
    """``ml.train.<name>`` from headwater.yaml with non-None ``overrides`` applied, validated; a
    ConfigError naming the bad setting otherwise (``folds=1``: at least 2).

    ``threshold`` (a strategy) and ``target_recall`` change the task's threshold settings and
    keep the rest of them (its cost matrix, its fixed value).
    """
    from headwater.config import TrainSpec
    from headwater.config._yaml import validate_settings

    base = project.ml.task(name).model_dump()
    base.update({k: v for k, v in overrides.items() if v is not None})
    choice = {"strategy": threshold, "target_recall": target_recall}
    base["threshold"] = {**base["threshold"], **{k: v for k, v in choice.items() if v is not None}}
    return validate_settings(TrainSpec, base, what=f"training settings for '{name}'",
                             hint="`headwater train --help` lists the options")


def _dataset_for(project: Project, name: str, spec: TrainSpec) -> Any:
    from headwater.ml._data import load_dataset

    if not spec.data:
        raise ConfigError(f"no data for training task '{name}'",
                          hint=f"pass --data TABLE|QUERY|FILE, or set ml.train.{name}.data "
                          "in headwater.yaml")
    target = spec.target or name
    return load_dataset(spec.data, target, project=project, task=spec.task, drop=spec.drop)


def train(project: Project, name: str = "churn", *, on_progress: Progress | None = None,
          report: Path | None = None, **overrides: Any) -> TrainResult:
    """Train task ``name`` as headwater.yaml (and ``overrides``) describe; track and register it.

    Parameters
    ----------
    project:
        The project (its warehouse, MLflow settings and ``ml.train.<name>``).
    name:
        The task, e.g. ``churn``; also the registered model name (after ``registry.prefix``).
    on_progress:
        Called with (message, done, total) as algorithms finish.
    report:
        HTML report path (default ``.headwater/reports/<name>-<run id>.html``).
    overrides:
        Any :class:`~headwater.config.TrainSpec` field, e.g. ``data=``, ``target=``,
        ``algorithms=``, ``time_budget_s=``.

    Example (a minute of tuning on 7,043 rows, so shown rather than run)::

        result = train(load_project("."), "churn", data="customers.csv", target="Churn")
    """
    from headwater.ml._tracking import Tracker
    from headwater.ml._train import train_classifier
    from headwater.store import recorded_run

    spec = task_spec(project, name, **overrides)
    with recorded_run(project, "train", name) as current:
        dataset = _dataset_for(project, name, spec)
        current.rows_read = len(dataset.frame)
        path = report or project.state_dir / "reports" / f"{name}-{current.id}.html"
        result = train_classifier(
            dataset, spec, name=name, tracker=Tracker.for_project(project),
            report_path=path, registered_name=project.ml.registry.prefix + name,
            alias=project.ml.registry.alias, on_progress=on_progress)
        current.report = result.summary()
    return result


def tune_worker(project: Project, name: str, algorithm: str, *, storage: str,
                study: str | None = None, trials: int | None = None,
                timeout: float | None = None, seed: int | None = None,
                **overrides: Any) -> TuneResult:
    """Join a shared Optuna study and tune one algorithm on task ``name``'s training part.

    Start the same command on several machines with the same ``storage`` (an RDB URL such as
    ``postgresql://user@db/optuna``) and ``study``; each adds trials until the study holds
    ``trials`` finished trials or ``timeout`` passes. The holdout split is the same as in
    ``train`` (same seed), so tuning never sees it.
    """
    from headwater.ml._algorithms import get_algorithm
    from headwater.ml._train import _setting, holdout_split
    from headwater.ml._tune import tune
    from headwater.store import recorded_run

    spec = task_spec(project, name, **overrides)
    chosen = get_algorithm(algorithm)
    with recorded_run(project, "tune", f"{name}-{algorithm}") as current:
        dataset = _dataset_for(project, name, spec)
        X, y = dataset.X, dataset.y.to_numpy()
        X_train, _, y_train, _ = holdout_split(X, y, holdout=spec.holdout, seed=spec.seed)
        current.rows_read = len(X)
        result = tune(chosen, X_train, y_train, _setting(spec, len(X_train), dataset.drop),
                      folds=spec.folds, trials=trials or spec.trials,
                      timeout=timeout or spec.time_budget_s,
                      metric=spec.metric or "roc_auc", storage=storage,
                      study_name=study or f"{name}-{algorithm}", seed=seed)
        current.report = {"study": result.study_name, "params": result.params,
                          "cv_mean": result.cv_mean, "cv_std": result.cv_std,
                          "trials": result.trials}
    return result


@dataclass
class Prediction:
    """What ``predict`` wrote: where, how many rows, with which model."""

    table: str
    rows: int
    model: str
    threshold: float
    flagged: int
    run_id: str
    frame: pd.DataFrame


def score(model: Any, frame: pd.DataFrame, *, where: str = "input",
          scored_at: datetime | None = None, run_id: str = "") -> pd.DataFrame:
    """Score a frame with a :class:`~headwater.ml.LoadedModel` after the signature check.

    Returns the ID columns the model saw at training, ``probability``, ``prediction`` (at the
    model's threshold), ``label`` and the model name, version and time.
    """
    import numpy as np
    import pandas as pd

    checked = model.check_input(frame, where=where)
    proba = np.asarray(model.model.predict_proba(checked))[:, 1]
    threshold = float(model.metadata.get("threshold", 0.5))
    kinds = model.metadata.get("columns", {})
    ids = [c for c, k in kinds.items() if k == "id" and c in checked.columns]
    out = checked[ids].copy() if ids else pd.DataFrame(index=checked.index)
    positive = model.metadata.get("positive", "1")
    out["probability"] = proba
    out["prediction"] = proba >= threshold
    out["label"] = np.where(out["prediction"], positive, f"not {positive}")
    out["threshold"] = threshold
    out["model"] = model.name or model.uri
    out["model_version"] = model.version if model.version is not None else -1
    out["scored_at"] = scored_at or datetime.now(UTC)
    out["run_id"] = run_id
    return out.reset_index(drop=True)


def predict(project: Project, model_ref: str, data: str, *, table: str | None = None,
            mode: str = "append") -> Prediction:
    """Score ``data`` (a table, query or file) with a registered model; write to the warehouse.

    Parameters
    ----------
    model_ref:
        ``name@alias`` (e.g. ``churn@challenger``), ``name/version`` or ``name`` (latest).
    data:
        A warehouse table, a SELECT query, or a CSV/Parquet file.
    table:
        Destination table (default ``predictions_<model name>``).
    mode:
        ``append`` (keep history; each run has its ``run_id``) or ``replace``.
    """
    import pyarrow as pa

    from headwater.ml._data import read_frame
    from headwater.ml._tracking import load_model
    from headwater.store import open_store, recorded_run

    if mode not in {"append", "replace"}:
        raise ConfigError(f"mode must be append or replace, got '{mode}'",
                          hint="--mode append keeps earlier predictions")
    model = load_model(model_ref, project=project)
    with recorded_run(project, "predict", model.name or "model") as current:
        frame, where = read_frame(data, project=project)
        current.rows_read = len(frame)
        scored = score(model, frame, where=where, run_id=current.id)
        target = table or f"predictions_{(model.name or 'model').replace('-', '_')}"
        store = open_store(project)
        try:
            with store.transaction(f"predict:{model.name}", current.id) as tx:
                current.rows_loaded = tx.write(
                    target, pa.Table.from_pandas(scored, preserve_index=False), mode=mode)
        finally:
            store.close()
        current.report = {"model": model.label, "table": target, "source": where,
                          "flagged": int(scored["prediction"].sum())}
    return Prediction(table=target, rows=len(scored), model=model.label,
                      threshold=float(model.metadata.get("threshold", 0.5)),
                      flagged=int(scored["prediction"].sum()), run_id=current.id, frame=scored)

"""A project's cross-validation task: load the data, run the engine (``_cv.py``), store results
and predictions under ``.headwater/cv/<run id>/``, write the HTML report, track in MLflow and
record the run so ``headwater runs`` lists it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.config._cv import CVSpec
from headwater.config._yaml import validate_settings
from headwater.core import ConfigError, Progress
from headwater.ml._cv import CVResult, cross_validate
from headwater.ml._cv_report import write_cv_report

if TYPE_CHECKING:
    from headwater.config import Project


def cv_spec(project: Project | None, task: str | None, **overrides: Any) -> CVSpec:
    """``ml.cv.<task>`` from headwater.yaml (defaults if absent) with non-None overrides."""
    base = CVSpec()
    if project is not None and task:
        base = project.ml.cv.get(task, base)
    values = base.model_dump()
    values.update({k: v for k, v in overrides.items() if v is not None})
    return validate_settings(CVSpec, values, what="cv settings",
                             hint="`headwater cv --help` lists the options")


def run_cv(project: Project, task: str | None = None, *, data: str | None = None,
           target: str | None = None, spec: CVSpec | None = None,
           report: str | Path | None = None, json_path: str | Path | None = None,
           progress: Progress | None = None) -> CVResult:
    """Cross-validate a project's task: load, run, store, report, track in MLflow, record.

    ``data`` and ``target`` override ``ml.cv.<task>.data/target``; ``spec`` replaces the
    task's settings. Outputs land in ``.headwater/cv/<run id>/``: ``results.json``,
    ``scores.parquet``, ``predictions.parquet`` and ``report.html`` (plus copies at ``report``
    and ``json_path`` if given).
    """
    from headwater.ml._data import read_frame
    from headwater.store import recorded_run

    spec = spec or cv_spec(project, task)
    data = data or spec.data
    target = target or spec.target
    name = task or "cv"
    if not data or not target:
        missing = " and ".join(x for x in ("data" if not data else "",
                                            "target" if not target else "") if x)
        raise ConfigError(f"cv task '{name}' has no {missing}",
                          hint="pass --data TABLE|QUERY|FILE --target COLUMN, or set "
                          f"ml.cv.{name}.data and .target in headwater.yaml")
    with recorded_run(project, "cv", name) as record:
        frame, where = read_frame(data, project=project)
        record.rows_read = len(frame)
        result = cross_validate(frame, target, spec, source=where, progress=progress)
        result.run_id = record.id
        folder = project.state_dir / "cv" / record.id
        _store_outputs(result, folder, report=report, json_path=json_path)
        if spec.track:
            _track(project, name, result, folder)
        record.report = {"best": result.best, "target": result.target,
                         "source": result.source, "outputs": result.outputs,
                         "leaderboard": [{k: r[k] for k in ("model", "rmse", "rmse_std",
                                                            "mae", "r2", "vs_best")}
                                         for r in result.summary]}
    return result


def _store_outputs(result: CVResult, folder: Path, *, report: str | Path | None,
                   json_path: str | Path | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result.scores.to_parquet(folder / "scores.parquet", index=False)
    result.predictions.to_parquet(folder / "predictions.parquet", index=False)
    result.outputs = {"folder": str(folder), "results": str(folder / "results.json"),
                      "scores": str(folder / "scores.parquet"),
                      "predictions": str(folder / "predictions.parquet"),
                      "report": str(folder / "report.html")}
    write_cv_report(result, folder / "report.html")
    if report is not None:
        result.outputs["report_copy"] = str(write_cv_report(result, report))
    if json_path is not None:
        result.outputs["json_copy"] = str(json_path)
        result.to_json(json_path)
    result.to_json(folder / "results.json")


def _track(project: Project, name: str, result: CVResult, folder: Path) -> None:
    """One MLflow parent run per CV run, one child run per model (per-fold RMSE as steps)."""
    from headwater.ml._tracking import Tracker

    tracker = Tracker.for_project(project)
    spec = result.spec
    common = {"splitter": spec.splitter, "folds": spec.folds, "repeats": spec.n_repeats,
              "seed": spec.seed, "log_target": result.log_target, "source": result.source,
              "target": result.target, "rows": result.rows, "nested": spec.nested.enabled}
    with tracker.start_run(f"cv-{name}", run_name=f"cv {result.run_id}",
                           tags={"headwater.run_id": str(result.run_id),
                                 "headwater.kind": "cv"}) as parent:
        tracker.log_params({**common, "models": ",".join(spec.models),
                            "features": "; ".join(result.features) or "none"})
        best = result.summary[0]
        tracker.log_metrics({"best_rmse": best["rmse"], "best_mae": best["mae"],
                             "best_r2": best["r2"]})
        for path in folder.iterdir():
            tracker.log_artifact(path)
        result.outputs["mlflow_run"] = parent.info.run_id
        for row in result.summary:
            with tracker.start_run(f"cv-{name}", run_name=row["model"], nested=True):
                tracker.log_params({**common, "model": row["model"], "rank": row["rank"]})
                tracker.log_metrics({k: v for k, v in row.items()
                                     if isinstance(v, float) and k != "p_value"})
                part = result.scores[result.scores.model == row["model"]]
                for step, fold in enumerate(part.itertuples()):
                    tracker.log_metrics({"fold_rmse": fold.rmse, "fold_mae": fold.mae,
                                         "fold_r2": fold.r2}, step=step)

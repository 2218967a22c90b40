"""Project-level recommendation commands: what ``headwater recommend`` calls.

Each call is a run (its id on every log line, a run record in the metadata store) and reads
interactions from a file, a warehouse table or a query of the project.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.monitor import run

if TYPE_CHECKING:
    from headwater.config import Project
    from headwater.ml.recommend._train import Evaluation, Progress, TrainedRecommender


def _load(project: Project, data: str | Sequence[str], weights: Mapping[str, float] | None,
          use_values: bool) -> Any:
    from headwater.ml.recommend._data import load_interactions

    return load_interactions(data, project=project, weights=weights, use_values=use_values)


def train(project: Project, data: str | Sequence[str], *, name: str = "recommend",
          models: Sequence[str] | None = None, split: str = "random", fraction: float = 0.25,
          k: int = 10, trials: int = 20, time_budget_s: float = 120.0, seed: int = 0,
          weights: Mapping[str, float] | None = None, use_values: bool = False,
          register: bool = True, track: bool = True, report: Path | None = None,
          on_progress: Progress | None = None) -> TrainedRecommender:
    """Train recommenders on ``data`` (file, table or query), register the best in MLflow.

    The registered name is ``ml.registry.prefix + name`` and the alias ``ml.registry.alias``
    (``challenger`` unless headwater.yaml says otherwise); the report goes to ``report`` or
    ``.headwater/reports/recommend-<run id>.html``. Other parameters: see
    :func:`~headwater.ml.recommend.train_recommender`.
    """
    from headwater.ml._tracking import Tracker
    from headwater.ml.recommend._train import train_recommender
    from headwater.store import run_store

    records = run_store(project)
    current = None
    try:
        with run("train", name) as current:
            interactions = _load(project, data, weights, use_values)
            current.rows_read = len(interactions)
            path = report or project.state_dir / "reports" / f"{name}-{current.id}.html"
            trained = train_recommender(
                interactions, models=models, split=split, fraction=fraction, k=k,  # type: ignore[arg-type]
                trials=trials, time_budget_s=time_budget_s, seed=seed,
                tracker=Tracker.for_project(project) if track else None,
                registered_name=project.ml.registry.prefix + name,
                alias=project.ml.registry.alias, register=register and track,
                report_path=path, on_progress=on_progress)
            current.report = trained.summary()
    finally:
        if current is not None:
            records.record(current)
    return trained


def evaluate(project: Project, data: str | Sequence[str], *, models: Sequence[str] | None = None,
             split: str = "random", fraction: float = 0.25, k: int = 10, trials: int = 1,
             time_budget_s: float = 120.0, seed: int = 0,
             weights: Mapping[str, float] | None = None, use_values: bool = False,
             report: Path | None = None,
             on_progress: Progress | None = None) -> tuple[Evaluation, Path]:
    """Compare models against popularity on one split of ``data``; write the HTML report.

    Nothing is registered. Returns the evaluation and the report's path.
    """
    from headwater.ml.recommend._report import write_report
    from headwater.ml.recommend._train import evaluate_recommender
    from headwater.store import run_store

    records = run_store(project)
    current = None
    try:
        with run("evaluate", "recommend") as current:
            interactions = _load(project, data, weights, use_values)
            current.rows_read = len(interactions)
            evaluation = evaluate_recommender(
                interactions, models=models, split=split, fraction=fraction, k=k,  # type: ignore[arg-type]
                trials=trials, time_budget_s=time_budget_s, seed=seed, on_progress=on_progress)
            path = write_report(evaluation, report or project.state_dir / "reports"
                                / f"recommend-evaluate-{current.id}.html")
            current.report = {**evaluation.summary(), "report": str(path)}
    finally:
        if current is not None:
            records.record(current)
    return evaluation, path

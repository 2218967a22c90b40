"""Recommenders in MLflow: log a training run with its metrics and plots, register the model
under an alias, and load it back by ``name@alias`` or ``name/version``.

    track(trained, Tracker.for_project(project), registered_name="recommend", alias="challenger")
    recommender = load_recommender("recommend@challenger", project=project)

The registered model carries ``headwater_kind: recommender`` in its metadata, so a server can
tell it from a classifier before loading it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from headwater.core import ConfigError
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config import Project
    from headwater.ml._tracking import Tracker
    from headwater.ml.recommend._recommender import Recommender
    from headwater.ml.recommend._results import TrainedRecommender

log = get_logger(__name__)

#: ``headwater_kind`` in the metadata of a registered recommender.
KIND = "recommender"


def track(trained: TrainedRecommender, tracker: Tracker, *, registered_name: str = "recommend",
          alias: str | None = "challenger", register: bool = True) -> None:
    """Log the evaluation (parameters, every model's metrics as nested runs, plots, report) and
    the fitted recommender; register it as a new version of ``registered_name`` with ``alias``.
    """
    import pandas as pd

    from headwater.ml.recommend._pyfunc import RecommenderModel
    from headwater.ml.recommend._report import figures

    ev = trained.evaluation
    best = ev.result(ev.best)
    with tracker.start_run("recommend", run_name=f"recommend-{ev.best}",
                           tags={"headwater.task": "recommend"}) as run:
        tracker.log_params({"best_algorithm": ev.best, "fallback": ev.fallback,
                            "source": ev.source, "split": ev.split, "test_fraction": ev.fraction,
                            "k": ev.k, "seed": ev.seed, "users": ev.users, "items": ev.items,
                            **{f"best.{k}": v for k, v in best.params.items()}})
        tracker.log_metrics({f"test_{_key(k)}": v for k, v in best.metrics.items()})
        tracker.log_metrics({"validation_ndcg": best.validation})
        if ev.baseline is not None:
            tracker.log_metrics({f"popularity_{_key(k)}": v
                                 for k, v in ev.baseline.metrics.items()})
        drawn = figures(ev)
        try:
            for name, fig in drawn.items():
                tracker.log_figure(fig, name)
        finally:
            import matplotlib.pyplot as plt

            for fig in drawn.values():
                plt.close(fig)
        tracker.log_dict(ev.leaderboard(), "leaderboard.json")
        if trained.report_path is not None:
            tracker.log_artifact(trained.report_path, "report")
        for result in ev.results:
            with tracker.start_run("recommend", run_name=result.name, nested=True):
                tracker.log_params(result.params or {"params": "none"})
                tracker.log_metrics({_key(k): v for k, v in result.metrics.items()})
                tracker.log_metrics({"validation_ndcg": result.validation,
                                     "trials": result.trials, "fit_s": result.fit_s})
        users = trained.recommender.users[:2] or ["unknown"]
        example = pd.DataFrame({"user_id": users, "k": [ev.k] * len(users)})
        metadata = {"headwater_kind": KIND, "task": "recommend", "algorithm": ev.best,
                    "fallback": ev.fallback, "k": ev.k,
                    f"test_ndcg_at_{ev.k}": best.metrics[f"ndcg@{ev.k}"]}
        trained.model_uri = tracker.log_python_model(
            RecommenderModel(trained.recommender), input_example=example, metadata=metadata)
        trained.mlflow_run_id = run.info.run_id
    if register:
        version = tracker.register(trained.model_uri, registered_name, alias=alias,
                                   tags={"algorithm": ev.best, "kind": KIND,
                                         f"test_ndcg_at_{ev.k}":
                                             f"{best.metrics[f'ndcg@{ev.k}']:.4f}"})
        trained.registered = {"name": registered_name, "version": version, "alias": alias}


def _key(metric: str) -> str:
    """MLflow metric names allow no ``@``: ``ndcg@10`` -> ``ndcg_at_10``."""
    return metric.replace("@", "_at_")


def load_recommender(model_ref: str, *, project: Project | None = None,
                     tracker: Tracker | None = None) -> Recommender:
    """Load a registered recommender by ``name@alias``, ``name/version``, ``name`` (latest) or a
    ``models:/`` / ``runs:/`` URI.

    The registry is ``tracker``'s, else the project's (default: headwater.yaml in the current
    folder). The recommender's ``metadata`` gains ``model_uri``, ``registered_name`` and
    ``version``. Raises :class:`~headwater.core.NotFoundError` for an unknown reference and
    :class:`~headwater.core.ConfigError` when the model is not a recommender.
    """
    from headwater.ml._tracking import Tracker

    if tracker is None:
        if project is None:
            from headwater.config import load_project

            project = load_project(None)
        tracker = Tracker.for_project(project)
    tracker._mlflow()
    import mlflow.pyfunc

    from headwater.ml import model_info

    uri, name, version = tracker.resolve(model_ref)
    kind = dict(model_info(uri).metadata or {}).get("headwater_kind")
    if kind != KIND:
        raise ConfigError(f"model '{model_ref}' is not a recommender (it is "
                          f"{kind or 'a classifier or regressor'})",
                          hint="load it with headwater.ml.load_model, or name a model that "
                          "`headwater recommend train` registered")
    recommender: Recommender = mlflow.pyfunc.load_model(uri).unwrap_python_model().recommender
    recommender.metadata.update({"model_uri": uri, "registered_name": name, "version": version})
    log.info("recommender_loaded", ref=model_ref, uri=uri, algorithm=recommender.name)
    return recommender

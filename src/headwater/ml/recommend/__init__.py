"""Recommendations: interaction data, models (popularity, trending, item-item, ALS, EASE),
offline evaluation against popularity, training with MLflow tracking, and the fitted
:class:`Recommender` the model server loads.

    from headwater.ml.recommend import load_interactions, train_recommender
    trained = train_recommender(load_interactions("u.data"))
    trained.recommender.recommend({"50": 1.0}, k=10)

Heavy libraries (scipy, implicit, Optuna, MLflow) load on first use.
"""

from __future__ import annotations

from headwater.core import lazy_exports

_NAMES = {
    "EVENT_WEIGHTS": "._data", "Encoded": "._data", "Interactions": "._data",
    "LOG_TOPIC_PREFIX": "._data", "load_interactions": "._data", "log_topics": "._data",
    "read_interaction_log": "._data", "read_udata": "._data",
    "DEFAULT_MODELS": "._models", "MODELS": "._models", "Model": "._models",
    "get_model": "._models",
    "ranking_metrics": "._metrics", "split": "._metrics", "top_k": "._metrics", "rank": "._metrics",
    "Recommender": "._recommender",
    "Evaluation": "._results", "ModelResult": "._results", "TrainedRecommender": "._results",
    "evaluate_recommender": "._train", "train_recommender": "._train", "tune_model": "._train",
    "load_recommender": "._tracking",
    "write_report": "._report",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_exports(__name__, _NAMES)

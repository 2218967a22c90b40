"""The MLflow face of a :class:`~headwater.ml.recommend.Recommender` (imports MLflow: load lazily).

As a pyfunc model it answers a frame of ``user_id`` (and optional ``k``) with one row per
recommendation: ``user_id``, ``rank``, ``item_id``, ``score``; so generic MLflow tooling can
score it, while headwater's server unwraps the recommender itself.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """Wraps a fitted recommender for MLflow (the recommender pickles with it)."""

    def __init__(self, recommender: Any) -> None:
        self.recommender = recommender

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None,
                ) -> pd.DataFrame:
        """Top-k items per ``user_id`` row, from the user's training history."""
        rows = []
        for record in model_input.to_dict(orient="records"):
            user = str(record["user_id"])
            k = int(record.get("k") or 10)
            found = self.recommender.recommend(self.recommender.history(user), k=k)
            rows += [{"user_id": user, "rank": r + 1, "item_id": item, "score": score}
                     for r, (item, score) in enumerate(found)]
        return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "score"])

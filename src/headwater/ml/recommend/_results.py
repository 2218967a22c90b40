"""What an evaluation and a training run found: per-model results, the leaderboard, the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.ml.recommend._recommender import Recommender

#: The model every other is compared with.
BASELINE = "popularity"


@dataclass
class ModelResult:
    """One model on the split: chosen parameters, validation score, test metrics."""

    name: str
    title: str
    params: dict[str, Any]
    validation: float
    metrics: dict[str, float]
    by_k: list[dict[str, float]] = field(default_factory=list)
    trials: int = 0
    tune_s: float = 0.0
    fit_s: float = 0.0
    rank_s: float = 0.0


@dataclass
class Evaluation:
    """Every model on the same split, the baseline (popularity) and the best by validation."""

    source: str
    split: str
    fraction: float
    k: int
    seed: int
    users: int
    items: int
    interactions: int
    pairs: int
    test_pairs: int
    results: list[ModelResult]
    best: str
    fallback: str
    seconds: float = 0.0

    def result(self, name: str) -> ModelResult:
        """The result of model ``name``."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def baseline(self) -> ModelResult | None:
        """Popularity's result, when it was evaluated."""
        return next((r for r in self.results if r.name == BASELINE), None)

    def leaderboard(self) -> list[dict[str, Any]]:
        """One row per model, best validation first: test metrics and the ratio to popularity."""
        k, base = self.k, self.baseline
        rows = []
        for r in sorted(self.results, key=lambda r: -r.validation):
            row: dict[str, Any] = {"model": r.name, "validation_ndcg": r.validation}
            row.update({m: r.metrics[f"{m}@{k}"] for m in ("ndcg", "precision", "recall",
                                                             "map", "hit_rate")})
            row["coverage"] = r.metrics["coverage"]
            row["novelty"] = r.metrics.get("novelty", float("nan"))
            row["vs_popularity"] = (r.metrics[f"ndcg@{k}"] / base.metrics[f"ndcg@{k}"]
                                    if base is not None and base.metrics[f"ndcg@{k}"] > 0
                                    else float("nan"))
            row.update({"trials": r.trials, "tune_s": round(r.tune_s, 1),
                        "fit_s": round(r.fit_s, 2)})
            rows.append(row)
        return rows

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary for run records."""
        return {"source": self.source, "split": self.split, "fraction": self.fraction,
                "k": self.k, "users": self.users, "items": self.items,
                "interactions": self.interactions, "best": self.best,
                "fallback": self.fallback, "leaderboard": self.leaderboard(),
                "params": {r.name: r.params for r in self.results},
                "seconds": round(self.seconds, 1)}


@dataclass
class TrainedRecommender:
    """What ``train_recommender`` produced: the recommender, its evaluation, where it went."""

    recommender: Recommender
    evaluation: Evaluation
    model_uri: str | None = None
    mlflow_run_id: str | None = None
    registered: dict[str, Any] | None = None
    report_path: Path | None = None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary for run records."""
        return {**self.evaluation.summary(), "model_uri": self.model_uri,
                "registered": self.registered, "report": str(self.report_path or "")}

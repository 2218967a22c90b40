"""Ensembles of the tuned classifiers, fitted on out-of-fold predictions only.

    oof = np.column_stack([tuned[a].oof for a in names])       # one column per tuned model
    vote = fit_ensemble("vote", oof, y, metric="roc_auc")      # greedy selection (Caruana)
    stack = fit_ensemble("stack", oof, y, metric="roc_auc")    # logistic regression on logits
    nested_scores("vote", oof, y, folds, metric="roc_auc")     # an honest CV score

Two kinds:

* **vote**: a weighted soft vote whose weights come from greedy ensemble selection with
  replacement (Caruana et al. 2004, as AutoGluon's ``WeightedEnsemble``): start from the best
  model, then add, again and again, the model whose addition scores best; the weights are how
  often each was picked.
* **stack**: a regularised logistic regression on the logits of the members' probabilities.

No ensemble ever sees the holdout. Its weights are fitted on out-of-fold predictions of the
training part, and its CV score is nested: for each fold, the weights are fitted on the other
folds' out-of-fold predictions and scored on that fold. The score is therefore comparable with a
single model's CV mean, and an ensemble is chosen only when it is really better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from headwater.ml._tune import score

Kind = Literal["vote", "stack"]
#: Greedy selection rounds; the weights are multiples of 1/ROUNDS.
ROUNDS = 25
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def greedy_weights(oof: np.ndarray, y: np.ndarray, *, metric: str = "roc_auc",
                   rounds: int = ROUNDS) -> np.ndarray:
    """Ensemble-selection weights (summing to 1) for the columns of ``oof``.

    >>> oof = np.array([[0.9, 0.5], [0.2, 0.5], [0.8, 0.4], [0.3, 0.6]])
    >>> greedy_weights(oof, np.array([1, 0, 1, 0])).tolist()
    [1.0, 0.0]
    """
    members = oof.shape[1]
    total = np.zeros(len(y))
    picks: list[int] = []
    scores: list[float] = []
    for step in range(rounds):
        # score every candidate addition at once: (total + column) / (step + 1)
        candidates = (total[:, None] + oof) / (step + 1)
        gains = [score(metric, y, candidates[:, j]) for j in range(members)]
        best = int(np.argmax(gains))
        picks.append(best)
        scores.append(gains[best])
        total += oof[:, best]
    # keep the selection up to its best round: later additions may only add noise
    picks = picks[: int(np.argmax(scores)) + 1]
    counts = np.bincount(picks, minlength=members).astype("float64")
    return counts / counts.sum()


def _fit_stacker(oof: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=1000, random_state=seed).fit(_logit(oof), y)


@dataclass
class Blend:
    """How to combine member probabilities: vote weights or a stacking model."""

    kind: Kind
    weights: np.ndarray
    stacker: Any = None

    def combine(self, probabilities: np.ndarray) -> np.ndarray:
        """Probability of class 1 from the members' probabilities (rows × members)."""
        if self.kind == "stack":
            return self.stacker.predict_proba(_logit(probabilities))[:, 1]
        return probabilities @ self.weights


def fit_blend(kind: Kind, oof: np.ndarray, y: np.ndarray, *, metric: str = "roc_auc",
              seed: int = 0) -> Blend:
    """Fit a vote (greedy weights) or a stack (logistic regression) on out-of-fold predictions."""
    if kind == "stack":
        stacker = _fit_stacker(oof, y, seed)
        coef = np.abs(stacker.coef_[0])
        return Blend("stack", coef / coef.sum() if coef.sum() else coef, stacker)
    return Blend("vote", greedy_weights(oof, y, metric=metric))


def nested_predictions(kind: Kind, oof: np.ndarray, y: np.ndarray,
                       folds: Sequence[tuple[np.ndarray, np.ndarray]], *,
                       metric: str = "roc_auc", seed: int = 0) -> tuple[list[float], np.ndarray]:
    """Fold scores and predictions of a blend fitted, per fold, on the other folds only."""
    predictions = np.zeros(len(y))
    scores = []
    for train_idx, test_idx in folds:
        blend = fit_blend(kind, oof[train_idx], y[train_idx], metric=metric, seed=seed)
        predictions[test_idx] = blend.combine(oof[test_idx])
        scores.append(score(metric, y[test_idx], predictions[test_idx]))
    return scores, predictions


class EnsembleClassifier(ClassifierMixin, BaseEstimator):
    """Fitted member pipelines and the blend that combines their probabilities.

    Behaves like any fitted scikit-learn classifier (``predict_proba``, ``predict``), so it is
    logged, registered, checked and served like a single model.
    """

    def __init__(self, members: list[tuple[str, Any]], blend: Blend) -> None:
        self.members = members
        self.blend = blend
        self.classes_ = np.array([0, 1])

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X: Any, y: Any) -> EnsembleClassifier:
        """Refit every member on ``X, y`` (the blend stays as fitted out of fold)."""
        for _, member in self.members:
            member.fit(X, y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities: the blend of the members' probabilities of class 1."""
        columns = [np.asarray(m.predict_proba(X))[:, 1] for _, m in self.members]
        p = self.blend.combine(np.column_stack(columns))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """Class 1 where its probability is at least 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype("int64")

    @property
    def named_steps(self) -> dict[str, Any]:
        """The first member's steps, so ``audit`` (input column kinds) is found as usual."""
        return self.members[0][1].named_steps

    def describe(self) -> list[dict[str, Any]]:
        """Members and their weights, largest first."""
        rows = [{"member": name, "weight": round(float(w), 4)}
                for (name, _), w in zip(self.members, self.blend.weights, strict=True)]
        return sorted(rows, key=lambda r: -r["weight"])


def build_ensemble(kind: Kind, fitted: dict[str, Any], oof: dict[str, np.ndarray],
                   y: np.ndarray, *, metric: str = "roc_auc", seed: int = 0,
                   ) -> EnsembleClassifier:
    """An ensemble of ``fitted`` models, its blend fitted on their out-of-fold predictions.

    Members a vote gives no weight are left out, so predicting costs only what is used.
    """
    names = list(oof)
    blend = fit_blend(kind, np.column_stack([oof[n] for n in names]), y, metric=metric,
                      seed=seed)
    if kind == "vote":
        keep = [i for i, w in enumerate(blend.weights) if w > 0]
        names = [names[i] for i in keep]
        blend = Blend("vote", blend.weights[keep])
    return EnsembleClassifier([(n, fitted[n]) for n in names], blend)

"""Offline evaluation: per-user splits, batched top-k, and ranking metrics, all vectorised.

    train, test = split(encoded.weights, encoded.times, kind="random", fraction=0.25, seed=0)
    recs = rank(model, train, k=10)                     # (users, k) item indices
    ranking_metrics(recs, test, k=10, popularity=...)   # precision, recall, ndcg, map, ...

Definitions (averaged over users with at least one test item; ``rel`` = their test items):
precision@k = hits / k; recall@k = hits / |rel|; hit_rate@k = share of users with a hit;
NDCG@k = DCG / ideal DCG with binary gains and log2(rank + 1) discounts; MAP@k = the sum of
precision at each hit's rank divided by min(|rel|, k); coverage = share of the catalogue
recommended to anyone; novelty = mean -log2 of the share of training users who know a
recommended item (higher: less obvious).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from headwater.core import ConfigError, require

if TYPE_CHECKING:
    from scipy import sparse

    from headwater.ml.recommend._models import Model

Split = Literal["random", "time"]
SPLITS = ("random", "time")


def split(weights: sparse.csr_matrix, times: sparse.csr_matrix, *, kind: Split = "random",
          fraction: float = 0.25, seed: int = 0,
          ) -> tuple[tuple[sparse.csr_matrix, sparse.csr_matrix],
                     tuple[sparse.csr_matrix, sparse.csr_matrix]]:
    """Per-user split of the interactions: ((train weights, times), (test weights, times)).

    ``random``: each user's pairs are shuffled and ``round(fraction * n)`` go to test;
    ``time``: each user's latest ``round(fraction * n)`` pairs go to test. A user keeps at least
    one training pair. Both parts keep the full shape, so indices line up.
    """
    if kind not in SPLITS:
        raise ConfigError(f"unknown split '{kind}'", hint="use random or time")
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"the test fraction must be between 0 and 1, got {fraction}",
                          hint="e.g. 0.25 for a 75/25 split")
    sparse_ = require("scipy.sparse", "recommend")
    rng = np.random.default_rng(seed)
    counts = np.diff(weights.indptr)
    rows = np.repeat(np.arange(weights.shape[0]), counts)
    noise = rng.random(weights.nnz)
    key = noise if kind == "random" else -times.data
    order = np.lexsort((noise, key, rows))  # within a user: random, or newest first
    position = np.empty(weights.nnz, dtype=np.int64)
    position[order] = np.arange(weights.nnz) - weights.indptr[rows[order]]
    n_test = np.minimum(np.floor(fraction * counts + 0.5).astype(np.int64),
                        np.maximum(counts - 1, 0))
    is_test = position < n_test[rows]

    def part(mask: np.ndarray) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        indptr = np.r_[0, np.cumsum(np.bincount(rows[mask], minlength=weights.shape[0]))]
        indices = weights.indices[mask]
        return (sparse_.csr_matrix((weights.data[mask], indices, indptr), shape=weights.shape),
                sparse_.csr_matrix((times.data[mask], indices.copy(), indptr.copy()),
                                   shape=weights.shape))

    return part(~is_test), part(is_test)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores of each row, best first (argpartition, then a sort)."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def mask_seen(scores: np.ndarray, seen: sparse.csr_matrix) -> None:
    """Set the scores of items in ``seen`` (rows aligned with ``scores``) to -inf, in place."""
    rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    scores[rows, seen.indices] = -np.inf


def rank(model: Model, train: sparse.csr_matrix, *, k: int, users: np.ndarray | None = None,
         chunk: int = 1024) -> np.ndarray:
    """Top-``k`` unseen items (users, k) for training users (all, or ``users``), in blocks."""
    users = np.arange(train.shape[0]) if users is None else np.asarray(users)
    out = np.empty((len(users), min(k, train.shape[1])), dtype=np.int64)
    for start in range(0, len(users), chunk):
        block = users[start:start + chunk]
        rows = train[block]
        scores = np.array(model.score(rows, users=block), dtype=np.float32)
        mask_seen(scores, rows)
        out[start:start + len(block)] = top_k(scores, k)
    return out


def ranking_metrics(recs: np.ndarray, test: sparse.csr_matrix, *, k: int,
                    popularity: np.ndarray | None = None,
                    users: np.ndarray | None = None) -> dict[str, float]:
    """Precision, recall, NDCG, MAP and hit rate at ``k``, coverage and novelty.

    ``recs`` (n, >=k) are item indices for ``users`` (default: every row of ``test``);
    ``popularity`` is each item's share of training users (for novelty).
    """
    users = np.arange(test.shape[0]) if users is None else np.asarray(users)
    recs = recs[:, :k]
    relevant = np.diff(test.indptr)[users]
    judged = relevant > 0
    if not judged.any():
        raise ConfigError("no user has a test interaction to evaluate",
                          hint="use more data or a larger test fraction")
    recs, users, relevant = recs[judged], users[judged], relevant[judged]
    hits = _hits(recs, test, users)
    n_hits = hits.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts[: hits.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(relevant, k) - 1]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    ap = (precision_at * hits).sum(axis=1) / np.minimum(relevant, k)
    out = {f"precision@{k}": float(np.mean(n_hits / k)),
           f"recall@{k}": float(np.mean(n_hits / relevant)),
           f"ndcg@{k}": float(np.mean(dcg / ideal)),
           f"map@{k}": float(np.mean(ap)),
           f"hit_rate@{k}": float(np.mean(n_hits > 0)),
           "coverage": float(len(np.unique(recs)) / test.shape[1]),
           "users": float(len(users))}
    if popularity is not None:
        share = np.clip(popularity[recs], 1e-12, None)
        out["novelty"] = float(np.mean(-np.log2(share)))
    return out


def _hits(recs: np.ndarray, test: sparse.csr_matrix, users: np.ndarray,
          chunk: int = 2048) -> np.ndarray:
    """(n, k) booleans: is each recommended item among the user's test items."""
    hits = np.zeros(recs.shape, dtype=bool)
    for start in range(0, len(users), chunk):
        block = test[users[start:start + chunk]]
        dense = block.toarray() > 0
        hits[start:start + block.shape[0]] = np.take_along_axis(
            dense, recs[start:start + block.shape[0]], axis=1)
    return hits


def metrics_by_k(recs: np.ndarray, test: sparse.csr_matrix, ks: list[int], *,
                 popularity: np.ndarray | None = None) -> list[dict[str, float]]:
    """:func:`ranking_metrics` at each k in ``ks`` (``recs`` must hold at least max(ks))."""
    return [{"k": float(k), **{name.split("@")[0]: value for name, value in ranking_metrics(
        recs, test, k=k, popularity=popularity).items()}} for k in ks]

"""Properties of the per-user splits and the ranking metrics on arbitrary interaction matrices."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from headwater.ml.recommend import ranking_metrics, split, top_k


@st.composite
def matrices(draw: st.DrawFn) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    users = draw(st.integers(2, 12))
    items = draw(st.integers(2, 15))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, items)) < draw(st.floats(0.1, 0.9))).astype(np.float32)
    dense[0, 0] = 1.0
    weights = sparse.csr_matrix(dense * rng.integers(1, 5, size=dense.shape))
    times = weights.copy()
    times.data = rng.integers(0, 1000, size=weights.nnz).astype(np.float64)
    return weights, times


@settings(max_examples=60, deadline=None)
@given(matrices(), st.sampled_from(["random", "time"]), st.floats(0.05, 0.95), st.integers(0, 9))
def test_split_is_a_partition_that_keeps_a_training_item(data, kind, fraction, seed) -> None:
    weights, times = data
    (train, train_t), (test, _) = split(weights, times, kind=kind, fraction=fraction, seed=seed)
    assert abs((train + test) - weights).sum() == 0
    assert train.multiply(test).nnz == 0
    counts = np.diff(weights.indptr)
    assert (np.diff(train.indptr)[counts > 0] >= 1).all()
    assert np.all(np.diff(train_t.indptr) == np.diff(train.indptr))


@settings(max_examples=60, deadline=None)
@given(matrices(), st.integers(1, 6), st.integers(0, 2**16))
def test_metrics_stay_in_range_and_perfect_lists_score_one(data, k, seed) -> None:
    weights, _ = data
    rng = np.random.default_rng(seed)
    scores = rng.random(weights.shape).astype(np.float32)
    recs = top_k(scores, k)
    m = ranking_metrics(recs, weights, k=k)
    for name in (f"precision@{k}", f"recall@{k}", f"ndcg@{k}", f"map@{k}", f"hit_rate@{k}",
                 "coverage"):
        assert 0.0 <= m[name] <= 1.0 + 1e-9, (name, m[name])
    # ranking the relevant items first is perfect for NDCG and MAP
    oracle = top_k(weights.toarray() + scores * 1e-3, k)
    best = ranking_metrics(oracle, weights, k=k)
    assert best[f"ndcg@{k}"] >= m[f"ndcg@{k}"] - 1e-9
    assert abs(best[f"ndcg@{k}"] - 1.0) < 1e-6 and abs(best[f"map@{k}"] - 1.0) < 1e-6

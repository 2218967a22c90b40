"""Ranking metrics by hand, the models against popularity, the Recommender's answers."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import sparse

from headwater.core import NotFoundError
from headwater.ml.datasets import make_events, make_ratings
from headwater.ml.recommend import (
    MODELS,
    Recommender,
    evaluate_recommender,
    load_interactions,
    ranking_metrics,
    top_k,
)


def test_top_k_matches_a_full_sort() -> None:
    scores = np.random.default_rng(0).random((50, 300)).astype(np.float32)
    np.testing.assert_array_equal(top_k(scores, 7), np.argsort(-scores, axis=1)[:, :7])


def test_metrics_by_hand() -> None:
    # user 0: relevant {1, 3}; recommended [1, 2, 3] -> hits at ranks 1 and 3
    # user 1: relevant {0}; recommended [2, 1, 0] -> hit at rank 3; user 2 has no test item
    test = sparse.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]],
                                      dtype=np.float32))
    recs = np.array([[1, 2, 3], [2, 1, 0], [0, 1, 2]])
    m = ranking_metrics(recs, test, k=3, popularity=np.array([0.5, 0.25, 0.25, 0.125]))
    assert m["users"] == 2
    assert m["precision@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["recall@3"] == pytest.approx((1.0 + 1.0) / 2)
    ndcg0 = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    ndcg1 = (1 / np.log2(4)) / 1.0
    assert m["ndcg@3"] == pytest.approx((ndcg0 + ndcg1) / 2)
    assert m["map@3"] == pytest.approx(((1 + 2 / 3) / 2 + (1 / 3) / 1) / 2)
    assert m["hit_rate@3"] == 1.0
    assert m["coverage"] == pytest.approx(4 / 4)
    assert m["novelty"] == pytest.approx(np.mean(-np.log2([0.25, 0.25, 0.125, 0.25, 0.25, 0.5])))


@pytest.fixture(scope="module")
def ratings():
    return load_interactions(make_ratings(users=300, items=250, ratings=12_000,
                                          temperature=0.1, skew=1.3, dims=18, seed=4))


def test_personalised_models_beat_popularity(ratings) -> None:
    ev = evaluate_recommender(ratings, models=["item_knn", "ease", "als"], trials=1, k=10)
    ndcg = {r.name: r.metrics["ndcg@10"] for r in ev.results}
    assert set(ndcg) == {"popularity", "item_knn", "ease", "als"}
    for name in ("item_knn", "ease", "als"):
        assert ndcg[name] > ndcg["popularity"] * 1.1, ndcg
    board = ev.leaderboard()
    assert board[0]["model"] == ev.best
    assert [r["validation_ndcg"] for r in board] == sorted(
        (r["validation_ndcg"] for r in board), reverse=True)
    pop = next(r for r in board if r["model"] == "popularity")
    assert pop["vs_popularity"] == 1.0
    assert all(0 < r["coverage"] <= 1 for r in board)


def test_optuna_tuning_does_not_lose_to_the_defaults(ratings) -> None:
    ev = evaluate_recommender(ratings, models=["item_knn"], trials=4, time_budget_s=30)
    tuned = ev.result("item_knn")
    assert tuned.trials == 4
    defaults = evaluate_recommender(ratings, models=["item_knn"], trials=1).result("item_knn")
    assert tuned.validation >= defaults.validation


@pytest.fixture(scope="module")
def shop():
    return load_interactions(make_events(users=200, items=120, views=4000, seed=2))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recommender_answers(shop, name: str) -> None:
    rec = Recommender.fit(shop, model=name)
    user = rec.users[3]
    history = rec.history(user)
    assert history and rec.history("nobody") == {}
    out = rec.recommend(history, k=10)
    assert len(out) == 10 and not {i for i, _ in out} & set(history)
    banned = out[0][0]
    assert banned not in {i for i, _ in rec.recommend(history, k=10, exclude=[banned])}
    category = rec.category(out[0][0])
    assert category is not None
    assert {rec.category(i) for i, _ in rec.recommend(history, k=5, category=category)} == {
        category}
    assert rec.recommend({}, k=4) == rec.popular(4)
    assert rec.recommend({"never-seen": 1.0}, k=4) == rec.popular(4)
    similar = rec.similar(rec.items[0], k=5)
    assert similar and rec.items[0] not in {i for i, _ in similar}
    with pytest.raises(NotFoundError, match="not in the catalogue"):
        rec.similar("no-such-item")
    assert pickle.loads(pickle.dumps(rec)).recommend(history, k=10) == out


@pytest.mark.parametrize("name", ["item_knn", "ease", "als"])
def test_read_your_writes(shop, name: str) -> None:
    rec = Recommender.fit(shop, model=name)
    user = rec.users[0]
    history = rec.history(user)
    before = rec.recommend(history, k=10)
    clicked = before[0][0]
    neighbour = next(i for i, _ in rec.similar(clicked, k=50) if i not in history)
    after = rec.recommend({**history, clicked: 8.0}, k=10)
    assert clicked not in {i for i, _ in after}  # seen: excluded at once
    assert after != before
    rank_before = [i for i, _ in rec.recommend(history, k=len(rec.items))].index(neighbour)
    rank_after = [i for i, _ in rec.recommend({**history, clicked: 8.0},
                                              k=len(rec.items))].index(neighbour)
    assert rank_after <= rank_before  # its neighbour rises (or stays on top)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_refresh_brings_new_items_and_users(shop, name: str) -> None:
    rec = Recommender.fit(shop, model=name)
    fans = rec.users[:150]
    stamp = float(shop.frame["timestamp"].max()) + 60
    fresh = pd.DataFrame({"user_id": [*fans, "newcomer"], "item_id": ["launch"] * 151,
                          "event": ["purchase"] * 151, "timestamp": [stamp] * 151})
    counts = rec.refresh(pa.Table.from_pandas(fresh))
    assert counts == {"users": 1, "items": 1, "interactions": 151}
    assert "launch" in rec.items and "newcomer" in rec.users
    assert rec.history("newcomer") == {"launch": 8.0}
    assert rec.history(fans[0])["launch"] == 8.0
    assert rec.popular(1)[0][0] == "launch"  # 151 buyers: the most popular item now
    assert rec.similar("launch", k=3)
    other = rec.users[160]
    ranked = [i for i, _ in rec.recommend(rec.history(other), k=len(rec.items))]
    assert "launch" in ranked

"""Interaction data: the synthetic generators, reading u.data and event logs, encoding, splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from headwater.core import ConfigError, FileFormatError
from headwater.ml.datasets import make_events, make_ratings, write_udata
from headwater.ml.recommend import load_interactions, split


def test_ratings_look_like_movielens() -> None:
    frame = make_ratings(users=120, items=150, ratings=5000, seed=3)
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert len(frame) == 5000 and frame["user"].nunique() == 120
    assert not frame.duplicated(["user", "item"]).any()
    assert frame.groupby("user").size().min() >= 20
    assert set(frame["rating"].unique()) <= {1, 2, 3, 4, 5}
    assert frame["rating"].mode()[0] in (3, 4)
    counts = frame["item"].value_counts()
    assert counts.iloc[0] > 3 * counts.median()  # a popularity skew
    assert make_ratings(users=120, items=150, ratings=5000, seed=3).equals(frame)


def test_events_follow_the_funnel() -> None:
    log = make_events(users=100, items=80, views=2000, seed=1)
    assert set(log["event"]) == {"view", "click", "add_to_cart", "purchase"}
    pairs = {e: set(zip(g["user_id"], g["item_id"], strict=True))
             for e, g in log.groupby("event")}
    assert pairs["purchase"] <= pairs["add_to_cart"] <= pairs["click"] <= pairs["view"]
    assert len(pairs["view"]) == 2000
    assert log["timestamp"].is_monotonic_increasing


def test_udata_is_recognised_without_a_header(tmp_path) -> None:
    path = write_udata(tmp_path / "u.data", users=30, items=40, ratings=700, seed=0)
    assert "\t" in path.read_text().splitlines()[0]
    data = load_interactions(path)
    assert len(data) == 700 and set(data.frame["event"]) == {"rating"}
    assert data.frame["value"].between(1, 5).all()
    encoded = data.encode()
    assert encoded.shape == (30, data.frame["item"].nunique())


def test_event_log_columns_are_matched_by_common_names(tmp_path) -> None:
    log = pd.DataFrame({"visitorid": [1, 1, 2, 2, 2], "itemid": ["a", "a", "a", "b", "c"],
                        "event_type": ["view", "Add-To-Cart", "view", "transaction", "view"],
                        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03",
                                                     "2024-01-04", "2024-01-05"], utc=True)})
    log.to_csv(tmp_path / "events.csv", index=False)
    data = load_interactions(tmp_path / "events.csv")
    assert data.frame["event"].tolist() == ["view", "add_to_cart", "view", "purchase", "view"]
    enc = data.encode()
    weights = dict(zip(map(tuple, np.argwhere(enc.weights.toarray() > 0)),
                       enc.weights.data, strict=True))
    user1, a = list(enc.users).index("1"), list(enc.items).index("a")
    assert weights[(user1, a)] == 1.0 + 4.0  # view + add to cart add up
    assert enc.times[user1, a] == pd.Timestamp("2024-01-02", tz="UTC").timestamp()


def test_weights_and_values() -> None:
    frame = pd.DataFrame({"user": ["u", "u"], "item": ["x", "y"], "rating": [5, 2]})
    plain = load_interactions(frame).encode()
    valued = load_interactions(frame, use_values=True).encode()
    assert plain.weights.data.tolist() == [1.0, 1.0]
    assert valued.weights.data.tolist() == [5.0, 2.0]
    custom = load_interactions(frame, weights={"rating": 3.0}).encode()
    assert custom.weights.data.tolist() == [3.0, 3.0]


def test_clear_errors() -> None:
    with pytest.raises(ConfigError, match="no item column"):
        load_interactions(pd.DataFrame({"user": [1], "thing": [2]}))
    with pytest.raises(ConfigError, match="like have no weight"):
        load_interactions(pd.DataFrame({"user": [1], "item": [2], "event": ["like"]})).encode()
    with pytest.raises(FileFormatError, match="'yesterday'"):
        load_interactions(pd.DataFrame({"user": [1], "item": [2], "ts": ["yesterday"]}))


@pytest.mark.parametrize("kind", ["random", "time"])
def test_splits_partition_each_user(kind: str) -> None:
    enc = load_interactions(make_ratings(users=60, items=90, ratings=2000, seed=2)).encode()
    (train, train_t), (test, test_t) = split(enc.weights, enc.times, kind=kind, fraction=0.25,
                                             seed=5)
    assert train.nnz + test.nnz == enc.weights.nnz
    assert (train.multiply(test)).nnz == 0
    assert abs((train + test) - enc.weights).sum() == 0
    per_user = np.diff(enc.weights.indptr)
    np.testing.assert_array_equal(np.diff(test.indptr), np.floor(0.25 * per_user + 0.5))
    if kind == "time":  # every test pair is newer than every training pair of its user
        for u in range(0, 60, 7):
            assert train_t[u].data.max() <= test_t[u].data.min()

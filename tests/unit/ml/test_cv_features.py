"""Feature steps fitted inside folds: ratios, interactions, coordinates, leave-one-out means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.config._cv import FeatureSpec, parse_pair
from headwater.core import ConfigError
from headwater.ml._cv_features import FeatureSteps, find_coordinates


def _frame(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    homes = rng.integers(50, 2000, n).astype(float)
    frame = pd.DataFrame({
        "longitude": rng.uniform(-122, -118, n), "latitude": rng.uniform(33, 38, n),
        "rooms": homes * rng.uniform(3, 7, n), "homes": homes,
        "people": homes * rng.uniform(2, 4, n), "income": rng.uniform(1, 10, n),
        "kind": rng.choice(["a", "b"], n).astype(object)})
    y = 10 + frame.income.to_numpy() + rng.normal(0, 1, n)
    return frame, y


def test_declared_ratio_and_interaction() -> None:
    X, y = _frame()
    out = FeatureSteps(auto=False, ratios=(("rooms", "homes"),),
                       interactions=(("income", "homes"),)).fit_transform(X, y)
    assert np.allclose(out["rooms_per_homes"], X.rooms / X.homes)
    assert np.allclose(out["income_x_homes"], X.income * X.homes)
    assert "rot15" not in out.columns  # no coordinates without auto


def test_division_by_zero_gives_missing_not_infinity() -> None:
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, np.nan]})
    out = FeatureSteps(auto=False, ratios=(("a", "b"),)).fit_transform(X)
    assert np.isnan(out["a_per_b"].iloc[0]) and out["a_per_b"].iloc[1] == 2.0
    assert np.isnan(out["a_per_b"].iloc[2])


def test_auto_finds_size_ratios_and_coordinates() -> None:
    X, y = _frame()
    steps = FeatureSteps().fit(X, y)
    assert steps.coordinates_ == ("longitude", "latitude")
    pairs = {frozenset(p) for p in steps.ratios_}
    assert frozenset({"rooms", "homes"}) in pairs and frozenset({"people", "homes"}) in pairs
    assert not any("income" in p for p in pairs)  # not correlated with sizes
    out = steps.transform(X)
    assert {"rot15", "rot105", "near8_target", "near32_target"} <= set(out.columns)
    assert list(out.columns) == list(steps.get_feature_names_out())


def test_neighbour_means_leave_the_row_out_on_training() -> None:
    X = pd.DataFrame({"lon": [0.0, 0.0, 10.0, 10.0], "lat": [0.0, 0.0, 0.0, 0.0]})
    y = np.array([1.0, 3.0, 5.0, 7.0])
    steps = FeatureSteps(auto=False, coordinates=("lon", "lat"), rotations=(),
                         neighbours=(1,))
    train = steps.fit_transform(X, y)
    # duplicated coordinates: the neighbour is the *other* row, never the row itself
    assert train["near1_target"].tolist() == [3.0, 1.0, 7.0, 5.0]
    test = steps.transform(pd.DataFrame({"lon": [9.0], "lat": [0.0]}))
    assert test["near1_target"].iloc[0] in {5.0, 7.0}


def test_unknown_column_is_named() -> None:
    X, y = _frame()
    with pytest.raises(ConfigError, match="names column 'bedrooms'") as info:
        FeatureSteps(ratios=(("bedrooms", "homes"),)).fit(X, y)
    assert "ml.cv.<task>.features" in info.value.hint
    with pytest.raises(ConfigError, match="'kind' is not numeric"):
        FeatureSteps(interactions=(("kind", "homes"),)).fit(X, y)


def test_find_coordinates_by_name() -> None:
    assert find_coordinates(["lat", "lng", "x"]) == ("lng", "lat")
    assert find_coordinates(["home_lat", "home_lon"]) == ("home_lon", "home_lat")
    assert find_coordinates(["latitude"]) is None
    assert find_coordinates(["plate", "along"]) is None


def test_feature_spec_rejects_malformed_pairs() -> None:
    with pytest.raises(ValueError, match="is not a ratio"):
        FeatureSpec(ratios=["rooms-homes"])
    with pytest.raises(ValueError, match="is not an interaction"):
        FeatureSpec(interactions=["a*"])


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)


@settings(max_examples=80, deadline=None)
@given(_names, _names, st.sampled_from(["/", "*"]), st.text(" ", max_size=2),
       st.text(" ", max_size=2))
def test_parse_pair_round_trips(a: str, b: str, op: str, pad1: str, pad2: str) -> None:
    assert parse_pair(f"{pad1}{a}{pad2}{op}{pad1}{b}{pad2}", op) == (a, b)  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=20))
def test_parse_pair_rejects_or_parses(text: str) -> None:
    try:
        a, b = parse_pair(text, "/")
    except ValueError as exc:
        assert "is not a ratio" in str(exc)
    else:
        assert a in text and b in text and "/" in text

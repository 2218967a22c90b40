"""The synthetic housing generator looks like the California census districts."""

from __future__ import annotations

import numpy as np
import pytest

from headwater.core import ConfigError
from headwater.ml.datasets import HOUSING_COLUMNS, HOUSING_TARGET, make_housing


@pytest.fixture(scope="module")
def housing():
    return make_housing(seed=0).to_pandas()


def test_shape_columns_and_determinism(housing) -> None:
    assert housing.shape == (20_640, 10)
    assert tuple(housing.columns) == HOUSING_COLUMNS
    again = make_housing(500, seed=3).to_pandas()
    assert again.equals(make_housing(500, seed=3).to_pandas())
    assert not again.equals(make_housing(500, seed=4).to_pandas())


def test_census_quirks(housing) -> None:
    y = housing[HOUSING_TARGET]
    assert y.max() == 500_001 and 0.02 < (y == 500_001).mean() < 0.08  # capped target
    assert 180_000 < y.mean() < 235_000 and 90_000 < y.std() < 140_000
    assert 100 <= housing.total_bedrooms.isna().sum() <= 320  # ~1% missing
    assert housing.housing_median_age.between(1, 52).all()
    assert housing.median_income.max() == pytest.approx(15.0001)
    assert set(housing.ocean_proximity) == {"<1H OCEAN", "INLAND", "NEAR OCEAN", "NEAR BAY",
                                            "ISLAND"}
    assert (housing.ocean_proximity == "ISLAND").sum() == 5
    assert housing.longitude.between(-124.35, -114.31).all()
    assert housing.latitude.between(32.54, 41.95).all()


def test_structure_a_model_can_learn(housing) -> None:
    y = np.log(housing[HOUSING_TARGET])
    assert np.corrcoef(np.log(housing.median_income), y)[0, 1] > 0.5
    sizes = housing[["total_rooms", "population", "households"]].rank()
    assert sizes.corr().min().min() > 0.8  # size columns move together
    coastal = housing.ocean_proximity.isin(["NEAR OCEAN", "NEAR BAY", "<1H OCEAN"])
    assert housing[HOUSING_TARGET][coastal].median() > 1.5 * housing[HOUSING_TARGET][
        ~coastal].median()


def test_noise_free_is_easier() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import cross_val_score

    def score(noise: float) -> float:
        frame = make_housing(2000, seed=1, noise=noise).to_pandas()
        X = frame.drop(columns=[HOUSING_TARGET, "ocean_proximity"])
        model = HistGradientBoostingRegressor(max_iter=60, random_state=0)
        return -cross_val_score(model, X, frame[HOUSING_TARGET], cv=3,
                                scoring="neg_root_mean_squared_error").mean()

    assert score(0.0) < 0.85 * score(1.0)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="too small"):
        make_housing(5)
    with pytest.raises(ConfigError, match="not a share"):
        make_housing(100, missing_bedrooms=1.5)

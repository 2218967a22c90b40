"""Cross-validation end to end: results, honesty (no leak), bad input, nested CV, project runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from headwater.config import CVSpec
from headwater.core import ConfigError
from headwater.ml._cv import check_target, cross_validate, use_log_target
from headwater.ml.datasets import HOUSING_TARGET, make_housing

FAST = {"jobs": 1, "track": False, "learning_curve": False}


@pytest.fixture(scope="module")
def housing() -> pd.DataFrame:
    return make_housing(400, seed=2).to_pandas()


@pytest.fixture(scope="module")
def result(housing: pd.DataFrame):
    spec = CVSpec(models=["ols", "ridge", "knn"], folds=3, jobs=2, track=False)
    return cross_validate(housing, HOUSING_TARGET, spec, source="housing")


def test_every_row_is_predicted_once_per_model(result, housing: pd.DataFrame) -> None:
    assert len(result.scores) == 9
    for model, part in result.predictions.groupby("model"):
        assert sorted(part.row) == list(range(len(housing))), model
        assert np.allclose(part.sort_values("row").actual, housing[HOUSING_TARGET])


def test_summary_is_sorted_and_compared_with_the_best(result) -> None:
    rmse = [r["rmse"] for r in result.summary]
    assert rmse == sorted(rmse)
    best = result.summary[0]
    assert best["vs_best"] == "best" and best["rmse_low"] <= best["rmse"] <= best["rmse_high"]
    assert {r["model"] for r in result.summary} == {"ols", "ridge", "knn"}
    assert all(r["vs_best"] in {"best", "tie", "worse"} for r in result.summary)
    assert len(result.comparisons) == 3 and result.comparisons[0]["a"] == result.best
    folds = result.scores[result.scores.model == result.best]
    assert best["rmse"] == pytest.approx(folds.rmse.mean())


def test_features_log_target_and_learning_curve(result) -> None:
    assert result.log_target  # a positive, right-skewed price
    assert any("ratio" in f for f in result.features)
    assert any("nearest" in f for f in result.features)
    shares = sorted(set(result.learning_curve.share))
    assert shares == [0.1, 0.3, 0.6, 1.0]
    assert (result.learning_curve.model == result.best).all()


def test_json_round_trip(result, tmp_path) -> None:
    data = json.loads(result.to_json(tmp_path / "r.json"))
    assert data["best"] == result.best and data["format"] == 1
    assert data["splitter"] == {"kind": "kfold", "folds": 3, "repeats": 1, "seed": 42,
                                "group": None, "time": None}
    assert len(data["folds"]) == 9 and (tmp_path / "r.json").exists()


def test_report_has_every_plot(result, tmp_path) -> None:
    from headwater.ml._cv_report import write_cv_report

    html = write_cv_report(result, tmp_path / "report.html").read_text()
    # folds, intervals, predicted vs actual, residuals, learning curve
    assert html.count("data:image/png;base64") == 5
    assert "Leaderboard" in html and "corrected" in html


def test_no_leak_on_a_target_that_is_noise(housing: pd.DataFrame) -> None:
    """Neighbour target means and imputation are fitted per fold: noise stays unpredictable."""
    frame = housing.assign(**{HOUSING_TARGET: np.random.default_rng(7).lognormal(12, 0.5,
                                                                                  len(housing))})
    spec = CVSpec(models=["ridge"], folds=4, **FAST)
    result = cross_validate(frame, HOUSING_TARGET, spec)
    assert result.summary[0]["r2"] < 0.05


def test_a_real_difference_is_found(housing: pd.DataFrame) -> None:
    spec = CVSpec(models=["ridge", "knn"], splitter="repeated", folds=3, repeats=2, **FAST)
    result = cross_validate(housing.drop(columns=["longitude", "latitude"]), HOUSING_TARGET,
                            spec)
    assert len(result.scores) == 12
    worst = result.summary[-1]
    assert worst["p_value"] < 0.05 and worst["vs_best"] == "worse"


def test_group_and_time_splitters_run(housing: pd.DataFrame) -> None:
    frame = housing.assign(zone=(housing.latitude * 2).round().astype(int).astype(str),
                           year=np.arange(len(housing)) // 40 + 1990)
    grouped = cross_validate(frame, HOUSING_TARGET, CVSpec(models=["ols"], splitter="group",
                                                           group="zone", folds=3, **FAST))
    assert grouped.scores.n_test.sum() == len(frame)
    timed = cross_validate(frame, HOUSING_TARGET, CVSpec(models=["ols"], splitter="time",
                                                         time="year", folds=3, **FAST))
    assert len(timed.scores) == 3


def test_nested_cv_tunes_inside_each_outer_fold(housing: pd.DataFrame) -> None:
    spec = CVSpec(models=["ridge", "ols"], folds=3, nested={"enabled": True, "trials": 2,
                                                           "inner_folds": 2}, **FAST)
    result = cross_validate(housing, HOUSING_TARGET, spec)
    assert [t["fold"] for t in result.tuned["ridge"]] == [0, 1, 2]
    assert all("alpha" in t for t in result.tuned["ridge"])
    assert "ols" not in result.tuned  # nothing to tune


# -- bad input ------------------------------------------------------------------------------------
def _bad(values: list) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"x": np.arange(n, dtype=float), "price": values})


def test_non_numeric_target() -> None:
    frame = _bad(["100", "200", "cheap", "300"] * 5)
    with pytest.raises(ConfigError, match=r"not numeric.*'cheap'.*data rows 3, 7") as info:
        check_target(frame, "price", source="homes.csv")
    assert "--target" in info.value.hint
    with pytest.raises(ConfigError, match="true/false"):
        check_target(_bad([True, False] * 10), "price")


def test_numbers_as_text_are_accepted() -> None:
    assert check_target(_bad(["1.5", " 2", "3"]), "price").tolist() == [1.5, 2.0, 3.0]


def test_nan_and_infinite_target() -> None:
    with pytest.raises(ConfigError, match=r"1 missing \(NaN\) and 1 infinite.*rows 2, 4"):
        check_target(_bad([1.0, np.nan, 3.0, np.inf, 5.0]), "price", source="homes.csv")


def test_constant_target() -> None:
    with pytest.raises(ConfigError, match="constant \\(7 in all 10 rows\\)"):
        check_target(_bad([7.0] * 10), "price")


def test_missing_target_column_suggests_one() -> None:
    with pytest.raises(ConfigError, match="no target column 'prize'") as info:
        check_target(_bad([1.0, 2.0]), "prize")
    assert "'price'" in info.value.hint


def test_fewer_rows_than_folds() -> None:
    with pytest.raises(ConfigError, match="4 rows, fewer than the 5 folds"):
        cross_validate(_bad([1.0, 2.0, 3.0, 4.0]), "price", CVSpec(models=["ols"], **FAST))


def test_log_target_choice() -> None:
    skewed = np.random.default_rng(0).lognormal(0, 1, 500)
    assert use_log_target(skewed, "auto") and not use_log_target(skewed, "off")
    assert not use_log_target(np.linspace(1, 2, 500), "auto")  # not skewed
    assert not use_log_target(skewed - 1, "auto")  # has negatives
    with pytest.raises(ConfigError, match="needs a positive target"):
        use_log_target(skewed - 1, "on")


def test_cv_spec_needs_group_and_time_columns() -> None:
    with pytest.raises(ValueError, match="needs `group: COLUMN`"):
        CVSpec(splitter="group")
    with pytest.raises(ValueError, match="needs `time: COLUMN`"):
        CVSpec(splitter="time")

"""Preparation inside pipelines: type inference, ID / constant / leaky columns, in-fold fitting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.core import ConfigError
from headwater.ml import ColumnAuditor, audit_columns, build_preprocessor, infer_kind


def _frame(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    y = pd.Series((rng.random(n) < 0.3).astype(int))
    frame = pd.DataFrame({
        "customerID": [f"{i:04d}-ABCD" for i in range(n)],
        "tenure": rng.integers(1, 72, n),
        "TotalCharges": np.where(np.arange(n) % 40 == 0, " ",
                                 np.char.mod("%.2f", rng.uniform(10, 5000, n))).astype(object),
        "Partner": rng.choice(["Yes", "No"], n).astype(object),
        "Contract": rng.choice(["Month-to-month", "One year", "Two year"], n).astype(object),
        "country": ["NL"] * n,
        "empty": [None] * n,
        "cancel_code": np.where(y == 1, "C", "") ,
    })
    return frame, y


def test_kinds_and_report() -> None:
    frame, y = _frame()
    report = audit_columns(frame, y)
    kinds = {d.column: d.kind for d in report.decisions}
    assert kinds == {"customerID": "id", "tenure": "numeric", "TotalCharges": "numeric",
                     "Partner": "boolean", "Contract": "categorical", "country": "constant",
                     "empty": "empty", "cancel_code": "leaky"}
    assert set(report.dropped) == {"customerID", "country", "empty", "cancel_code"}
    notes = {d.column: d.note for d in report.decisions}
    assert "numbers stored as text" in notes["TotalCharges"] and "5 blank" in notes["TotalCharges"]
    assert "ROC-AUC 1.000" in notes["cancel_code"]
    assert "converted" in str(report) and "dropped" in str(report)


def test_auditor_converts_text_numbers_and_booleans() -> None:
    frame, y = _frame()
    out = ColumnAuditor().fit(frame, y).transform(frame)
    assert list(out.columns) == ["tenure", "TotalCharges", "Partner", "Contract"]
    assert out["TotalCharges"].dtype == "float64"
    assert out["TotalCharges"].isna().sum() == 5
    assert set(out["Partner"].unique()) == {0.0, 1.0}
    assert out["Contract"].dtype == object


def test_auditor_refuses_when_no_column_is_usable() -> None:
    frame = pd.DataFrame({"a": [None] * 50, "b": ["x"] * 50})
    with pytest.raises(ConfigError, match="no usable feature column"):
        ColumnAuditor().fit(frame, pd.Series([0, 1] * 25))


def test_regression_leak_by_correlation() -> None:
    rng = np.random.default_rng(1)
    y = pd.Series(rng.normal(size=300))
    frame = pd.DataFrame({"noise": rng.normal(size=300), "copy": y * 2 + 1})
    report = audit_columns(frame, y, task="regression")
    assert report.dropped.keys() == {"copy"}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=20,
                max_size=60), st.integers(min_value=0, max_value=5))
def test_numbers_stored_as_text_round_trip(values: list[float], blanks: int) -> None:
    text = [f"  {v:.3f} " for v in values] + [" "] * blanks
    col = pd.Series(text, dtype=object, name="amount")
    if len(set(f"{v:.3f}" for v in values)) < 2:
        assert infer_kind(col)[0] == "constant"
        return
    kind, _note = infer_kind(col)
    assert kind == "numeric"
    auditor = ColumnAuditor().fit(col.to_frame(), None)
    out = auditor.transform(col.to_frame())["amount"].to_numpy()
    assert np.isnan(out[len(values):]).all()
    np.testing.assert_allclose(out[: len(values)], [round(v, 3) for v in values], rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["Yes", "No", "yes", " NO ", "", None]), min_size=10,
                max_size=40))
def test_yes_no_becomes_one_zero(values: list[str | None]) -> None:
    col = pd.Series(values, dtype=object, name="flag")
    present = {str(v).strip().lower() for v in values if v is not None and str(v).strip()}
    kind, _ = infer_kind(col)
    if len(present) < 2:
        assert kind in {"constant", "empty"}
        return
    assert kind == "boolean"
    out = ColumnAuditor().fit(col.to_frame(), None).transform(col.to_frame())["flag"]
    expected = [1.0 if str(v).strip().lower() == "yes" else
                (0.0 if str(v).strip().lower() == "no" else np.nan) for v in values]
    np.testing.assert_array_equal(out.to_numpy(), np.array(expected))


def test_preprocessing_is_fitted_inside_each_fold() -> None:
    """The imputer learns its median from the fold it is fitted on, never from all rows."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    frame, y = _frame(400)
    frame["tenure"] = frame["tenure"].astype(float)
    frame.loc[frame.index % 7 == 0, "tenure"] = np.nan
    frame.loc[frame.index < 200, "tenure"] += 1000  # the two halves differ a lot
    prep = build_preprocessor(scale=True)
    medians = []
    folds = StratifiedKFold(2, shuffle=False).split(frame, y)
    for train_idx, _ in folds:
        fitted = clone(prep).fit(frame.iloc[train_idx], y.iloc[train_idx])
        imputer = fitted.named_steps["encode"].named_transformers_["num"].named_steps["impute"]
        column = list(fitted.named_steps["audit"].kept_).index("tenure")
        medians.append(imputer.statistics_[column])
        expected = np.nanmedian(frame["tenure"].iloc[train_idx])
        assert imputer.statistics_[column] == pytest.approx(expected)
    assert medians[0] != medians[1]


def test_target_encoding_for_many_levels() -> None:
    rng = np.random.default_rng(2)
    n = 600
    frame = pd.DataFrame({"city": [f"c{i}" for i in rng.integers(0, 60, n)],
                          "x": rng.normal(size=n)})
    y = pd.Series((rng.random(n) < 0.4).astype(int))
    prep = build_preprocessor(max_onehot=20).fit(frame, y)
    names = list(prep.get_feature_names_out())
    assert "city" in names and not any(n.startswith("city_") for n in names)
    onehot = build_preprocessor(encoding="onehot").fit(frame, y)
    assert sum(n.startswith("city_") for n in onehot.get_feature_names_out()) == 60

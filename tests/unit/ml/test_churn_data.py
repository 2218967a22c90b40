"""Loading churn data and refusing bad input with errors that say what and how to fix it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from headwater.config import load_project
from headwater.core import ConfigError, NotFoundError
from headwater.ml import load_dataset, make_dataset
from headwater.ml.datasets import make_churn, write_churn_csv


def test_generator_shape_rate_blanks_and_ceiling() -> None:
    data = make_churn(7043, seed=3)
    frame = data.frame
    assert frame.shape == (7043, 21)
    assert 0.23 < data.y.mean() < 0.29
    assert (frame["TotalCharges"] == " ").sum() == (frame["tenure"] == 0).sum() > 0
    assert set(frame["Contract"]) == {"Month-to-month", "One year", "Two year"}
    assert frame["customerID"].is_unique
    assert 0.85 < data.ceiling_auc < 0.93
    # the ceiling is the AUC of the true probabilities: a noisy copy does worse
    rng = np.random.default_rng(0)
    from sklearn.metrics import roc_auc_score

    noisy = data.probability + rng.normal(0, 0.2, len(frame))
    assert roc_auc_score(data.y, noisy) < data.ceiling_auc
    again = make_churn(7043, seed=3)
    pd.testing.assert_frame_equal(frame, again.frame)


def test_csv_round_trip_infers_everything(tmp_path) -> None:
    path = write_churn_csv(tmp_path / "telco.csv", 500, seed=1)
    dataset = load_dataset(path, "churn")  # case-insensitive target
    assert dataset.target == "Churn" and dataset.positive == "Yes"
    assert dataset.task == "classification"
    assert dataset.y.isin([0, 1]).all()
    assert dataset.frame["TotalCharges"].dtype != "float64"  # still text: the pipeline converts


def test_missing_target_names_columns_and_suggests(tmp_path) -> None:
    path = write_churn_csv(tmp_path / "telco.csv", 200)
    with pytest.raises(ConfigError) as err:
        load_dataset(path, "Chrun")
    assert "no target column 'Chrun'" in err.value.message
    assert "'Churn'" in err.value.hint


def test_one_class_target_is_refused() -> None:
    frame = make_churn(300, seed=0).frame.assign(Churn="No")
    with pytest.raises(ConfigError, match="one class only"):
        make_dataset(frame, "Churn")


def test_too_few_rows_is_refused() -> None:
    frame = make_churn(20, seed=0).frame
    with pytest.raises(ConfigError, match="only 20 rows"):
        make_dataset(frame, "Churn")


def test_rare_class_is_refused() -> None:
    frame = make_churn(300, seed=0).frame
    frame["Churn"] = "No"
    frame.loc[:3, "Churn"] = "Yes"
    with pytest.raises(ConfigError, match="only 4 rows of class 'Yes'"):
        make_dataset(frame, "Churn")


def test_all_null_features_are_refused() -> None:
    frame = pd.DataFrame({"a": [None] * 100, "b": [" "] * 100, "y": ["Yes", "No"] * 50})
    with pytest.raises(ConfigError, match="every feature column is empty"):
        make_dataset(frame, "y")


def test_rows_without_target_are_dropped() -> None:
    frame = make_churn(300, seed=0).frame
    frame.loc[:9, "Churn"] = None
    assert len(make_dataset(frame, "Churn").frame) == 290


def test_missing_file_and_table(tmp_path) -> None:
    with pytest.raises(NotFoundError, match="no file"):
        load_dataset(tmp_path / "nope.csv", "Churn")
    project = load_project(tmp_path)
    from headwater.store import open_store

    store = open_store(project)
    import pyarrow as pa

    with store.transaction("t", "r") as tx:
        tx.write("customers", pa.table({"a": [1]}))
    store.close()
    with pytest.raises(NotFoundError, match="neither a file nor a table"):
        load_dataset("customer", "Churn", project=project)


def test_table_and_query_sources(tmp_path) -> None:
    import pyarrow as pa

    from headwater.store import open_store

    project = load_project(tmp_path)
    store = open_store(project)
    frame = make_churn(200, seed=2).frame
    with store.transaction("t", "r") as tx:
        tx.write("customers", pa.Table.from_pandas(frame, preserve_index=False))
    store.close()
    assert len(load_dataset("customers", "Churn", project=project).frame) == 200
    query = "SELECT * FROM customers WHERE tenure > 12"
    expected = int((frame["tenure"] > 12).sum())
    assert len(load_dataset(query, "Churn", project=project).frame) == expected

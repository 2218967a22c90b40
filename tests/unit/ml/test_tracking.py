"""MLflow tracking on the embedded store: registry round trip and the signature check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from headwater.config import load_project, parse_project
from headwater.core import ConfigError, NotFoundError
from headwater.ml import Setting, Tracker, check_signature, get_algorithm, make_dataset
from headwater.ml.datasets import make_churn


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracking")
    project = load_project(root)
    ds = make_dataset(make_churn(400, seed=9).frame, "Churn")
    algorithm = get_algorithm("logreg")
    model = algorithm.pipeline({"C": 1.0}, Setting()).fit(ds.X, ds.y)
    tracker = Tracker.for_project(project)
    with tracker.start_run("churn", run_name="test") as run:
        tracker.log_params({"C": 1.0})
        tracker.log_metrics({"auc": 0.8, "skipped": float("nan")})
        uri = tracker.log_model(model, input_example=ds.X.head(5), predict_fn="predict_proba",
                                metadata={"threshold": 0.42, "target": "Churn",
                                          "columns": dict(model.named_steps["audit"].kinds_)})
    v1 = tracker.register(uri, "churn", alias="challenger")
    v2 = tracker.register(uri, "churn", alias=None)
    return project, tracker, ds, model, run.info.run_id, v1, v2


def test_embedded_store_lives_under_headwater(registered) -> None:
    project, tracker, *_ = registered
    assert tracker.tracking_uri.startswith("sqlite:///")
    assert (project.state_dir / "mlflow.db").exists()
    assert any((project.state_dir / "mlartifacts").rglob("MLmodel"))


def test_registry_round_trip(registered) -> None:
    _, tracker, ds, model, _, v1, v2 = registered
    assert (v1, v2) == (1, 2)
    by_alias = tracker.load("churn@challenger")
    assert by_alias.version == 1 and by_alias.metadata["threshold"] == 0.42
    assert by_alias.metadata["headwater_model_format"] == 1
    np.testing.assert_allclose(by_alias.model.predict_proba(ds.X)[:, 1],
                               model.predict_proba(ds.X)[:, 1])
    assert tracker.load("churn/2").version == 2
    assert tracker.load("churn").version == 2  # latest
    tracker.set_alias("churn", "champion", 2)
    assert tracker.load("churn@champion").version == 2
    listed = {m["name"]: m for m in tracker.models()}
    assert listed["churn"]["aliases"] == {"challenger": 1, "champion": 2}


def test_unknown_model_is_a_clear_error(registered) -> None:
    _, tracker, *_ = registered
    with pytest.raises(NotFoundError, match="no registered model 'nope@challenger'") as err:
        tracker.load("nope@challenger")
    assert "headwater models" in err.value.hint
    with pytest.raises(NotFoundError):
        tracker.load("churn@gone")


def test_signature_accepts_the_training_columns(registered) -> None:
    _, tracker, ds, *_ = registered
    model = tracker.load("churn@challenger")
    frame = ds.frame.sample(frac=1.0, axis=1, random_state=0)  # any column order; target ignored
    checked = model.check_input(frame)
    assert list(checked.columns) == list(ds.X.columns)
    numbers = ds.X.assign(TotalCharges=pd.to_numeric(ds.X["TotalCharges"], errors="coerce"))
    model.check_input(numbers)  # numbers where text numbers were trained: fine


def test_signature_names_missing_extra_and_wrong_columns(registered) -> None:
    _, tracker, ds, *_ = registered
    model = tracker.load("churn@challenger")
    bad = ds.X.drop(columns=["tenure", "Contract"]).assign(
        coupon="x", MonthlyCharges="cheap", Partner=np.linspace(0.1, 0.9, len(ds.X)))
    with pytest.raises(ConfigError) as err:
        model.check_input(bad, where="scores.csv")
    message = err.value.message
    assert message.startswith("scores.csv does not match the signature of churn/1")
    assert "missing column(s): tenure, Contract" in message
    assert "extra column(s): coupon" in message
    assert "MonthlyCharges (expected numbers, got text such as 'cheap')" in message
    assert "Partner (expected text (Yes/No), got float64 numbers)" in message


def test_check_signature_without_kinds() -> None:
    frame = pd.DataFrame({"a": ["1", "x"], "b": [1.5, 2.5]})
    with pytest.raises(ConfigError, match="a \\(expected numbers"):
        check_signature(frame, {"a": "double", "b": "string"})


def test_tracking_uri_from_config(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path}/elsewhere.db"
    project = parse_project(f"ml:\n  tracking_uri: {uri}\n", root=tmp_path)
    tracker = Tracker.for_project(project)
    assert tracker.tracking_uri == uri and tracker.artifacts is None

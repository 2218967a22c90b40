"""Training end to end: leaderboard, holdout, leakage caught, report, registry, predict."""

from __future__ import annotations

import pandas as pd
import pytest

from headwater.config import TrainSpec, load_project
from headwater.core import ConfigError
from headwater.ml import Tracker, make_dataset, predict, train, train_classifier
from headwater.ml.datasets import make_churn, write_churn_csv

FAST = {"time_budget_s": 4.0, "trials": 2, "folds": 3, "bootstrap": 50}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("churn")
    data = make_churn(900, seed=11)
    frame = data.frame.copy()
    # a column derived from the target: must be caught and dropped
    frame["cancel_date"] = (frame["Churn"] == "Yes").map({True: "2026-01-31", False: None})
    frame["retention_score"] = (frame["Churn"] == "Yes") * 3.0 + data.probability * 0.1
    project = load_project(root)
    spec = TrainSpec(**FAST)
    messages = []
    result = train_classifier(make_dataset(frame, "Churn"), spec,
                              tracker=Tracker.for_project(project),
                              report_path=root / "report.html",
                              on_progress=lambda m, d, t: messages.append((m, d, t)))
    return project, data, result, messages, root


def test_leaderboard_has_every_algorithm(trained) -> None:
    _, _, result, messages, _ = trained
    board = result.leaderboard
    assert {r["algorithm"] for r in board} == {"logreg", "tree", "forest", "svm", "mlp",
                                                "lightgbm", "ensemble", "stack"}
    assert [r["cv_mean"] for r in board] == sorted((r["cv_mean"] for r in board), reverse=True)
    assert result.best == board[0]["algorithm"]
    for row in board:
        assert 0.5 < row["holdout_roc_auc"] <= 1 and row["cv_std"] >= 0 and row["fit_s"] >= 0
    assert messages[-1] == (f"best by CV: {result.best}", 4, 4)
    assert {r["algorithm"] for r in result.timeline} == {"logreg", "tree", "forest", "svm",
                                                         "mlp", "lightgbm"}


def test_target_derived_columns_are_caught(trained) -> None:
    _, _, result, _, _ = trained
    dropped = result.prepare.dropped
    assert dropped["cancel_date"].startswith("leaky")
    assert dropped["retention_score"].startswith("leaky")
    assert dropped["customerID"].startswith("id")
    assert result.metrics["roc_auc"] < 0.97  # nothing leaked into the model


def test_holdout_is_untouched_and_evaluated(trained) -> None:
    _, data, result, _, _ = trained
    assert result.holdout_rows == 180 and result.train_rows == 720
    m = result.metrics
    assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == 180
    lo, hi = result.intervals["roc_auc"]
    assert lo <= m["roc_auc"] <= hi
    assert m["roc_auc"] <= data.ceiling(result.holdout_index) + 0.05
    assert 0 < result.threshold.value < 1 and result.threshold.strategy == "max_f1"
    assert len(result.gains) == 10 and result.importance[0]["importance"] > 0


def test_report_and_registry(trained) -> None:
    project, _, result, _, root = trained
    html = (root / "report.html").read_text()
    for part in ("Model card", "Leaderboard", "Lift and gains", "data:image/png;base64",
                 "Calibration", "cancel_date"):
        assert part in html
    assert result.registered == {"name": "churn", "version": 1, "alias": "challenger"}
    loaded = Tracker.for_project(project).load("churn@challenger")
    assert loaded.metadata["algorithm"] == result.best
    assert loaded.metadata["threshold"] == pytest.approx(result.threshold.value)


def test_predict_writes_probabilities_to_the_warehouse(trained) -> None:
    project, _data, _, _, root = trained
    path = root / "new.csv"
    fresh = make_churn(50, seed=99).frame.drop(columns=["Churn"])
    fresh["cancel_date"] = None
    fresh["retention_score"] = 0.0
    fresh.to_csv(path, index=False)
    out = predict(project, "churn@challenger", str(path))
    assert out.rows == 50 and out.table == "predictions_churn"
    from headwater.store import open_store

    store = open_store(project, read_only=True)
    table = store.read_table("predictions_churn").to_pandas()
    store.close()
    assert list(table.columns[:3]) == ["customerID", "probability", "prediction"]
    assert table["probability"].between(0, 1).all() and len(table) == 50
    assert (table["prediction"] == (table["probability"] >= out.threshold)).all()
    bad = path.with_name("bad.csv")
    fresh.drop(columns=["tenure"]).to_csv(bad, index=False)
    with pytest.raises(ConfigError, match="missing column\\(s\\): tenure"):
        predict(project, "churn@challenger", str(bad))


def test_cost_threshold_and_target_recall(trained) -> None:
    _, data, _, _, _ = trained
    ds = make_dataset(data.frame, "Churn")
    spec = TrainSpec(**{**FAST, "algorithms": ["logreg"], "time_budget_s": 2.0,
                        "threshold": {"strategy": "cost",
                                      "cost": {"false_positive": 1, "false_negative": 10}}})
    result = train_classifier(ds, spec)
    assert result.threshold.strategy == "cost" and "mean_cost" in result.metrics
    spec = TrainSpec(**{**FAST, "algorithms": ["logreg"], "time_budget_s": 2.0,
                        "threshold": {"strategy": "target_recall", "target_recall": 0.9}})
    assert train_classifier(ds, spec).threshold.recall >= 0.9


def test_feature_selection_report(trained) -> None:
    _, data, _, _, _ = trained
    ds = make_dataset(data.frame, "Churn")
    spec = TrainSpec(**{**FAST, "algorithms": ["logreg"], "feature_selection": "l1"})
    result = train_classifier(ds, spec)
    kept = [r for r in result.selection if r["kept"]]
    assert result.selection and 0 < len(kept) <= len(result.selection)


def test_project_train_records_a_run(tmp_path) -> None:
    project = load_project(tmp_path)
    write_churn_csv(tmp_path / "customers.csv", 300, seed=4)
    result = train(project, "churn", data="customers.csv", target="Churn",
                   algorithms=["logreg", "lightgbm"], register_best=False, **FAST)
    assert result.registered is None and result.report_path.exists()
    from headwater.store import run_store

    record = run_store(project).list(kind="train")[0]
    assert record["status"] == "succeeded" and record["pipeline"] == "churn"
    assert run_store(project).get(record["id"])["report"]["best"] == result.best


def test_project_train_needs_data(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no data for training task 'churn'"):
        train(load_project(tmp_path), "churn")


def test_regression_target_is_refused() -> None:
    frame = pd.DataFrame({"x": range(100), "y": [i * 1.5 for i in range(100)]})
    with pytest.raises(ConfigError, match="regression target"):
        train_classifier(make_dataset(frame, "y"), TrainSpec(**FAST))

"""`headwater cv` in a project: outputs stored, MLflow tracking, run records, CLI, quickstart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headwater.config import CVSpec, load_project
from headwater.core import ConfigError
from headwater.ml import run_cv
from headwater.quickstart._housing import write_housing_csv


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    write_housing_csv(tmp_path / "data" / "housing.csv", rows=300, seed=5)
    (tmp_path / "headwater.yaml").write_text(
        "project: homes\n"
        "ml:\n"
        "  cv:\n"
        "    housing:\n"
        "      data: data/housing.csv\n"
        "      target: median_house_value\n"
        "      folds: 3\n"
        "      models: [ols, ridge]\n"
        "      learning_curve: false\n"
        "      jobs: 1\n"
        "      features:\n"
        "        ratios: [total_rooms/households]\n")
    return tmp_path


def test_run_cv_stores_tracks_and_records(project_dir: Path) -> None:
    import mlflow

    from headwater.ml._tracking import Tracker
    from headwater.store import run_store

    project = load_project(project_dir)
    result = run_cv(project, "housing")
    folder = project.state_dir / "cv" / str(result.run_id)
    for name in ("results.json", "scores.parquet", "predictions.parquet", "report.html"):
        assert (folder / name).exists(), name
    saved = json.loads((folder / "results.json").read_text())
    assert saved["best"] == result.best and saved["rows"] == 300
    assert "total_rooms_per_households (ratio)" in saved["features"]
    record = run_store(project).get(str(result.run_id))
    assert record["kind"] == "cv" and record["status"] == "succeeded"
    assert record["report"]["best"] == result.best and record["rows_read"] == 300
    tracker = Tracker.for_project(project)
    mlflow.set_tracking_uri(tracker.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["headwater/cv-housing"], output_format="list")
    names = {r.info.run_name for r in runs}
    assert {"ols", "ridge", f"cv {result.run_id}"} <= names
    child = next(r for r in runs if r.info.run_name == "ridge")
    assert child.data.metrics["rmse"] == pytest.approx(
        next(s["rmse"] for s in result.summary if s["model"] == "ridge"))
    history = tracker.client.get_metric_history(child.info.run_id, "fold_rmse")
    assert len(history) == 3


def test_failed_run_is_recorded(project_dir: Path) -> None:
    from headwater.store import run_store

    project = load_project(project_dir)
    with pytest.raises(ConfigError, match="no target column 'price'"):
        run_cv(project, "housing", data="data/housing.csv", target="price",
               spec=CVSpec(track=False, jobs=1))
    last = run_store(project).list(kind="cv", limit=1)[0]
    assert last["status"] == "failed" and "price" in last["error"]


def test_missing_data_and_target_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no data and target") as info:
        run_cv(load_project(tmp_path), "prices")
    assert "--data" in info.value.hint


def test_cli_prints_json_and_table(project_dir: Path) -> None:
    from headwater.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["-p", str(project_dir), "cv", "housing", "--no-track",
                              "--models", "ols,ridge", "--folds", "4", "--json", "-"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["splitter"]["folds"] == 4 and {r["model"] for r in data["summary"]} == {
        "ols", "ridge"}
    table = runner.invoke(app, ["-p", str(project_dir), "cv", "--data", "data/housing.csv",
                                "--target", "median_house_value", "--models", "ridge",
                                "--folds", "3", "--no-track", "--no-curve",
                                "--report", str(project_dir / "r.html")])
    assert table.exit_code == 0, table.output
    assert "ridge" in table.stdout and "best" in table.stdout
    assert (project_dir / "r.html").exists()


def test_cli_help_ends_with_an_example() -> None:
    from headwater.cli import app

    out = CliRunner().invoke(app, ["cv", "--help"])
    assert out.exit_code == 0 and "Example: headwater cv" in out.stdout


def test_cli_bad_target_is_a_clear_error(project_dir: Path) -> None:
    from headwater.cli import app

    out = CliRunner().invoke(app, ["-p", str(project_dir), "cv", "housing", "--target",
                                   "ocean_proximity", "--no-track"])
    assert out.exit_code != 0
    assert isinstance(out.exception, ConfigError)
    assert "not numeric" in out.exception.message


@pytest.mark.slow
def test_quickstart_step(tmp_path: Path) -> None:
    from rich.console import Console

    from headwater.quickstart import STEPS

    step = dict((name, fn) for name, _, fn in STEPS)["housing"]
    console = Console(record=True, width=160)
    step(tmp_path, console)
    text = console.export_text()
    assert "lightgbm" in text and "best" in text and (tmp_path / "data" / "housing.csv").exists()


def test_warehouse_table_and_query(project_dir: Path) -> None:
    from headwater.ml.datasets import make_housing
    from headwater.store import open_store

    project = load_project(project_dir)
    store = open_store(project)
    try:
        with store.transaction("homes", "test-load") as tx:
            tx.write("homes", make_housing(240, seed=9))
    finally:
        store.close()
    spec = CVSpec(models=["ridge"], folds=3, jobs=1, track=False, learning_curve=False)
    table = run_cv(project, "housing", data="homes", target="median_house_value", spec=spec)
    assert table.rows == 240 and table.source == "table homes"
    query = run_cv(project, "housing", target="median_house_value", spec=spec,
                   data="SELECT * FROM homes WHERE ocean_proximity <> 'ISLAND'")
    assert query.source == "query" and query.rows <= 240
    with pytest.raises(Exception, match="neither a file nor a table"):
        run_cv(project, "housing", data="homez", target="median_house_value", spec=spec)

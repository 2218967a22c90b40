"""Quickstart step: cross-validate house-price models on synthetic California-shaped districts."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from headwater.config import load_project

#: Districts in the quickstart's sample (the full census shape has 20,640).
ROWS = 3000
MODELS = ["ridge", "random_forest", "lightgbm"]


def write_housing_csv(path: Path, *, rows: int = ROWS, seed: int = 0) -> Path:
    """Write the synthetic housing sample as CSV (blank cells for missing bedroom counts)."""
    import pyarrow.csv as pcsv

    from headwater.ml.datasets import make_housing

    path.parent.mkdir(parents=True, exist_ok=True)
    pcsv.write_csv(make_housing(rows, seed=seed), path)
    return path


def step(root: Path, console: Console) -> None:
    """Make data/housing.csv, cross-validate three models on the same 5 folds, print the table."""
    from headwater.config import CVSpec
    from headwater.console import cv_leaderboard
    from headwater.ml import run_cv

    project = load_project(root)
    csv = write_housing_csv(root / "data" / "housing.csv")
    console.print(f"sample: {csv.relative_to(root)} ({ROWS:,} districts: location, rooms, "
                  "income, age, ocean proximity; some bedroom counts missing; value capped at "
                  "500,001)")
    spec = CVSpec(models=MODELS, folds=5, learning_curve=False)
    with console.status("cross-validating ridge, random forest and LightGBM on 5 folds..."):
        result = run_cv(project, "housing", data="data/housing.csv",
                        target="median_house_value", spec=spec)
    console.print(cv_leaderboard(result))
    for c in result.comparisons[1:]:
        console.print(f"  {c['a']} vs {c['b']}: {c['verdict']}")
    console.print(f"report: {result.outputs['report']}")
    console.print(f"try: headwater -p {root} cv --data data/housing.csv "
                  "--target median_house_value --splitter repeated --models ols,lightgbm")

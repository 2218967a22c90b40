"""``headwater cv``: cross-validate regression models on a table, a query or a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from headwater.cli._app import app, console, project
from headwater.console import cv_leaderboard


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@app.command("cv")
def cv(
    task: Annotated[str | None, typer.Argument(
        help="a task under ml.cv in headwater.yaml (optional with --data and --target)")] = None,
    data: Annotated[str | None, typer.Option(
        "--data", "-d", help="warehouse table, SELECT query, or CSV/Parquet file")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="numeric column to "
                                               "predict")] = None,
    splitter: Annotated[str | None, typer.Option(
        help="kfold | repeated | stratified | group | time")] = None,
    folds: Annotated[int | None, typer.Option("--folds", "-k", help="number of folds")] = None,
    repeats: Annotated[int | None, typer.Option(help="repetitions (repeated k-fold)")] = None,
    group: Annotated[str | None, typer.Option(help="group column (splitter group)")] = None,
    time_column: Annotated[str | None, typer.Option("--time", help="time column (splitter "
                                                    "time)")] = None,
    gap: Annotated[int | None, typer.Option(help="rows skipped between train and test "
                                            "(time)")] = None,
    models: Annotated[list[str] | None, typer.Option(
        "--models", "-m", help="comma-separated: ols, ridge, lasso, elastic_net, knn, "
        "random_forest, lightgbm")] = None,
    log_target: Annotated[str | None, typer.Option(help="auto | on | off")] = None,
    ratio: Annotated[list[str] | None, typer.Option(
        help="ratio feature a/b (repeatable)")] = None,
    interaction: Annotated[list[str] | None, typer.Option(
        help="interaction feature a*b (repeatable)")] = None,
    auto_features: Annotated[bool | None, typer.Option(
        "--auto-features/--no-auto-features", help="auto ratios and coordinate features")
    ] = None,
    drop: Annotated[list[str] | None, typer.Option(help="columns never used (repeatable)")
                    ] = None,
    nested: Annotated[bool, typer.Option("--nested", help="tune inside each outer fold "
                                         "(nested CV)")] = False,
    trials: Annotated[int | None, typer.Option(help="Optuna trials per model and outer fold "
                                               "(nested)")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of shuffles and models")] = None,
    jobs: Annotated[int | None, typer.Option(help="parallel fits (-1: every core)")] = None,
    no_curve: Annotated[bool, typer.Option("--no-curve", help="skip the learning curve")
                        ] = False,
    no_track: Annotated[bool, typer.Option("--no-track", help="do not log to MLflow")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write results JSON "
                                                  "here ('-' prints it)")] = None,
    report: Annotated[Path | None, typer.Option(help="also write the HTML report here")
                      ] = None,
) -> None:
    """Cross-validate regression models with honest, comparable error estimates.

    Every model runs on the same folds; preparation and features are fitted inside each fold.
    Prints mean ± std, a confidence interval and a paired test against the best model; stores
    scores, out-of-fold predictions and an HTML report under .headwater/cv/RUN_ID/ and logs
    the run to MLflow.

    Example: headwater cv --data housing.csv --target median_house_value --folds 5
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from headwater.ml import cv_spec, run_cv

    proj = project()
    overrides: dict[str, Any] = {
        "splitter": splitter, "folds": folds, "repeats": repeats, "group": group,
        "time": time_column, "gap": gap, "models": _split(models), "log_target": log_target,
        "seed": seed, "jobs": jobs, "drop": _split(drop)}
    if no_curve:
        overrides["learning_curve"] = False
    if no_track:
        overrides["track"] = False
    base = cv_spec(proj, task)
    features = base.features.model_dump()
    if ratio:
        features["ratios"] = [*features["ratios"], *ratio]
    if interaction:
        features["interactions"] = [*features["interactions"], *interaction]
    if auto_features is not None:
        features["auto"] = auto_features
    overrides["features"] = features
    if nested or trials is not None:
        overrides["nested"] = {**base.nested.model_dump(), "enabled": True,
                               **({"trials": trials} if trials is not None else {})}
    spec = cv_spec(proj, task, **overrides)
    quiet_json = json_out is not None and str(json_out) == "-"
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=quiet_json) as bar:
        handle = bar.add_task("cross-validating", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(handle, completed=done, total=total, description=f"fitted {label}")

        result = run_cv(proj, task, data=data, target=target, spec=spec,
                        report=report, json_path=None if quiet_json else json_out,
                        progress=progress)
    if quiet_json:
        typer.echo(result.to_json())
        return
    console.print(cv_leaderboard(result))
    for c in result.comparisons[1:]:
        console.print(f"  {c['a']} vs {c['b']}: {c['verdict']}")
    if result.features:
        console.print(f"features added inside each fold: {', '.join(result.features)}")
    console.print(f"best: [bold green]{result.best}[/] · run {result.run_id} · "
                  f"{result.duration_s:.1f} s · report {result.outputs.get('report')}")

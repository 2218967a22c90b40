"""``headwater train``, ``headwater tune`` and ``headwater models``: churn models end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from headwater.cli._app import app, console, project
from headwater.console import print_train_result


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@app.command("train")
def train(
    task: Annotated[str, typer.Argument(help="task name (ml.train.<task> in headwater.yaml); "
                                        "also the registered model name")] = "churn",
    data: Annotated[str | None, typer.Option("--data", "-d", help="warehouse table, SELECT "
                                             "query, or CSV/Parquet file")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="column to predict "
                                               "(default: the task name)")] = None,
    algorithms: Annotated[list[str] | None, typer.Option(
        "--algorithms", "-a", help="comma-separated: logreg, tree, forest, svm, mlp, lightgbm "
        "(default: all)")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="tuning seconds for all "
                                                 "algorithms together")] = None,
    trials: Annotated[int | None, typer.Option(help="Optuna trials per algorithm at most")] = None,
    folds: Annotated[int | None, typer.Option(help="CV folds in tuning")] = None,
    threshold: Annotated[str | None, typer.Option(help="max_f1 | target_recall | cost | "
                                                  "fixed")] = None,
    target_recall: Annotated[float | None, typer.Option(help="recall for --threshold "
                                                        "target_recall")] = None,
    select: Annotated[str | None, typer.Option(help="feature selection: none | mutual_info | "
                                               "l1 | permutation")] = None,
    drop: Annotated[list[str] | None, typer.Option(help="columns never used as features")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    report: Annotated[Path | None, typer.Option(help="HTML report path")] = None,
    register: Annotated[bool | None, typer.Option("--register/--no-register",
                                                  help="register the best model")] = None,
) -> None:
    """Train and compare churn classifiers, tune them, evaluate on a holdout, register the best.

    Example: headwater train churn --data customers.csv --target Churn
    """
    from rich.progress import BarColumn, Progress, TimeElapsedColumn

    from headwater.ml._project import task_spec
    from headwater.ml._project import train as train_task

    proj = project()
    overrides = {"data": data, "target": target, "algorithms": _split(algorithms),
                 "time_budget_s": budget, "trials": trials, "folds": folds,
                 "feature_selection": select, "drop": _split(drop), "seed": seed,
                 "register_best": register, "threshold": threshold,
                 "target_recall": target_recall}
    spec = task_spec(proj, task, **overrides)  # a bad option fails here, before any work
    with Progress("[progress.description]{task.description}", BarColumn(),
                  "{task.completed:.0f}/{task.total:.0f} s of the tuning budget",
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        job = bar.add_task(f"training {task}", total=spec.time_budget_s)

        def progress(message: str, done: int, total: int) -> None:
            bar.update(job, description=message, completed=done, total=total)

        result = train_task(proj, task, on_progress=progress, report=report, **overrides)
    print_train_result(console, result)


@app.command("tune")
def tune(
    task: Annotated[str, typer.Argument(help="task name (ml.train.<task>)")],
    algorithm: Annotated[str, typer.Option("--algorithm", "-a", help="logreg, tree, forest, "
                                           "svm, mlp or lightgbm")] = "lightgbm",
    storage: Annotated[str | None, typer.Option(
        help="Optuna RDB storage shared by workers (default: ml.train.<task>.storage)",
        envvar="HEADWATER_OPTUNA_STORAGE")] = None,
    study: Annotated[str | None, typer.Option(help="study name (default TASK-ALGORITHM)")] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="table, query or file")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t")] = None,
    trials: Annotated[int | None, typer.Option(help="finished trials in the study at most "
                                               "(all workers)")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds this worker tunes")] = None,
    seed: Annotated[int | None, typer.Option(help="sampler seed of this worker")] = None,
) -> None:
    """Run a tuning worker on a shared Optuna study; start it on as many machines as you like.

    Example: headwater tune churn -a lightgbm --storage postgresql://optuna@db/optuna --trials 200
    """
    from headwater.core import ConfigError
    from headwater.ml._project import task_spec, tune_worker

    proj = project()
    spec = task_spec(proj, task, data=data, target=target)
    url = storage or (spec.storage.get_secret_value() if spec.storage else None)
    if not url:
        raise ConfigError("a tuning worker needs shared storage",
                          hint=f"pass --storage postgresql://... or set ml.train.{task}.storage")
    with console.status(f"tuning {algorithm} on study {study or f'{task}-{algorithm}'}"):
        result = tune_worker(proj, task, algorithm, storage=url, study=study, trials=trials,
                             timeout=timeout, seed=seed, data=data, target=target)
    console.print(f"study [bold]{result.study_name}[/]: {result.trials} trials "
                  f"({result.pruned} pruned); best CV {result.metric} "
                  f"{result.cv_mean:.4f} ± {result.cv_std:.4f}")
    console.print(f"best parameters: {result.params}")


@app.command("models")
def models() -> None:
    """List registered models with their latest version and aliases.

    Example: headwater models
    """
    from headwater.ml._tracking import Tracker

    rows = Tracker.for_project(project()).models()
    table = Table(header_style="bold cyan")
    for col in ("name", "latest version", "aliases"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], str(r["latest"]),
                      ", ".join(f"@{a} → {v}" for a, v in sorted(r["aliases"].items())))
    console.print(table if rows else "no registered models yet: try `headwater train churn`")

"""``headwater recommend``: generate interactions, evaluate and train recommendation models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from headwater.cli._app import app, console, project
from headwater.core import ConfigError

if TYPE_CHECKING:
    from headwater.ml.recommend._train import Evaluation

recommend_app = typer.Typer(
    help="Recommendations: interactions in, models compared against popularity, the best "
    "registered for the model server.\n\n"
    "Example: headwater recommend train --data u.data",
    no_args_is_help=True,
)
app.add_typer(recommend_app, name="recommend")

_DATA = typer.Option("--data", "-d", help="u.data file, CSV/Parquet event log, warehouse "
                     "table, SELECT query, or the model server's interaction logs "
                     "(.headwater/serve); repeat to read several together")
_MODELS = typer.Option("--models", "-m", help="comma-separated: popularity, trending, item_knn, "
                       "als, ease (default: all; popularity is always the baseline)")
_SPLIT = typer.Option("--split", help="per-user split: random | time (each user's latest)")
_FRACTION = typer.Option(help="share of each user's items held out")
_K = typer.Option("--k", "-k", help="list length of the metrics")
_TRIALS = typer.Option(help="Optuna trials per model (1: defaults)")
_BUDGET = typer.Option(help="tuning seconds for all models together")
_WEIGHT = typer.Option("--weight", "-w",
                       help="event weights EVENT=NUMBER, comma-separated or repeated")
_USE_VALUES = typer.Option("--use-values",
                           help="multiply weights by each event's value (e.g. the rating)")
_SEED = typer.Option(help="random seed")
_REPORT = typer.Option(help="HTML report path")


def _names(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _weights(values: list[str] | None) -> dict[str, float] | None:
    if not values:
        return None
    out = {}
    for item in values:
        for pair in item.split(","):
            event, sep, weight = pair.partition("=")
            try:
                out[event.strip()] = float(weight)
            except ValueError:
                raise ConfigError(f"--weight '{pair}' is not EVENT=NUMBER",
                                  hint="e.g. --weight purchase=10,view=0.5") from None
            if not sep:
                raise ConfigError(f"--weight '{pair}' is not EVENT=NUMBER",
                                  hint="e.g. --weight purchase=10,view=0.5")
    return out


def leaderboard_table(ev: Evaluation) -> Table:
    """Every model on the split, best by validation first, with its ratio to popularity."""
    table = Table(title=f"{ev.source}: {ev.users:,} users, {ev.items:,} items, per-user "
                  f"{ev.split} split, {ev.fraction:.0%} held out, top {ev.k}",
                  header_style="bold cyan")
    k = ev.k
    for col in ("model", "valid NDCG", f"NDCG@{k}", f"P@{k}", f"R@{k}", f"MAP@{k}",
                f"HR@{k}", "coverage", "novelty", "vs pop", "trials", "tune s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for row in ev.leaderboard():
        style = "bold green" if row["model"] == ev.best else (
            "dim" if row["model"] == "popularity" else "")
        table.add_row(Text(row["model"], style=style), f"{row['validation_ndcg']:.4f}",
                      f"{row['ndcg']:.4f}", f"{row['precision']:.4f}", f"{row['recall']:.4f}",
                      f"{row['map']:.4f}", f"{row['hit_rate']:.3f}", f"{row['coverage']:.3f}",
                      f"{row['novelty']:.2f}", f"{row['vs_popularity']:.2f}x",
                      str(row["trials"]), f"{row['tune_s']:.0f}")
    return table


def _progress_run(total: int, call):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        job = bar.add_task("loading interactions", total=total)

        def progress(message: str, done: int, total: int) -> None:
            bar.update(job, description=message, completed=done, total=total)

        return call(progress)


def _compare(call, data: list[str], models: list[str] | None, weight: list[str] | None,
             **options):  # type: ignore[no-untyped-def]
    """Run ``train`` or ``evaluate`` of headwater.ml.recommend under a progress bar."""
    from headwater.ml.recommend._models import DEFAULT_MODELS

    chosen = _names(models)
    total = len(dict.fromkeys(["popularity", *(chosen or DEFAULT_MODELS)]))
    return _progress_run(total, lambda progress: call(
        project(), data, models=chosen, weights=_weights(weight), on_progress=progress,
        **options))


@recommend_app.command("train")
def train(
    data: Annotated[list[str], _DATA],
    models: Annotated[list[str] | None, _MODELS] = None,
    split: Annotated[str, _SPLIT] = "random",
    test_fraction: Annotated[float, _FRACTION] = 0.25,
    k: Annotated[int, _K] = 10,
    trials: Annotated[int, _TRIALS] = 20,
    budget: Annotated[float, _BUDGET] = 120.0,
    weight: Annotated[list[str] | None, _WEIGHT] = None,
    use_values: Annotated[bool, _USE_VALUES] = False,
    name: Annotated[str, typer.Option(help="registered model name")] = "recommend",
    seed: Annotated[int, _SEED] = 0,
    report: Annotated[Path | None, _REPORT] = None,
    register: Annotated[bool, typer.Option("--register/--no-register",
                                           help="register the best model")] = True,
) -> None:
    """Tune and compare recommenders against popularity, refit the best on all data, register it.

    Example: headwater recommend train --data u.data --models ease,als --trials 20

    Retrain on what the model server saw since: --data u.data --data .headwater/serve
    """
    from headwater.ml.recommend._project import train as train_project

    trained = _compare(train_project, data, models, weight, name=name, split=split,
                       fraction=test_fraction, k=k, trials=trials, time_budget_s=budget,
                       seed=seed, use_values=use_values, register=register, report=report)
    ev = trained.evaluation
    console.print(leaderboard_table(ev))
    console.print(f"best: [bold green]{ev.best}[/] (by validation NDCG@{ev.k}); cold-start "
                  f"fallback: {ev.fallback}; refitted on all {ev.interactions:,} interactions")
    if trained.registered:
        r = trained.registered
        console.print(f"registered [bold]{r['name']}[/] version {r['version']} as @{r['alias']}")
    console.print(f"report: {trained.report_path}")


@recommend_app.command("evaluate")
def evaluate(
    data: Annotated[list[str], _DATA],
    models: Annotated[list[str] | None, _MODELS] = None,
    split: Annotated[str, _SPLIT] = "random",
    test_fraction: Annotated[float, _FRACTION] = 0.25,
    k: Annotated[int, _K] = 10,
    trials: Annotated[int, _TRIALS] = 1,
    budget: Annotated[float, _BUDGET] = 120.0,
    weight: Annotated[list[str] | None, _WEIGHT] = None,
    use_values: Annotated[bool, _USE_VALUES] = False,
    seed: Annotated[int, _SEED] = 0,
    report: Annotated[Path | None, _REPORT] = None,
) -> None:
    """Score every model against popularity on one per-user split; write the HTML report.

    Nothing is registered. Example: headwater recommend evaluate --data events.csv --split time
    """
    from headwater.ml.recommend._project import evaluate as evaluate_project

    ev, path = _compare(evaluate_project, data, models, weight, split=split,
                        fraction=test_fraction, k=k, trials=trials, time_budget_s=budget,
                        seed=seed, use_values=use_values, report=report)
    console.print(leaderboard_table(ev))
    console.print(f"best by validation: [bold green]{ev.best}[/] · report: {path}")


@recommend_app.command("generate")
def generate(
    out: Annotated[Path, typer.Argument(help="file to write, relative to the project (u.data "
                                        "layout for ratings, CSV for events)")],
    kind: Annotated[str, typer.Option(help="ratings (MovieLens-100K shape) | events "
                                      "(e-commerce log)")] = "ratings",
    users: Annotated[int | None, typer.Option(help="number of users")] = None,
    items: Annotated[int | None, typer.Option(help="number of items")] = None,
    size: Annotated[int | None, typer.Option(help="ratings, or view events")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Write synthetic interactions with latent tastes, popularity skew, sessions and drift.

    Example: headwater recommend generate u.data --kind ratings
    """
    from headwater.ml.datasets import make_events, write_udata

    out = project().path(str(out))  # like --data: relative to the project folder
    sizes = {k: v for k, v in {"users": users, "items": items}.items() if v is not None}
    if kind == "ratings":
        path = write_udata(out, **sizes, **({"ratings": size} if size else {}), seed=seed)
    elif kind == "events":
        frame = make_events(**sizes, **({"views": size} if size else {}), seed=seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
        path = out
    else:
        raise ConfigError(f"unknown kind '{kind}'", hint="use ratings or events")
    console.print(f"wrote {path} (synthetic {kind}; not real data)")

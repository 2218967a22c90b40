"""``headwater schedule``: run pipelines on their schedules, list them, backfill a range."""

from __future__ import annotations

import threading
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from headwater.cli._app import MetricsPortOption, app, console, project

schedule_app = typer.Typer(
    help="Run pipelines on intervals or cron expressions; backfill a range.\n\n"
    "Example: headwater schedule run",
    no_args_is_help=True,
)
app.add_typer(schedule_app, name="schedule")


@schedule_app.command("list")
def list_schedules() -> None:
    """Show each scheduled pipeline, its schedule, last run and next run.

    Example: headwater schedule list
    """
    from headwater.ingest import Scheduler

    plan = Scheduler(project()).plan()
    table = Table(title="schedules")
    for col in ("pipeline", "schedule", "last run", "status", "next run (UTC)"):
        table.add_column(col)
    for p in plan:
        table.add_row(p.pipeline, p.schedule.text,
                      f"{p.last_run:%Y-%m-%d %H:%M:%S}" if p.last_run else "never",
                      p.last_status or "-", f"{p.next_run:%Y-%m-%d %H:%M:%S}")
    console.print(table if plan else "no pipeline has a `schedule:` in headwater.yaml")


@schedule_app.command("run")
def run_schedules(
    pipeline: Annotated[list[str] | None, typer.Option(
        "--pipeline", "-n", help="only these pipelines (repeat the option)")] = None,
    once: Annotated[bool, typer.Option(
        "--once", help="run what is due now, then exit (for cron or CI)")] = False,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Run pipelines when they are due until Ctrl-C; a pipeline never runs twice at once.
    While it runs, the alert rules are evaluated on a clock and, with --metrics-port, the
    runs' metrics are served for Prometheus.

    Example: headwater schedule run --pipeline orders --metrics-port 9112
    """
    from headwater.ingest import Scheduler

    scheduler = Scheduler(project(), only=pipeline or None)

    def show(name: str, outcome: str) -> None:
        colour = {"succeeded": "green", "busy": "yellow"}.get(outcome, "red")
        console.print(f"[{colour}]{outcome}[/] {name}")

    if once:
        for name, outcome in scheduler.tick():
            show(name, outcome)
        return
    console.print(f"scheduling {len(scheduler.plan())} pipeline(s); Ctrl-C stops")
    stop = threading.Event()
    try:
        scheduler.run_forever(stop, on_run=show, metrics_port=metrics_port)
    except KeyboardInterrupt:
        stop.set()
        console.print("stopped")


@schedule_app.command("backfill")
def backfill_command(
    name: Annotated[str, typer.Argument(help="pipeline to backfill")],
    start: Annotated[str, typer.Option("--start", help="first cursor value: date, time or id")],
    end: Annotated[str, typer.Option("--end", help="end of the range (excluded)")],
    step: Annotated[str, typer.Option("--step", help="window size: 1d, 6h, 30m or a number")
                    ] = "1d",
) -> None:
    """Load a range window by window; windows already loaded are skipped.

    Example: headwater schedule backfill orders --start 2026-01-01 --end 2026-02-01 --step 1d
    """
    from headwater.ingest._schedule import backfill, parse_bound, parse_step

    table = Table(title=f"backfill {name}")
    for col in ("window", "status", "rows read", "loaded", "quarantined"):
        table.add_column(col)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"backfill {name}", total=None)

        def advance(done: int, total: int, window: tuple, run) -> None:
            bar.update(task, completed=done, total=total)
            table.add_row(f"{window[0]} → {window[1]}", run.status, f"{run.rows_read:,}",
                          f"{run.rows_loaded:,}", f"{run.rows_quarantined:,}")

        runs = backfill(project(), name, start=parse_bound(start), end=parse_bound(end),
                        step=parse_step(step), progress=advance)
    console.print(table)
    if any(r.status == "failed" for r in runs):
        raise typer.Exit(1)

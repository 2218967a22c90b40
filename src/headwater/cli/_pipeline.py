"""``headwater pipeline run | status``: train, gate, package, staging, smoke, production."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from headwater.cli._app import app, console, project

if TYPE_CHECKING:
    from headwater.deploy._pipeline import PipelineResult

pipeline_app = typer.Typer(help="Pipelines from training to production, as headwater.yaml "
                           "declares them (deploy.pipelines).\n\nExample: headwater pipeline "
                           "run churn", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")

_MARKS = {"done": "[green]✓ done[/]", "failed": "[red]✗ failed[/]", "skipped": "[dim]– skipped[/]",
          "pending": "[dim]· not run[/]", "running": "running"}

_SIGNS = {"done": "✓", "failed": "✗"}


def _table(result: PipelineResult) -> Table:
    table = Table(title=f"pipeline {result.name} · commit {(result.commit or 'unknown')[:10]}",
                  header_style="bold cyan")
    for col in ("stage", "status", "seconds", "detail"):
        table.add_column(col, overflow="fold")
    for s in result.stages:
        table.add_row(s.name, _MARKS[s.status], f"{s.seconds:.1f}" if s.seconds else "",
                      s.detail)
    return table


@pipeline_app.command("run")
def run(
    name: Annotated[str | None, typer.Argument(help="a pipeline under deploy.pipelines "
                                               "(default: the only one)")] = None,
    start: Annotated[str, typer.Option("--from", help="first stage: train | gate | package | "
                                       "staging | smoke | production")] = "train",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would run, do "
                                          "nothing")] = False,
    force: Annotated[bool, typer.Option(help="run even if this commit and these settings "
                                        "already ran")] = False,
) -> None:
    """Train, gate, package, deploy to staging, smoke-test, promote to production.

    Example: headwater pipeline run churn
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from headwater.deploy._pipeline import PipelineFailed, run_pipeline

    proj = project()
    with Progress(SpinnerColumn(finished_text=" "), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def on_stage(stage) -> None:
            if stage.name not in tasks:
                tasks[stage.name] = bar.add_task(stage.name, total=1)
            finished = stage.status not in ("running", "pending")
            bar.update(tasks[stage.name], completed=1 if finished else 0,
                       description=f"{stage.name}: {_MARKS[stage.status]} {stage.detail[:80]}")

        try:
            result = run_pipeline(proj, name, start=start, dry_run=dry_run, force=force,
                                  on_stage=on_stage, on_step=lambda m: bar.console.print(f"  {m}"))
        except PipelineFailed as exc:
            bar.stop()
            if exc.result is not None:
                console.print(_table(exc.result))
            raise
    if result.status in ("unchanged", "planned"):
        console.print(("[cyan]" if result.status == "unchanged" else "") + result.message)
        if result.status == "planned":
            console.print(_table(result))
        return
    console.print(_table(result))
    console.print(f"[green]{result.message}[/]" + (f" · image {result.image}"
                                                   if result.image else ""))


@pipeline_app.command("status")
def status(
    name: Annotated[str | None, typer.Argument(help="only this pipeline")] = None,
    limit: Annotated[int, typer.Option(help="most runs")] = 10,
) -> None:
    """The last pipeline runs: commit, model version, how far each got.

    Example: headwater pipeline status churn
    """
    from headwater.store import run_store

    runs = run_store(project()).list(kind="pipeline", pipeline=name, reports=True, limit=limit)
    table = Table(title="pipeline runs", header_style="bold cyan")
    for col in ("started", "pipeline", "run", "commit", "version", "status", "stages",
                "message"):
        table.add_column(col, overflow="fold")
    for r in runs:
        report = r["report"]
        stages = " ".join(s["name"] + _SIGNS.get(s["status"], "–")
                          for s in report.get("stages", []))
        table.add_row(f"{r['started_at']:%Y-%m-%d %H:%M:%S}", r["pipeline"], r["id"][:8],
                      (report.get("commit") or "")[:10], str(report.get("version") or ""),
                      r["status"], stages, (report.get("message") or r.get("error") or "")[:100])
    console.print(table if runs else "no pipeline runs yet: try `headwater pipeline run`")

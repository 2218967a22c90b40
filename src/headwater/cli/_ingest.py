"""``headwater ingest``: load files now, or run pipelines declared in headwater.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as ProgressDisplay
from rich.table import Table

from headwater.cli._app import MetricsPortOption, app, console, project
from headwater.console import quality_report, run_summary
from headwater.core import Progress
from headwater.monitor import Run, publish_metrics

ingest_app = typer.Typer(
    help="Load data: files now, or pipelines from headwater.yaml.\n\n"
    "Example: headwater ingest file data/*.csv --table orders",
    no_args_is_help=True,
)
app.add_typer(ingest_app, name="ingest")


@contextmanager
def progress_bar(title: str) -> Iterator[Progress]:
    """A Rich progress display fed by the pipeline's progress callback."""
    with ProgressDisplay(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(source: str, rows: int, nbytes: int) -> None:
            if source not in tasks:
                tasks[source] = bar.add_task(f"{title} {source}", total=None, rows=0)
            bar.update(tasks[source], rows=rows)

        yield update


def _finish(run: Run, *, show_quality: bool = True, evaluate: bool = False) -> None:
    run_summary(console, run)
    quality = run.report.get("quality")
    if show_quality and quality:
        quality_report(console, quality)
    proj = project()
    textfiles = proj.metrics.textfile_dir
    publish_metrics(f"ingest-{run.pipeline}", pushgateway=proj.metrics.pushgateway,
                    textfile_dir=proj.path(textfiles) if textfiles else None)
    if evaluate:  # `ingest run` evaluated inside run_pipeline already
        from headwater.ingest._run import check_after_run

        check_after_run(proj, f"ingest-{run.pipeline}")
    if run.status == "failed":
        raise typer.Exit(1)


@ingest_app.command("file")
def ingest_file(
    paths: Annotated[list[Path], typer.Argument(help="files, globs or folders")],
    table: Annotated[str, typer.Option("--table", "-t", help="destination table")],
    contract: Annotated[Path | None, typer.Option(help="contract YAML (default: inferred)")] = None,
    mode: Annotated[str, typer.Option(help="append | replace | merge")] = "append",
    key: Annotated[
        list[str] | None, typer.Option("--key", "-k", help="primary key column (merge); repeat")
    ] = None,
    format: Annotated[
        str, typer.Option(help="auto, csv, tsv, json, jsonl, parquet, xlsx, xml")
    ] = "auto",
    store: Annotated[str, typer.Option(help="store name from headwater.yaml")] = "warehouse",
    quality: Annotated[bool, typer.Option(help="print the data-quality report")] = True,
) -> None:
    """Load files into a table now, without editing headwater.yaml.

    Detects format, encoding and delimiter; cleanses and validates against the contract (or one
    inferred from the data); loads valid rows, quarantines the rest with every reason. A file
    already loaded (same content) is skipped.

    Example: headwater ingest file data/orders*.csv --table orders --contract contracts/orders.yaml
    """
    from headwater.ingest import ingest_files
    from headwater.store import open_store, run_store

    if mode not in ("append", "replace", "merge"):
        raise typer.BadParameter("choose append, replace or merge", param_hint="--mode")
    proj = project()
    target = open_store(proj, store)
    try:
        with progress_bar("loading") as progress:
            run = ingest_files(
                [str(p) for p in paths],
                target,
                table=table,
                contract=proj.path(contract) if contract else None,
                mode=mode,
                primary_key=key or None,  # type: ignore[arg-type]
                runs=run_store(proj),
                progress=progress,
                format=format,
            )
    finally:
        target.close()
    _finish(run, show_quality=quality, evaluate=True)


@ingest_app.command("run")
def ingest_run(
    names: Annotated[list[str] | None, typer.Argument(help="pipelines from headwater.yaml")] = None,
    all_: Annotated[bool, typer.Option("--all", help="run every pipeline")] = False,
    follow: Annotated[bool, typer.Option(
        "--follow", help="stream sources: keep loading micro-batches until Ctrl-C (stops after "
        "the current commit); a run record per window")] = False,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Run pipelines declared in headwater.yaml (source, contract, table, mode).

    A stream source is loaded to the end it has now, then the run stops; with --follow it goes
    on in micro-batches until Ctrl-C or SIGTERM.

    Example: headwater ingest run orders      (or: headwater ingest run events --follow)
    """
    from headwater.ingest import run_pipeline

    proj = project()
    chosen = list(proj.pipelines) if all_ else list(names or [])
    if not chosen:
        raise typer.BadParameter(
            f"name a pipeline or pass --all (pipelines: {', '.join(proj.pipelines) or 'none'})"
        )
    if metrics_port is not None and not follow:
        raise typer.BadParameter("a run that ends keeps its metrics with its run record; "
                                 "--metrics-port serves them while --follow runs",
                                 param_hint="--metrics-port")
    if follow and len(chosen) != 1:
        raise typer.BadParameter("--follow runs one pipeline: name it", param_hint="--follow")
    if follow:
        _follow(chosen[0], metrics_port)
        return
    failed = False
    for name in chosen:
        console.rule(f"[bold]{name}")
        proj.pipeline(name)
        with progress_bar("loading") as progress:
            run = run_pipeline(proj, name, progress=progress)
        try:
            _finish(run, show_quality=len(chosen) == 1)
        except typer.Exit:
            failed = True
    if failed:
        raise typer.Exit(1)


def _follow(name: str, metrics_port: int | None) -> None:
    """One line per window of a followed stream pipeline; metrics published per window."""
    from headwater.ingest import run_pipeline

    proj = project()
    proj.pipeline(name)
    textfiles = proj.metrics.textfile_dir
    console.print(f"following pipeline [bold]{name}[/]: Ctrl-C stops after the current commit")

    def window(run: Run) -> None:
        console.print(f"{run.started_at:%H:%M:%S} run {run.id}: {run.rows_read:,} read, "
                      f"{run.rows_loaded:,} loaded, {run.rows_quarantined:,} quarantined"
                      + (f" [red]failed: {run.error}[/]" if run.status == "failed" else ""))
        publish_metrics(f"ingest-{run.pipeline}", pushgateway=proj.metrics.pushgateway,
                        textfile_dir=proj.path(textfiles) if textfiles else None)

    last = run_pipeline(proj, name, follow=True, on_run=window, metrics_port=metrics_port)
    if last.status == "failed":
        raise typer.Exit(1)


@ingest_app.command("status")
def ingest_status() -> None:
    """Each pipeline's last run, and how many positions (files, cursors) it has committed.

    Example: headwater ingest status
    """
    from headwater.ingest import pipeline_status

    table = Table(header_style="bold cyan")
    for col in ("pipeline", "source", "table", "last run", "status", "loaded", "quarantined",
                "positions"):
        table.add_column(col)
    for st in pipeline_status(project()):
        ran = st.started_at is not None
        table.add_row(st.pipeline, st.source, st.table,
                      f"{st.started_at:%Y-%m-%d %H:%M}" if ran else "never",
                      st.status or "-",
                      f"{st.rows_loaded:,}" if ran else "-",
                      f"{st.rows_quarantined:,}" if ran else "-",
                      str(st.positions))
    console.print(table)

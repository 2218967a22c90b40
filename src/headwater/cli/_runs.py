"""``headwater runs``: the run records (ingestion, training, cross-validation)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from headwater.cli._app import app, console, project
from headwater.console import quality_report, run_summary

runs_app = typer.Typer(help="List runs, or show one with its quality report.\n\n"
                       "Example: headwater runs --pipeline orders", invoke_without_command=True)
app.add_typer(runs_app, name="runs")


@runs_app.callback()
def list_runs(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option(help="only this pipeline")] = None,
    kind: Annotated[str | None, typer.Option(help="ingest, train, cv, ...")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
) -> None:
    """List the newest runs.

    Example: headwater runs --limit 5
    """
    if ctx.invoked_subcommand is not None:
        return
    from headwater.store import run_store

    rows = run_store(project()).list(limit=limit, pipeline=pipeline, kind=kind)
    table = Table(header_style="bold cyan")
    for col in ("id", "kind", "pipeline", "started", "status", "read", "loaded", "quarantined",
                "dropped", "seconds"):
        table.add_column(col, justify="right" if col in (
            "read", "loaded", "quarantined", "dropped", "seconds") else "left")
    for r in rows:
        style = {"succeeded": "green", "failed": "red"}.get(r["status"], "yellow")
        table.add_row(r["id"], r["kind"], r["pipeline"], f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
                      Text(r["status"], style=style), f"{r['rows_read'] or 0:,}",
                      f"{r['rows_loaded'] or 0:,}", f"{r['rows_quarantined'] or 0:,}",
                      f"{r['rows_dropped'] or 0:,}", f"{r['duration_s'] or 0:,.2f}")
    console.print(table if rows else "no runs yet: try `headwater quickstart`")


@runs_app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="run id (a unique prefix is enough)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the record as JSON")] = False,
) -> None:
    """Show one run: counts, sources, quarantine reasons and its quality report.

    Example: headwater runs show 20261126T140501
    """
    from headwater.store import run_store

    record = run_store(project()).get(run_id)
    if as_json:
        typer.echo(json.dumps(record, indent=2, default=str))
        return
    run_summary(console, record)
    if record.get("error"):
        console.print(Text.assemble(("error: ", "bold red"), record["error"]))
    quality = (record.get("report") or {}).get("quality")
    if quality:
        quality_report(console, quality)

"""``headwater quarantine``: what was quarantined and why; replay after a fix."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from headwater.cli._app import app, console, project
from headwater.console import arrow_table, run_summary

quarantine_app = typer.Typer(help="Inspect quarantined rows and replay them after a fix.\n\n"
                             "Example: headwater quarantine list", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")

StoreOpt = Annotated[str, typer.Option(help="store name from headwater.yaml")]


@quarantine_app.command("list")
def list_(
    table: Annotated[str | None, typer.Option(help="only rows meant for this table")] = None,
    store: StoreOpt = "warehouse",
) -> None:
    """Count quarantined rows by table and rule (rows not yet replayed).

    Example: headwater quarantine list --table orders
    """
    from headwater.ingest import quarantine_counts

    rows = quarantine_counts(project(), table=table, store=store)
    if rows.num_rows == 0:
        console.print("the quarantine is empty")
        return
    console.print(arrow_table(rows, title="quarantined rows by rule"))


@quarantine_app.command("show")
def show(
    table: Annotated[str | None, typer.Option(help="only rows meant for this table")] = None,
    rule: Annotated[str | None, typer.Option(help="only rows that failed this rule")] = None,
    limit: Annotated[int, typer.Option(help="rows to print")] = 20,
    store: StoreOpt = "warehouse",
) -> None:
    """Show quarantined rows: the raw row, where it came from, and every reason.

    Example: headwater quarantine show --table orders --rule "type(amount)"
    """
    from headwater.ingest import quarantine_sample

    rows = quarantine_sample(project(), table=table, rule=rule, limit=limit, store=store)
    out = Table(header_style="bold cyan", show_lines=True)
    for col in ("id", "where", "raw row", "reasons"):
        out.add_column(col, overflow="fold")
    for r in rows.to_pylist():
        out.add_row(r["id"], f"{r['source']} {r['unit']} {r['position']}\n→ {r['table_name']}",
                    r["raw"], "\n".join(r["reasons"]))
    console.print(out if rows.num_rows else "no matching quarantined rows")


@quarantine_app.command("replay")
def replay(
    table: Annotated[str, typer.Option(help="replay rows meant for this table")],
    contract: Annotated[str | None, typer.Option(help="contract YAML (default: the pipeline's)")]
    = None,
    pipeline: Annotated[str | None, typer.Option(help="only rows of this pipeline")] = None,
    ids: Annotated[list[str] | None, typer.Option("--id", help="only these row ids; repeat")]
    = None,
    store: StoreOpt = "warehouse",
) -> None:
    """Load quarantined rows again after the contract or the data was fixed.

    Rows that now pass are loaded; the rest stay quarantined with today's reasons.

    Example: headwater quarantine replay --table orders --contract contracts/orders.yaml
    """
    from headwater.ingest import replay_table

    run = replay_table(project(), table, contract=contract, pipeline=pipeline, ids=ids,
                       store=store)
    if run.rows_read == 0:
        console.print("nothing to replay")
        return
    run_summary(console, run)

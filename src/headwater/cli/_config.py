"""``headwater config``: check headwater.yaml, print its JSON Schema."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from headwater.cli._app import app, console, project

config_app = typer.Typer(help="Check headwater.yaml or print its JSON Schema.\n\n"
                         "Example: headwater config check", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def check() -> None:
    """Validate headwater.yaml and its contracts; print what it declares.

    Errors name the key and the line, and say how to fix it.

    Example: headwater -p myproject config check
    """
    from headwater.ingest._run import load_contract

    proj = project()
    for spec in proj.pipelines.values():
        load_contract(spec.contract, proj.root)  # raises with the file and line
    table = Table(title=f"project {proj.project} ({proj.root})", header_style="bold cyan")
    for col in ("pipeline", "source", "table", "store", "mode", "contract", "schedule"):
        table.add_column(col)
    for name, spec in proj.pipelines.items():
        contract = spec.contract if isinstance(spec.contract, str) else (
            "inline" if spec.contract else "inferred")
        table.add_row(name, spec.source.kind, spec.table, spec.store, spec.mode, contract,
                      spec.schedule or "-")
    console.print(table)
    stores = ", ".join(f"{n} ({s.kind})" for n, s in proj.stores.items())
    console.print(f"stores: {stores}")
    console.print("[green]headwater.yaml is valid[/]")


@config_app.command("schema")
def schema(
    indent: Annotated[int, typer.Option(help="JSON indentation")] = 2,
) -> None:
    """Print the JSON Schema of headwater.yaml, for editors (YAML language server).

    Example: headwater config schema > headwater.schema.json
    """
    from headwater.config import Project

    data = Project.model_json_schema(mode="validation")
    data["title"] = "headwater.yaml"
    typer.echo(json.dumps(data, indent=indent))

"""``headwater contract``: write a contract from a sample for the user to edit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from headwater.cli._app import app, console, project

contract_app = typer.Typer(
    help="Infer a contract from a sample file or a pipeline's source.\n\n"
    "Example: headwater contract infer data/orders.csv -o contracts/orders.yaml",
    no_args_is_help=True,
)
app.add_typer(contract_app, name="contract")


@contract_app.command("infer")
def infer(
    path: Annotated[
        Path | None, typer.Argument(help="a sample file (any supported format)")
    ] = None,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="sample this pipeline's source instead "
                                 "(a database, API, ...; nothing is committed)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the YAML here (default: print it)")
    ] = None,
    rows: Annotated[int, typer.Option(help="rows to sample")] = 100_000,
    force: Annotated[bool, typer.Option(help="overwrite an existing output file")] = False,
) -> None:
    """Infer columns, types, nullability and keys from a sample; print or write YAML to edit.

    Example: headwater contract infer data/orders.csv -o contracts/orders.yaml

    Example: headwater contract infer --pipeline orders_db -o contracts/orders_db.yaml
    """
    from headwater.ingest import infer_for_pipeline, infer_from_file

    if (path is None) == (pipeline is None):
        raise typer.BadParameter("give a sample file or --pipeline NAME (one of them)",
                                 param_hint="PATH / --pipeline")
    proj = project()
    if pipeline is not None:
        text = infer_for_pipeline(proj, pipeline, rows=rows)
        then = f"set `contract: {output}` on pipeline {pipeline} in headwater.yaml"
    else:
        assert path is not None
        text = infer_from_file(proj.path(path), rows=rows)
        then = f"`headwater ingest file {path} --table NAME --contract {output}`"
    if output is None:
        typer.echo(text, nl=False)
        return
    target = proj.path(output)
    if target.exists() and not force:
        raise typer.BadParameter(
            f"{output} exists; pass --force to overwrite it", param_hint="--output"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    console.print(f"[green]wrote[/] {output}: edit it, then {then}")

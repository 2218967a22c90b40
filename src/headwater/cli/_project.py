"""``headwater init`` and ``headwater quickstart``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from headwater.cli._app import app, console


@app.command("init")
def init(
    folder: Annotated[Path, typer.Argument(help="folder for the new project")],
    sample_data: Annotated[bool, typer.Option(help="add messy sample files and contracts")] = True,
    force: Annotated[bool, typer.Option(help="write into a folder that is not empty")] = False,
) -> None:
    """Create a working project: headwater.yaml, sample data, contracts.

    Example: headwater init shop && cd shop && headwater ingest run --all
    """
    from headwater.quickstart import init_project

    root = init_project(folder, sample_data=sample_data, exist_ok=force)
    console.print(f"[green]created[/] {root}/headwater.yaml")
    console.print("next:")
    console.print(f"  cd {folder}")
    console.print("  headwater config check            # what the project declares")
    console.print("  headwater ingest run --all        # load the sample files")
    console.print("  headwater quarantine list         # what was rejected, and why")
    console.print('  headwater sql "SHOW TABLES"       # query the warehouse')


@app.command("quickstart")
def quickstart(
    folder: Annotated[Path, typer.Argument(help="where to create the demo project")]
    = Path("headwater-demo"),
    only: Annotated[list[str] | None, typer.Option(help="run only these steps; repeat")] = None,
) -> None:
    """A tour on embedded defaults: messy files in, clean tables out, and more.

    Nothing to install or start: DuckDB, SQLite and local files only.

    Example: headwater quickstart demo
    """
    from headwater.quickstart import run_quickstart

    root = run_quickstart(folder, console=console, only=only)
    console.rule("[bold]done")
    console.print(f"the demo project is in {root}; try:")
    console.print(f"  headwater -p {folder} runs")
    console.print(f'  headwater -p {folder} sql "SHOW TABLES"')

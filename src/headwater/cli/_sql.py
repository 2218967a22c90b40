"""``headwater sql``: query the warehouse (and lake tables) and print a table."""

from __future__ import annotations

from typing import Annotated

import typer

from headwater.cli._app import app, console, project
from headwater.console import arrow_table


@app.command("sql")
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run")],
    store: Annotated[str, typer.Option(help="store name from headwater.yaml")] = "warehouse",
    max_rows: Annotated[int, typer.Option(help="rows to print")] = 50,
    csv: Annotated[bool, typer.Option("--csv", help="print CSV instead of a table")] = False,
) -> None:
    """Run SQL against a store and print the result.

    Example: headwater sql "SELECT status, count(*) FROM orders GROUP BY ALL"
    """
    import io

    import pyarrow.csv as pacsv

    from headwater.store import open_store

    target = open_store(project(), store, read_only=True)
    try:
        result = target.query(query)
    finally:
        target.close()
    if csv:
        buffer = io.BytesIO()
        pacsv.write_csv(result, buffer)
        typer.echo(buffer.getvalue().decode(), nl=False)
    else:
        console.print(arrow_table(result, max_rows=max_rows))

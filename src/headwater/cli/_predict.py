"""``headwater predict``: score a table or file with a registered model, into the warehouse."""

from __future__ import annotations

from typing import Annotated

import typer

from headwater.cli._app import app, console, project


@app.command("predict")
def predict(
    model: Annotated[str, typer.Argument(help="NAME@ALIAS (e.g. churn@challenger), "
                                         "NAME/VERSION, or NAME for the latest version")],
    data: Annotated[str, typer.Option("--data", "-d", help="warehouse table, SELECT query, or "
                                      "CSV/Parquet file to score")],
    table: Annotated[str | None, typer.Option(help="destination table (default "
                                              "predictions_<model>)")] = None,
    mode: Annotated[str, typer.Option(help="append (keep history) or replace")] = "append",
    show: Annotated[int, typer.Option(help="print the riskiest N rows")] = 10,
) -> None:
    """Score data with a registered model; write probabilities and decisions to the warehouse.

    The data must match the model's signature: missing, extra or wrongly typed columns are
    named in the error.

    Example: headwater predict churn@challenger --data customers.csv
    """
    from headwater.console import arrow_table
    from headwater.ml._project import predict as predict_data

    with console.status(f"scoring {data} with {model}"):
        result = predict_data(project(), model, data, table=table, mode=mode)
    console.print(f"scored [bold]{result.rows:,}[/] rows with {result.model} "
                  f"(threshold {result.threshold:.3f}): [bold]{result.flagged:,}[/] flagged · "
                  f"written to table [bold]{result.table}[/] (run {result.run_id})")
    if show > 0:
        import pyarrow as pa

        top = result.frame.sort_values("probability", ascending=False).head(show)
        top = top.drop(columns=["scored_at", "run_id", "model", "model_version", "threshold"])
        console.print(arrow_table(pa.Table.from_pandas(top, preserve_index=False),
                                  title="highest probabilities"))

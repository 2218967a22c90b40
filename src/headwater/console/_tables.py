"""Arrow tables as Rich tables."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    import pyarrow as pa


def arrow_table(data: pa.Table, *, title: str | None = None, max_rows: int = 50,
                max_width: int = 40) -> Table:
    """An Arrow table as a Rich table (the first ``max_rows`` rows); repeated column names
    (``SELECT 1 AS x, 2 AS x``, joins) are shown as they are, like DuckDB does."""
    import pyarrow as pa  # the caller holds a table, so this is loaded already: --help is not

    table = Table(title=title, show_lines=False, header_style="bold cyan")
    for field in data.schema:  # by position: names may repeat
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(
            field.type) or pa.types.is_decimal(field.type)
        table.add_column(field.name, justify="right" if numeric else "left", overflow="fold")
    shown = data.slice(0, max_rows)
    columns = [column.to_pylist() for column in shown.columns]
    for row in zip(*columns, strict=True):
        table.add_row(*[_cell(v, max_width) for v in row])
    if data.num_rows > max_rows:
        table.caption = f"{max_rows} of {data.num_rows:,} rows shown"
    return table


def _cell(value: Any, max_width: int) -> Text:
    if value is None:
        return Text("null", style="dim")
    text = value if isinstance(value, str) else (
        json.dumps(value, default=str) if isinstance(value, list | dict) else str(value))
    if len(text) > max_width:
        text = text[: max_width - 1] + "…"
    return Text(text)

"""A cross-validation result on a terminal: one row per model, best first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from headwater.ml._cv import CVResult


def cv_leaderboard(result: CVResult, *, title: str | None = None) -> Table:
    """A Rich table of a CV result: one row per model, best first."""
    from headwater.ml._cv_report import leaderboard_rows

    rows = leaderboard_rows(result)
    table = Table(title=title or f"{result.target}: {result.spec.splitter} CV, "
                  f"{len(result.scores[result.scores.model == result.best])} folds, "
                  f"{result.rows:,} rows", header_style="bold cyan")
    for col in rows[0]:
        table.add_column(col, justify="left" if col in ("model", "vs best") else "right")
    for row in rows:
        style = {"best": "bold green", "tie": "yellow"}.get(str(row["vs best"]).split(" ")[0],
                                                            "")
        table.add_row(*[Text(str(v), style=style if k in ("model", "vs best") else "")
                        for k, v in row.items()])
    return table

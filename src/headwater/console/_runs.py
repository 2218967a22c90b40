"""What a run did, and its data-quality report, on a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from headwater.monitor import Run


def run_summary(console: Console, run: Run | dict[str, Any]) -> None:
    """Print what a run did: rows read, loaded, quarantined (top reasons), dropped, speed."""
    r = run if isinstance(run, dict) else {**vars(run), "duration_s": run.duration_s}
    report = r.get("report") or {}
    seconds = r.get("duration_s") or 0.0
    rate = r["rows_read"] / seconds if seconds else 0.0
    status_style = {"succeeded": "green", "failed": "red"}.get(r["status"], "yellow")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("run", f"{r['id']}  ({r['kind']} {r['pipeline']})")
    grid.add_row("status", Text(r["status"], style=status_style))
    grid.add_row("rows read", f"{r['rows_read']:,}")
    grid.add_row("loaded", f"{r['rows_loaded']:,}" + (f" into {report['table']}"
                                                       if report.get("table") else ""))
    grid.add_row("quarantined", f"{r['rows_quarantined']:,}")
    grid.add_row("dropped", f"{r['rows_dropped']:,} (duplicates)")
    grid.add_row("duration", f"{seconds:,.2f} s  ({rate:,.0f} rows/s)")
    console.print(grid)
    rules = report.get("rules_failed") or {}
    if rules:
        top = Table(title="top quarantine reasons", header_style="bold yellow")
        top.add_column("rule")
        top.add_column("rows", justify="right")
        for rule, count in list(rules.items())[:8]:
            top.add_row(rule, f"{count:,}")
        console.print(top)
    extracts = report.get("extracts") or []
    if len(extracts) > 1 or any(e["status"] != "loaded" for e in extracts):
        files = Table(title="sources", header_style="bold cyan")
        for col in ("source", "status", "read", "loaded", "quarantined", "dropped"):
            files.add_column(col, justify="left" if col in ("source", "status") else "right")
        for e in extracts:
            style = "red" if e["status"] == "failed" else ""
            files.add_row(e["source"], Text(e["status"], style=style), f"{e['rows_read']:,}",
                          f"{e['rows_loaded']:,}", f"{e['rows_quarantined']:,}",
                          f"{e['rows_dropped']:,}")
        console.print(files)
        for e in extracts:
            if e["status"] == "failed":
                console.print(Text.assemble(("failed: ", "bold red"), f"{e['source']}: ",
                                            e["error"] or ""))
    for finding in report.get("table_rules") or []:
        if finding.get("passed") is False:
            console.print(Text.assemble(("table rule failed: ", "bold yellow"),
                                        str(finding.get("message") or finding)))


def quality_report(console: Console, quality: dict[str, Any]) -> None:
    """Print a run's data-quality report (as stored with the run record)."""
    from headwater.contract import QualityReport

    QualityReport.from_dict(quality).render(console)

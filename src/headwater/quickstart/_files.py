"""Quickstart step: messy files in CSV, JSON Lines and Parquet → clean tables + a quarantine."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from headwater.config import load_project


def step(root: Path, console: Console) -> None:
    """Ingest the sample files twice: the second run shows that nothing loads twice."""
    from headwater.console import arrow_table, run_summary
    from headwater.ingest import run_pipeline
    from headwater.store import QUARANTINE_TABLE, open_store

    project = load_project(root)
    files = sorted(
        f"{p.parent.name}/{p.name}"
        for folder in ("orders", "customers")
        for p in (root / folder).iterdir()
        if p.is_file()
    )
    console.print(f"sample files in {root}: {', '.join(files)}")
    for name in ("orders", "customers"):
        run = run_pipeline(project, name)
        console.print(f"[bold]{name}[/]")
        run_summary(console, run)
    again = run_pipeline(project, "orders")
    console.print(
        f"ran [bold]orders[/] again: {again.rows_read} rows read, "
        f"{again.rows_loaded} loaded (each file is loaded exactly once)"
    )
    store = open_store(project, read_only=True)
    try:
        reasons = store.query(
            f"SELECT table_name, unnest(reasons) AS reason FROM {QUARANTINE_TABLE} "
            "WHERE replayed_by IS NULL LIMIT 6"
        )
        console.print(arrow_table(reasons, title="some quarantined rows, and why", max_width=90))
    finally:
        store.close()
    console.print(
        f"try: headwater -p {root} quarantine list | headwater -p {root} sql "
        '"SELECT * FROM orders LIMIT 5"'
    )

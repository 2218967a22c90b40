"""``headwater monitor export``: Prometheus, Alertmanager and Grafana files from headwater.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from headwater.cli._app import console, project
from headwater.cli._monitor import monitor_app


@monitor_app.command("export")
def export(
    folder: Annotated[Path, typer.Argument(help="where to write the files")] = Path("monitoring"),
    target: Annotated[list[str] | None, typer.Option(
        "--target", "-t", help="host:port of a headwater process serving /metrics; repeat "
        "(default localhost:9108)")] = None,
    alertmanager: Annotated[str, typer.Option(help="host:port of Alertmanager")]
    = "localhost:9093",
    scrape_interval: Annotated[str, typer.Option(help="Prometheus scrape interval")] = "15s",
    group_wait: Annotated[str, typer.Option(help="Alertmanager group_wait")] = "30s",
    secrets: Annotated[bool, typer.Option(
        "--secrets", help="write sink secrets (webhook URLs, passwords, routing keys) into "
        "alertmanager.yml; without it they are placeholders")] = False,
) -> None:
    """Write a Prometheus scrape config, alerting rules generated from headwater.yaml's
    rules, an Alertmanager config for the same sinks and a Grafana dashboard JSON.

    Example: headwater monitor export monitoring --target localhost:9108
    """
    from headwater.monitor.alerts import export as write_files

    proj = project()
    paths = write_files(proj, folder, targets=target or None, alertmanager=alertmanager,
                        secrets=secrets, scrape_interval=scrape_interval, group_wait=group_wait)
    table = Table(header_style="bold cyan", title=f"monitoring files for {proj.project}")
    table.add_column("file")
    table.add_column("what")
    what = {"scrape": "Prometheus: scrape config (rule_files, alerting)",
            "rules": f"Prometheus: {len(proj.alerts.rules)} alerting rules",
            "alertmanager": "Alertmanager: routes, receivers, inhibitions",
            "grafana": "Grafana: dashboard (import, pick the Prometheus data source)"}
    for key, path in paths.items():
        table.add_row(str(path), what[key])
    console.print(table)

"""``headwater monitor``: serve the dashboard (subcommands, such as ``export``, join this group)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from headwater.cli._app import app, console, project

monitor_app = typer.Typer(
    help="Serve the monitoring dashboard: pipelines, runs, ingestion rates, data quality, "
    "freshness and lag, alerts, the quarantine, stream processors and models.\n\n"
    "Example: headwater monitor --port 8750   (then open http://127.0.0.1:8750)",
    invoke_without_command=True,
)
app.add_typer(monitor_app, name="monitor")


@monitor_app.callback()
def monitor(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0: every interface)")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8750,
    refresh: Annotated[int, typer.Option(min=1, help="seconds between page refreshes")] = 5,
) -> None:
    """Serve the dashboard until Ctrl-C. Read-only unless HEADWATER_MONITOR_API_KEY is set:
    then actions (replay a quarantine) are enabled for requests carrying that key.

    Example: HEADWATER_MONITOR_API_KEY=s3cret headwater monitor --port 8750
    """
    if ctx.invoked_subcommand is not None:
        return
    from headwater.core import register_secret
    from headwater.monitor.dashboard import API_KEY_ENV, serve

    proj = project()
    api_key = os.environ.get(API_KEY_ENV) or None
    register_secret(api_key)
    mode = "actions enabled with the API key" if api_key else \
        f"read-only (set {API_KEY_ENV} to enable actions)"
    console.print(f"headwater monitor: http://{host}:{port}  ·  {proj.project}  ·  {mode}  ·  "
                  "Ctrl-C stops", highlight=False)
    serve(proj, host=host, port=port, api_key=api_key, refresh_s=refresh)

"""The Typer app, the project option shared by every command, and error display."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from headwater.config import Project, load_project
from headwater.core import HeadwaterError, register_secret
from headwater.monitor import configure_logging

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="headwater",
    help="From where your data lives to a model that answers in production.\n\n"
    "Example: headwater quickstart",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: --metrics-port of every long-running command: /metrics through headwater.monitor.serve_metrics.
MetricsPortOption = Annotated[int | None, typer.Option(
    help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics while running (0: any "
    "free port)")]

_state: dict[str, object] = {"project_path": None, "verbose": False, "project": None}


@app.callback()
def _main(
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-p",
            help="headwater.yaml or its folder (default: current folder)",
            envvar="HEADWATER_PROJECT",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="log to the terminal too")
    ] = False,
) -> None:
    """From where your data lives to a model that answers in production."""
    _state["project_path"] = project
    _state["verbose"] = verbose
    _state["project"] = None


def project() -> Project:
    """Load headwater.yaml once per command, and set up logging in its .headwater folder."""
    cached = _state.get("project")
    if isinstance(cached, Project):
        return cached
    loaded = load_project(_state["project_path"])  # type: ignore[arg-type]
    _register_secrets(loaded)
    configure_logging(
        log_dir=loaded.path(loaded.logging.dir),
        level=loaded.logging.level,
        console_level="info" if _state["verbose"] else loaded.logging.console_level,
        max_bytes=loaded.logging.rotate_mb << 20,
        backups=loaded.logging.keep,
    )
    _state["project"] = loaded
    return loaded


def _register_secrets(value: object) -> None:
    from pydantic import BaseModel, SecretStr

    if isinstance(value, SecretStr):
        register_secret(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _register_secrets(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            _register_secrets(item)
    elif isinstance(value, list):
        for item in value:
            _register_secrets(item)


def main() -> None:
    """Entry point of the ``headwater`` command: user errors print without a stack trace."""
    import logging

    from headwater.core import redact
    from headwater.monitor._logging import TRACE_LOGGER

    try:
        app()
    except HeadwaterError as exc:
        logging.getLogger(TRACE_LOGGER).error("command_failed: %s", redact(str(exc)), exc_info=True)
        err_console.print(
            Text.assemble(("error: ", "bold red"), redact(exc.message)), soft_wrap=True
        )
        if exc.hint:
            err_console.print(Text.assemble(("hint: ", "yellow"), redact(exc.hint)), soft_wrap=True)
        sys.exit(1)
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:
        logging.getLogger(TRACE_LOGGER).error("internal_error: %s", redact(str(exc)), exc_info=True)
        err_console.print(
            Text.assemble(("internal error: ", "bold red"), redact(f"{type(exc).__name__}: {exc}")),
            soft_wrap=True,
        )
        err_console.print(
            "this is a bug in headwater, not in your data or settings; the full "
            "trace is in .headwater/logs/headwater.jsonl — please report it",
            highlight=False,
        )
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        sys.exit(130)

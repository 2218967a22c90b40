"""The ``headwater`` command: one Typer app; each command group lives in its own module."""

from headwater.cli import (  # noqa: F401  (each module registers its commands)
    _alerts,
    _config,
    _contract,
    _cv,
    _deploy,
    _ingest,
    _iot,
    _monitor,
    _monitor_export,
    _pipeline,
    _predict,
    _project,
    _quarantine,
    _recommend,
    _runs,
    _schedule,
    _serve,
    _sql,
    _stream,
    _train,
)
from headwater.cli._app import app, main

__all__ = ["app", "main"]

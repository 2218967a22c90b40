"""The ``headwater`` command: one Typer app; each command group lives in its own module."""

from headwater.cli import _config, _ingest, _project, _quarantine, _runs, _sql  # noqa: F401
from headwater.cli._app import app, main

__all__ = ["app", "main"]

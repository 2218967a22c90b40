"""``headwater quickstart``: a tour of headwater on embedded defaults, nothing to start by hand.

Each scenario adds one step: a function ``step(folder, console)`` that makes its sample data in
``folder`` (a headwater project), runs it, and prints what happened and what to try next.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from headwater.quickstart import _churn, _deploy, _files, _housing, _iot, _serve, _sources, _streams
from headwater.quickstart._init import init_project

__all__ = ["STEPS", "init_project", "run_quickstart"]

Step = Callable[[Path, Console], None]

#: The steps in the order they run: (name, what it shows, function).
STEPS: list[tuple[str, str, Step]] = [
    ("files", "messy files in three formats, validated, cleansed, loaded exactly once",
     _files.step),
    ("sources", "a database and a REST API, loaded incrementally: the 2nd run reads changes",
     _sources.step),
    ("streams", "messy JSON events on the embedded log, loaded with a contract exactly once",
     _streams.step),
    ("iot", "200 sensors with faults → gateway → stream processor: windows, alerts, scores",
     _iot.step),
    ("housing", "cross-validation of house-price models: honest, comparable errors",
     _housing.step),
    ("churn", "churn models compared, tuned, evaluated on a holdout, registered, scoring",
     _churn.step),
    ("serve", "the model server: recommendations react to clicks at once; churn scored over HTTP",
     _serve.step),
    ("deploy", "the local deploy target under load: blue/green fails nothing; a bad canary "
     "rolls back", _deploy.step),
]


def _log_to(root: Path) -> None:
    """Log lines to the demo project's log file; only headwater's warnings reach the terminal."""
    from headwater.config import load_project
    from headwater.monitor import configure_logging

    project = load_project(root)
    configure_logging(log_dir=project.path(project.logging.dir), level=project.logging.level,
                      console_level=project.logging.console_level,
                      max_bytes=project.logging.rotate_mb << 20, backups=project.logging.keep)


def run_quickstart(folder: str | Path, *, console: Console | None = None,
                   only: list[str] | None = None) -> Path:
    """Create (or reuse) a project in ``folder`` and run every quickstart step in it."""
    console = console or Console()
    root = init_project(folder, sample_data=True, exist_ok=True)
    _log_to(root)
    for name, title, step in STEPS:
        if only and name not in only:
            continue
        console.print(Rule(f"[bold]{name}[/]: {title}"))
        step(root, console)
    return root

"""Structured logging: JSON lines to a file, readable lines on the terminal, secrets redacted."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import structlog

from headwater.core._secrets import SECRET_KEYS, redact

#: A stdlib logger that writes to the log file only: stack traces of failed commands.
TRACE_LOGGER = "headwater.trace"
logging.getLogger(TRACE_LOGGER).addHandler(logging.NullHandler())
logging.getLogger(TRACE_LOGGER).propagate = False


def _redact_event(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event.items()):
        if SECRET_KEYS.search(key) and value not in (None, ""):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = redact(value)
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _redact_event,
]


def configure_logging(*, log_dir: str | Path | None = None, level: str = "info",
                      console_level: str = "warning") -> Path | None:
    """Send JSON lines to ``log_dir/headwater.jsonl`` and readable lines to stderr.

    Returns the log file's path (None without ``log_dir``). Safe to call more than once.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_headwater", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG)

    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level.upper())
    console.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())],
    ))
    console._headwater = True  # type: ignore[attr-defined]
    root.addHandler(console)

    path = None
    if log_dir is not None:
        path = Path(log_dir) / "headwater.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(path, encoding="utf-8")
        file.setLevel(level.upper())
        file.setFormatter(structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info,
                        structlog.processors.JSONRenderer()],
        ))
        file._headwater = True  # type: ignore[attr-defined]
        root.addHandler(file)
        trace = logging.getLogger(TRACE_LOGGER)
        for handler in list(trace.handlers):
            trace.removeHandler(handler)
        trace.addHandler(file)
    for noisy in ("httpx", "httpcore", "botocore", "urllib3", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


structlog.configure(
    processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger; inside a run every line carries ``run_id``."""
    return structlog.stdlib.get_logger(name)

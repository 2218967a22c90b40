"""Structured logging: JSON lines to a file, readable lines on the terminal, secrets redacted."""

from __future__ import annotations

import logging
import re
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


#: What a terminal line says: the event, what it concerns, and what went wrong.
_DETAIL = ("error", "reason", "summary", "message", "hint")
_SUBJECT = ("source", "file", "table", "column", "rule", "sink", "processor", "topic", "url")


def plain_sentence(_: Any, __: str, event: dict[str, Any]) -> str:
    """One readable line for the terminal: ``warning: extract failed in orders.csv: …``.

    >>> plain_sentence(None, "", {"event": "column_dropped", "level": "warning",
    ...                           "column": "customerID", "reason": "an identifier"})
    'warning: column dropped (column customerID): an identifier'
    """
    name = str(event.get("event", ""))
    words = name.replace("_", " ") if re.fullmatch(r"[a-z0-9_]+", name) else name
    subject = next(((k, event[k]) for k in _SUBJECT if event.get(k) not in (None, "")), None)
    detail = next((event[k] for k in _DETAIL if event.get(k) not in (None, "")), None)
    text = f"{event.get('level', 'info')}: {words}"
    if subject:
        text += f" ({subject[0]} {subject[1]})"
    if detail is not None:
        text += f": {str(detail).splitlines()[0]}"
    return text


class _Own(logging.Filter):
    """Only headwater's own lines reach the terminal; the rest go to the log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith("headwater") and not record.name.startswith(TRACE_LOGGER)


def configure_logging(*, log_dir: str | Path | None = None, level: str = "info",
                      console_level: str = "warning", max_bytes: int = 50 << 20,
                      backups: int = 5) -> Path | None:
    """Send JSON lines to ``log_dir/headwater.jsonl`` (rotated at ``max_bytes``, keeping
    ``backups`` old files) and headwater's own lines at ``console_level`` to stderr, each as one
    plain sentence. Third-party logging (MLflow, Optuna, ...) and Python warnings go to the file
    only. Returns the log file's path (None without ``log_dir``). Safe to call more than once.
    """
    import os
    from logging.handlers import RotatingFileHandler

    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")  # MLflow logs through root
    logging.captureWarnings(True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_headwater", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG)

    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level.upper())
    console.addFilter(_Own())
    console.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, plain_sentence],
    ))
    console._headwater = True  # type: ignore[attr-defined]
    root.addHandler(console)

    path = None
    if log_dir is not None:
        path = Path(log_dir) / "headwater.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        file = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                   encoding="utf-8")
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
    for noisy in ("httpx", "httpcore", "botocore", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for library in ("mlflow", "optuna", "py.warnings"):  # their own handlers print to stderr
        lib = logging.getLogger(library)
        for handler in list(lib.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                    handler, logging.FileHandler):
                lib.removeHandler(handler)
        lib.propagate = True
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

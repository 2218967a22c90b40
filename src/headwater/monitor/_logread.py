"""Reading the JSON log back: filter by run, pipeline, level and time; follow new lines."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def _matches(line: dict[str, Any], run: str | None, pipeline: str | None, level: str | None,
             since: datetime | None) -> bool:
    if run and not str(line.get("run_id", "")).startswith(run):
        return False
    if pipeline and line.get("pipeline") != pipeline:
        return False
    if level and _LEVELS.get(str(line.get("level", "info")), 20) < _LEVELS[level]:
        return False
    if since is not None:
        try:
            return datetime.fromisoformat(str(line.get("timestamp"))) >= since
        except ValueError:
            return False
    return True


def read_logs(log_dir: str | Path, *, run: str | None = None, pipeline: str | None = None,
              level: str | None = None, since: datetime | None = None,
              follow: bool = False, poll_s: float = 0.5) -> Iterator[dict[str, Any]]:
    """The JSON log lines of ``log_dir`` (rotated files first, oldest to newest) that match:
    a run id prefix, a pipeline, a lowest level, a time (aware ``datetime``). With ``follow``,
    keep yielding new lines as they are written (until the caller stops)."""
    folder = Path(log_dir)
    current = folder / "headwater.jsonl"
    rotated = sorted(folder.glob("headwater.jsonl.*"),
                     key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    for path in [*rotated, current]:
        if path.exists():
            with path.open(encoding="utf-8", errors="replace") as file:
                for raw in file:
                    line = _parse(raw)
                    if line is not None and _matches(line, run, pipeline, level, since):
                        yield line
    if not follow:
        return
    offset = current.stat().st_size if current.exists() else 0
    while True:
        size = current.stat().st_size if current.exists() else 0
        if size < offset:  # rotated: start the new file from its beginning
            offset = 0
        if size > offset:
            with current.open(encoding="utf-8", errors="replace") as file:
                file.seek(offset)
                chunk = file.read()
                offset = file.tell()
            for raw in chunk.splitlines():
                line = _parse(raw)
                if line is not None and _matches(line, run, pipeline, level, since):
                    yield line
        else:
            time.sleep(poll_s)


def _parse(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def format_line(line: dict[str, Any]) -> str:
    """One log line for people: time, level, run, event and its fields."""
    skip = {"timestamp", "level", "event", "logger", "run_id", "pipeline", "kind", "exception"}
    fields = " ".join(f"{k}={v}" for k, v in line.items() if k not in skip)
    if line.get("exception"):  # the trace's last line; `--json` has all of it
        fields += f" exception={str(line['exception']).strip().splitlines()[-1]}"
    run = f" [{line['run_id']}]" if line.get("run_id") else ""
    return (f"{str(line.get('timestamp', ''))[:19]} {line.get('level', ''):<7}{run} "
            f"{line.get('event', '')} {fields}").rstrip()

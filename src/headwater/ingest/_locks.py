"""One run per pipeline at a time: a lock that survives a crash.

The lock is an ``flock`` on ``.headwater/locks/<pipeline>.lock`` (the kernel releases it when the
process dies, however it dies) or, when run records live in PostgreSQL (several machines), a
session advisory lock, which the server releases when the connection drops.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from headwater.config import Project
from headwater.core import HeadwaterError


class PipelineBusy(HeadwaterError):
    """Another run of the pipeline holds its lock."""



_held: set[tuple[str, str]] = set()  # (project root, pipeline) locks this process holds


@contextmanager
def pipeline_lock(project: Project, name: str) -> Iterator[None]:
    """Hold the lock of pipeline ``name`` for the block; PipelineBusy if another run has it.

    Re-entrant within one process: the scheduler holds it around ``run_pipeline``, which
    takes it too.
    """
    key = (str(project.root), name)
    if key in _held:
        yield
        return
    url = project.metadata.url.get_secret_value() if project.metadata.url else ""
    lock = _advisory_lock(url, name) if url.startswith(("postgresql", "postgres")) else \
        file_lock(project.state_dir / "locks" / f"{_safe(name)}.lock", name)
    with lock:
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)


@contextmanager
def file_lock(path: Path, name: str) -> Iterator[None]:
    """An exclusive flock; the file says who holds it (pid, host, since)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(path)
            raise PipelineBusy(f"pipeline '{name}' is already running ({holder})",
                               hint="wait for it to finish; a crashed run releases its lock "
                               "by itself") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": dt.datetime.now(dt.UTC).isoformat()}).encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"


@contextmanager
def _advisory_lock(url: str, name: str) -> Iterator[None]:
    import psycopg

    key = int.from_bytes(hashlib.sha1(f"headwater:{name}".encode()).digest()[:8], "big",
                         signed=True)
    con = psycopg.connect(re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url),
                          autocommit=True)
    try:
        got = con.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
        if not got or not got[0]:
            raise PipelineBusy(f"pipeline '{name}' is already running (PostgreSQL advisory "
                               f"lock {key} is held)",
                               hint="wait for it to finish; a crashed run's lock goes with "
                               "its connection")
        yield
    finally:
        con.close()  # releases the lock


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)

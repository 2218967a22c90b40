"""The kill -9 harness of the load crash tests: start `headwater` in a project folder, kill it
after it committed, run it again, and read the warehouse to compare with a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

HEADWATER = str(Path(sys.executable).with_name("headwater"))


def start(folder: Path, *args: str) -> subprocess.Popen:
    """``headwater ARGS`` running in ``folder`` (output discarded)."""
    return subprocess.Popen([HEADWATER, *args], cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def kill_after_commits(folder: Path, args: tuple[str, ...], pauses: list[float]) -> int:
    """Start ``headwater ARGS`` once per pause; each time wait until it has committed one more
    extract (its log says ``extract_loaded``), sleep the pause, then kill -9 it. Returns how
    many runs were killed (a run that finishes first is not)."""
    log = folder / ".headwater" / "logs" / "headwater.jsonl"

    def commits() -> int:
        return log.read_text().count('"extract_loaded"') if log.exists() else 0

    kills = 0
    for pause in pauses:
        proc = start(folder, *args)
        before = commits()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if commits() > before:
                time.sleep(pause)
                break
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
    return kills


def warehouse_rows(folder: Path, *queries: str) -> tuple:
    """The first row of each query on the project's warehouse (opened read-only)."""
    con = duckdb.connect(str(folder / ".headwater" / "warehouse.duckdb"), read_only=True)
    try:
        return tuple(con.sql(q).fetchall()[0] for q in queries)
    finally:
        con.close()


def crash_then_compare(clean: Path, crashed: Path, args: tuple[str, ...], pauses: list[float],
                       fingerprint: Callable[[Path], tuple]) -> tuple:
    """Load ``clean`` once; load ``crashed`` under kill -9 (see :func:`kill_after_commits`),
    then to the end; assert both fingerprints are equal and return it."""
    assert start(clean, *args).wait(timeout=600) == 0
    assert kill_after_commits(crashed, args, pauses) >= 1, \
        "the load finished before it could be killed"
    assert start(crashed, *args).wait(timeout=600) == 0
    assert fingerprint(crashed) == fingerprint(clean)
    return fingerprint(crashed)


def messy_records(n: int, *, unknown: int, negative: int, broken: int) -> pa.Table:
    """``n`` events as records (key: the id, value: JSON) with every ``unknown``-th kind not
    allowed, every ``negative``-th amount below 0 and every ``broken``-th payload not JSON."""
    from headwater.brokers import encode_rows

    ids = np.arange(n)
    rows = pa.table({"id": ids, "kind": np.where(ids % unknown == 0, "nope",
                                                 np.array(["view", "click", "buy"])[ids % 3]),
                     "amount": np.where(ids % negative == 0, -1.0, (ids % 500) / 4)})
    records = encode_rows(rows, key="id")
    values = records["value"].to_pylist()
    for i in range(0, n, broken):
        values[i] = b"not json " + str(i).encode()
    return records.set_column(1, "value", pa.array(values, pa.binary()))

"""kill -9 in the middle of a file load, run again: the table equals a clean run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADWATER = str(Path(sys.executable).with_name("headwater"))
CONTRACT = """\
columns:
  id: {type: integer, nullable: false}
  amount: {type: float}
  note: {type: string}
primary_key: [id]
"""


def make_files(folder: Path, files: int = 4, rows: int = 400_000) -> None:
    (folder / "data").mkdir(parents=True)
    for f in range(files):
        ids = pa.array(range(f * rows, (f + 1) * rows))
        amounts = pa.array([f"{i % 997}.5" if i % 1000 else "oops" for i in range(rows)])
        notes = pa.array([f"row, {i}" for i in range(rows)])
        pacsv.write_csv(pa.table({"id": ids, "amount": amounts, "note": notes}),
                        folder / "data" / f"part{f}.csv")
    (folder / "contract.yaml").write_text(CONTRACT)


def ingest(folder: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [HEADWATER, "ingest", "file", "data", "--table", "t", "--contract", "contract.yaml"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fingerprint(folder: Path) -> tuple:
    con = duckdb.connect(str(folder / ".headwater" / "warehouse.duckdb"), read_only=True)
    try:
        table = con.sql("SELECT count(*), count(DISTINCT id), sum(hash(id, amount, note)) "
                        "FROM t").fetchall()[0]
        quarantine = con.sql("SELECT count(*), count(DISTINCT source || position) "
                             "FROM _hw_quarantine").fetchall()[0]
        return table, quarantine
    finally:
        con.close()


def test_kill_9_mid_load_then_rerun_equals_a_clean_run(tmp_path: Path) -> None:
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    make_files(clean)
    make_files(crashed)
    assert ingest(clean).wait(timeout=600) == 0

    log = crashed / ".headwater" / "logs" / "headwater.jsonl"
    kills = 0
    for delay_after_first_commit in (0.3, 0.0):
        proc = ingest(crashed)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and log.read_text().count('"extract_loaded"') > kills:
                time.sleep(delay_after_first_commit)
                break
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 1, "the load finished before it could be killed"
    final = ingest(crashed)
    assert final.wait(timeout=600) == 0
    assert fingerprint(crashed) == fingerprint(clean)
    table, quarantine = fingerprint(crashed)
    assert table[0] == table[1] == 4 * 400_000 - quarantine[0]
    assert quarantine[0] == quarantine[1] == 4 * 400

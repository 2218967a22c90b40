"""kill -9 in the middle of a file load, run again: the table equals a clean run's."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from .cases.crash import crash_then_compare, warehouse_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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


INGEST = ("ingest", "file", "data", "--table", "t", "--contract", "contract.yaml")


def fingerprint(folder: Path) -> tuple:
    return warehouse_rows(
        folder, "SELECT count(*), count(DISTINCT id), sum(hash(id, amount, note)) FROM t",
        "SELECT count(*), count(DISTINCT source || position) FROM _hw_quarantine")


def test_kill_9_mid_load_then_rerun_equals_a_clean_run(tmp_path: Path) -> None:
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    make_files(clean)
    make_files(crashed)
    table, quarantine = crash_then_compare(clean, crashed, INGEST, [0.3, 0.0], fingerprint)
    assert table[0] == table[1] == 4 * 400_000 - quarantine[0]
    assert quarantine[0] == quarantine[1] == 4 * 400

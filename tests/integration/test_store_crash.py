"""kill -9 in the middle of a load, run again: no loss, no duplicates, for every store.

A child process (this file run as a script) loads three "files" the way the pipeline does, one
transaction per file with its state, and SIGKILLs itself at a chosen point. The parent then runs
the same load to the end and compares the store with a clean run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from headwater.store import QUARANTINE_SCHEMA, DeltaStore, DuckDBStore, PostgresStore, Store

pytestmark = pytest.mark.integration

PIPELINE = "crash"
FILES = {"a.csv": 400, "b.csv": 300, "c.csv": 200}


def open_spec(spec: dict[str, Any]) -> Store:
    """Build a store from a JSON-able description (the child gets it on its command line)."""
    if spec["kind"] == "duckdb":
        return DuckDBStore(spec["path"])
    if spec["kind"] == "postgres":
        return PostgresStore(spec["url"], schema=spec["schema"])
    return DeltaStore(spec["uri"], storage_options=spec.get("options"))


def extract(key: str, n: int) -> tuple[pa.Table, pa.Table]:
    """The rows of one file: every tenth goes to the quarantine."""
    ids = [f"{key}:{i}" for i in range(n)]
    good = pa.table({"id": [i for j, i in enumerate(ids) if j % 10],
                     "amount": [float(j) for j in range(n) if j % 10]})
    bad_ids = [i for j, i in enumerate(ids) if j % 10 == 0]
    m = len(bad_ids)
    bad = pa.table({
        "id": [f"{key}#{i}" for i in range(m)], "run_id": ["r"] * m, "pipeline": [PIPELINE] * m,
        "table_name": ["orders"] * m, "source": [key] * m, "position": list(range(m)),
        "unit": ["line"] * m, "raw": bad_ids, "rules": [["type(amount)"]] * m,
        "reasons": [["not a number"]] * m,
        "quarantined_at": [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)] * m,
        "replayed_by": pa.nulls(m, pa.string()),
    }, schema=QUARANTINE_SCHEMA)
    return good, bad


def load(store: Store, run_id: str, mode: str = "append", crash: str | None = None) -> None:
    """Load every file not yet in the state, one transaction each (as the pipeline does)."""
    state = store.state(PIPELINE)
    for key, n in FILES.items():
        position = {"sha256": f"{key}-{n}"}
        if state.get(key) == position:
            continue
        good, bad = extract(key, n)
        with store.transaction(PIPELINE, run_id) as tx:
            tx.quarantine(bad)
            tx.write("orders", good, mode=mode, primary_key=["id"])
            tx.set_state(key, position)
            if crash == "in-transaction" and key == "b.csv":
                os.kill(os.getpid(), signal.SIGKILL)


def snapshot(store: Store) -> tuple[list[tuple[str, float]], list[str], dict[str, Any]]:
    """What a comparison needs: data rows, quarantined raw rows, state."""
    data = store.read_table("orders") if "orders" in store.tables() else pa.table(
        {"id": pa.array([], pa.string()), "amount": pa.array([], pa.float64())})
    quarantined = store.query("SELECT raw FROM _hw_quarantine")["raw"].to_pylist()
    return (sorted(zip(data["id"].to_pylist(), data["amount"].to_pylist(), strict=True)),
            sorted(quarantined), dict(store.state(PIPELINE)))


def run_child(spec: dict[str, Any], crash: str, kill_after_commits: int = 0) -> int:
    """Run the load in a child process that kills itself; returns its exit code."""
    args = [sys.executable, __file__, json.dumps(spec), crash, str(kill_after_commits)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    return done.returncode


@pytest.fixture
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    kind = request.param
    if kind == "duckdb":
        yield {"kind": "duckdb", "path": str(tmp_path / "w.duckdb")}
    elif kind == "postgres":
        schema = f"hw_crash_{uuid.uuid4().hex[:10]}"
        yield {"kind": "postgres", "url": request.getfixturevalue("postgres_url"), "schema": schema}
        store = PostgresStore(request.getfixturevalue("postgres_url"), schema=schema)
        store.query(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        store.close()
    elif kind == "delta-local":
        yield {"kind": "delta", "uri": str(tmp_path / "lake")}
    else:
        options = dict(request.getfixturevalue("s3_endpoint"))
        bucket = options.pop("bucket")
        yield {"kind": "delta", "uri": f"s3://{bucket}/{uuid.uuid4().hex[:10]}",
               "options": options}


def clean_snapshot(tmp_path: Path, mode: str) -> Any:
    store = DuckDBStore(tmp_path / "clean.duckdb")
    load(store, "clean", mode=mode)
    try:
        return snapshot(store)
    finally:
        store.close()


@pytest.mark.parametrize("spec", ["duckdb", "postgres", "delta-local"], indirect=True)
@pytest.mark.parametrize("mode", ["append", "merge"])
def test_kill_inside_a_transaction_leaves_nothing_and_the_rerun_equals_a_clean_run(
        spec: dict[str, Any], mode: str, tmp_path: Path) -> None:
    run_child({**spec, "mode": mode}, "in-transaction")
    store = open_spec(spec)
    try:
        rows, quarantined, state = snapshot(store)
        # a.csv committed before the kill; b.csv's rows, quarantine and state did not
        assert state == {"a.csv": {"sha256": "a.csv-400"}}
        assert {r[0].split(":")[0] for r in rows} == {"a.csv"} and len(rows) == 360
        assert len(quarantined) == 40
        load(store, "rerun", mode=mode)
        load(store, "rerun-again", mode=mode)  # nothing left to do: loads nothing twice
        assert snapshot(store) == clean_snapshot(tmp_path, mode)
    finally:
        store.close()


@pytest.mark.parametrize("spec", ["delta-local", "delta-s3"], indirect=True)
@pytest.mark.parametrize(("between", "commits"),
                         [("quarantine-and-data", 1), ("data-and-state", 2)])
def test_delta_kill_between_commits_then_rerun_neither_loses_nor_duplicates(
        spec: dict[str, Any], between: str, commits: int, tmp_path: Path) -> None:
    # a.csv takes 3 commits (quarantine, data, state); kill inside b.csv's transaction
    run_child(spec, "between-commits", kill_after_commits=3 + commits)
    store = open_spec(spec)
    assert isinstance(store, DeltaStore)
    rows, quarantined, state = snapshot(store)
    assert state == {"a.csv": {"sha256": "a.csv-400"}}          # b.csv is not recorded...
    assert len(quarantined) == 40 + 30                           # ...but its quarantine is there
    assert len(rows) == 360 + (270 if between == "data-and-state" else 0)
    load(store, "rerun")
    load(store, "rerun-again")
    assert snapshot(store) == clean_snapshot(tmp_path, "append")


def _child(spec_json: str, crash: str, kill_after: str) -> None:
    spec = json.loads(spec_json)
    store = open_spec(spec)
    if crash == "between-commits":
        commit = DeltaStore._commit
        commit_state = DeltaStore._commit_state
        count = {"n": 0}

        def counted(self: DeltaStore, *args: Any, **kwargs: Any) -> Any:
            result = commit(self, *args, **kwargs)
            count["n"] += 1
            if count["n"] == int(kill_after):
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        def counted_state(self: DeltaStore, *args: Any, **kwargs: Any) -> Any:
            result = commit_state(self, *args, **kwargs)
            count["n"] += 1
            return result

        DeltaStore._commit = counted  # type: ignore[method-assign]
        DeltaStore._commit_state = counted_state  # type: ignore[method-assign]
    load(store, "crashed-run", mode=spec.get("mode", "append"), crash=crash)
    raise SystemExit("the child was meant to be killed before it finished")


if __name__ == "__main__":
    _child(*sys.argv[1:4])

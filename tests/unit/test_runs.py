"""Run records: ids, status, storage, lookup by prefix."""

from __future__ import annotations

import pytest

from headwater.core import NotFoundError
from headwater.monitor import run
from headwater.store import RunStore


def test_a_run_is_recorded_and_found_by_prefix(tmp_path) -> None:
    runs = RunStore.at(tmp_path)
    with run("ingest", "orders") as current:
        current.rows_read = 10
        current.report = {"quality": {"rows": 10}}
    runs.record(current)
    assert current.status == "succeeded"
    found = runs.get(current.id[:17])
    assert found["rows_read"] == 10 and found["report"] == {"quality": {"rows": 10}}
    assert runs.list(pipeline="orders")[0]["id"] == current.id


def test_a_failing_run_records_the_error(tmp_path) -> None:
    runs = RunStore.at(tmp_path)
    with pytest.raises(RuntimeError), run("ingest", "x") as current:
        raise RuntimeError("boom")
    runs.record(current)
    record = runs.get(current.id)
    assert record["status"] == "failed" and "boom" in record["error"]


def test_unknown_run_says_how_to_list(tmp_path) -> None:
    with pytest.raises(NotFoundError, match="headwater runs"):
        RunStore.at(tmp_path).get("nope")


def test_runs_in_postgres(postgres_url, unique_name) -> None:
    runs = RunStore(postgres_url)
    with run("ingest", unique_name) as current:
        current.rows_loaded = 3
    runs.record(current)
    assert runs.list(pipeline=unique_name)[0]["rows_loaded"] == 3


def test_list_since_and_with_reports(tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    from headwater.monitor import Run

    runs = RunStore.at(tmp_path)
    now = datetime.now(UTC)
    old = Run(kind="ingest", pipeline="a", status="succeeded", started_at=now - timedelta(days=9),
              report={"table": "a"})
    new = Run(kind="ingest", pipeline="b", status="succeeded", started_at=now,
              report={"table": "b"})
    runs.record(old)
    runs.record(new)
    recent = runs.list(since=now - timedelta(days=7), reports=True)
    assert [r["id"] for r in recent] == [new.id] and recent[0]["report"] == {"table": "b"}
    assert "report" not in runs.list()[0] and len(runs.list()) == 2

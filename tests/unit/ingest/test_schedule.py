"""The scheduler: schedules, the crash-proof lock, due runs, catch-up, backfill windows."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.config import parse_project
from headwater.core import ConfigError
from headwater.ingest._locks import PipelineBusy, file_lock, pipeline_lock
from headwater.ingest._schedule import (
    Schedule,
    Scheduler,
    backfill,
    parse_bound,
    parse_step,
    windows,
)
from headwater.monitor import Run

UTC = dt.UTC


def test_parse_intervals_and_cron():
    assert Schedule.parse("every 15m").interval == 900
    assert Schedule.parse("every 2h").interval == 7200
    assert Schedule.parse("EVERY 30 s").interval == 30
    cron = Schedule.parse("*/5 * * * *")
    assert cron.interval is None
    nxt = cron.next_after(dt.datetime(2026, 1, 1, 10, 7, 30, tzinfo=UTC))
    assert nxt == dt.datetime(2026, 1, 1, 10, 10, tzinfo=UTC)
    assert cron.previous_before(nxt + dt.timedelta(seconds=1)) == nxt


@pytest.mark.parametrize("bad", ["every", "every 0m", "every 5 parsecs", "61 * * * *", "daily"])
def test_bad_schedules_say_what_is_accepted(bad):
    with pytest.raises(ConfigError) as err:
        Schedule.parse(bad, where="pipelines.x.schedule")
    assert "pipelines.x.schedule" in err.value.message
    assert "every 15m" in (err.value.hint or "")


@given(st.integers(1, 86400), st.datetimes(min_value=dt.datetime(2000, 1, 1),
                                            max_value=dt.datetime(2100, 1, 1)))
def test_interval_next_is_after_and_within_one_interval(seconds, moment):
    moment = moment.replace(tzinfo=UTC)
    s = Schedule(f"every {seconds}s", seconds)
    nxt = s.next_after(moment)
    assert moment < nxt <= moment + dt.timedelta(seconds=seconds)
    assert int(nxt.timestamp()) % seconds == 0
    assert s.previous_before(moment) <= moment


@given(st.integers(-10_000, 10_000), st.integers(0, 5_000), st.integers(1, 700))
def test_windows_cover_the_range_without_overlap(start, length, step):
    parts = windows(start, start + length, step)
    assert (not parts) == (length == 0)
    if parts:
        assert parts[0][0] == start and parts[-1][1] == start + length
        assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
        assert all(0 < hi - lo <= step for lo, hi in parts)


def test_bounds_and_steps():
    assert parse_bound("42") == 42
    assert parse_bound("2026-01-02") == dt.datetime(2026, 1, 2, tzinfo=UTC)
    assert parse_step("6h") == dt.timedelta(hours=6)
    assert parse_step("500") == 500
    with pytest.raises(ConfigError):
        parse_step("soon")
    with pytest.raises(ConfigError):
        windows(0, 10, 0)


def test_lock_refuses_a_second_holder(tmp_path):
    path = tmp_path / "p.lock"
    with file_lock(path, "p"):
        with pytest.raises(PipelineBusy) as err, file_lock(path, "p"):
            pass
        assert f"pid {os.getpid()}" in err.value.message
    with file_lock(path, "p"):  # released after the block
        pass


def test_lock_of_a_killed_process_is_released(tmp_path):
    path = tmp_path / "p.lock"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from headwater.ingest._locks import file_lock
        with file_lock(Path({str(path)!r}), "p"):
            print("locked", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(PipelineBusy), file_lock(path, "p"):
            pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        with file_lock(path, "p"):  # the crash released it: no stale lock to clean up
            pass
    finally:
        if proc.poll() is None:
            proc.kill()


def _project(tmp_path: Path, pipelines: str):
    return parse_project(f"pipelines:\n{textwrap.indent(pipelines, '  ')}", root=tmp_path)


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_scheduler_runs_due_pipelines_and_skips_a_busy_one(tmp_path):
    project = _project(tmp_path, textwrap.dedent("""
        a: {table: a, schedule: every 10m, source: {kind: files, path: a.csv}}
        b: {table: b, schedule: '0 * * * *', source: {kind: files, path: b.csv}}
        c: {table: c, source: {kind: files, path: c.csv}}
    """))
    clock = FakeClock(dt.datetime(2026, 1, 1, 10, 5, tzinfo=UTC))
    calls: list[str] = []

    def run(proj, name):
        calls.append(name)
        return Run(kind="ingest", pipeline=name, status="succeeded")

    scheduler = Scheduler(project, run=run, clock=clock)
    assert [p.pipeline for p in scheduler.plan()] == ["a", "b"]
    assert scheduler.tick() == [("a", "succeeded"), ("b", "succeeded")]  # never run: now
    assert scheduler.tick() == []
    clock.now = dt.datetime(2026, 1, 1, 10, 10, tzinfo=UTC)
    with file_lock(project.state_dir / "locks" / "a.lock", "a"):  # another process runs a
        assert scheduler.tick() == [("a", "busy")]
    clock.now = dt.datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
    assert sorted(scheduler.tick()) == [("a", "succeeded"), ("b", "succeeded")]
    assert calls == ["a", "b", "a", "b"]
    assert scheduler.seconds_to_next() == 600


def test_a_failing_pipeline_does_not_stop_the_others(tmp_path):
    project = _project(tmp_path, textwrap.dedent("""
        a: {table: a, schedule: every 1m, source: {kind: files, path: a.csv}}
        b: {table: b, schedule: every 1m, source: {kind: files, path: b.csv}}
    """))

    def run(proj, name):
        if name == "a":
            raise RuntimeError("bug")
        return Run(kind="ingest", pipeline=name, status="succeeded")

    scheduler = Scheduler(project, run=run, clock=FakeClock(dt.datetime(2026, 1, 1, tzinfo=UTC)))
    assert scheduler.tick() == [("a", "failed"), ("b", "succeeded")]


def test_unknown_pipeline_in_only_is_an_error(tmp_path):
    project = _project(tmp_path, "a: {table: a, schedule: every 1m, source: "
                       "{kind: files, path: a.csv}}\n")
    with pytest.raises(ConfigError, match="nope"):
        Scheduler(project, only=["nope"]).plan()


def test_backfill_loads_windows_once(tmp_path):
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, v REAL)")
    con.executemany("INSERT INTO ev VALUES (?, ?, ?)",
                    [(i, f"2026-01-{1 + i // 10:02d} 00:00:00", i) for i in range(50)])
    con.commit()
    con.close()
    project = _project(tmp_path, textwrap.dedent("""
        ev:
          table: ev
          mode: merge
          primary_key: [id]
          source: {kind: sql, url: 'sqlite:///app.db', tables: [ev], cursor: {column: ts}}
    """))
    start = time.perf_counter()
    runs = backfill(project, "ev", start=parse_bound("2026-01-01"),
                    end=parse_bound("2026-01-04"), step=parse_step("1d"))
    assert [r.rows_loaded for r in runs] == [10, 10, 10]
    again = backfill(project, "ev", start=parse_bound("2026-01-01"),
                     end=parse_bound("2026-01-04"), step=parse_step("1d"))
    assert [r.rows_read for r in again] == [0, 0, 0]  # windows already loaded are skipped
    assert time.perf_counter() - start < 30


def test_the_pipeline_lock_is_reentrant_in_one_process(tmp_path):
    project = _project(tmp_path, "a: {table: a, source: {kind: files, path: a.csv}}\n")
    lock_file = project.state_dir / "locks" / "a.lock"
    with (pipeline_lock(project, "a"), pipeline_lock(project, "a"),
          pytest.raises(PipelineBusy), file_lock(lock_file, "a")):  # another open file: refused
        pass

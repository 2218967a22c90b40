"""The stream processor under kill -9, and split over two processes: the same tables as one
clean run, no window result lost or counted twice."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from headwater.brokers import EmbeddedBroker
from headwater.config._stream import ProcessorSpec
from headwater.store import DuckDBStore
from headwater.stream import Processor

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "stream"))
from cases import publish_readings, sim_readings

SPEC = {
    "input": {"topic": "readings"},
    "windows": [{"name": "w5s", "kind": "tumbling", "size": "5s"},
                {"name": "h10s", "kind": "hopping", "size": "10s", "hop": "5s"},
                {"name": "sessions", "kind": "session", "gap": "3s"}],
    "detectors": [{"kind": "jump", "delta": 5}, {"kind": "stuck", "window": 5},
                  {"kind": "ewma"}],
    "watermark_delay": "1s",
    "max_records": 300,
}
TABLES = ("iot_readings", "iot_windows_w5s", "iot_windows_h10s", "iot_windows_sessions",
          "iot_anomalies", "iot_alerts")

RUNNER = """
import json, sys
from headwater.brokers import EmbeddedBroker
from headwater.config._stream import ProcessorSpec
from headwater.store import DuckDBStore
from headwater.stream import Processor
log, wh, spec, parts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
broker, store = EmbeddedBroker(log), DuckDBStore(wh)
Processor("iot", ProcessorSpec.model_validate(spec), broker=broker, store=store,
          partitions=parts).run()
store.close()
"""

pytestmark = pytest.mark.integration


def _run(log: Path, wh: Path, partitions=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(log), str(wh), json.dumps(SPEC),
                             json.dumps(partitions)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _tables(path: Path) -> dict:
    store = DuckDBStore(path)
    try:
        return {t: store.query(f'SELECT * EXCLUDE (ingest_time) FROM "{t}" ORDER BY ALL')
                if t == "iot_readings" else
                store.query(f'SELECT * FROM "{t}" ORDER BY ALL') for t in TABLES}
    finally:
        store.close()


@pytest.fixture
def topic(tmp_path):
    broker = EmbeddedBroker(tmp_path / "log")
    readings, _ = sim_readings(devices=16, seconds=30, seed=7)
    publish_readings(broker, "readings", readings, partitions=2)
    broker.close()
    clean = tmp_path / "clean.duckdb"
    broker = EmbeddedBroker(tmp_path / "log")
    store = DuckDBStore(clean)
    Processor("iot", ProcessorSpec.model_validate(SPEC), broker=broker, store=store).run()
    store.close()
    broker.close()
    return tmp_path, _tables(clean)


def test_kill_9_at_random_moments_then_resume_equals_a_clean_run(topic):
    tmp_path, expected = topic
    wh = tmp_path / "crashed.duckdb"
    rng = random.Random(11)
    kills = 0
    for _ in range(6):
        proc = _run(tmp_path / "log", wh)
        time.sleep(rng.uniform(0.5, 2.5))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait()
    proc = _run(tmp_path / "log", wh)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    assert kills >= 1
    got = _tables(wh)
    for table in TABLES:
        assert got[table].equals(expected[table]), table


def test_two_processes_on_their_partitions_equal_one(topic):
    tmp_path, expected = topic
    first, second = tmp_path / "p0.duckdb", tmp_path / "p1.duckdb"
    one = _run(tmp_path / "log", first, [0])
    two = _run(tmp_path / "log", second, [1])
    time.sleep(1.0)
    two.kill()                      # one of them dies mid-run and is started again
    two.wait()
    two = _run(tmp_path / "log", second, [1])
    for proc in (one, two):
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    parts = [_tables(first), _tables(second)]
    import pyarrow as pa

    for table in TABLES:
        union = pa.concat_tables([p[table] for p in parts if p[table].num_rows],
                                 promote_options="default")
        order = [(c, "ascending") for c in union.column_names]
        assert union.sort_by(order).equals(expected[table].sort_by(order)), table

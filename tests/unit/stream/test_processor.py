"""The stream processor on the embedded log into DuckDB: outputs, quarantine, exactly once."""

from __future__ import annotations

import pyarrow as pa
import pytest

from headwater.brokers import EmbeddedBroker
from headwater.config._stream import ProcessorSpec
from headwater.store import DuckDBStore
from headwater.stream import Processor

from .cases import publish_readings, sim_readings

SPEC = {
    "input": {"topic": "readings"},
    "windows": [{"name": "w10s", "kind": "tumbling", "size": "10s"},
                {"name": "sessions", "kind": "session", "gap": "5s"}],
    "detectors": [{"kind": "jump", "delta": 5}, {"kind": "stuck", "window": 5},
                  {"kind": "zscore", "severity": "critical"}],
    "watermark_delay": "1s",
    "max_records": 2000,
}


@pytest.fixture
def setup(tmp_path):
    broker = EmbeddedBroker(tmp_path / "log")
    store = DuckDBStore(tmp_path / "wh.duckdb")
    yield broker, store, tmp_path
    store.close()
    broker.close()


def counts(store, table):
    return store.query(f'SELECT count(*) AS n FROM "{table}"').column("n")[0].as_py()


def test_a_run_writes_windows_anomalies_alerts_and_history(setup):
    broker, store, _ = setup
    readings, _truth = sim_readings()
    publish_readings(broker, "readings", readings)
    spec = ProcessorSpec.model_validate(SPEC)
    result = Processor("iot", spec, broker=broker, store=store).run()
    assert result.totals.records == readings.height
    assert result.totals.duplicates > 0
    assert result.totals.events + result.totals.duplicates == readings.height
    assert counts(store, "iot_readings") == result.totals.events
    assert counts(store, "iot_windows_w10s") > 0
    assert counts(store, "iot_anomalies") == result.totals.anomalies > 0
    assert counts(store, "iot_alerts") > 0
    # a second run finds nothing new
    again = Processor("iot", spec, broker=broker, store=store).run()
    assert again.totals.records == 0
    assert counts(store, "iot_readings") == result.totals.events


def test_bad_payloads_go_to_the_quarantine_with_their_position(setup):
    broker, store, _ = setup
    broker.create_topic("readings", partitions=1)
    good = b'{"device": "d", "metric": "t", "value": 1.5, "event_time": 1000, "message_id": "a"}'
    broker.produce("readings", pa.table({
        "key": [b"d"] * 4,
        "value": [good, b"not json", b'{"device": "d", "metric": "t", "value": "hot", '
                  b'"event_time": 2000}', b'{"device": "d", "value": 2}']}))
    spec = ProcessorSpec.model_validate({"input": {"topic": "readings"}})
    result = Processor("iot", spec, broker=broker, store=store).run()
    assert (result.totals.events, result.totals.quarantined) == (1, 3)
    rows = store.query('SELECT source, position, reasons FROM "_hw_quarantine" '
                       "ORDER BY position").to_pylist()
    assert [r["position"] for r in rows] == [1, 2, 3]
    assert rows[0]["source"] == "readings[0]"
    assert "not valid JSON" in rows[0]["reasons"][0]
    assert "not a number" in rows[1]["reasons"][0]
    assert "missing required field(s) metric, event_time" in rows[2]["reasons"][0]


def test_resume_after_a_stop_equals_one_run(setup, tmp_path):
    broker, store, _ = setup
    readings, _ = sim_readings(seed=2)
    publish_readings(broker, "readings", readings)
    spec = ProcessorSpec.model_validate(SPEC)
    whole_store = DuckDBStore(tmp_path / "whole.duckdb")
    Processor("iot", spec, broker=broker, store=whole_store).run(flush=True)
    # the same input in three runs, each stopping after a few batches
    for _ in range(3):
        stopper = _StopAfter(4)
        Processor("iot", spec, broker=broker, store=store).run(stop=stopper.event,
                                                               progress=stopper)
    Processor("iot", spec, broker=broker, store=store).run(flush=True)
    for table in ("iot_readings", "iot_windows_w10s", "iot_windows_sessions",
                  "iot_anomalies", "iot_alerts"):
        q = f'SELECT * FROM "{table}" ORDER BY ALL'
        assert store.query(q).equals(whole_store.query(q)), table
    whole_store.close()


class _StopAfter:
    def __init__(self, batches: int) -> None:
        import threading

        self.event = threading.Event()
        self.batches = batches

    def __call__(self, result) -> None:
        if result.batches >= self.batches:
            self.event.set()


def test_the_contract_quarantines_events_and_sinks_get_every_commit(setup):
    import polars as pl

    from headwater.contract import Contract

    broker, store, _ = setup
    readings, _truth = sim_readings(seed=3)
    bad = readings.head(3).with_columns(metric=pl.lit("humidity"), value=pl.lit(250.0),
                                        message_id=pl.format("bad-{}", pl.col("message_id")))
    publish_readings(broker, "readings", pl.concat([readings, bad]))
    contract = Contract.from_spec({"columns": {
        "device": {"nullable": False}, "metric": {}, "value": {"type": "float"},
        "event_time": {"type": "integer"}},
        "rules": {"humidity_is_a_share": "metric != 'humidity' or value <= 100"}})
    seen = []
    result = Processor("iot", ProcessorSpec.model_validate(SPEC), broker=broker, store=store,
                       contract=contract, sinks=[seen.append]).run(flush=True)
    assert result.totals.quarantined == 3
    assert result.totals.events + result.totals.duplicates + 3 == readings.height + 3
    rows = store.query("SELECT source, position, rules FROM _hw_quarantine").to_pylist()
    assert [r["rules"] for r in rows] == [["rule(humidity_is_a_share)"]] * 3
    assert all(r["source"].startswith("readings[") for r in rows)
    assert store.query("SELECT count(*) AS n FROM iot_readings WHERE value > 100 "
                       "AND metric = 'humidity'"
                       ).column("n")[0].as_py() == 0
    # every commit was handed on: the alerts opened and the tables written
    assert sum(c.opened.height for c in seen) == counts(store, "iot_alerts") > 0
    written = sum(c.tables["iot_windows_w10s"].height for c in seen
                  if "iot_windows_w10s" in c.tables)
    assert written == counts(store, "iot_windows_w10s")
    assert all(c.committed_ms > 0 for c in seen)

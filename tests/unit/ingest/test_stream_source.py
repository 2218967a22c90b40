"""A broker topic as an ingestion source: payloads decoded per fetch, malformed ones quarantined
with partition and offset, positions committed with the rows, the group acknowledged after."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.brokers import EmbeddedBroker
from headwater.config import Project, load_project
from headwater.core import (
    POSITION,
    Batch,
    ConfigError,
    Extract,
    SinkError,
    Source,
    SourceError,
    State,
)
from headwater.ingest import ingest, run_pipeline
from headwater.ingest.sources._payloads import PayloadDecoder
from headwater.store import DuckDBStore, open_store

PROJECT = """\
project: s
pipelines:
  events:
    source: {{kind: stream, topic: {topic}, format: {format}, max_rows: {max_rows}{extra}}}
    table: events
    mode: {mode}
    {key}
    contract:
      columns:
        id: {{type: integer, nullable: false}}
        kind: {{type: string, allowed: [view, buy]}}
        amount: {{type: float, min: 0}}
      {contract_extra}
"""


def project(tmp_path: Path, *, topic: str = "events", format: str = "json", max_rows: int = 3,
            mode: str = "append", extra: str = "", key: str = "",
            contract_extra: str = "") -> Project:
    (tmp_path / "headwater.yaml").write_text(PROJECT.format(
        topic=topic, format=format, max_rows=max_rows, mode=mode, extra=extra, key=key,
        contract_extra=contract_extra))
    return load_project(tmp_path)


def publish(tmp_path: Path, values: list[bytes], *, topic: str = "events",
            partitions: int = 2) -> None:
    broker = EmbeddedBroker(tmp_path / ".headwater" / "streams")
    broker.create_topic(topic, partitions=partitions)
    broker.produce(topic, pa.table({"key": [str(i).encode() for i in range(len(values))],
                                    "value": pa.array(values, pa.binary())}))
    broker.close()


MESSY = [b'{"id": 1, "kind": "view", "amount": 3}', b"oops", b'{"id": 2, "kind": "bad", '
         b'"amount": -1}', b'{"kind": "view"}', b"\xff\xfe", b'{"id": 5, "kind": "buy", '
         b'"amount": 1.5}', b"", b'{"id": 6, "kind": "buy", "amount": 2}',
         b'{"id": 7, "kind": "view", "note": "' + b"x" * 300 + b'"}']


def test_messy_events_load_once_and_the_bad_ones_are_quarantined_with_their_offsets(
        tmp_path: Path) -> None:
    proj = project(tmp_path, extra=", max_payload_bytes: 200")
    publish(tmp_path, MESSY)
    first = run_pipeline(proj, "events")
    assert first.status == "succeeded", first.error
    assert (first.rows_read, first.rows_loaded, first.rows_quarantined) == (9, 3, 6)
    assert len(first.report["extracts"]) == 3  # micro-batches of 3 records
    assert first.report["conservation"]["holds"]
    assert first.report["quality"]["rows"] > 0
    again = run_pipeline(proj, "events")
    assert (again.rows_read, again.rows_loaded) == (0, 0)
    store = open_store(proj, read_only=True)
    try:
        assert sorted(store.query("SELECT id FROM events")["id"].to_pylist()) == [1, 5, 6]
        rows = store.query("SELECT source, position, unit, raw, rules, reasons "
                           "FROM _hw_quarantine").to_pylist()
        state = dict(store.state("events"))
    finally:
        store.close()
    broker = EmbeddedBroker(tmp_path / ".headwater" / "streams")
    ends = broker.end_positions("events")
    assert state == {f"events/{p}": {"offset": o} for p, o in ends.items()}
    assert broker.consumer("events", group="headwater-events").committed() == ends
    reasons = {r["raw"][:12]: (r["source"], r["position"], r["unit"], r["reasons"]) for r in rows}
    where = {v: None for v in MESSY}
    # every quarantined record names its partition and offset
    partitions = {0: [], 1: []}
    with broker.consumer("events", group="look") as consumer:
        records = consumer.poll(max_records=100, timeout=0)
    for p, o, v in zip(records["partition"].to_pylist(), records["offset"].to_pylist(),
                       records["value"].to_pylist(), strict=True):
        where[v] = (f"events[{p}]", o)
        partitions[p].append(o)
    assert reasons["oops"][:2] == where[b"oops"] and "invalid JSON" in reasons["oops"][3][0]
    assert reasons[""][:2] in (where[b""], where[b"\xff\xfe"])
    assert any("not valid UTF-8" in r["reasons"][0] for r in rows)
    assert any("larger than max_payload_bytes" in r["reasons"][0] for r in rows)
    bad = reasons['{"kind":"bad']
    assert bad[:3] == (*where[MESSY[2]], "offset") and len(bad[3]) == 2  # every reason
    assert reasons['{"kind":"vie'][3] == ["id: missing (null or blank), but the column may "
                                          "not be null"]
    broker.close()


def test_new_records_after_a_run_are_read_from_where_it_stopped(tmp_path: Path) -> None:
    proj = project(tmp_path, max_rows=1000)
    publish(tmp_path, MESSY[:2])
    assert run_pipeline(proj, "events").rows_read == 2
    publish(tmp_path, [MESSY[5], MESSY[7]])
    second = run_pipeline(proj, "events")
    assert (second.rows_read, second.rows_loaded) == (2, 2)


def test_a_failed_micro_batch_stops_the_run_unacknowledged(tmp_path: Path) -> None:
    acked: list[int] = []

    class Ordered(Source):
        def extracts(self, state: State) -> Iterator[Extract]:
            for n in range(3):
                def batches(n: int = n) -> Iterator[Batch]:
                    if n == 1:
                        raise SourceError("broken micro-batch")
                    yield Batch(pa.table({"id": [n], POSITION: [0]}))
                yield Extract(source="t", key="", position={}, batches=batches(),
                              meta={"states": {"t/0": {"offset": n}}},
                              acknowledge=lambda n=n: acked.append(n), ordered=True)

    store = DuckDBStore(tmp_path / "w.duckdb")
    run = ingest(Ordered(), store, table="t")
    assert run.status == "failed" and "broken micro-batch" in run.error
    assert [r["status"] for r in run.report["extracts"]] == ["loaded", "failed"]
    assert acked == [0]
    assert dict(store.state("t")) == {"t/0": {"offset": 0}}
    assert store.query("SELECT id FROM t")["id"].to_pylist() == [0]


def test_a_store_that_refuses_a_micro_batch_moves_no_position(tmp_path: Path) -> None:
    proj = project(tmp_path, max_rows=1, extra="", contract_extra="unknown_columns: keep")
    publish(tmp_path, [b'{"id": 1, "kind": "buy", "amount": 1}',
                       b'{"id": 2, "kind": "buy", "amount": 1, "extra": "x"}'], partitions=1)
    store = open_store(proj)
    with store.transaction("setup", "r0") as tx:  # a column that text cannot go into
        tx.write("events", pa.table({"id": [0], "kind": ["buy"], "amount": [0.0],
                                     "extra": [True]}))
    store.close()
    with pytest.raises(SinkError):
        run_pipeline(proj, "events")
    broker = EmbeddedBroker(tmp_path / ".headwater" / "streams")
    assert broker.consumer("events", group="headwater-events").committed() == {0: 0}
    store = open_store(proj, read_only=True)
    try:
        assert dict(store.state("events")) == {"events/0": {"offset": 0}}
        assert store.query("SELECT id FROM events ORDER BY id")["id"].to_pylist() == [0, 1]
    finally:
        store.close()


def test_follow_loads_what_arrives_in_micro_batches_until_stopped(tmp_path: Path) -> None:
    proj = project(tmp_path, max_rows=1000, extra=", max_latency: 50ms, window: 300ms")
    publish(tmp_path, MESSY[:1])
    stop = threading.Event()
    runs = []

    def later() -> None:
        time.sleep(0.5)
        publish(tmp_path, [MESSY[5], MESSY[7]])
        time.sleep(0.8)
        stop.set()

    helper = threading.Thread(target=later)
    helper.start()
    last = run_pipeline(proj, "events", follow=True, stop=stop, on_run=runs.append)
    helper.join()
    assert last is runs[-1] and len(runs) >= 3  # one run per 300 ms window
    assert sum(r.rows_loaded for r in runs) == 3
    assert all(r.status == "succeeded" for r in runs)


def test_jsonl_and_csv_payloads(tmp_path: Path) -> None:
    proj = project(tmp_path, topic="lines", format="jsonl", max_rows=100)
    publish(tmp_path, [b'{"id": 1, "kind": "view", "amount": 1}\n{"id": 2, "kind": "buy", '
                       b'"amount": 2}', b'{"id": 3, "kind": "buy", "amount": 3}\nnope'],
            topic="lines")
    run = run_pipeline(proj, "events")
    assert (run.rows_read, run.rows_loaded, run.rows_quarantined) == (4, 3, 1), run.error
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    proj = project(csv_dir, topic="rows", format="csv", max_rows=100)
    publish(csv_dir, [b"1,view,1.5\r\n", b"2,buy", b"3,buy,2\n4,buy,1", b"5,buy,-1"],
            topic="rows")
    run = run_pipeline(proj, "events")
    assert (run.rows_read, run.rows_loaded, run.rows_quarantined) == (4, 1, 3), run.error
    store = open_store(proj, read_only=True)
    try:
        reasons = sorted(r[0] for r in store.query(
            "SELECT reasons FROM _hw_quarantine")["reasons"].to_pylist())
    finally:
        store.close()
    assert reasons == ["a csv payload must hold one row; this one has a line break",
                       "amount: -1.0 is below the minimum 0", "expected 3 fields, found 2"]


def test_settings_that_would_load_twice_or_cannot_work_are_refused(tmp_path: Path) -> None:
    proj = project(tmp_path, mode="replace")
    with pytest.raises(ConfigError, match="replace"):
        run_pipeline(proj, "events")
    (tmp_path / "headwater.yaml").write_text(
        "pipelines:\n  a: {table: a, source: {kind: files, path: x.csv}}\n")
    with pytest.raises(ConfigError, match="no end to follow"):
        run_pipeline(load_project(tmp_path), "a", follow=True)


PAYLOADS = st.one_of(
    st.builds(lambda i, k: f'{{"id": {i}, "kind": "{k}"}}'.encode(), st.integers(0, 10**6),
              st.sampled_from(["a", "b\\n", "é"])),
    st.binary(max_size=12),
    st.just(b""), st.just(b"   "), st.just(b"[1, 2]"), st.just(b'{"id": "text"}'))


@settings(max_examples=60, deadline=None)
@given(st.lists(PAYLOADS, max_size=40), st.sampled_from(["json", "jsonl"]))
def test_every_payload_is_a_row_or_a_reject_never_lost(values: list[bytes], fmt: str) -> None:
    decoded = PayloadDecoder(fmt, label="t", max_payload_bytes=30).decode(
        pa.array(values, pa.binary()))
    batch = decoded.batch
    rows = batch.data[POSITION].to_pylist()
    rejects = batch.rejects[POSITION].to_pylist() if batch.rejects is not None else []
    assert not set(rows) & set(rejects)
    records = {int(decoded.rows_of[p]) for p in rows + rejects}
    # a record is lost only when it is all blank lines of JSON Lines (as in a file)
    lost = set(range(len(values))) - records
    assert all(fmt == "jsonl" and not values[i].strip() and values[i] for i in lost)
    if fmt == "json":
        assert len(rows) + len(rejects) == len(values)

"""Avro payloads of a stream: Confluent-framed or plain datums decoded per fetch into columns,
malformed ones quarantined with their offset and reason; round trips with Hypothesis."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.brokers import EmbeddedBroker
from headwater.config import load_project
from headwater.core import POSITION, ConfigError
from headwater.ingest import run_pipeline
from headwater.ingest.sources._avro import AvroDecoder, load_schema
from headwater.ingest.sources._payloads import PayloadDecoder
from headwater.store import open_store

SCHEMA = {"type": "record", "name": "Reading", "fields": [
    {"name": "device", "type": "string"},
    {"name": "value", "type": ["null", "double"]},
    {"name": "seq", "type": "long"},
    {"name": "ok", "type": "boolean"},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "site", "type": {"type": "record", "name": "Site", "fields": [
        {"name": "room", "type": "string"}, {"name": "floor", "type": "int"}]}},
]}


def datum(record: dict, *, schema_id: int | None = None) -> bytes:
    out = io.BytesIO()
    if schema_id is not None:
        out.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(out, fastavro.parse_schema(SCHEMA), record)
    return out.getvalue()


RECORDS = st.fixed_dictionaries({
    "device": st.text(max_size=12),
    "value": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    "seq": st.integers(-(1 << 63), (1 << 63) - 1),
    "ok": st.booleans(),
    "at": st.integers(0, 4_000_000_000_000),
    "site": st.fixed_dictionaries({"room": st.text(max_size=5),
                                   "floor": st.integers(-(1 << 31), (1 << 31) - 1)}),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(RECORDS, max_size=30), st.sampled_from(["confluent", "plain"]))
def test_round_trip(records: list[dict], framing: str) -> None:
    schema_id = 7 if framing == "confluent" else None
    payloads = pa.array([datum(r, schema_id=schema_id) for r in records], pa.binary())
    decoder = PayloadDecoder("avro", label="t", avro=AvroDecoder(
        SCHEMA, framing=framing, schema_id=schema_id))  # type: ignore[arg-type]
    batch = decoder.decode(payloads).batch
    assert batch.rejects is None
    rows = batch.data
    assert rows[POSITION].to_pylist() == list(range(len(records)))
    if not records:
        return
    assert rows["device"].to_pylist() == [r["device"] for r in records]
    assert rows["value"].to_pylist() == [r["value"] for r in records]
    assert rows["seq"].to_pylist() == [r["seq"] for r in records]
    assert rows["ok"].to_pylist() == [r["ok"] for r in records]
    assert rows["at"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist() == \
        [r["at"] for r in records]
    assert rows["site_room"].to_pylist() == [r["site"]["room"] for r in records]
    assert rows["site_floor"].to_pylist() == [r["site"]["floor"] for r in records]


GOOD = {"device": "d1", "value": 20.5, "seq": 1, "ok": True, "at": 1_700_000_000_000,
        "site": {"room": "a", "floor": 1}}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.builds(lambda s: datum({**GOOD, "seq": s}), st.integers(0, 10**9)),
                          st.binary(max_size=20),
                          st.builds(lambda s, cut: datum({**GOOD, "seq": s})[:cut],
                                    st.integers(0, 10**9), st.integers(1, 10)),
                          st.builds(lambda s, extra: datum({**GOOD, "seq": s}) + extra,
                                    st.integers(0, 10**9), st.binary(min_size=1, max_size=3))),
                max_size=30))
def test_every_payload_is_a_row_or_a_reject_and_good_ones_decode(values: list[bytes]) -> None:
    decoder = PayloadDecoder("avro", label="t", avro=AvroDecoder(SCHEMA, framing="plain"))
    batch = decoder.decode(pa.array(values, pa.binary())).batch
    rows = batch.data[POSITION].to_pylist() if batch.data.num_rows else []
    rejects = batch.rejects[POSITION].to_pylist() if batch.rejects is not None else []
    assert sorted(rows + rejects) == list(range(len(values))), "nothing lost, nothing twice"
    parsed = fastavro.parse_schema(SCHEMA)
    for row, position in zip(batch.data.to_pylist(), rows, strict=True):
        stream = io.BytesIO(values[position])
        expected = fastavro.schemaless_reader(stream, parsed, None)
        assert stream.tell() == len(values[position]), "a row fills its payload exactly"
        assert row["seq"] == expected["seq"] and row["device"] == expected["device"]


def test_malformed_payloads_say_why() -> None:
    good = datum(GOOD, schema_id=3)
    values = pa.array([good, b"\x01abcdef", b"\x00\x00", datum(GOOD, schema_id=4),
                       good[:-2], good + b"!", b""], pa.binary())
    decoder = PayloadDecoder("avro", label="t", avro=AvroDecoder(SCHEMA, schema_id=3))
    batch = decoder.decode(values).batch
    assert batch.data[POSITION].to_pylist() == [0]
    reasons = dict(zip(batch.rejects[POSITION].to_pylist(), batch.rejects["reason"].to_pylist(),
                       strict=True))
    assert "not in the Confluent wire format" in reasons[1]
    assert "not in the Confluent wire format" in reasons[2]
    assert reasons[3] == "schema id 4, but this source reads schema id 3 (avro.schema_id)"
    assert reasons[4].startswith("not an Avro datum of schema Reading")
    assert reasons[5].endswith("1 byte(s) left over")
    assert reasons[6] == "empty payload"


def test_schema_files_and_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no Avro schema file"):
        load_schema(tmp_path / "nope.avsc")
    (tmp_path / "bad.avsc").write_text('{"type": "record", "name": "X", "fields": [{"name": '
                                       '"a", "type": "nope"}]}')
    with pytest.raises(ConfigError, match="is not an Avro schema"):
        load_schema(tmp_path / "bad.avsc")
    with pytest.raises(ConfigError, match="needs the writer schema"):
        PayloadDecoder("avro", label="t")
    (tmp_path / "headwater.yaml").write_text(
        "pipelines:\n  r:\n    source: {kind: stream, topic: r, format: avro}\n    table: r\n")
    with pytest.raises(ConfigError, match="format avro needs"):
        load_project(tmp_path)


def test_an_avro_stream_loads_once_and_quarantines_with_offsets(tmp_path: Path) -> None:
    (tmp_path / "reading.avsc").write_text(json.dumps(SCHEMA))
    (tmp_path / "headwater.yaml").write_text(
        "pipelines:\n  readings:\n"
        "    source: {kind: stream, topic: readings, format: avro,\n"
        "             avro: {schema: reading.avsc, schema_id: 1}}\n"
        "    table: readings\n"
        "    contract:\n      columns:\n        device: {type: string, nullable: false}\n"
        "        value: {type: float, min: 0}\n        seq: {type: integer}\n")
    broker = EmbeddedBroker(tmp_path / ".headwater" / "streams")
    broker.create_topic("readings", partitions=2)
    values = [datum({**GOOD, "seq": i, "value": -1.0 if i == 3 else 1.0 * i}, schema_id=1)
              for i in range(6)] + [b"\x00\x00\x00\x00\x01\xff", b"plain text"]
    broker.produce("readings", pa.table({"key": [f"k{i}".encode() for i in range(8)],
                                         "value": pa.array(values, pa.binary())}))
    broker.close()
    proj = load_project(tmp_path)
    first = run_pipeline(proj, "readings")
    assert first.status == "succeeded", first.error
    assert (first.rows_read, first.rows_loaded, first.rows_quarantined) == (8, 5, 3)
    assert (run_pipeline(proj, "readings").rows_read) == 0, "nothing loads twice"
    store = open_store(proj, read_only=True)
    try:
        assert sorted(store.query("SELECT seq FROM readings")["seq"].to_pylist()) == \
            [0, 1, 2, 4, 5]
        quarantined = store.query("SELECT source, position, reasons FROM _hw_quarantine "
                                  "ORDER BY source, position").to_pylist()
    finally:
        store.close()
    assert all(q["source"].startswith("readings[") and q["position"] is not None
               for q in quarantined)
    reasons = [r for q in quarantined for r in q["reasons"]]
    assert any("not in the Confluent wire format" in r for r in reasons)
    assert any("not an Avro datum of schema Reading" in r for r in reasons)
    assert any(r.startswith("value:") for r in reasons)

"""The gateway: every payload becomes one reading in canonical units or one rejection."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.stream.iot import normalise, simulate


def test_simulated_payloads_come_back_in_canonical_units():
    sim = simulate(devices=10, seconds=5, faults=["malformed"], fault_share=0.3, seed=3)
    m = sim.messages
    out = normalise(m["payload"].to_arrow(), received_ms=m["send_time"].to_arrow(),
                    gateway=m["gateway"].to_arrow())
    assert len(out.bad) == m["malformed"].sum() > 0
    assert out.readings.height + len(out.bad) == m.height
    assert set(out.readings["unit"]) <= {"C", "%", "hPa"}
    temps = out.readings.filter(pl.col("metric") == "temperature")["value"]
    assert temps.min() > 5 and temps.max() < 40            # °F converted, not left as 70
    good = m.filter(~pl.col("malformed"))
    assert out.readings["message_id"].to_list() == good["message_id"].to_list()
    assert out.readings["ingest_time"].to_list() == good["send_time"].to_list()
    assert out.readings["gateway"].to_list() == good["gateway"].to_list()


def test_reasons_name_what_is_wrong():
    out = normalise(pa.array([
        b'{"device": "d", "metric": "temperature", "value": 1, "unit": "R", "ts": 1}',
        b'{"device": "d", "metric": "humidity", "value": 1, "unit": "hPa", "ts": 1}',
        b'{"device": "d", "metric": "humidity", "value": "wet", "unit": "%", "ts": 1}',
        b'{"device": "d", "value": 1, "unit": "%", "ts": 1}',
        b"d,humidity,abc,%,5",
        b"just words",
        b"d,humidity,40.5,%,5,m-1",
    ]), received_ms=10)
    assert out.bad == [0, 1, 2, 3, 4, 5]
    assert out.reasons[0] == "unknown unit 'R' for temperature"
    assert out.reasons[1] == "unit 'hPa' is not a unit of humidity"
    assert "not a number" in out.reasons[2]
    assert "missing required field(s) metric" in out.reasons[3]
    assert "not a number" in out.reasons[4]
    assert "neither a JSON object" in out.reasons[5]
    assert out.readings.rows() == [("d", "gateway", "humidity", 40.5, "%", 5, 10, "m-1")]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(
    st.binary(max_size=40),
    st.builds(lambda v, u: f'{{"device": "d", "metric": "temperature", "value": {v}, '
                           f'"unit": "{u}", "ts": 1}}'.encode(),
              st.floats(allow_nan=False, allow_infinity=False, width=32),
              st.sampled_from(["C", "F", "K", "X"]))), max_size=20))
def test_every_payload_is_a_reading_or_a_rejection(payloads):
    out = normalise(pa.array(payloads, pa.binary()), received_ms=0)
    assert out.readings.height + len(out.bad) == len(payloads)
    assert len(out.bad) == len(out.reasons) == len(set(out.bad))

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


def test_the_gateway_validates_with_a_contract_and_quarantines_every_reason(tmp_path):
    from pathlib import Path

    from headwater.brokers import EmbeddedBroker
    from headwater.contract import Contract
    from headwater.store import DuckDBStore
    from headwater.stream.iot import publish_simulation, run_gateway

    contract = Contract.load(Path(__file__).parents[3] / "examples" / "iot" / "contracts"
                             / "readings.yaml")
    sim = simulate(devices=8, seconds=5, faults=["malformed"], fault_share=0.3, seed=4)
    extra = [b'{"id": "h1", "device": "d", "metric": "humidity", "value": 130, "unit": "%", '
             b'"ts": 1}', b"d,temperature,-500,C,2,t1", b"bad device!,humidity,5,%,3,x1"]
    broker, store = EmbeddedBroker(tmp_path / "log"), DuckDBStore(tmp_path / "wh.duckdb")
    publish_simulation(sim, broker, "raw", partitions=2)
    broker.produce("raw", pa.table({"key": pa.array([b"d"] * 3),
                                    "value": pa.array(extra, pa.binary())}))
    result = run_gateway(broker, "raw", "readings", store=store, contract=contract)
    malformed = int(sim.messages["malformed"].sum())
    assert result.payloads == sim.messages.height + 3
    assert result.rejected == malformed + 3
    assert result.readings == sim.messages.height - malformed
    rows = store.query("SELECT source, position, rules, reasons, raw FROM _hw_quarantine "
                       "WHERE NOT list_contains(rules, 'payload')").to_pylist()
    assert sorted(r["rules"][0] for r in rows) == [
        "pattern(device)", "rule(humidity_is_a_share)", "rule(temperature_is_physical)"]
    assert all(r["source"].startswith("raw[") and r["position"] >= 0 for r in rows)
    assert any("humidity must be between 0 and 100" in r["reasons"][0] for r in rows)
    store.close()
    broker.close()


def test_mqtt_urls():
    import pytest

    from headwater.core import ConfigError
    from headwater.stream.iot import is_mqtt_url, parse_mqtt_url

    endpoint = parse_mqtt_url("mqtt://gw:s%40cret@broker.local")
    assert (endpoint.host, endpoint.port, endpoint.username, endpoint.password) == (
        "broker.local", 1883, "gw", "s@cret")
    assert "cret" not in str(endpoint)
    assert is_mqtt_url("mqtt://127.0.0.1:1883") and not is_mqtt_url("embedded")
    with pytest.raises(ConfigError, match="not an MQTT broker URL"):
        parse_mqtt_url("http://x")

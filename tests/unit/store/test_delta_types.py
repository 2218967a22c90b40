"""Delta type mapping, schema unification, idempotency tokens."""

from __future__ import annotations

import pyarrow as pa
import pytest

from headwater.core import ConfigError, SchemaChangeError, SinkError
from headwater.store._delta import (
    DeltaStore,
    _check_name,
    _conform,
    _DeltaTransaction,
    _Ledger,
    _unify,
    delta_type,
    normalise,
)
from headwater.store._spill import SpillPool


@pytest.mark.parametrize(("arrow", "delta"), [
    (pa.uint8(), pa.int16()),
    (pa.uint64(), pa.decimal128(20, 0)),
    (pa.large_string(), pa.string()),
    (pa.null(), pa.string()),
    (pa.json_(), pa.string()),
    (pa.date64(), pa.date32()),
    (pa.timestamp("ns", tz="America/New_York"), pa.timestamp("us", tz="UTC")),
    (pa.timestamp("s"), pa.timestamp("us")),
    (pa.large_list(pa.uint8()), pa.list_(pa.field("element", pa.int16()))),
    (pa.decimal256(20, 2), pa.decimal128(20, 2)),
])
def test_delta_type(arrow: pa.DataType, delta: pa.DataType) -> None:
    assert delta_type(arrow) == delta


def test_types_delta_cannot_hold_are_refused() -> None:
    with pytest.raises(SinkError, match="column 'at'"):
        delta_type(pa.time64("us"), "at")
    with pytest.raises(SinkError, match="38 digits"):
        delta_type(pa.decimal256(50, 2), "big")
    with pytest.raises(SinkError, match="without loss"):
        normalise(pa.table({"t": pa.array([1], pa.timestamp("ns"))}))


def test_unify_adds_widens_and_refuses() -> None:
    existing = pa.schema([("id", pa.int32()), ("v", pa.string())])
    got = _unify("t", existing, [pa.schema([("id", pa.int64())]),
                                 pa.schema([("new", pa.float64()), ("id", pa.int16())])])
    assert got == pa.schema([("id", pa.int64()), ("v", pa.string()), ("new", pa.float64())])
    with pytest.raises(SchemaChangeError, match="'v'"):
        _unify("t", existing, [pa.schema([("v", pa.int64())])])


def test_conform_fills_missing_columns_with_nulls() -> None:
    target = pa.schema([("a", pa.int64()), ("b", pa.string())])
    batch = pa.record_batch({"a": pa.array([1], pa.int32())})
    (out,) = _conform(target, [batch])
    assert out.schema == target and out.to_pylist() == [{"a": 1, "b": None}]


@pytest.mark.parametrize("name", ["", "..", "a/b", "a\\b"])
def test_table_names_that_are_paths_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="Delta table name"):
        _check_name(name)


def _tx(ledger: _Ledger, tmp: str) -> _DeltaTransaction:
    return _DeltaTransaction(DeltaStore(tmp), "p", "run", ledger, SpillPool())


def test_token_is_the_same_for_a_rerun_and_differs_otherwise(tmp_path) -> None:
    def token(ledger: _Ledger, **positions: dict) -> str:
        tx = _tx(ledger, str(tmp_path))
        for key, position in positions.items():
            tx.set_state(key, position)
        return tx._token()

    fresh = _Ledger()
    assert token(fresh, a={"h": 1}) == token(_Ledger(), a={"h": 1})           # crash, re-run
    assert token(fresh, a={"h": 1}) != token(fresh, a={"h": 2})               # changed file
    loaded_before = _Ledger({"a": {"h": 2}}, seq=4)
    assert token(fresh, a={"h": 1}) != token(loaded_before, a={"h": 1})       # changed back
    assert token(fresh, a={"h": 1}) != token(_Ledger(seq=9, epoch=9), a={"h": 1})  # after clear
    assert token(fresh) != token(fresh)                                        # no state: unique


def test_credentials_in_storage_options_are_redacted(tmp_path) -> None:
    from headwater.core import redact

    DeltaStore("s3://bucket/lake", storage_options={"AWS_SECRET_ACCESS_KEY": "sup3rs3cret"})
    assert "sup3rs3cret" not in redact("failed with key sup3rs3cret")

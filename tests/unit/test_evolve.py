"""Schema evolution decisions on Arrow schemas."""

from __future__ import annotations

import pyarrow as pa
import pytest

from headwater.core import SchemaChangeError
from headwater.store import plan_evolution


def schema(**types: pa.DataType) -> pa.Schema:
    return pa.schema(list(types.items()))


def test_same_schema_needs_nothing() -> None:
    assert plan_evolution("t", schema(a=pa.int64()), schema(a=pa.int64())).empty


def test_new_column_is_added() -> None:
    plan = plan_evolution("t", schema(a=pa.int64()), schema(a=pa.int64(), b=pa.string()))
    assert [f.name for f in plan.add] == ["b"]


def test_narrower_incoming_is_cast_up() -> None:
    plan = plan_evolution("t", schema(a=pa.int64()), schema(a=pa.int32()))
    assert plan.cast == {"a": pa.int64()}


def test_wider_incoming_widens_the_table() -> None:
    plan = plan_evolution("t", schema(a=pa.int32()), schema(a=pa.float64()))
    assert plan.widen[0].type == pa.float64()


def test_all_null_incoming_takes_the_table_type() -> None:
    plan = plan_evolution("t", schema(a=pa.timestamp("us")), schema(a=pa.null()))
    assert plan.cast == {"a": pa.timestamp("us")}


@pytest.mark.parametrize(("old", "new"), [
    (pa.int64(), pa.string()),
    (pa.float64(), pa.int64()) if False else (pa.string(), pa.bool_()),
    (pa.timestamp("us", tz="UTC"), pa.timestamp("us")),
    (pa.int64(), pa.bool_()),
])
def test_lossy_change_is_refused_with_a_fix(old: pa.DataType, new: pa.DataType) -> None:
    with pytest.raises(SchemaChangeError) as err:
        plan_evolution("orders", schema(x=old), schema(x=new))
    assert "orders" in str(err.value) and "'x'" in str(err.value)
    assert err.value.hint and "contract" in err.value.hint

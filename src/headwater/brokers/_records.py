"""What every broker does with a batch before it sends it: one schema, sizes checked, per batch."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.brokers._base import PRODUCE_SCHEMA, RECORD_SCHEMA, BrokerError

_TS = PRODUCE_SCHEMA.field("timestamp").type


def normalise(records: pa.Table | pa.RecordBatch, topic: str) -> pa.Table:
    """``records`` as :data:`PRODUCE_SCHEMA`: binary key and value, a UTC ms timestamp each.

    >>> import pyarrow as pa
    >>> normalise(pa.table({"value": ["x"]}), "t").schema.names
    ['key', 'value', 'timestamp']
    """
    if isinstance(records, pa.RecordBatch):
        records = pa.Table.from_batches([records])
    names = records.column_names
    if set(names) - set(PRODUCE_SCHEMA.names) or "value" not in names:
        raise BrokerError(
            f"produce to '{topic}' takes the columns key, value and timestamp; got {names}",
            hint="encode each row as the value (e.g. JSON text) and pass the key as 'key'")
    n = records.num_rows
    try:
        key = records["key"].cast(pa.binary()) if "key" in names else pa.nulls(n, pa.binary())
        value = records["value"].cast(pa.binary())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise BrokerError(f"produce to '{topic}': key and value must be bytes or text ({exc})",
                          hint="encode them first, e.g. as JSON text") from None
    now = pa.scalar(int(time.time() * 1000), pa.int64()).cast(_TS)
    if "timestamp" in names:
        ts = records["timestamp"]
        if pa.types.is_timestamp(ts.type) and ts.type.tz is None:  # naive: taken as UTC
            ts = ts.cast(pa.timestamp("ms"), safe=False).cast(pa.int64())
        ts = pc.fill_null(ts.cast(_TS, safe=False), now)
    else:
        ts = pa.repeat(now, n)
    return pa.table([key, value, ts], schema=PRODUCE_SCHEMA)


def check_sizes(table: pa.Table, limit: int | None, *, topic: str, where: str,
                setting: str | None) -> None:
    """A :class:`BrokerError` if a record's key and value together exceed ``limit`` bytes
    (``where``: which broker; ``setting``: what raises the limit, ``None`` if nothing can)."""
    if limit is None or not table.num_rows:
        return
    sizes = pc.add(pc.fill_null(pc.binary_length(table["key"]), 0),
                   pc.binary_length(table["value"])).to_numpy(zero_copy_only=False)
    over = np.flatnonzero(sizes > limit)
    if len(over):
        raise BrokerError(
            f"produce to '{topic}': record {int(over[0])} of the batch is {int(sizes[over[0]]):,} "
            f"bytes, over the {limit:,}-byte limit of {where} ({len(over)} such record(s))",
            hint="split or compress the values" + (f", or raise {setting}" if setting else
                                                   "; the limit is the broker's own"))


def records_table(partition: np.ndarray | int, offsets: pa.Array, keys: pa.Array,
                  values: pa.Array, timestamps: pa.Array,
                  offset_type: pa.DataType = pa.int64()) -> pa.Table:
    """A :data:`RECORD_SCHEMA` table from columns (``partition``: one number or one per row)."""
    n = len(values)
    if isinstance(partition, int | np.integer):
        parts = pa.repeat(pa.scalar(int(partition), pa.int32()), n)
    else:
        parts = pa.array(partition, pa.int32())
    schema = RECORD_SCHEMA if offset_type == pa.int64() else \
        RECORD_SCHEMA.set(1, pa.field("offset", offset_type))
    return pa.table([parts, offsets, keys, values, timestamps], schema=schema)

"""Small Arrow fix-ups every store applies before a write."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from headwater.core import ConfigError


def prepare_rows(data: pa.Table) -> pa.Table:
    """Give all-null columns a concrete type (text), so a store can create them."""
    for i, fld in enumerate(data.schema):
        if pa.types.is_null(fld.type):
            data = data.set_column(i, fld.name, data.column(i).cast(pa.string()))
    return data


def dedupe_on_key(data: pa.Table, primary_key: list[str], table: str) -> pa.Table:
    """Keep the last row of each primary key (the latest wins in a merge)."""
    missing = [k for k in primary_key if k not in data.column_names]
    if not primary_key or missing:
        raise ConfigError(
            f"merge into '{table}' needs its primary key columns; "
            f"missing: {missing or primary_key}",
            hint=f"columns in this load: {', '.join(data.column_names)}",
        )
    if data.num_rows < 2:
        return data
    index = pa.array(range(data.num_rows), pa.int64())
    keyed = data.select(primary_key)
    for i, fld in enumerate(keyed.schema):  # Arrow groups extension types (UUIDs) by storage
        if isinstance(fld.type, pa.BaseExtensionType):
            storage = pa.chunked_array([c.storage for c in keyed.column(i).chunks],
                                       fld.type.storage_type)
            keyed = keyed.set_column(i, fld.name, storage)
    keyed = keyed.append_column("_hw_i", index)
    last = keyed.group_by(primary_key, use_threads=False).aggregate([("_hw_i", "max")])
    if last.num_rows == data.num_rows:
        return data
    rows = last["_hw_i_max"]
    # Arrow has no take for its view layouts: those columns are taken in their large layout
    views = {pa.string_view(): pa.large_string(), pa.binary_view(): pa.large_binary()}
    takeable = data.cast(pa.schema([f.with_type(views.get(f.type, f.type)) for f in data.schema]))
    kept = takeable.take(pc.take(rows, pc.sort_indices(rows)))  # in input order
    return kept.cast(data.schema)

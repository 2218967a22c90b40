"""Parsed records (lists of dicts from JSON, SOAP or Redis) to Arrow tables, column-wise.

Objects nested in records are flattened to ``parent_child`` columns; lists stay lists. A column
whose values disagree on a type (a number here, text there) is kept as JSON text rather than
failing or guessing. Records that are not objects go to the rejects with a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from headwater.core import POSITION, rejects_table


def dig(value: Any, path: str | None) -> Any:
    """Follow a dotted path (``data.items``) into parsed JSON; None if a step is missing.

    >>> dig({"data": {"items": [1]}}, "data.items")
    [1]
    """
    if not path:
        return value
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def find_records(body: Any, path: str | None) -> list[Any] | None:
    """The record list in a body: at ``path``; else the body itself if a list, else its first
    list value; a single object is one record."""
    if path:
        found = dig(body, path)
        if found is None:
            return []
        return found if isinstance(found, list) else [found]
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, list):
                return value
        return [body]
    return None


def records_to_table(records: Sequence[Any], *, first_pos: int = 0,
                     raw: Sequence[str] | None = None) -> tuple[pa.Table, pa.Table | None]:
    """Records to ``(rows, rejects)``: rows carry ``_hw_pos``; non-objects become rejects.

    >>> rows, rejects = records_to_table([{"id": 1, "a": {"b": 2}}, 7])
    >>> rows.column_names, rows.num_rows, rejects.num_rows
    (['id', 'a_b', '_hw_pos'], 1, 1)
    """
    positions = np.arange(first_pos, first_pos + len(records), dtype=np.int64)
    good_idx = [i for i, r in enumerate(records) if isinstance(r, dict)]
    rejects = None
    if len(good_idx) != len(records):
        bad = [i for i, r in enumerate(records) if not isinstance(r, dict)]
        rejects = rejects_table(
            positions[bad], [raw[i] if raw is not None else _dumps(records[i]) for i in bad],
            ["record is not a JSON object"] * len(bad))
        records = [records[i] for i in good_idx]
        positions = positions[good_idx]
    table = lists_as_json(dicts_to_table(records))
    if table.num_columns == 0:  # only empty objects: rows without columns still count
        return pa.table({POSITION: pa.array(positions, pa.int64())}), rejects
    table = table.append_column(POSITION, pa.array(positions, pa.int64()))
    return table, rejects


def lists_as_json(table: pa.Table) -> pa.Table:
    """List columns (JSON arrays) as JSON text, encoded column-wise by Polars.

    >>> lists_as_json(pa.table({"t": [["a"], [], None]}))["t"].to_pylist()
    ['["a"]', '[]', None]
    """
    names = [f.name for f in table.schema if pa.types.is_list(f.type) or
             pa.types.is_large_list(f.type)]
    if not names:
        return table
    import polars as pl

    frame = pl.from_arrow(table.select(names))
    assert isinstance(frame, pl.DataFrame)
    encoded = frame.select([
        pl.when(pl.col(n).is_null()).then(None).otherwise(
            pl.struct(pl.col(n).alias("v")).struct.json_encode().str.slice(5).str.head(-1)
        ).alias(n) for n in names])
    for name in names:
        i = table.column_names.index(name)
        table = table.set_column(i, name, encoded.get_column(name).to_arrow().cast(pa.string()))
    return table


def dicts_to_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    """A list of dicts to a flat Arrow table (structs flattened with ``_``)."""
    if not records:
        return pa.table({})
    try:
        table = pa.Table.from_pylist(list(records))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        table = _by_column(records)
    return flatten(table)


def _by_column(records: Sequence[dict[str, Any]]) -> pa.Table:
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = {}
    for name in names:
        values = [r.get(name) for r in records]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[name] = pa.array([None if v is None else v if isinstance(v, str)
                                      else _dumps(v) for v in values], pa.string())
    return pa.table(columns)


def flatten(table: pa.Table) -> pa.Table:
    """Flatten struct columns into ``parent_child`` columns, recursively."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        arrays, names = [], []
        for fld, col in zip(table.schema, table.columns, strict=True):
            if pa.types.is_struct(fld.type):
                if fld.type.num_fields == 0:
                    continue  # {} everywhere: nothing to keep
                for i, child in enumerate(fld.type):
                    arrays.append(pa.chunked_array(
                        [chunk.field(i) if chunk.null_count == 0 else
                         _struct_child(chunk, i) for chunk in col.chunks], child.type))
                    names.append(f"{fld.name}_{child.name}")
            else:
                arrays.append(col)
                names.append(fld.name)
        table = pa.table(arrays, names=names)
    return table


def _struct_child(chunk: pa.StructArray, i: int) -> pa.Array:
    """A struct's child with the parent's nulls applied."""
    return chunk.flatten()[i]


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return str(value)

"""Nested values: objects to ``a_b`` columns, kept as JSON text, or lists to child tables."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from headwater.core import POSITION


def shape(table: pa.Table, nested: str) -> tuple[pa.Table, dict[str, pa.Table]]:
    """Apply the ``nested`` mode to ``table``; return it and its child tables.

    - ``flatten``: struct columns become ``parent_child`` columns; lists stay lists.
    - ``json``: struct columns and lists of structs become JSON text.
    - ``child_tables``: structs are flattened; every list of structs becomes a child table
      (``children[column]``) whose rows carry the parent's ``_hw_pos``.
    """
    if not any(_is_nested(f.type) for f in table.schema):
        return table, {}
    if nested == "json":
        return _to_json(table), {}
    table = flatten(table)
    if nested != "child_tables":
        return table, {}
    children: dict[str, pa.Table] = {}
    _split_children(table, "", children)
    keep = [name for name in table.column_names
            if not _is_object_list(table.schema.field(name).type)]
    return table.select(keep), children


def flatten(table: pa.Table, sep: str = "_") -> pa.Table:
    """Struct columns to ``parent<sep>child`` columns, recursively."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        columns, names = [], []
        for name, column in zip(table.column_names, table.columns, strict=True):
            if pa.types.is_struct(column.type):
                for i, child in enumerate(column.type):
                    columns.append(pc.struct_field(column, [i]))
                    names.append(f"{name}{sep}{child.name}")
            else:
                columns.append(column)
                names.append(name)
        table = pa.Table.from_arrays(columns, names)
    return table


def _split_children(table: pa.Table, prefix: str, out: dict[str, pa.Table]) -> None:
    for name in table.column_names:
        field = table.schema.field(name)
        if not _is_object_list(field.type):
            continue
        column = table.column(name).combine_chunks()
        parents = pc.list_parent_indices(column)
        items = pc.list_flatten(column)
        child = pa.Table.from_arrays([pc.take(table.column(POSITION), parents)], [POSITION])
        for i, sub in enumerate(items.type):
            child = child.append_column(sub.name, pc.struct_field(items, [i]))
        child = flatten(child)
        key = f"{prefix}{name}"
        _split_children(child, f"{key}__", out)
        keep = [c for c in child.column_names if not _is_object_list(child.schema.field(c).type)]
        out[key] = child.select(keep)


def _to_json(table: pa.Table) -> pa.Table:
    """Struct columns and lists of structs as JSON text (Polars encodes them, vectorised)."""
    import polars as pl

    for index, field in enumerate(table.schema):
        if not _is_nested(field.type):
            continue
        frame = pl.DataFrame(pl.from_arrow(table.select([index])))
        name = field.name
        if pa.types.is_struct(field.type):
            encoded = (pl.when(pl.col(name).is_null()).then(None)
                       .otherwise(pl.col(name).struct.json_encode()))
        else:
            # Wrap in a one-field struct, encode, and strip the wrapper: {"v":[...]} -> [...]
            wrapped = pl.struct(pl.col(name).alias("v")).struct.json_encode()
            encoded = (pl.when(pl.col(name).is_null()).then(None)
                       .otherwise(wrapped.str.slice(5, wrapped.str.len_bytes() - 6)))
        text = frame.select(encoded.alias(name)).to_arrow().column(0).cast(pa.string())
        table = table.set_column(index, pa.field(name, pa.string()), text)
    return table


def _is_nested(dtype: pa.DataType) -> bool:
    return pa.types.is_struct(dtype) or _is_object_list(dtype)


def _is_object_list(dtype: pa.DataType) -> bool:
    return (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)) and \
        pa.types.is_struct(dtype.value_type)

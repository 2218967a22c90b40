"""Arrow types every part of headwater reads alike: the layouts of text and of bytes, and UUIDs
(16 bytes, written as text where a store has no UUID type)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

#: Field metadata key with the database type a column came from (PostgreSQL, MySQL). Such a
#: column is typed by the database: an inferred contract takes its Arrow type as it is and never
#: re-reads its text as numbers or dates.
DB_TYPE = b"headwater.db_type"


def is_text(type_: pa.DataType) -> bool:
    """True for any of Arrow's text layouts (string, large_string, string_view): every store
    reads each of them as its one text type."""
    return pa.types.is_string(type_) or pa.types.is_large_string(type_) \
        or pa.types.is_string_view(type_)


def is_binary(type_: pa.DataType) -> bool:
    """True for Arrow's variable-width byte layouts (binary, large_binary, binary_view)."""
    return pa.types.is_binary(type_) or pa.types.is_large_binary(type_) \
        or pa.types.is_binary_view(type_)


def uuids_as_text(data: pa.Table) -> pa.Table:
    """UUID columns as their canonical text, for stores without a UUID type (Delta) or whose
    bulk load takes text (PostgreSQL)."""
    for i, fld in enumerate(data.schema):
        if fld.type == pa.uuid():
            data = data.set_column(i, pa.field(fld.name, pa.string()),
                                   cast_column(data.column(i), pa.string()))
    return data


def cast_column(column: pa.ChunkedArray, type_: pa.DataType) -> pa.ChunkedArray:
    """``column`` as ``type_``; UUIDs become their canonical text (Arrow's own cast would give
    their 16 raw bytes as text)."""
    if column.type == pa.uuid() and is_text(type_):
        text = [uuid_text(chunk.storage) for chunk in column.chunks]
        return pa.chunked_array(text, pa.string()).cast(type_)
    return column.cast(type_)


def uuid_text(storage: pa.Array) -> pa.Array:
    """16-byte UUIDs to their canonical text, vectorised with NumPy: the 36 bytes of each text
    are written into one buffer that becomes the Arrow array's data, no string per value.

    >>> import uuid
    >>> u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    >>> uuid_text(pa.array([u.bytes, None], pa.binary(16))).to_pylist()
    ['12345678-1234-5678-1234-567812345678', None]
    """
    n = len(storage)
    if n == 0:
        return pa.array([], pa.string())
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8)
    raw = raw[storage.offset * 16:(storage.offset + n) * 16].reshape(n, 16)
    digits = _HEX_PAIRS[raw].view(np.uint8).reshape(n, 32)  # each byte -> its 2 hex digits
    data = pa.allocate_buffer(n * 36)  # Arrow's own aligned memory, written in place
    text = np.frombuffer(data, dtype=np.uint8).reshape(n, 36)
    text[:, [8, 13, 18, 23]] = ord("-")
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at:at + stop - start] = digits[:, start:stop]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    validity = storage.buffers()[0]
    if validity is not None and storage.offset:  # a sliced bitmap: rebuild it from offset 0
        validity = pa.array(storage.is_valid()).buffers()[1]
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), data, validity,
                                       storage.null_count)


#: The two hex digits of every byte value, as one 16-bit unit each (in memory order).
_HEX_PAIRS = np.frombuffer("".join(f"{i:02x}" for i in range(256)).encode(), dtype=np.uint16)

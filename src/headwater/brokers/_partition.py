"""Which partition a key goes to: one rule, the same for every broker, computed per batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.core import ConfigError

_FNV_OFFSET = np.uint32(2166136261)
_FNV_PRIME = np.uint32(16777619)


def key_hashes(keys: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """FNV-1a (32 bit) of every key's bytes, and which keys are present (not null).

    Vectorised over the batch: one NumPy pass per byte position of the longest key.

    >>> import pyarrow as pa
    >>> hashes, present = key_hashes(pa.array([b"a", None]))
    >>> int(hashes[0]), present.tolist()
    (3826002220, [True, False])
    """
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if pa.types.is_large_binary(keys.type) or pa.types.is_large_string(keys.type):
        keys = keys.cast(pa.large_binary())
    else:
        keys = keys.cast(pa.binary())
    n = len(keys)
    valid = np.ones(n, dtype=bool) if keys.null_count == 0 else \
        pc.is_valid(keys).to_numpy(zero_copy_only=False)
    offset_type = np.int64 if pa.types.is_large_binary(keys.type) else np.int32
    offsets = np.frombuffer(keys.buffers()[1], dtype=offset_type)[keys.offset:keys.offset + n + 1]
    data_buffer = keys.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else \
        np.zeros(0, dtype=np.uint8)
    starts = offsets[:-1].astype(np.int64)
    lengths = (offsets[1:] - offsets[:-1]).astype(np.int64)
    lengths[~valid] = 0
    h = np.full(n, _FNV_OFFSET, dtype=np.uint32)
    longest = int(lengths.max()) if n else 0
    last = len(data) - 1
    for j in range(longest):  # byte j of every key (clipped), folded in where the key has one
        byte = data[np.minimum(starts + j, last)]
        np.copyto(h, (h ^ byte) * _FNV_PRIME, where=lengths > j)
    return h, valid


def partition_for(keys: pa.Array | pa.ChunkedArray, partitions: int) -> np.ndarray:
    """The partition of every key: FNV-1a (32 bit) of the key's bytes (:func:`key_hashes`),
    modulo ``partitions``. Records without a key are spread round-robin by their place in the
    batch.

    >>> import pyarrow as pa
    >>> partition_for(pa.array([b"a", b"b", b"a", None]), 4).tolist()
    [0, 1, 0, 3]
    """
    if partitions <= 1:
        return np.zeros(len(keys), dtype=np.int32)
    h, valid = key_hashes(keys)
    result = (h % np.uint32(partitions)).astype(np.int32)
    if not valid.all():
        missing = np.nonzero(~valid)[0]
        result[missing] = (missing % partitions).astype(np.int32)
    return result


def split_partitions(partitions: Sequence[int], member: int, members: int) -> list[int]:
    """The partitions member ``member`` of ``members`` reads when several processes share a
    topic by static assignment (every partition to exactly one member).

    >>> split_partitions(range(5), 0, 2), split_partitions(range(5), 1, 2)
    ([0, 2, 4], [1, 3])
    """
    if not 0 <= member < members:
        raise ConfigError(f"member {member} of {members}: the member number must be in "
                          f"0..{members - 1}", hint="number the members 0, 1, ... members-1")
    return sorted(partitions)[member::members]

"""The key-to-partition rule: FNV-1a of the key's bytes, the same on every path."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.brokers import partition_for

_FNV_OFFSET, _FNV_PRIME = 2166136261, 16777619


def fnv1a(key: bytes) -> int:
    h = _FNV_OFFSET
    for byte in key:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


@given(st.lists(st.one_of(st.none(), st.binary(max_size=12)), max_size=60),
       st.integers(1, 17))
@settings(max_examples=200, deadline=None)
def test_matches_fnv1a_of_each_key(keys: list[bytes | None], partitions: int) -> None:
    got = partition_for(pa.array(keys, pa.binary()), partitions).tolist()
    want = [fnv1a(k) % partitions if k is not None else i % partitions
            for i, k in enumerate(keys)]
    assert got == (want if partitions > 1 else [0] * len(keys))


@given(st.lists(st.binary(min_size=5, max_size=5), min_size=1, max_size=60),
       st.integers(2, 9), st.integers(0, 3))
@settings(max_examples=100, deadline=None)
def test_keys_of_one_length_sliced_arrays_too(keys: list[bytes], partitions: int,
                                              cut: int) -> None:
    array = pa.array([b"x" * 9] * cut + keys, pa.binary()).slice(cut)  # an offset array
    assert partition_for(array, partitions).tolist() == [fnv1a(k) % partitions for k in keys]
    text = pa.array([k.hex() for k in keys])
    assert partition_for(text, partitions).tolist() == \
        [fnv1a(k.hex().encode()) % partitions for k in keys]

"""Key hashes across batches: the set and the latest-value map agree with plain Python."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.contract import KeySet, LatestMap

_BATCHES = st.lists(st.lists(st.integers(0, 300), max_size=60), max_size=12)


@settings(max_examples=200, deadline=None)
@given(_BATCHES)
def test_keyset_is_a_set(batches):
    keys, seen = KeySet(), set()
    for batch in batches:
        h = np.array(batch, dtype=np.uint64)
        assert keys.contains(h).tolist() == [k in seen for k in batch]
        keys.add(h)
        seen.update(batch)
    assert len(keys) == len(seen)
    assert keys.nbytes == 8 * len(seen)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 50), st.floats(-1e6, 1e6)), max_size=40),
                max_size=10))
def test_latest_map_keeps_the_greatest(batches):
    latest, truth = LatestMap(), {}
    for batch in batches:
        if not batch:
            continue
        h = np.array([k for k, _ in batch], dtype=np.uint64)
        v = np.array([x for _, x in batch])
        latest.update(h, v)
        for k, x in batch:
            truth[k] = max(truth.get(k, -np.inf), x)
    probe = np.arange(0, 60, dtype=np.uint64)
    found, value = latest.get(probe)
    assert found.tolist() == [int(k) in truth for k in probe]
    assert value.tolist() == [truth.get(int(k), -np.inf) for k in probe]


def test_large_keysets_stay_few_arrays():
    keys = KeySet()
    for i in range(64):
        keys.add(np.arange(i * 1000, (i + 1) * 1000, dtype=np.uint64))
    assert len(keys._runs) <= 8
    assert keys.contains(np.array([0, 63_999, 64_000], dtype=np.uint64)).tolist() == [
        True, True, False]

"""Key hashes kept across the batches of a run, for uniqueness and deduplication.

A run may see millions of keys; the checker keeps only their 64-bit hashes, in a few sorted
NumPy arrays merged like a log-structured tree (a new batch adds one small sorted array; arrays of
similar size merge). Membership is a binary search per array: no Python call per key.
With 64-bit hashes, two different keys collide with probability about n² / 2⁶⁵ (≈ 7e-7 for five
million keys).
"""

from __future__ import annotations

import numpy as np

#: Bits of the filter in front of a KeySet (2**27 bits = 16 MiB): with five million keys about
#: 4 % of new keys need a binary search.
_FILTER_BITS = 27


class KeySet:
    """A growing set of uint64 key hashes.

    >>> s = KeySet()
    >>> s.add(np.array([5, 1], dtype=np.uint64))
    >>> s.contains(np.array([1, 2], dtype=np.uint64)).tolist()
    [True, False]
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []
        self._bits: np.ndarray | None = None  # a one-hash Bloom filter in front of the runs

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    @property
    def nbytes(self) -> int:
        """Memory held by the hashes (the fixed 16 MiB filter not counted)."""
        return sum(r.nbytes for r in self._runs)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """A boolean array: which of ``hashes`` were added before."""
        found = np.zeros(len(hashes), dtype=bool)
        if not len(hashes) or self._bits is None:
            return found
        hashes = hashes.astype(np.uint64, copy=False)
        slot = hashes >> np.uint64(64 - _FILTER_BITS)
        maybe = np.flatnonzero((self._bits[slot >> np.uint64(3)] >> (slot & np.uint64(7))
                                ).astype(np.uint8) & 1)
        if not len(maybe):
            return found
        wanted = hashes[maybe]
        hit = np.zeros(len(wanted), dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, wanted)
            pos[pos == len(run)] = len(run) - 1
            hit |= run[pos] == wanted
        found[maybe] = hit
        return found

    def add(self, hashes: np.ndarray, *, new: bool = False) -> None:
        """Add hashes. ``new=True`` promises they are distinct and not in the set yet."""
        if not len(hashes):
            return
        hashes = hashes.astype(np.uint64, copy=False)
        if new:
            fresh = np.sort(hashes)
        else:
            fresh = np.unique(hashes)
            fresh = fresh[~self.contains(fresh)]
            if not len(fresh):
                return
        if self._bits is None:
            self._bits = np.zeros(1 << (_FILTER_BITS - 3), dtype=np.uint8)
        slot = fresh >> np.uint64(64 - _FILTER_BITS)
        np.bitwise_or.at(self._bits, slot >> np.uint64(3),
                         (np.uint8(1) << (slot & np.uint64(7)).astype(np.uint8)))
        self._runs.append(fresh)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            top = self._runs.pop()
            merged = np.concatenate([self._runs.pop(), top])
            merged.sort(kind="stable")  # two sorted runs: a linear merge
            keep = np.ones(len(merged), dtype=bool)
            keep[1:] = merged[1:] != merged[:-1]
            self._runs.append(merged[keep])


class LatestMap:
    """Key hash -> the greatest 'latest' value seen (float64), for dedupe by key.

    >>> m = LatestMap()
    >>> m.update(np.array([7], dtype=np.uint64), np.array([2.0]))
    >>> m.get(np.array([7, 8], dtype=np.uint64))[1].tolist()
    [2.0, -inf]
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(h) for h, _ in self._runs)

    def get(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(found, value)`` for each hash; value is -inf where not found."""
        found = np.zeros(len(hashes), dtype=bool)
        value = np.full(len(hashes), -np.inf)
        for keys, values in self._runs:
            pos = np.searchsorted(keys, hashes)
            pos[pos == len(keys)] = len(keys) - 1
            hit = keys[pos] == hashes
            found |= hit
            value = np.where(hit, np.maximum(value, values[pos]), value)
        return found, value

    def update(self, hashes: np.ndarray, values: np.ndarray) -> None:
        """Record values (the greatest per key is kept)."""
        if not len(hashes):
            return
        self._runs.append(_max_per_key(hashes.astype(np.uint64, copy=False),
                                       values.astype(np.float64, copy=False)))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            k2, v2 = self._runs.pop()
            k1, v1 = self._runs.pop()
            self._runs.append(_max_per_key(np.concatenate([k1, k2]), np.concatenate([v1, v2])))


def _max_per_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((values, keys))  # by key, then value: the last of each key is the max
    keys, values = keys[order], values[order]
    last = np.ones(len(keys), dtype=bool)
    last[:-1] = keys[1:] != keys[:-1]
    return keys[last], values[last]

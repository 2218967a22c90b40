"""Key hashes kept across the batches of a run, for uniqueness and deduplication.

A run may see millions of keys; the checker keeps only their 64-bit hashes, in a few sorted
NumPy arrays merged like a log-structured tree (a new batch adds one small sorted array; arrays of
similar size merge). Membership is a binary search per array: no Python call per key.
With 64-bit hashes, two different keys collide with probability about n² / 2⁶⁵ (≈ 7e-7 for five
million keys).
"""

from __future__ import annotations

import numpy as np


class KeySet:
    """A growing set of uint64 key hashes.

    >>> s = KeySet()
    >>> s.add(np.array([5, 1], dtype=np.uint64))
    >>> s.contains(np.array([1, 2], dtype=np.uint64)).tolist()
    [True, False]
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    @property
    def nbytes(self) -> int:
        """Memory held by the hashes."""
        return sum(r.nbytes for r in self._runs)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """A boolean array: which of ``hashes`` were added before."""
        found = np.zeros(len(hashes), dtype=bool)
        if not len(hashes):
            return found
        for run in self._runs:
            pos = np.searchsorted(run, hashes)
            pos[pos == len(run)] = len(run) - 1
            found |= run[pos] == hashes
        return found

    def add(self, hashes: np.ndarray, *, new: bool = False) -> None:
        """Add hashes. ``new=True`` promises none of them is in the set yet (saves a lookup)."""
        if not len(hashes):
            return
        fresh = np.unique(hashes.astype(np.uint64, copy=False))
        if not new:
            fresh = fresh[~self.contains(fresh)]
            if not len(fresh):
                return
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

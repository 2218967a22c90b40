"""Retries with backoff for server brokers: what a broker that is down or restarting gets."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff(retries: int, *, base: float = 0.25, cap: float = 5.0) -> Iterator[float]:
    """The pauses before each of ``retries`` retries: doubling from ``base`` up to ``cap``
    seconds, each with up to 20 % jitter (so that many clients do not retry in step).

    >>> [int(d) for d in backoff(4, base=1.0, cap=3.0)]
    [1, 2, 3, 3]
    """
    for attempt in range(retries):
        delay = min(cap, base * 2 ** attempt)
        yield delay * (1 + random.random() * 0.2)

"""WorkAhead: results in order, errors raised in the caller, the producer stops when we stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from headwater.ingest._ahead import WorkAhead


def test_results_come_in_order() -> None:
    with WorkAhead(range(50), lambda n: n * 2, depth=1) as doubled:
        assert list(doubled) == [n * 2 for n in range(50)]


def test_an_error_in_the_work_is_raised_in_the_caller() -> None:
    def work(n: int) -> int:
        if n == 3:
            raise ValueError("bad batch 3")
        return n

    seen: list[int] = []
    with pytest.raises(ValueError, match="bad batch 3"), WorkAhead(range(10), work) as out:
        seen.extend(out)
    assert seen == [0, 1, 2]


def test_an_error_opening_the_items_is_raised_in_the_caller() -> None:
    class Broken:
        def __iter__(self) -> Iterator[int]:
            raise OSError("cannot open")

    with pytest.raises(OSError, match="cannot open"), WorkAhead(Broken(), lambda n: n) as out:
        list(out)


def test_stopping_early_closes_the_source_and_ends_the_thread() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    with pytest.raises(RuntimeError), WorkAhead(endless(), lambda n: n, depth=2) as out:
        for n in out:
            if n == 5:
                raise RuntimeError("the writer failed")
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "hw-ahead"]

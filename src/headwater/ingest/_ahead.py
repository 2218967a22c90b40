"""Work ahead: compute the next items on a background thread while the caller uses this one.

The ingestion pipeline reads and checks batch *n + 1* while the store writes batch *n*. Polars,
pyarrow and DuckDB release the GIL, so the two stages use both cores. Order is kept, at most
``depth`` results wait in memory, and an error on the background thread is raised in the caller.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: How long a blocked hand-over waits before it looks again whether the consumer has stopped.
_POLL_SECONDS = 0.1


class WorkAhead(Generic[T, R]):
    """Iterate ``work(item)`` for each item, computed in order on one background thread.

    Use it as a context manager, so the thread stops when the caller stops early (an error
    while writing, a break)::

        with WorkAhead(batches, check) as checked:
            for result in checked:
                write(result)

    >>> with WorkAhead(range(4), lambda n: n * n) as squares:
    ...     list(squares)
    [0, 1, 4, 9]
    """

    def __init__(self, items: Iterable[T], work: Callable[[T], R], *, depth: int = 2,
                 name: str = "hw-ahead") -> None:
        self._items = items
        self._work = work
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)

    def __enter__(self) -> Iterator[R]:
        self._thread.start()
        return self._results()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _results(self) -> Iterator[R]:
        while True:
            kind, value = self._queue.get()
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            if kind == "done":
                return
            yield value  # type: ignore[misc]

    def _produce(self) -> None:
        iterator: Iterator[T] | None = None
        try:  # iter() too: opening a source may raise, and the consumer must hear of it
            iterator = iter(self._items)
            for item in iterator:
                if self._stop.is_set() or not self._hand_over("item", self._work(item)):
                    return
            self._hand_over("done", None)
        except BaseException as exc:  # every error belongs to the consumer
            self._hand_over("error", exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator's cleanup (threads, files) runs now, not at GC

    def _hand_over(self, kind: str, value: object) -> bool:
        """Queue a result; False when the consumer stopped while we waited for room."""
        while not self._stop.is_set():
            try:
                self._queue.put((kind, value), timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

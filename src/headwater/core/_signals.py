"""Stopping long runs cleanly: Ctrl-C and SIGTERM set an event that the run checks between
commits, so it ends after the current one instead of in the middle of it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def stop_on_signals(stop: threading.Event,
                    on_signal: Callable[[int], None] | None = None) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set ``stop`` (and call ``on_signal`` with the signal
    number); a second Ctrl-C interrupts at once. Outside the main thread it does nothing
    (only the main thread receives signals).

    >>> import threading
    >>> with stop_on_signals(threading.Event()):
    ...     pass
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:  # a second Ctrl-C: stop now
            signal.default_int_handler(signum, frame)
        stop.set()
        if on_signal is not None:
            on_signal(signum)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

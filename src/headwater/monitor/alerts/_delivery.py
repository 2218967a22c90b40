"""Delivery off the hot path: a thread sends the outbox, retrying a sink that is down.

Attempts back off exponentially (1 s, 2 s, 4 s … at most 5 min); after ``MAX_ATTEMPTS`` a
notification is marked failed. Every attempt's outcome is recorded in the outbox and counted in
``headwater_alert_deliveries_total``. A notification still pending when a process exits is sent
by the next evaluation or by ``headwater alerts watch``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from headwater.core import HeadwaterError
from headwater.monitor._logging import get_logger
from headwater.monitor._metrics import DELIVERIES, ERRORS
from headwater.monitor.alerts._sinks import DeliveryError, send
from headwater.monitor.alerts._store import AlertStore

log = get_logger(__name__)

MAX_ATTEMPTS = 8
MAX_BACKOFF_S = 300.0


def backoff(attempts: int, base: float = 1.0) -> float:
    """Seconds to wait after the ``attempts``-th failure.

    >>> [backoff(n) for n in (1, 2, 3)]
    [1.0, 2.0, 4.0]
    """
    return min(base * 2 ** (attempts - 1), MAX_BACKOFF_S)


def deliver_due(spec: Any, store: AlertStore, *, now: float | None = None,
                base_backoff: float = 1.0) -> int:
    """Send every notification that is due; return how many were delivered."""
    now = time.time() if now is None else now
    delivered = 0
    for item in store.due_deliveries(now):
        attempts = item["attempts"] + 1
        sink = spec.sinks.get(item["sink"])
        try:
            if sink is None:
                raise DeliveryError(f"sink {item['sink']} is no longer in headwater.yaml")
            send(item["sink"], sink, item["payload"])
        except (DeliveryError, HeadwaterError) as exc:
            give_up = attempts >= MAX_ATTEMPTS or sink is None
            retry = None if give_up else time.time() + backoff(attempts, base_backoff)
            store.delivery_done(item["id"], attempts=attempts, now=time.time(),
                                error=exc.message, retry_at=retry)
            DELIVERIES.labels(item["sink"], "failed" if give_up else "retry").inc()
            ERRORS.labels("alerts", "delivery").inc()
            log.warning("alert_delivery_failed", sink=item["sink"], attempt=attempts,
                        error=exc.message, retry_in_s=None if retry is None
                        else round(retry - time.time(), 1))
        else:
            store.delivery_done(item["id"], attempts=attempts, now=time.time())
            DELIVERIES.labels(item["sink"], "delivered").inc()
            delivered += 1
    return delivered


class Dispatcher:
    """A daemon thread that delivers the outbox whenever it is kicked or a retry falls due.

    >>> # Dispatcher(spec, store).start(); ...; dispatcher.kick(); dispatcher.close(timeout=2)
    """

    def __init__(self, spec: Any, store: AlertStore, *, base_backoff: float = 1.0,
                 idle_s: float = 5.0) -> None:
        self.spec = spec
        self.store = store
        self.base_backoff = base_backoff
        self.idle_s = idle_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Dispatcher:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="hw-alert-delivery",
                                            daemon=True)
            self._thread.start()
        return self

    def kick(self) -> None:
        """Look at the outbox now."""
        self._idle.clear()
        self._wake.set()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is due; True if it got there."""
        self.kick()
        return self._idle.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Try to send what is due for up to ``timeout`` seconds, then stop the thread."""
        if self._thread is None:
            return
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=1.0)
        self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                deliver_due(self.spec, self.store, base_backoff=self.base_backoff)
                upcoming = self.store.next_attempt()
            except Exception as exc:  # the database is busy or gone: try again later
                log.warning("alert_delivery_loop_error", error=f"{type(exc).__name__}: {exc}")
                upcoming = time.time() + self.idle_s
            now = time.time()
            if upcoming is None or upcoming > now:
                self._idle.set()
            wait = self.idle_s if upcoming is None else max(0.0, min(upcoming - now, self.idle_s))
            self._wake.wait(wait)

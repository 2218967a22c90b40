"""Polite, persistent HTTP: a rate cap, retries with exponential backoff and jitter, Retry-After.

Shared by the REST and SOAP sources. Retried: 429 (after its Retry-After), 408, 5xx, timeouts,
refused and dropped connections, and responses the caller finds unreadable (malformed bodies).
Other 4xx are the user's to fix and fail at once with the server's words.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from headwater.core import SourceError, redact
from headwater.monitor import get_logger

log = get_logger(__name__)

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class Unreadable(Exception):
    """Raised by a response check: the body is malformed or wrong; try again."""


class UnreadableError(SourceError):
    """Every attempt returned a body the check could not read; ``response`` is the last one."""

    def __init__(self, message: str, *, hint: str, response: httpx.Response) -> None:
        super().__init__(message, hint=hint)
        self.response = response


@dataclass
class RetryPolicy:
    """How hard to try: retries, first backoff, longest wait, and a requests-per-second cap."""

    max_retries: int = 6
    backoff: float = 0.5
    max_backoff: float = 30.0
    requests_per_second: float | None = None

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random (never a thundering herd)."""
        cap = min(self.max_backoff, self.backoff * (2 ** attempt))
        return cap / 2 + random.uniform(0, cap / 2)


class RateLimiter:
    """At most ``rate`` requests per second, spaced evenly (thread-safe)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Sleep until the next request may go."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a 429/503 asks us to wait (``Retry-After``: seconds or an HTTP date).

    >>> retry_after(httpx.Response(429, headers={"Retry-After": "2"}))
    2.0
    """
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def send(client: httpx.Client, request: httpx.Request, *, policy: RetryPolicy,
         limiter: RateLimiter, check: Callable[[httpx.Response], Any] | None = None,
         on_unauthorized: Callable[[httpx.Request], httpx.Request | None] | None = None,
         what: str = "request") -> tuple[httpx.Response, Any]:
    """Send ``request`` until it succeeds or the retries run out.

    ``check(response)`` parses the body; raising :class:`Unreadable` retries the request.
    ``on_unauthorized`` may return a re-authenticated request after a 401 (once).
    Returns the response and what ``check`` returned. Raises SourceError with what failed,
    the URL (secrets masked) and a hint.
    """
    attempt = 0
    reauthed = False
    last = ""
    unreadable: httpx.Response | None = None
    while True:
        limiter.wait()
        wait: float | None = None
        unreadable = None
        try:
            response = client.send(request)
        except httpx.TimeoutException as exc:
            last = f"timed out ({type(exc).__name__})"
        except httpx.TransportError as exc:
            last = f"connection failed ({type(exc).__name__}: {exc})"
        else:
            status = response.status_code
            if status == 401 and on_unauthorized is not None and not reauthed:
                fresh = on_unauthorized(request)
                if fresh is not None:
                    request, reauthed = fresh, True
                    continue
            if status in RETRY_STATUS:
                last = f"HTTP {status}"
                wait = retry_after(response) if status in (429, 503) else None
            elif status >= 400:
                raise SourceError(
                    f"{what} {redact(str(request.url))} failed: HTTP {status}: "
                    f"{redact(response.text[:300])}",
                    hint=_hint_for(status)) from None
            else:
                try:
                    return response, (check(response) if check else None)
                except Unreadable as exc:
                    last = f"unreadable response ({exc})"
                    unreadable = response
        if attempt >= policy.max_retries:
            if unreadable is not None:
                raise UnreadableError(
                    f"{what} {redact(str(request.url))}: {last} after {attempt + 1} attempts",
                    hint="the body is kept in the quarantine", response=unreadable)
            raise SourceError(
                f"{what} {redact(str(request.url))} failed after {attempt + 1} attempts: {last}",
                hint="the server may be down or overloaded; the next run resumes from the last "
                "committed page (raise rate_limit.max_retries to try harder)")
        delay = min(wait, policy.max_backoff * 4) if wait is not None else policy.delay(attempt)
        log.warning("http_retry", url=redact(str(request.url)), attempt=attempt + 1,
                    reason=last, wait_s=round(delay, 3))
        time.sleep(delay)
        attempt += 1


def _hint_for(status: int) -> str:
    if status in (401, 403):
        return "check the credentials under `auth:` (and that they grant this endpoint)"
    if status == 404:
        return "check the url; a page past the end should return an empty list, not 404"
    return "check the url, params and body in headwater.yaml"

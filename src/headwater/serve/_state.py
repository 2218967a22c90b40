"""Online state of a recommendation server: each user's fresh interactions, the log of all
interactions for periodic refresh, and the last list each user was shown (click-through).

In this process by default (:class:`MemoryState`); in Redis (:class:`RedisState`) when several
workers or replicas serve, so every one of them sees every interaction at once.

A **cursor** is a position in the interaction log (Redis stream ids as ``(ms, seq)``): a
recommender refreshed up to cursor C knows every interaction at or before C, and the overlay
of a user's fresh interactions holds only those after C.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

import orjson

Cursor = tuple[int, int]
START: Cursor = (0, 0)
#: Fresh interactions kept per user (older ones are in the model after a refresh).
PER_USER = 500


@dataclass(frozen=True)
class Interaction:
    """One event: a user did something with an item."""

    user: str
    item: str
    event: str = "click"
    value: float = 1.0
    timestamp: float = 0.0
    category: str | None = None

    def record(self) -> dict[str, Any]:
        """The row the interaction log and refresh take."""
        return {"user": self.user, "item": self.item, "event": self.event, "value": self.value,
                "timestamp": self.timestamp or time.time(), "category": self.category}


class MemoryState:
    """Online state in this process (one worker)."""

    def __init__(self, *, per_user: int = PER_USER, max_log: int = 1_000_000) -> None:
        self._seq = 0
        self._fresh: dict[str, deque[tuple[Cursor, str, float]]] = defaultdict(
            lambda: deque(maxlen=per_user))
        self._log: deque[tuple[Cursor, dict[str, Any]]] = deque(maxlen=max_log)
        self._shown: dict[str, tuple[str, list[str]]] = {}

    async def add(self, rows: list[Interaction], weights: list[float]) -> None:
        """Record interactions with their weights."""
        for row, weight in zip(rows, weights, strict=True):
            self._seq += 1
            cursor = (self._seq, 0)
            self._fresh[row.user].append((cursor, row.item, weight))
            self._log.append((cursor, row.record()))

    async def fresh(self, user: str, after: Cursor) -> dict[str, float]:
        """Item -> weight of the user's interactions after ``after``."""
        out: dict[str, float] = {}
        for cursor, item, weight in self._fresh.get(user, ()):
            if cursor > after:
                out[item] = out.get(item, 0.0) + weight
        return out

    async def since(self, after: Cursor, limit: int = 100_000) -> tuple[list[dict[str, Any]],
                                                                        Cursor]:
        """Log rows after ``after`` (at most ``limit``) and the cursor of the last one."""
        newer: list[tuple[Cursor, dict[str, Any]]] = []
        for cursor, row in reversed(self._log):  # newest first: stop at what was seen
            if cursor <= after:
                break
            newer.append((cursor, row))
        rows = newer[::-1][:limit]
        return [r for _, r in rows], (rows[-1][0] if rows else after)

    async def end(self) -> Cursor:
        """The cursor of the newest interaction."""
        return (self._seq, 0)

    async def shown(self, user: str, variant: str, items: list[str]) -> None:
        """Remember the list a user was just shown and by which variant."""
        self._shown[user] = (variant, items)

    async def last_shown(self, users: list[str]) -> list[tuple[str, list[str]] | None]:
        """(variant, items) each user was last shown, or None."""
        return [self._shown.get(u) for u in users]

    async def ping(self) -> bool:
        """True when the state can be reached."""
        return True

    async def close(self) -> None:
        """Nothing to release."""


def _cursor(stream_id: bytes | str) -> Cursor:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class RedisState:
    """Online state in Redis, shared by every worker and replica (keys under ``prefix``).

    ``prefix:log`` is a stream of every interaction (capped near ``max_log`` entries);
    ``prefix:u:<user>`` a list of the user's fresh ``stream id, item, weight``;
    ``prefix:shown:<user>`` the last list shown (expires after ``shown_ttl_s``).
    """

    def __init__(self, url: str, *, prefix: str, per_user: int = PER_USER,
                 max_log: int = 1_000_000, shown_ttl_s: int = 3600) -> None:
        from headwater.core import require

        aioredis = require("redis.asyncio", "redis")
        self.url = url
        self.prefix = prefix
        self.per_user = per_user
        self.max_log = max_log
        self.shown_ttl_s = shown_ttl_s
        self._redis = aioredis.from_url(url)

    def _user(self, user: str) -> str:
        return f"{self.prefix}:u:{user}"

    async def add(self, rows: list[Interaction], weights: list[float]) -> None:
        """XADD each row to the log, then append it to its user's fresh list."""
        pipe = self._redis.pipeline(transaction=False)
        for row in rows:
            pipe.xadd(f"{self.prefix}:log", {"r": orjson.dumps(row.record())},
                      maxlen=self.max_log, approximate=True)
        ids = await pipe.execute()
        pipe = self._redis.pipeline(transaction=False)
        for row, weight, stream_id in zip(rows, weights, ids, strict=True):
            key = self._user(row.user)
            pipe.rpush(key, orjson.dumps([stream_id.decode(), row.item, weight]))
            pipe.ltrim(key, -self.per_user, -1)
        await pipe.execute()

    async def fresh(self, user: str, after: Cursor) -> dict[str, float]:
        """Item -> weight of the user's interactions after ``after``."""
        out: dict[str, float] = {}
        for raw in await self._redis.lrange(self._user(user), 0, -1):
            stream_id, item, weight = orjson.loads(raw)
            if _cursor(stream_id) > after:
                out[item] = out.get(item, 0.0) + weight
        return out

    async def since(self, after: Cursor, limit: int = 100_000) -> tuple[list[dict[str, Any]],
                                                                        Cursor]:
        """Log rows after ``after`` (at most ``limit``) and the cursor of the last one."""
        found = await self._redis.xrange(f"{self.prefix}:log", min=f"({after[0]}-{after[1]}",
                                         max="+", count=limit)
        if not found:
            return [], after
        return [orjson.loads(fields[b"r"]) for _, fields in found], _cursor(found[-1][0])

    async def end(self) -> Cursor:
        """The cursor of the newest interaction."""
        last = await self._redis.xrevrange(f"{self.prefix}:log", count=1)
        return _cursor(last[0][0]) if last else START

    async def shown(self, user: str, variant: str, items: list[str]) -> None:
        """Remember the list a user was just shown and by which variant."""
        await self._redis.set(f"{self.prefix}:shown:{user}", orjson.dumps([variant, items]),
                              ex=self.shown_ttl_s)

    async def last_shown(self, users: list[str]) -> list[tuple[str, list[str]] | None]:
        """(variant, items) each user was last shown, or None."""
        raw = await self._redis.mget([f"{self.prefix}:shown:{u}" for u in users])
        return [tuple(orjson.loads(r)) if r else None for r in raw]  # type: ignore[misc]

    async def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


State = MemoryState | RedisState


def open_state(redis_url: str | None, *, prefix: str) -> State:
    """Redis state at ``redis_url``, else state in this process."""
    return RedisState(redis_url, prefix=prefix) if redis_url else MemoryState()

"""The durable interaction log: every accepted interaction is in the embedded log (one topic
per replica) before the request is acknowledged, for the next training run.

Appends are group-committed: requests that arrive while a write is in progress go into the
next write together, so the log costs one write per burst, not one per request.
``headwater stream`` commands (topics, tail) and the stream source of ``headwater ingest``
read the topic like any other.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from headwater.core import SinkError
from headwater.monitor import get_logger

log = get_logger(__name__)

def topic_for(replica: str) -> str:
    """The log topic a replica writes: ``interactions-<replica>``."""
    from headwater.ml.recommend import LOG_TOPIC_PREFIX

    return f"{LOG_TOPIC_PREFIX}{replica}"


class InteractionLog:
    """Group-committed appends of interaction records to ``topic`` in the embedded log."""

    def __init__(self, folder: Path, *, topic: str, fsync: str = "interval") -> None:
        self.folder = Path(folder)
        self.topic = topic
        self.fsync = fsync
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None],
                                  asyncio.AbstractEventLoop]] = []
        self._wake = threading.Condition()
        self._closed = False
        self._broker: Any = None
        self._thread: threading.Thread | None = None

    def open(self) -> InteractionLog:
        """Open the log (creating the topic) and start the writer thread."""
        from headwater.brokers import EmbeddedBroker

        self._broker = EmbeddedBroker(self.folder, fsync=self.fsync)  # type: ignore[arg-type]
        self._broker.create_topic(self.topic)
        self._thread = threading.Thread(target=self._run, name="interaction-log", daemon=True)
        self._thread.start()
        return self

    async def append(self, records: list[dict[str, Any]]) -> None:
        """Append ``records``; returns once the log holds them."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._wake:
            if self._closed or self._thread is None:
                raise SinkError(f"the interaction log {self.topic} is not open",
                                hint="the server is starting or stopping; send the "
                                "interactions again")
            self._pending.append((records, future, loop))
            self._wake.notify()
        await future

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending and self._closed:
                    return
                taken, self._pending = self._pending, []
            error: BaseException | None = None
            try:
                self._broker.produce(self.topic, _table([r for rows, _, _ in taken for r in rows]))
            except BaseException as exc:  # every waiting request hears of it
                log.error("interaction_log_failed", error=str(exc))
                error = exc
            for _, future, loop in taken:
                loop.call_soon_threadsafe(_settle, future, error)

    def close(self) -> None:
        """Write what is pending, stop the thread, release the topic."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._broker is not None:
            self._broker.close()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _table(records: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    from headwater.brokers import encode_rows

    rows = pa.table({
        "user": pa.array([r["user"] for r in records], pa.string()),
        "item": pa.array([r["item"] for r in records], pa.string()),
        "event": pa.array([r["event"] for r in records], pa.string()),
        "value": pa.array([r["value"] for r in records], pa.float64()),
        "timestamp": pa.array([r["timestamp"] for r in records], pa.float64()),
        "category": pa.array([r["category"] for r in records], pa.string()),
    })
    return encode_rows(rows, key="user")


def read_log(folder: Path, topic: str) -> Any:
    """Every interaction in a replica's log as an Arrow table (``user, item, event, value,
    timestamp, category``): what the next training reads (``headwater recommend train --data
    .headwater/serve`` reads every replica's)."""
    from headwater.ml.recommend import read_interaction_log

    return read_interaction_log(folder, [topic])

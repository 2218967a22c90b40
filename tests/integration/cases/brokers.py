"""The brokers the conformance suite runs against: a factory per broker, given a fresh folder.

Each factory returns a new broker; the suite names its topics uniquely per test, so factories
for server brokers (NATS, Kafka, Kinesis) may share one server. A factory that needs a service
fails (never skips) when it is down: see tests/conftest.py ``require_service``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from headwater.brokers import Broker, EmbeddedBroker


def embedded(tmp: Path) -> Broker:
    """The embedded log in ``tmp``, with small segments so that tests cross segment files."""
    return EmbeddedBroker(tmp / "streams", segment_bytes=64 << 10)


BROKER_CASES: dict[str, Callable[[Path], Broker]] = {
    "embedded": embedded,
}

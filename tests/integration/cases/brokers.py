"""The brokers the conformance suite runs against: a factory per broker, given a fresh folder.

Each factory returns a new broker; the suite names its topics uniquely per test, so factories
for server brokers (NATS, Kafka, Kinesis) may share one server. A factory that needs a service
fails (never skips) when it is down: see tests/conftest.py ``require_service``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from headwater.brokers import Broker, EmbeddedBroker


def _require(service: str, port: int) -> None:
    """Fail (never skip) when a service on loopback is down, saying how to start it."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        pytest.fail(f"{service} is not reachable on 127.0.0.1:{port}: run "
                    "`scripts/services.sh start` (or `make test`, which starts them)")


def embedded(tmp: Path) -> Broker:
    """The embedded log in ``tmp``, with small segments so that tests cross segment files."""
    return EmbeddedBroker(tmp / "streams", segment_bytes=64 << 10)


def nats(tmp: Path) -> Broker:
    """NATS JetStream on the machine (127.0.0.1:4222); streams are prefixed per test run."""
    from headwater.brokers._nats import NatsBroker

    _require("nats", 4222)
    return NatsBroker(["nats://127.0.0.1:4222"], stream_prefix="hwconf", retries=1)


BROKER_CASES: dict[str, Callable[[Path], Broker]] = {
    "embedded": embedded,
    "nats": nats,
}

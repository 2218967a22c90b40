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


_MOTO: list[str] = []


def moto_endpoint() -> str:
    """The URL of one moto server (real HTTP on loopback) for the session: Kinesis and
    DynamoDB both answer there."""
    if not _MOTO:
        import atexit
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        atexit.register(server.stop)
        host, port = server.get_host_and_port()
        _MOTO.append(f"http://{host}:{port}")
    return _MOTO[0]


def kinesis(tmp: Path, **options: object) -> Broker:
    """Kinesis on the session's moto server; streams and the lease table named per test."""
    from headwater.brokers._kinesis import KinesisBroker

    return KinesisBroker(region="us-east-1", endpoint_url=moto_endpoint(),
                         access_key_id="testing", secret_access_key="testing",
                         stream_prefix="hwconf-", lease_table=f"leases-{tmp.name[-40:]}",
                         retries=1, **options)  # type: ignore[arg-type]


def kafka(tmp: Path) -> Broker:
    """Kafka: librdkafka's mock cluster (3 brokers on loopback), a fresh one per test."""
    from .kafka_mock import MOCK_GROUP_CONFIG, MockCluster, mock_broker

    return mock_broker(MockCluster(), retries=1, timeout=5.0, config=MOCK_GROUP_CONFIG)


BROKER_CASES: dict[str, Callable[[Path], Broker]] = {
    "embedded": embedded,
    "kinesis": kinesis,
    "nats": nats,
    "kafka": kafka,
}

"""Shared fixtures: the local services and how a missing one is reported.

Integration tests talk to real services on loopback (`make test` starts them). A missing service
fails the test with the command that starts it: a run never passes by leaving tests out.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

SERVICES = {
    "postgres": ("127.0.0.1", 5432),
    "mariadb": ("127.0.0.1", 3306),
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": ("127.0.0.1", 5672),
    "mosquitto": ("127.0.0.1", 1883),
    "nats": ("127.0.0.1", 4222),
}


def service_up(name: str) -> bool:
    """True if the service's port accepts a TCP connection."""
    host, port = SERVICES[name]
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Fail when a service is down, saying how to start it (`scripts/services.sh start`)."""
    if not service_up(name):
        pytest.fail(f"{name} is not reachable on {SERVICES[name]}: run `scripts/services.sh "
                    "start` (or `make test`, which starts them)")


@pytest.fixture
def postgres_url() -> str:
    """URL of the local PostgreSQL test database."""
    require_service("postgres")
    return os.environ.get("HEADWATER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def mariadb_url() -> str:
    """URL of the local MariaDB test database."""
    require_service("mariadb")
    return os.environ.get("HEADWATER_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture
def redis_url() -> str:
    """URL of the local Redis."""
    require_service("redis")
    return "redis://127.0.0.1:6379/0"


@pytest.fixture
def unique_name() -> str:
    """A name no other test (or parallel run) uses: for tables, schemas, keys."""
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[dict[str, str]]:
    """A moto S3 server on loopback (its own process: real HTTP), as deltalake storage options.

    Yields the options with ``bucket`` added: a fresh bucket for this test session.
    """
    import subprocess
    import sys
    import time

    import boto3
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"moto server did not start on {endpoint}")
                time.sleep(0.1)
        options = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                   "AWS_ALLOW_HTTP": "true", "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
        bucket = f"hw-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1"
                     ).create_bucket(Bucket=bucket)
        yield {**options, "bucket": bucket}
    finally:
        server.terminate()
        server.wait(timeout=10)

"""Server brokers that are down, die mid-run, or refuse us: retries, then one line that helps.

Each test runs its own server (a private nats-server) so that it can stop it; nothing here
touches the shared services.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.brokers import BrokerError

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NatsServer:
    """A nats-server with JetStream on a free port, its store in a folder of the test's."""

    def __init__(self, store: Path, *, token: str | None = None) -> None:
        self.port = free_port()
        self.store = store
        self.token = token
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail("nats-server is not installed: run `scripts/services.sh start`")
        args = [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]
        if self.token:
            args += ["--auth", self.token]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"nats-server did not start on {self.url}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "js")
    server.start()
    yield server
    server.kill()


def rows(n: int, start: int = 0) -> pa.Table:
    return pa.table({"key": [b"k"] * n,
                     "value": [f"v{i}".encode() for i in range(start, start + n)]})


def test_nats_down_at_start_names_the_broker_and_the_setting() -> None:
    from headwater.brokers._nats import NatsBroker

    broker = NatsBroker([f"nats://127.0.0.1:{free_port()}"], retries=2, name="events")
    started = time.monotonic()
    with pytest.raises(BrokerError) as err:
        broker.topics()
    broker.close()
    assert time.monotonic() - started < 15, "gives up after its retries"
    assert "NATS broker 'events'" in err.value.message and "3 attempts" in err.value.message
    assert "brokers.events.servers" in err.value.hint
    assert "\n" not in err.value.message


def test_nats_wrong_token_says_so(tmp_path: Path) -> None:
    from headwater.brokers._nats import NatsBroker

    server = NatsServer(tmp_path / "js", token="right")
    server.start()
    try:
        wrong = NatsBroker([server.url], token="wrong", retries=3, name="secure")
        started = time.monotonic()
        with pytest.raises(BrokerError) as err:
            wrong.topics()
        wrong.close()
        assert time.monotonic() - started < 5, "refused credentials are not retried"
        assert "refused the credentials" in err.value.message
        assert "brokers.secure.token" in err.value.hint
        right = NatsBroker([server.url], token="right", retries=0)
        assert right.topics() == []
        right.close()
    finally:
        server.kill()


def _take(consumer, n: int) -> pa.Table:
    """Exactly ``n`` records, over as many polls as it takes (at most 20)."""
    parts: list[pa.Table] = []
    for _ in range(20):
        left = n - sum(t.num_rows for t in parts)
        if left == 0:
            break
        parts.append(consumer.poll(max_records=left, timeout=5))
    return pa.concat_tables(parts)


def _read_through_outage(broker, topic: str, *, outage, restart: threading.Timer):
    """Produce v0..v99, take 30 and commit, take 30 more, then ``outage()`` and ``restart``
    (a timer that brings the broker back) while polling on: the consumer must continue where
    it was, in order, every record once. Returns the consumer (v30.. not committed)."""
    broker.create_topic(topic, partitions=1)
    broker.produce(topic, rows(100))
    consumer = broker.consumer(topic, group="g")
    first = _take(consumer, 30)  # a poll may return what arrived so far: take exactly 30
    assert first.num_rows == 30
    consumer.commit({0: first["offset"][-1].as_py()})
    second = _take(consumer, 30)  # read, not committed
    outage()
    restart.start()
    rest: list[pa.Table] = []
    deadline = time.monotonic() + 60
    while sum(t.num_rows for t in rest) < 40 and time.monotonic() < deadline:
        rest.append(consumer.poll(max_records=1000, timeout=1))
    restart.join()
    seen = [*first["value"].to_pylist(), *second["value"].to_pylist(),
            *pa.concat_tables(rest)["value"].to_pylist()]
    assert seen == [f"v{i}".encode() for i in range(100)], "in order, each once"
    return consumer


def test_nats_dies_mid_run_and_the_consumer_resumes(nats_server: NatsServer) -> None:
    """The server is killed between two polls and comes back during the retries: the consumer
    continues where it was, every record once; committed positions survive the restart."""
    from headwater.brokers._nats import NatsBroker

    topic = f"faults-{uuid.uuid4().hex[:8]}"
    broker = NatsBroker([nats_server.url], retries=10)  # a loaded machine restarts slowly
    restart = threading.Timer(1.0, nats_server.start)
    consumer = _read_through_outage(broker, topic, outage=nats_server.kill, restart=restart)
    consumer.close()
    # nothing committed after v29: a new member of the group gets at least v30..v99 again (a
    # server killed right after a commit may have lost that ack too: at least once, no loss)
    with broker.consumer(topic, group="g") as again:
        got: list[bytes] = []
        while len(got) < 100:
            table = again.poll(max_records=1000, timeout=2)
            if not table.num_rows:
                break
            got += table["value"].to_pylist()
    assert set(got) >= {f"v{i}".encode() for i in range(30, 100)}
    broker.close()


def test_nats_dies_and_stays_down(nats_server: NatsServer) -> None:
    from headwater.brokers._nats import NatsBroker

    topic = f"faults-{uuid.uuid4().hex[:8]}"
    broker = NatsBroker([nats_server.url], retries=2, name="iot")
    broker.create_topic(topic, partitions=1)
    broker.produce(topic, rows(5))
    consumer = broker.consumer(topic, group="g")
    assert consumer.poll(timeout=5).num_rows == 5
    nats_server.kill()
    with pytest.raises(BrokerError) as err:
        for _ in range(5):
            consumer.poll(timeout=0.5)
            broker.produce(topic, rows(1))
    assert "cannot reach NATS broker 'iot'" in err.value.message
    assert "brokers.iot.servers" in err.value.hint
    broker.close()


# -- Kinesis (moto's server on loopback: real HTTP) ----------------------------------------------

def _kinesis(endpoint: str | None, **options: object):
    from headwater.brokers._kinesis import KinesisBroker

    settings: dict[str, object] = {"region": "us-east-1", "access_key_id": "testing",
                                   "secret_access_key": "testing", "name": "shards",
                                   "lease_table": f"faults-{uuid.uuid4().hex[:8]}"}
    return KinesisBroker(endpoint_url=endpoint, **{**settings, **options})  # type: ignore[arg-type]


def test_kinesis_down_at_start_names_the_broker_and_the_setting() -> None:
    broker = _kinesis(f"http://127.0.0.1:{free_port()}", retries=2)
    started = time.monotonic()
    with pytest.raises(BrokerError) as err:
        broker.topics()
    assert time.monotonic() - started < 15, "gives up after its retries"
    assert "Kinesis broker 'shards'" in err.value.message and "3 attempts" in err.value.message
    assert "brokers.shards.endpoint_url" in err.value.hint
    assert "\n" not in err.value.message


def test_kinesis_without_credentials_region_or_stream_says_what_to_fix(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from .cases.brokers import moto_endpoint

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role look-up
    endpoint = moto_endpoint()
    cases = [
        (_kinesis(endpoint, access_key_id=None, secret_access_key=None),
         "no AWS credentials", "AWS_ACCESS_KEY_ID"),
        (_kinesis(None, region="xx-nowhere-1"), "unknown AWS region 'xx-nowhere-1'",
         "brokers.shards.region"),
        (_kinesis(endpoint, region=None), "no AWS region", "AWS_REGION"),
        (_kinesis(endpoint), "no topic 'missing'", "headwater stream topics"),
    ]
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    for broker, what, fix in cases:
        started = time.monotonic()
        with pytest.raises(BrokerError) as err:
            broker.partitions("missing")
        assert time.monotonic() - started < 5, f"{what}: not retried"
        assert what in err.value.message and fix in (err.value.hint or "")
        assert "\n" not in err.value.message


def test_kinesis_dies_mid_run_and_the_consumer_resumes() -> None:
    """moto's server stops between two polls and starts again (its streams live in this
    process, as a real endpoint's outlive a network cut) while the consumer retries: it goes on
    where it was; a new member of the group resumes from the committed positions."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    broker = _kinesis(f"http://127.0.0.1:{port}", retries=6, connect_timeout=0.5)
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, partitions=2)
    broker.produce(topic, rows(30))
    consumer = broker.consumer(topic, group="g")
    first = _take(consumer, 10)
    consumer.commit({p: o for p, o in zip(first["partition"].to_pylist(),
                                          first["offset"].to_pylist(), strict=True)})
    server.stop()
    restarted: list[ThreadedMotoServer] = []

    def come_back() -> None:
        time.sleep(1.5)
        again = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        again.start()
        restarted.append(again)

    thread = threading.Thread(target=come_back)
    thread.start()
    try:
        rest = _take(consumer, 20)  # retries while the endpoint is down
        thread.join()
        values = sorted(first["value"].to_pylist() + rest["value"].to_pylist())
        assert values == sorted(rows(30)["value"].to_pylist()), "every record once"
        consumer.close()
        with broker.consumer(topic, group="g") as member:
            resumed = _take(member, 20)
        assert sorted(resumed["value"].to_pylist()) == sorted(rest["value"].to_pylist())
    finally:
        thread.join()
        for s in restarted:
            s.stop()

# -- Kafka (librdkafka's mock cluster, whose brokers the test takes down and up) ----------------


@pytest.fixture
def kafka_cluster() -> Iterator:
    from .cases.kafka_mock import MockCluster

    cluster = MockCluster()
    yield cluster
    cluster.close()


def _kafka(cluster, **options):
    from .cases.kafka_mock import MOCK_GROUP_CONFIG, mock_broker

    return mock_broker(cluster, config=MOCK_GROUP_CONFIG, **options)


def test_kafka_down_at_start_names_the_broker_and_the_setting() -> None:
    from headwater.brokers._kafka import KafkaBroker

    broker = KafkaBroker(f"127.0.0.1:{free_port()}", retries=2, timeout=1.0, name="events")
    started = time.monotonic()
    with pytest.raises(BrokerError) as err:
        broker.topics()
    broker.close()
    assert time.monotonic() - started < 15, "gives up after its retries"
    assert "Kafka broker 'events'" in err.value.message and "3 attempts" in err.value.message
    assert "Connection refused" in err.value.message
    assert "brokers.events.bootstrap_servers" in err.value.hint
    assert "\n" not in err.value.message


def test_kafka_unknown_host_is_one_line() -> None:
    from headwater.brokers._kafka import KafkaBroker

    broker = KafkaBroker("no-such-host.invalid:9092", retries=0, timeout=1.0, name="bus")
    with pytest.raises(BrokerError) as err:
        broker.partitions("events")
    broker.close()
    assert "cannot reach Kafka broker 'bus' at no-such-host.invalid:9092" in err.value.message
    assert "brokers.bus.bootstrap_servers" in err.value.hint


def test_kafka_dies_mid_run_and_the_consumer_resumes(kafka_cluster) -> None:
    """Every broker of the cluster goes down between two polls and comes back during the
    retries: the consumer continues where it was, every record once; a new member of the
    group resumes from the committed position."""
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    broker = _kafka(kafka_cluster, retries=8, timeout=1.0)
    consumer = _read_through_outage(broker, topic, outage=kafka_cluster.down,
                                    restart=threading.Timer(3.0, kafka_cluster.up))
    consumer.close()
    with broker.consumer(topic, group="g") as again:
        got = _take(again, 70)["value"].to_pylist()
    assert got == [f"v{i}".encode() for i in range(30, 100)], "from the committed position"
    broker.close()


def test_kafka_dies_and_stays_down(kafka_cluster) -> None:
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    broker = _kafka(kafka_cluster, retries=1, timeout=1.0, delivery_timeout_s=2.0, name="iot")
    broker.create_topic(topic, partitions=1)
    broker.produce(topic, rows(5))
    consumer = broker.consumer(topic, group="g")
    assert _take(consumer, 5).num_rows == 5
    kafka_cluster.down()
    # librdkafka notices the cluster is gone at its own pace (seconds on a loaded machine):
    # poll until the error comes, for as long as a slow machine may need
    deadline = time.monotonic() + 60
    with pytest.raises(BrokerError) as err:
        while time.monotonic() < deadline:
            consumer.poll(timeout=0.5)
    assert "cannot reach Kafka broker 'iot'" in err.value.message
    assert "brokers.iot.bootstrap_servers" in err.value.hint
    with pytest.raises(BrokerError) as err:
        broker.produce(topic, rows(3))
    assert "3 of 3 records produced" in err.value.message
    assert "brokers.iot.delivery_timeout" in err.value.hint
    consumer.close()
    broker.close()


def test_kafka_group_members_rebalance(kafka_cluster) -> None:
    """Two members that subscribe (no fixed partitions): the coordinator splits the
    partitions between them, and together they see every record once; when one leaves, the
    other takes its partitions over from the committed positions."""
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    broker = _kafka(kafka_cluster, timeout=2.0)
    broker.create_topic(topic, partitions=4)
    a, b = broker.consumer(topic, group="g"), broker.consumer(topic, group="g")
    assert a.assignment() == [0, 1, 2, 3], "alone in the group: every partition"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (a.assignment() and b.assignment() and
                                               len(a.assignment()) == 2):
        a.poll(timeout=0.1)  # members take part in a rebalance while they poll
        b.poll(timeout=0.1)
    assert sorted(a.assignment() + b.assignment()) == [0, 1, 2, 3]
    assert set(a.assignment()).isdisjoint(b.assignment())
    broker.produce(topic, pa.table({"key": [f"k{i}".encode() for i in range(200)],
                                    "value": [f"v{i}".encode() for i in range(200)]}))
    got: dict[str, list[pa.Table]] = {"a": [], "b": []}
    while sum(t.num_rows for ts in got.values() for t in ts) < 200 and \
            time.monotonic() < deadline + 30:
        for name, member in (("a", a), ("b", b)):
            table = member.poll(timeout=0.2)
            if table.num_rows:
                got[name].append(table)
                member.commit({p: o for p, o in zip(table["partition"].to_pylist(),
                                                    table["offset"].to_pylist(), strict=True)})
    values = [v for ts in got.values() for t in ts for v in t["value"].to_pylist()]
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(200)), "each exactly once"
    for name, member in (("a", a), ("b", b)):
        parts = {p for t in got[name] for p in t["partition"].to_pylist()}
        assert parts <= set(member.assignment()), "a member reads only its partitions"
    b.close()
    broker.produce(topic, pa.table({"key": [f"k{i}".encode() for i in range(40)],
                                    "value": [f"w{i}".encode() for i in range(40)]}))
    later: list[bytes] = []
    while len(set(later)) < 40 and time.monotonic() < deadline + 60:
        later += a.poll(timeout=0.5)["value"].to_pylist()
    # at least once: what `a` read of its own partitions during the rebalance and had not
    # committed comes again
    assert set(later) == {f"w{i}".encode() for i in range(40)}
    assert a.assignment() == [0, 1, 2, 3], "the partitions of the member that left"
    a.close()
    broker.close()

"""librdkafka's built-in mock Kafka cluster, driven through its C API (ctypes).

No Kafka broker runs on these machines; librdkafka ships a mock cluster (``rdkafka_mock.h``)
that speaks the Kafka protocol on loopback sockets: produce, fetch, list offsets, metadata,
consumer groups (join, sync, heartbeat, offset commit and fetch), idempotent producers. The
Python client only exposes it as ``test.mock.num.brokers`` (a cluster inside one client);
the C API, loaded here from the library confluent-kafka bundles, also gives its bootstrap
address, creates topics (the mock has no CreateTopics API) and takes brokers down and up.

What the mock does not do (so what headwater's Kafka code is not verified against here):
CreateTopics, ListGroups/DescribeGroups, DescribeConfigs, timestamp lookups in ListOffsets
(headwater scans instead), SASL/TLS, and it refuses commits from outside a group that has
ever had members. Run as a script, it serves a cluster until its stdin closes:

    python tests/integration/cases/kafka_mock.py events:3 readings:2
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

#: The mock holds a group's rebalance until a member that left would have timed out: short
#: sessions keep a test's re-joins quick (a real cluster answers a clean leave at once).
MOCK_GROUP_CONFIG = {"session.timeout.ms": 1500, "heartbeat.interval.ms": 300}


def _library() -> ctypes.CDLL:
    import confluent_kafka

    here = os.path.dirname(confluent_kafka.__file__)
    found = sorted(glob.glob(os.path.join(here, os.pardir, "confluent_kafka.libs",
                                          "librdkafka*.so*")))
    lib = ctypes.CDLL(found[0] if found else "librdkafka.so.1")
    vp, i32 = ctypes.c_void_p, ctypes.c_int32
    for name, args, result in (
            ("rd_kafka_conf_new", [], vp),
            ("rd_kafka_conf_set", [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                   ctypes.c_size_t], ctypes.c_int),
            ("rd_kafka_new", [ctypes.c_int, vp, ctypes.c_char_p, ctypes.c_size_t], vp),
            ("rd_kafka_destroy", [vp], None),
            ("rd_kafka_mock_cluster_new", [vp, ctypes.c_int], vp),
            ("rd_kafka_mock_cluster_destroy", [vp], None),
            ("rd_kafka_mock_cluster_bootstraps", [vp], ctypes.c_char_p),
            ("rd_kafka_mock_set_controller_id", [vp, i32], ctypes.c_int),
            ("rd_kafka_mock_group_initial_rebalance_delay_ms", [vp, i32], None),
            ("rd_kafka_mock_topic_create", [vp, ctypes.c_char_p, ctypes.c_int, ctypes.c_int],
             ctypes.c_int),
            ("rd_kafka_mock_broker_set_down", [vp, i32], ctypes.c_int),
            ("rd_kafka_mock_broker_set_up", [vp, i32], ctypes.c_int)):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, result
    return lib


class MockCluster:
    """A mock Kafka cluster of ``brokers`` brokers on loopback, alive until ``close``."""

    def __init__(self, brokers: int = 3) -> None:
        self.lib = _library()
        self.brokers = brokers
        conf = self.lib.rd_kafka_conf_new()
        err = ctypes.create_string_buffer(512)
        for key, value in ((b"log_level", b"0"), (b"bootstrap.servers", b"127.0.0.1:1")):
            self.lib.rd_kafka_conf_set(conf, key, value, err, 512)
        self._rk = self.lib.rd_kafka_new(0, conf, err, 512)  # a handle that owns the cluster
        if not self._rk:
            raise RuntimeError(f"librdkafka: {err.value.decode()}")
        self._cluster = self.lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        self.lib.rd_kafka_mock_set_controller_id(self._cluster, 1)
        self.lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._cluster, 0)
        self.bootstrap_servers = self.lib.rd_kafka_mock_cluster_bootstraps(
            self._cluster).decode()

    def create_topic(self, topic: str, partitions: int, replicas: int = 1) -> None:
        code = self.lib.rd_kafka_mock_topic_create(self._cluster, topic.encode(), partitions,
                                                   replicas)
        if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
            raise RuntimeError(f"mock cluster: cannot create topic {topic}: error {code}")

    def down(self) -> None:
        """Every broker drops its connections and refuses new ones (state is kept)."""
        for broker in range(1, self.brokers + 1):
            self.lib.rd_kafka_mock_broker_set_down(self._cluster, broker)

    def up(self) -> None:
        for broker in range(1, self.brokers + 1):
            self.lib.rd_kafka_mock_broker_set_up(self._cluster, broker)

    def close(self) -> None:
        if self._cluster:
            self.lib.rd_kafka_mock_cluster_destroy(self._cluster)
            self.lib.rd_kafka_destroy(self._rk)
            self._cluster = self._rk = None


def mock_broker(cluster: MockCluster, **options):
    """A ``KafkaBroker`` on ``cluster`` whose ``create_topic`` uses the mock's own API (the
    mock has no CreateTopics) and whose ``close`` also ends the cluster."""
    from headwater.brokers import BrokerError
    from headwater.brokers._kafka import KafkaBroker

    class MockKafkaBroker(KafkaBroker):
        def create_topic(self, topic: str, *, partitions: int = 1) -> None:
            try:  # headwater's own checks and CreateTopics request first
                super().create_topic(topic, partitions=partitions)
            except BrokerError as exc:
                if "no CreateTopics API" not in exc.message:
                    raise
                cluster.create_topic(topic, partitions)

        def close(self) -> None:
            super().close()
            cluster.close()

    return MockKafkaBroker(cluster.bootstrap_servers, **options)


if __name__ == "__main__":
    served = MockCluster()
    for spec in sys.argv[1:]:
        name, _, count = spec.partition(":")
        served.create_topic(name, int(count or 1))
    print(served.bootstrap_servers, flush=True)
    sys.stdin.read()  # until the test closes our stdin (or dies)
    served.close()

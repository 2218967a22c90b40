"""``brokers:`` in headwater.yaml, ``open_broker``, and the brokers package's public surface."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import headwater.brokers
from headwater.brokers import BrokerError, EmbeddedBroker, open_broker
from headwater.config import EmbeddedBrokerSpec, KafkaBrokerSpec, parse_project
from headwater.config._project import check_broker_names
from headwater.core import ConfigError


def test_surface() -> None:
    assert set(headwater.brokers.__all__) == {
        "PRODUCE_SCHEMA", "RECORD_SCHEMA", "Broker", "BrokerError", "Consumer", "EmbeddedBroker",
        "Offset", "PartitionPosition", "Positions", "StartAt", "TopicInfo", "encode_rows",
        "follow", "group_positions", "lag", "last_positions", "offset_lag", "open_broker",
        "parse_start", "partition_for", "publish", "reached", "record_origins",
        "reset_positions", "split_partitions", "tail",
    }
    for name in headwater.brokers.__all__:
        assert hasattr(headwater.brokers, name)


def test_the_embedded_broker_always_exists(tmp_path: Path) -> None:
    project = parse_project("project: demo", root=tmp_path)
    spec = project.broker()
    assert isinstance(spec, EmbeddedBrokerSpec) and spec.fsync == "batch"
    broker = open_broker(spec, project.root)
    assert isinstance(broker, EmbeddedBroker)
    assert broker.path == tmp_path.resolve() / ".headwater" / "streams"


def test_named_brokers_and_their_settings(tmp_path: Path) -> None:
    project = parse_project(
        "brokers:\n"
        "  fast: {kind: embedded, path: /tmp/x, fsync: never, retention: 12h,\n"
        "         retention_bytes: 1000000, segment_bytes: 65536}\n"
        "  bus: {kind: kafka, bootstrap_servers: 'localhost:9092'}\n", root=tmp_path)
    assert sorted(project.brokers) == ["bus", "embedded", "fast"]
    fast = project.broker("fast")
    assert fast.retention_ms == 12 * 3_600_000
    broker = open_broker(fast, tmp_path)
    assert (broker.fsync, broker.retention_bytes, broker.segment_bytes, str(broker.path)) == \
        ("never", 1_000_000, 65536, "/tmp/x")
    assert isinstance(project.broker("bus"), KafkaBrokerSpec)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 2, brokers.x.fsync"):
        parse_project("brokers:\n  x: {kind: embedded, fsync: sometimes}\n")
    with pytest.raises(ConfigError, match=r"brokers.x.retention"):
        parse_project("brokers:\n  x: {kind: embedded, retention: forever}\n")
    with pytest.raises(ConfigError, match=r"brokers.x: Input tag .rabbit."):
        parse_project("brokers:\n  x: {kind: rabbit}\n")
    with pytest.raises(ConfigError, match="no broker 'nope'") as err:
        parse_project("project: demo").broker("nope")
    assert "brokers: embedded" in err.value.message


def test_a_pipeline_naming_an_unknown_broker() -> None:
    pipelines = {"events": SimpleNamespace(source=SimpleNamespace(broker="bus"))}
    with pytest.raises(ValueError, match=r"pipelines.events.source.broker: 'bus'"):
        check_broker_names({"embedded": EmbeddedBrokerSpec()}, pipelines)
    check_broker_names({"bus": EmbeddedBrokerSpec()}, pipelines)
    check_broker_names({}, {"files": SimpleNamespace(source=SimpleNamespace())})


def test_open_broker_without_the_implementation() -> None:
    spec = KafkaBrokerSpec(kind="kafka", bootstrap_servers="localhost:9092")
    try:
        import headwater.brokers._kafka  # noqa: F401  (present once the Kafka broker is merged)
    except ModuleNotFoundError:
        with pytest.raises(BrokerError, match="not part of this headwater build"):
            open_broker(spec, ".")
    else:
        assert open_broker(spec, ".").kind == "kafka"


def test_a_kinesis_broker_from_headwater_yaml(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HW_KEY", "AKIAEXAMPLE")
    project = parse_project(
        "project: demo\nbrokers:\n  aws:\n    kind: kinesis\n    region: eu-west-1\n"
        "    aws_access_key_id: ${HW_KEY}\n    aws_secret_access_key: ${HW_KEY}\n"
        "    stream_prefix: prod-\n    lease_duration: 20s\n    partitions: 4\n",
        root=tmp_path)
    broker = open_broker(project.broker("aws"), project.root)
    assert broker.kind == "kinesis" and broker.record_time == "arrival"
    assert broker.region == "eu-west-1" and broker.lease_duration_s == 20.0
    assert broker.stream_name("events") == "prod-events"
    assert broker.describe() == "Kinesis broker 'aws' at region eu-west-1"
    assert "AKIAEXAMPLE" not in repr(project.broker("aws"))
    assert broker.max_value_bytes == 1 << 20

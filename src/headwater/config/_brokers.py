"""Streaming platforms (``brokers:`` in headwater.yaml): the embedded log, NATS, Kafka, Kinesis.

A project always has a broker named ``embedded`` (the embedded log under .headwater/streams);
pipelines and ``headwater stream`` commands name the broker they use.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from headwater.core import check_duration, duration_ms

DEFAULT_BROKER = "embedded"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    _name: str | None = PrivateAttr(None)  # its key under `brokers:`, set by the project

    def setting(self, key: str) -> str:
        """Where a setting of this broker lives, for error messages: ``brokers.NAME.key``.

        >>> NatsBrokerSpec(kind="nats").setting("servers")
        'brokers.<name>.servers'
        """
        return f"brokers.{self._name or '<name>'}.{key}"


class EmbeddedBrokerSpec(_Spec):
    """The embedded durable log: partitioned segment files on disk, no server."""

    kind: Literal["embedded"] = "embedded"
    path: str = Field(".headwater/streams",
                      description="folder of the log (one sub-folder per topic), relative to "
                      "the project")
    fsync: Literal["always", "batch", "interval", "never"] = Field(
        "batch",
        description="when appends reach the disk: always (every frame and its index entry), "
        "batch (each partition once per produce call), interval (every fsync_interval_ms) or "
        "never (left to the OS; a kill -9 still loses nothing, a power cut may)")
    fsync_interval_ms: int = Field(1000, gt=0, description="for fsync: interval, in ms")
    segment_bytes: int = Field(256 << 20, ge=4096,
                               description="a segment file is sealed and a new one started "
                               "past this size (bytes)")
    retention_bytes: int | None = Field(
        None, gt=0, description="per partition: delete the oldest whole segments while the "
        "partition is bigger than this (bytes); unset keeps everything")
    retention: str | None = Field(
        None, description="delete whole segments whose newest record is older than this "
        "(e.g. 7d, 12h); unset keeps everything")
    check_crcs: bool = Field(False, description="readers verify every frame's CRC32 as well "
                             "(writers always check the last segment on open)")
    partitions: int = Field(1, ge=1, description="partitions of a topic that `headwater stream "
                            "publish` creates")

    @field_validator("retention")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return check_duration(value)

    @property
    def retention_ms(self) -> int | None:
        """``retention`` in milliseconds (``None``: keep)."""
        return None if self.retention is None else duration_ms(self.retention)


class NatsBrokerSpec(_Spec):
    """NATS JetStream: a stream per topic, a subject per partition, durable pull consumers
    (one per group and partition) that acknowledge what was committed."""

    kind: Literal["nats"]
    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"],
                               description="NATS server URLs")
    token: SecretStr | None = Field(None, description="auth token (use ${ENV})")
    user: str | None = Field(None, description="user name for user/password auth")
    password: SecretStr | None = Field(None, description="password (use ${ENV})")
    credentials: str | None = Field(None, description="a .creds file (NGS, decentralised "
                                    "JWT auth), relative to the project")
    stream_prefix: str = Field("headwater", pattern=r"^[A-Za-z0-9_-]+$",
                               description="JetStream stream names and subjects start with "
                               "this")
    partitions: int = Field(1, ge=1, description="partitions of a topic headwater creates")
    replicas: int = Field(1, ge=1, le=5, description="replicas of a stream headwater creates "
                          "(3 on a production cluster)")
    ack_wait: str = Field("60s", description="how long a delivered record may stay "
                          "unacknowledged before JetStream delivers it again")
    fetch_batch: int = Field(2000, ge=1, description="records asked for per pull request")
    connect_timeout: float = Field(2.0, gt=0, description="seconds to wait for a connection")
    retries: int = Field(4, ge=0, description="retries (with backoff) of a connection or "
                         "request before giving up with an error")

    @field_validator("ack_wait")
    @classmethod
    def _wait(cls, value: str) -> str:
        duration_ms(value)
        return value


class KafkaBrokerSpec(_Spec):
    """Apache Kafka through confluent-kafka (librdkafka): an idempotent producer, consumer
    groups with rebalancing, positions kept as the group's committed offsets."""

    kind: Literal["kafka"]
    bootstrap_servers: str = Field(description="host:port[,host:port...] of the cluster")
    config: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="extra librdkafka settings, e.g. security.protocol, sasl.mechanism, "
        "sasl.username, sasl.password (use ${ENV} for secrets)")
    partitions: int = Field(1, ge=1, description="partitions of a topic headwater creates")
    replicas: int = Field(1, ge=1, description="replication factor of a topic headwater "
                          "creates (3 on a production cluster)")
    timeout: float = Field(10.0, gt=0, description="seconds one request (metadata, offsets, "
                           "a commit) may take before it is retried")
    retries: int = Field(4, ge=0, description="retries (with backoff) of a request before "
                         "giving up with an error")
    delivery_timeout: str = Field("30s", description="how long the producer keeps retrying "
                                  "a record (librdkafka's message.timeout.ms) before an error")
    max_message_bytes: int = Field(1_000_000, ge=1024, description="the biggest record "
                                   "(key and value) to produce: the cluster's "
                                   "message.max.bytes or the topic's max.message.bytes")

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers or any(":" not in s for s in servers):
            raise ValueError(f"bootstrap_servers {value!r}: write host:port[,host:port...]")
        return ",".join(servers)

    @field_validator("delivery_timeout")
    @classmethod
    def _delivery(cls, value: str) -> str:
        duration_ms(value)
        return value


class KinesisBrokerSpec(_Spec):
    """Amazon Kinesis Data Streams: a stream per topic, shards as partitions, sequence numbers
    as offsets; consumer groups keep checkpoints and leases in a DynamoDB table."""

    kind: Literal["kinesis"]
    region: str | None = Field(None, description="AWS region (default: AWS_REGION / "
                               "AWS_DEFAULT_REGION or the profile's)")
    endpoint_url: str | None = Field(None, description="e.g. a VPC endpoint, or a moto server "
                                     "in tests (Kinesis and DynamoDB on one URL)")
    aws_access_key_id: SecretStr | None = Field(
        None, description="default: the usual AWS credential chain (environment, profile, "
        "instance role); use ${ENV}")
    aws_secret_access_key: SecretStr | None = Field(None, description="use ${ENV}")
    aws_session_token: SecretStr | None = Field(None, description="use ${ENV}")
    profile: str | None = Field(None, description="a profile of ~/.aws/config")
    stream_prefix: str = Field("", pattern=r"^[A-Za-z0-9_.-]*$",
                               description="a topic's stream is this prefix and the topic")
    lease_table: str = Field("headwater-kinesis-leases", pattern=r"^[A-Za-z0-9_.-]{3,255}$",
                             description="DynamoDB table of consumer-group checkpoints and "
                             "shard leases (created on first use, on-demand capacity)")
    lease_duration: str = Field("10s", description="a member that has not renewed its leases "
                                "for this long loses them to the others")
    partitions: int = Field(1, ge=1, description="shards of a stream headwater creates")
    retries: int = Field(4, ge=0, description="retries (with backoff) of a call that cannot "
                         "reach the endpoint or is throttled, before giving up with an error")
    connect_timeout: float = Field(3.0, gt=0, description="seconds to wait for a connection")

    @field_validator("lease_duration")
    @classmethod
    def _lease(cls, value: str) -> str:
        duration_ms(value)
        return value


BrokerSpec = Annotated[
    EmbeddedBrokerSpec | NatsBrokerSpec | KafkaBrokerSpec | KinesisBrokerSpec,
    Field(discriminator="kind"),
]


def default_brokers() -> dict[str, BrokerSpec]:
    """The brokers every project has: the embedded log named ``embedded``."""
    return {DEFAULT_BROKER: EmbeddedBrokerSpec()}

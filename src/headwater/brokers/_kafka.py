"""Apache Kafka behind the broker interface (confluent-kafka, i.e. librdkafka).

A **topic** is a Kafka topic and a **partition** a Kafka partition; records keep Kafka's own
key, value, timestamp and offset (contiguous numbers per partition). The producer is
idempotent (``enable.idempotence``: no duplicates or reordering from its retries) and puts
every record in the partition :func:`headwater.brokers.partition_for` names, so that one key
lands in the same partition number on every broker.

A **consumer group** is a Kafka consumer group; its **positions** are the group's committed
offsets (Kafka's "next offset to read", so position + 1), committed synchronously by
``commit`` after the sink committed. A consumer given ``partitions`` reads them by static
assignment (scale-out by ``--member i/n``); without, it subscribes and the group coordinator
assigns partitions and rebalances them as members come and go. After a rebalance a partition
is read again from the group's committed offset (at least once); a partition this consumer
keeps resumes after its last ``seek`` or ``commit``.

librdkafka reconnects by itself, with backoff (``reconnect.backoff.ms``); headwater's requests
(metadata, offsets, commits) are retried with backoff too (``retries``, ``timeout``) and end in
one :class:`BrokerError` that names the broker and the setting to fix. Its log lines go to
headwater's log at debug level, never to the terminal.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa

from headwater.brokers._base import (
    RECORD_SCHEMA,
    Broker,
    BrokerError,
    Consumer,
    Positions,
    StartAt,
    TopicInfo,
    unknown_topic,
)
from headwater.brokers._partition import partition_for
from headwater.brokers._records import check_sizes, normalise, records_table
from headwater.brokers._retry import backoff
from headwater.core import duration_ms, require
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config import KafkaBrokerSpec

log = get_logger(__name__)
T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_RECORD_OVERHEAD = 512  # a record batch's header and one record's framing, at most
_SCRATCH = "headwater-tail-"  # groups of `headwater stream tail`: static, nothing committed
_TS = RECORD_SCHEMA.field("timestamp").type
# a commit refused because the group's membership changed (or it has members elsewhere)
_MEMBERSHIP = {"UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION", "REBALANCE_IN_PROGRESS",
               "FENCED_INSTANCE_ID"}
_REFUSED = {"_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "TOPIC_AUTHORIZATION_FAILED",
            "GROUP_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED", "_SSL"}
_TRANSIENT = {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_RESOLVE", "_MSG_TIMED_OUT",
              "_WAIT_COORD", "REQUEST_TIMED_OUT", "NOT_COORDINATOR",
              "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS",
              "LEADER_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION", "NETWORK_EXCEPTION",
              "_TRANSPORT_ERROR", "BROKER_NOT_AVAILABLE", "_NODE_UPDATE"}


class _LibrdkafkaLog:
    """Where librdkafka's log lines go (confluent-kafka's ``logger`` setting): the debug log."""

    def log(self, level: int, fmt: str, *args: Any) -> None:
        log.debug("librdkafka", level=level, line=fmt % args if args else fmt)


def _name(error: Any) -> str:
    return error.name() if hasattr(error, "name") else str(error)


def _check(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BrokerError(f"{what} name {name!r} cannot be a Kafka {what} name",
                          hint="use letters, digits, '.', '_' and '-' (at most 249 characters)")
    return name


class KafkaBroker(Broker):
    """Apache Kafka as a broker (see the module docstring for how records map).

    Parameters (recorded; the first call connects): ``bootstrap_servers`` (``host:port,...``),
    ``config`` (extra librdkafka settings, e.g. SASL), ``replicas`` of topics it creates,
    ``timeout`` of one request and ``retries`` (with backoff) before a :class:`BrokerError`,
    ``delivery_timeout_s`` (how long the producer retries a record), ``max_message_bytes``
    (the cluster's record size limit) and ``name`` (its key under ``brokers:``, for messages).
    """

    kind = "kafka"

    def __init__(self, bootstrap_servers: str, *, config: Mapping[str, Any] | None = None,
                 replicas: int = 1, timeout: float = 10.0, retries: int = 4,
                 delivery_timeout_s: float = 30.0, max_message_bytes: int = 1_000_000,
                 name: str | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.config = dict(config or {})
        self.replicas = replicas
        self.timeout = timeout
        self.retries = retries
        self.delivery_timeout_s = delivery_timeout_s
        self.max_message_bytes = max_message_bytes
        self.name = name
        self._admin_client: Any = None
        self._producer_client: Any = None
        self._partitions: dict[str, int] = {}
        self._errors: list[Any] = []  # what librdkafka reported lately (error_cb)
        self._failed: list[Any] = []  # records the producer could not deliver
        self._lock = threading.Lock()

    # -- clients, retries, errors --------------------------------------------------------------

    def _setting(self, key: str) -> str:
        return f"brokers.{self.name or '<name>'}.{key}"

    def describe(self) -> str:
        label = f"Kafka broker '{self.name}'" if self.name else "Kafka"
        return f"{label} at {self.bootstrap_servers}"

    def _on_error(self, error: Any) -> None:
        with self._lock:
            self._errors = [*self._errors[-20:], error]
        log.debug("kafka_client_error", broker=self.describe(), error=str(error))

    def _on_delivery(self, error: Any, message: Any) -> None:  # failures only (see conf)
        if error is not None:
            self._failed.append(error)

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka settings for a client of this cluster: headwater's, then ``config``."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers, "client.id": "headwater",
            "error_cb": self._on_error, "logger": _LibrdkafkaLog(),
            "allow.auto.create.topics": False, "socket.timeout.ms": int(self.timeout * 1000),
            "reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 5000, **extra}
        conf.update(self.config)
        return conf

    def group_client(self, group: str) -> Any:
        """A consumer client of ``group`` that joins nothing (for offsets and scans)."""
        kafka = require("confluent_kafka", "kafka")
        return kafka.Consumer(self.client_config(**{
            "group.id": group, "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest"}))

    def _admin(self) -> Any:
        if self._admin_client is None:
            admin = require("confluent_kafka.admin", "kafka")
            self._admin_client = admin.AdminClient(self.client_config())
        return self._admin_client

    def _producer(self) -> Any:
        if self._producer_client is None:
            kafka = require("confluent_kafka", "kafka")
            self._producer_client = kafka.Producer(self.client_config(**{
                "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                "message.timeout.ms": int(self.delivery_timeout_s * 1000),
                "message.max.bytes": self.max_message_bytes + _RECORD_OVERHEAD,
                "delivery.report.only.error": True, "on_delivery": self._on_delivery}))
        return self._producer_client

    def request(self, call: Callable[[], T], what: str) -> T:
        """``call()`` (a request to the cluster), retried with backoff while the cluster is
        unreachable; refused credentials and other refusals end at once in a
        :class:`BrokerError` that says what to fix."""
        kafka = require("confluent_kafka", "kafka")
        delays = backoff(self.retries)
        self._errors = []
        while True:
            try:
                return call()
            except kafka.KafkaException as exc:
                error = exc.args[0] if exc.args else exc
                code = _name(error)
                reported = {_name(e) for e in self._errors}
                if code in _REFUSED or reported & _REFUSED:
                    raise self._refused(what, error) from None
                if code not in _TRANSIENT and not getattr(error, "retriable", bool)():
                    raise BrokerError(f"{self.describe()} refused to {what}: {_text(error)}",
                                      hint="check the topic and the cluster's settings with "
                                      "the Kafka tools (kafka-topics.sh, kafka-configs.sh)"
                                      ) from None
                delay = next(delays, None)
                if delay is None:
                    raise self._unreachable(what, error) from None
                log.warning("kafka_retry", broker=self.describe(), action=what,
                            error=_text(error), wait_s=round(delay, 2))
                time.sleep(delay)

    def _refused(self, what: str, error: Any) -> BrokerError:
        return BrokerError(
            f"{self.describe()} refused the credentials or permissions while trying to {what} "
            f"({_text(error)})",
            hint=f"check security.protocol, sasl.mechanism, sasl.username and sasl.password "
            f"under {self._setting('config')} (use ${{ENV}} for secrets) and the ACLs")

    def _unreachable(self, what: str, error: Any) -> BrokerError:
        for client in (self._admin_client, self._producer_client):
            if client is not None:
                client.poll(0)  # serves the error callbacks that say why
        last = [e for e in self._errors if _name(e) != "_ALL_BROKERS_DOWN"]
        reason = _text(last[-1] if last else error)
        return BrokerError(
            f"cannot reach {self.describe()} to {what} after {self.retries + 1} attempts "
            f"({reason})",
            hint=f"start the Kafka cluster, or fix {self._setting('bootstrap_servers')} in "
            f"headwater.yaml; {self._setting('retries')} and {self._setting('timeout')} set "
            "how long headwater keeps trying")

    # -- topics ---------------------------------------------------------------------------------

    def _metadata(self, topic: str | None = None) -> Any:
        what = f"look up topic '{topic}'" if topic else "list topics"
        return self.request(lambda: self._admin().list_topics(topic=topic,
                                                              timeout=self.timeout), what)

    def _count(self, topic: str) -> int:
        """The partition count of ``topic`` (cached), or the unknown-topic error."""
        known = self._partitions.get(topic)
        if known is not None:
            return known
        found = self._metadata(_check(topic, "topic")).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            if found is not None and found.error is not None and \
                    _name(found.error) != "UNKNOWN_TOPIC_OR_PART":
                raise BrokerError(f"{self.describe()}: topic '{topic}': {_text(found.error)}",
                                  hint="check the topic's ACLs and state with kafka-topics.sh")
            raise unknown_topic(topic, f"on {self.describe()}",
                                [t.name for t in self.topics()])
        self._partitions[topic] = len(found.partitions)
        return self._partitions[topic]

    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        from confluent_kafka.admin import NewTopic

        _check(topic, "topic")
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise BrokerError(f"topic '{topic}': partitions must be a whole number >= 1, "
                              f"got {partitions!r}", hint="use 1 or more partitions")
        found = self._metadata(topic).topics.get(topic)
        if found is not None and found.error is None and found.partitions:
            return

        def create() -> None:
            future = self._admin().create_topics(
                [NewTopic(topic, partitions, self.replicas)],
                request_timeout=self.timeout)[topic]
            try:
                future.result()
            except Exception as exc:
                error = exc.args[0] if exc.args else exc
                if _name(error) == "TOPIC_ALREADY_EXISTS":
                    return
                if _name(error) == "_UNSUPPORTED_FEATURE":
                    raise BrokerError(
                        f"{self.describe()} cannot create topics (no CreateTopics API)",
                        hint=f"create it with the cluster's tools: kafka-topics.sh --create "
                        f"--topic {topic} --partitions {partitions}") from None
                raise

        self.request(create, f"create topic '{topic}'")

    def _watermarks(self, topic: str, partitions: Sequence[int]) -> dict[int, tuple[int, int]]:
        """Per partition, (first offset kept, offset after the last record)."""
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec

        def ends(spec: Any) -> dict[int, int]:
            futures = self._admin().list_offsets(
                {TopicPartition(topic, p): spec for p in partitions},
                request_timeout=self.timeout)
            return {tp.partition: f.result().offset for tp, f in futures.items()}

        what = f"read the offsets of topic '{topic}'"
        low = self.request(lambda: ends(OffsetSpec.earliest()), what)
        high = self.request(lambda: ends(OffsetSpec.latest()), what)
        return {p: (low[p], high[p]) for p in partitions}

    def topics(self) -> list[TopicInfo]:
        out = []
        for name, meta in sorted(self._metadata().topics.items()):
            if name.startswith("__") or meta.error is not None:
                continue  # Kafka's own (__consumer_offsets, …)
            marks = self._watermarks(name, sorted(meta.partitions))
            out.append(TopicInfo(name, len(meta.partitions),
                                 records=sum(h - lo for lo, h in marks.values())))
        return out

    def partitions(self, topic: str) -> list[int]:
        return list(range(self._count(topic)))

    def end_positions(self, topic: str) -> Positions:
        marks = self._watermarks(topic, self.partitions(topic))
        return {p: high - 1 for p, (low, high) in marks.items() if high > low}

    def start_offsets(self, topic: str, partitions: Sequence[int],
                      start: StartAt) -> dict[int, int]:
        """Per partition, the offset of the first record to read from ``start``."""
        if not (start in ("earliest", "latest") or isinstance(start, datetime | Mapping)):
            raise BrokerError(f"cannot seek to {start!r}",
                              hint="use 'earliest', 'latest', a datetime or {partition: offset}")
        marks = self._watermarks(topic, partitions)
        if start == "earliest":
            return {p: lo for p, (lo, _) in marks.items()}
        if start == "latest":
            return {p: h for p, (_, h) in marks.items()}
        if isinstance(start, datetime):
            when = start if start.tzinfo else start.replace(tzinfo=UTC)
            return self._offsets_for_time(topic, marks, int(when.timestamp() * 1000))
        return {p: int(start[p]) + 1 if p in start else lo for p, (lo, _) in marks.items()}

    def _offsets_for_time(self, topic: str, marks: dict[int, tuple[int, int]],
                          ms: int) -> dict[int, int]:
        """The first offset at or after ``ms`` per partition (the end where none is): the
        cluster's time index answers (ListOffsets); where it says "none" but the partition's
        last record is that new, the cluster has no time index (e.g. librdkafka's mock
        cluster) and the partition is scanned instead, in batches."""
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec

        def lookup() -> dict[int, int]:
            futures = self._admin().list_offsets(
                {TopicPartition(topic, p): OffsetSpec.for_timestamp(ms) for p in marks},
                request_timeout=self.timeout)
            return {tp.partition: f.result().offset for tp, f in futures.items()}

        found = self.request(lookup, f"look up offsets by time in '{topic}'")
        out = {}
        for p, (low, high) in marks.items():
            offset = found.get(p, -1)
            if offset >= 0 or high <= low:
                out[p] = offset if offset >= 0 else high
                continue
            out[p] = self._scan_for_time(topic, p, low, high, ms)
        return out

    def _scan_for_time(self, topic: str, partition: int, low: int, high: int, ms: int) -> int:
        kafka = require("confluent_kafka", "kafka")
        reader = self.group_client(f"{_SCRATCH}scan")

        def batches(start: int) -> Any:
            reader.assign([kafka.TopicPartition(topic, partition, start)])
            at = start
            while at < high:
                batch = _take(reader, 10_000, self.timeout)
                if not batch:
                    raise self._unreachable(f"scan '{topic}' partition {partition}",
                                            "no records arrived within the timeout")
                yield batch
                at = int(batch[-1].offset()) + 1

        try:
            last = next(batches(high - 1))[-1]
            if last.timestamp()[1] < ms:
                return high  # nothing that new: the cluster's answer was right
            for batch in batches(low):
                stamps = np.array([m.timestamp()[1] for m in batch], dtype=np.int64)
                hit = np.flatnonzero(stamps >= ms)
                if len(hit):
                    return int(batch[int(hit[0])].offset())
            return high
        finally:
            reader.close()

    # -- producing ------------------------------------------------------------------------------

    @property
    def max_value_bytes(self) -> int | None:
        return self.max_message_bytes - _RECORD_OVERHEAD

    def produce(self, topic: str, records: pa.Table) -> int:
        n = self._count(topic)
        table = normalise(records, topic)
        if table.num_rows == 0:
            return 0
        check_sizes(table, self.max_value_bytes, topic=topic, where=self.describe(),
                    setting=f"{self._setting('max_message_bytes')} (with the cluster's "
                    "message.max.bytes)")
        parts = partition_for(table["key"], n).tolist()
        keys = table["key"].to_pylist()
        values = table["value"].to_pylist()
        stamps = table["timestamp"].cast(pa.int64()).to_pylist()
        producer = self._producer()
        self._failed = []
        send = producer.produce
        # librdkafka takes one record per call (produce_batch takes no timestamps); the
        # calls only queue: the records travel in batches, acknowledged by flush below
        for i in range(table.num_rows):
            while True:
                try:
                    send(topic, value=values[i], key=keys[i], partition=parts[i],
                         timestamp=stamps[i])
                    break
                except BufferError:  # the local queue is full: let it drain
                    producer.poll(0.05)
        left = producer.flush(self.delivery_timeout_s + self.timeout)
        if self._failed or left:
            failed, self._failed = self._failed, []
            if any(getattr(e, "fatal", bool)() for e in failed):
                self._producer_client = None  # an idempotent producer's fatal error: renew
            count = len(failed) + left
            error = failed[0] if failed else "not acknowledged in time"
            if failed and _name(failed[0]) in _REFUSED:
                raise self._refused(f"produce to '{topic}'", failed[0])
            raise BrokerError(
                f"{self.describe()}: {count:,} of {table.num_rows:,} records produced to "
                f"'{topic}' were not delivered ({_text(error)})",
                hint=f"check that the cluster is up and {self._setting('bootstrap_servers')}; "
                f"{self._setting('delivery_timeout')} sets how long headwater retries a record")
        return table.num_rows

    # -- consuming ------------------------------------------------------------------------------

    def consumer(self, topic: str, *, group: str,
                 partitions: Sequence[int] | None = None) -> KafkaConsumer:
        if not isinstance(group, str) or not group.strip():
            raise BrokerError(f"consumer group {group!r} cannot be empty",
                              hint="name the group, e.g. the pipeline's name")
        n = self._count(topic)
        if partitions is None and group.startswith(_SCRATCH):
            partitions = range(n)  # tail: read everything, join nothing
        chosen = None if partitions is None else sorted(set(partitions))
        bad = [p for p in chosen or [] if not 0 <= p < n]
        if bad:
            raise BrokerError(f"topic '{topic}' has partitions 0..{n - 1}, not {bad}",
                              hint="`headwater stream topics` shows the partition counts")
        return KafkaConsumer(self, topic, group, chosen)

    def groups(self, topic: str) -> list[str]:
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

        parts = self.partitions(topic)

        def listing() -> list[str]:
            found = self._admin().list_consumer_groups(request_timeout=self.timeout).result()
            return sorted(g.group_id for g in found.valid
                          if not g.group_id.startswith(_SCRATCH))

        out = []
        for group in self.request(listing, "list the consumer groups"):
            def offsets(g: str = group) -> list[Any]:
                request = ConsumerGroupTopicPartitions(
                    g, [TopicPartition(topic, p) for p in parts])
                result = self._admin().list_consumer_group_offsets(
                    [request], request_timeout=self.timeout)[g].result()
                return result.topic_partitions or []

            got = self.request(offsets, f"read group '{group}'")
            if any(tp.offset >= 0 for tp in got):
                out.append(group)
        return out

    def reset_group(self, topic: str, group: str, start: StartAt) -> Positions:
        kafka = require("confluent_kafka", "kafka")
        targets = self.start_offsets(topic, self.partitions(topic), start)
        client = self.group_client(group)
        offsets = [kafka.TopicPartition(topic, p, o) for p, o in sorted(targets.items())]
        try:
            self.request(lambda: client.commit(offsets=offsets, asynchronous=False),
                         f"reset group '{group}' on '{topic}'")
        except BrokerError as exc:
            if any(m in exc.message for m in _MEMBERSHIP):
                raise BrokerError(f"{self.describe()}: group '{group}' has active members, "
                                  "so its positions cannot be moved from outside",
                                  hint="stop its consumers first, then reset again") from None
            raise
        finally:
            client.close()
        return {p: o - 1 for p, o in targets.items() if o > 0}

    def close(self) -> None:
        producer, self._producer_client = self._producer_client, None
        if producer is not None:
            left = producer.flush(self.timeout)
            if left:
                log.warning("kafka_close_undelivered", broker=self.describe(), records=left)
        self._admin_client = None


def _text(error: Any) -> str:
    return error.str() if hasattr(error, "str") else str(error)


def _take(client: Any, max_records: int, timeout: float) -> list[Any]:
    """Up to ``max_records`` messages: what is there, else the first to arrive within
    ``timeout`` seconds and what came with it (librdkafka's ``consume`` alone would wait the
    whole timeout for a full batch)."""
    got = client.consume(num_messages=max_records, timeout=0)
    if got:
        return got
    first = client.poll(timeout)
    if first is None:
        return []
    return [first, *client.consume(num_messages=max_records - 1, timeout=0)] \
        if max_records > 1 else [first]


class KafkaConsumer(Consumer):
    """A reader of one Kafka topic for one group: static partitions, or a group member."""

    def __init__(self, broker: KafkaBroker, topic: str, group: str,
                 partitions: list[int] | None) -> None:
        self.broker = broker
        self.topic = topic
        self.group = group
        self.static = partitions is not None
        self._assigned: list[int] = list(partitions or [])
        self._joined = self.static
        self._client: Any = None
        self._resume: dict[int, int] = {}  # next offset to read after a seek or commit
        self._buffer: list[Any] = []  # read while joining the group
        self._down = False

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        kafka = require("confluent_kafka", "kafka")

        def on_error(error: Any) -> None:
            self.broker._on_error(error)
            if _name(error) == "_ALL_BROKERS_DOWN":
                self._down = True

        conf = self.broker.client_config(**{
            "group.id": self.group, "enable.auto.commit": False,
            "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "enable.partition.eof": False, "error_cb": on_error})
        conf.setdefault("partition.assignment.strategy", "range")
        self._cooperative = "cooperative" in str(conf["partition.assignment.strategy"])
        client = kafka.Consumer(conf)
        self._client = client
        if self.static:
            client.assign([kafka.TopicPartition(self.topic, p,
                                                self._resume.get(p, kafka.OFFSET_STORED))
                           for p in self._assigned])
        else:
            client.subscribe([self.topic], on_assign=self._on_assign,
                             on_revoke=self._on_revoke, on_lost=self._on_revoke)
        return client

    def _on_assign(self, client: Any, assigned: list[Any]) -> None:
        for tp in assigned:
            if tp.partition in self._resume:
                tp.offset = self._resume[tp.partition]
        if self._cooperative:
            client.incremental_assign(assigned)
        else:
            client.assign(assigned)
        self._assigned = sorted({*self._assigned, *(tp.partition for tp in assigned)})
        self._joined = True
        log.info("kafka_assigned", topic=self.topic, group=self.group,
                 partitions=self._assigned)

    def _on_revoke(self, client: Any, revoked: list[Any]) -> None:
        gone = {tp.partition for tp in revoked}
        self._buffer = [m for m in self._buffer if m.partition() not in gone]
        self._assigned = [p for p in self._assigned if p not in gone]
        for p in gone:
            self._resume.pop(p, None)
        if self._cooperative:
            client.incremental_unassign(revoked)
        else:
            client.unassign()

    def _join(self) -> None:
        """Wait for the group coordinator's first assignment (records read meanwhile wait in
        the buffer)."""
        client = self._connect()
        deadline = time.monotonic() + self.broker.timeout * 3
        while not self._joined:
            self._buffer += self._read(client, 1000, 0.2)
            if time.monotonic() > deadline and not self._joined:
                raise BrokerError(
                    f"{self.broker.describe()}: no partitions of '{self.topic}' assigned to "
                    f"group '{self.group}' within {self.broker.timeout * 3:.0f} s",
                    hint="check the cluster's group coordinator, or whether the group already "
                    "has as many members as the topic has partitions")

    def assignment(self) -> list[int]:
        if not self._joined:
            self._join()
        return list(self._assigned)

    def seek(self, start: StartAt) -> None:
        kafka = require("confluent_kafka", "kafka")
        parts = self.assignment()
        targets = self.broker.start_offsets(self.topic, parts, start)
        self._resume.update(targets)
        self._buffer = []
        client = self._connect()
        tps = [kafka.TopicPartition(self.topic, p, o) for p, o in targets.items()]
        if self.static:
            client.assign(tps)
        else:
            for tp in tps:
                self.broker.request(lambda tp=tp: client.seek(tp),
                                    f"seek group '{self.group}' on '{self.topic}'")

    def _read(self, client: Any, max_records: int, timeout: float) -> list[Any]:
        messages = _take(client, max_records, timeout)
        bad = [m for m in messages if m.error() is not None]
        if bad:
            error = bad[0].error()
            if _name(error) == "UNKNOWN_TOPIC_OR_PART":
                raise BrokerError(f"no topic '{self.topic}' on {self.broker.describe()} "
                                  "any more", hint="`headwater stream topics` lists them")
            if not error.retriable() and _name(error) not in _TRANSIENT:
                raise BrokerError(f"{self.broker.describe()}: reading '{self.topic}' failed: "
                                  f"{_text(error)}", hint="check the topic and the group's "
                                  "ACLs with the Kafka tools")
            messages = [m for m in messages if m.error() is None]
        return messages

    def poll(self, *, max_records: int = 10_000, timeout: float = 1.0) -> pa.Table:
        client = self._connect()
        if not self._joined:
            self._join()
        messages, self._buffer = self._buffer[:max_records], self._buffer[max_records:]
        if len(messages) < max_records:
            messages += self._read(client, max_records - len(messages),
                                   0 if messages else timeout)
        if not messages:
            if self._down:  # the cluster went away: wait for it (with backoff) or give up
                self.broker.request(lambda: client.list_topics(self.topic,
                                                               timeout=self.broker.timeout),
                                    f"read topic '{self.topic}'")
                self._down = False
            return RECORD_SCHEMA.empty_table()
        self._down = False
        rows = [(m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1])
                for m in messages]
        parts, offsets, keys, values, stamps = zip(*rows, strict=True)
        return records_table(np.array(parts, dtype=np.int32), pa.array(offsets, pa.int64()),
                             pa.array(keys, pa.binary()), pa.array(values, pa.binary()),
                             pa.array(stamps, pa.int64()).cast(_TS))

    def commit(self, positions: Positions) -> None:
        kafka = require("confluent_kafka", "kafka")
        if not positions:
            return
        client = self._connect()
        if self.static:
            bad = [p for p in positions if p not in self._assigned]
            if bad:
                raise BrokerError(f"this consumer of '{self.topic}' (group '{self.group}') is "
                                  f"not assigned partitions {sorted(bad)}",
                                  hint=f"it reads partitions {self._assigned}")
        else:
            moved = [p for p in positions if p not in self._assigned]
            if moved:  # revoked since: their new owner reads them from the group's offset
                log.warning("kafka_commit_after_rebalance", topic=self.topic, group=self.group,
                            partitions=sorted(moved))
            positions = {p: o for p, o in positions.items() if p in self._assigned}
            if not positions:
                return
        offsets = [kafka.TopicPartition(self.topic, p, int(o) + 1)
                   for p, o in sorted(positions.items())]
        try:
            self.broker.request(lambda: client.commit(offsets=offsets, asynchronous=False),
                                f"commit group '{self.group}' on '{self.topic}'")
        except BrokerError as exc:
            if not any(m in exc.message for m in _MEMBERSHIP):
                raise
            if self.static:
                raise BrokerError(
                    f"{self.broker.describe()}: group '{self.group}' has members that the "
                    "coordinator assigns partitions to, so this consumer with fixed "
                    "partitions cannot commit for it", hint="use another group for fixed "
                    "partitions, or stop the group's other consumers") from None
            log.warning("kafka_commit_refused_rebalance", topic=self.topic, group=self.group,
                        error=exc.message)
            return
        self._resume.update({p: int(o) + 1 for p, o in positions.items()})

    def committed(self) -> Positions:
        kafka = require("confluent_kafka", "kafka")
        # a member that has not joined asks with a client of its own: asking must not join
        joined = self._joined and self._client is not None
        client = self._client if joined else self.broker.group_client(self.group)
        parts = self._assigned if self._joined else self.broker.partitions(self.topic)
        try:
            found = self.broker.request(
                lambda: client.committed([kafka.TopicPartition(self.topic, p) for p in parts],
                                         timeout=self.broker.timeout),
                f"read group '{self.group}' on '{self.topic}'")
        finally:
            if not joined:
                client.close()
        return {tp.partition: tp.offset - 1 for tp in found if tp.offset > 0}

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.close()  # leaves the group; nothing is committed by closing
        except RuntimeError as exc:
            log.debug("kafka_consumer_close_failed", error=str(exc))


def from_spec(spec: KafkaBrokerSpec, root: Path) -> KafkaBroker:
    """The broker a ``KafkaBrokerSpec`` describes (``root`` is unused: no local files)."""
    return KafkaBroker(
        spec.bootstrap_servers,
        config={k: v.get_secret_value() for k, v in spec.config.items()},
        replicas=spec.replicas, timeout=spec.timeout, retries=spec.retries,
        delivery_timeout_s=duration_ms(spec.delivery_timeout) / 1000,
        max_message_bytes=spec.max_message_bytes, name=spec._name)

"""Streaming platforms behind one interface: topics, partitions, offsets, consumer groups.

A **Broker** holds **topics**. A topic has **partitions**, each an ordered log of records; a
record's **offset** says where it stands in its partition (a number for the embedded log and
Kafka, a JetStream sequence for NATS, a sequence-number string for Kinesis). Records travel
as Arrow tables in both directions, so nothing downstream handles one record at a time:

- :data:`PRODUCE_SCHEMA` (what ``produce`` takes): ``key`` (binary, may be null), ``value``
  (binary) and, optionally, ``timestamp`` (when the record happened; the broker's clock if
  absent). Records are partitioned by key (:func:`headwater.brokers.partition_for`), so every
  broker sends one key to the same partition number and per-key order holds.
- :data:`RECORD_SCHEMA` (what ``poll`` returns): ``partition``, ``offset``, ``key``, ``value``,
  ``timestamp``. Kinesis offsets are text (sequence numbers exceed 64 bits); the others int64.

**Positions** (:data:`Positions`) map a partition to the offset of the *last record handled*
there. They are what a sink commits with its rows (exactly once: the position and the rows in
one transaction) and what a consumer resumes after. ``commit`` acknowledges them to the broker
too (the group's durable position, redelivery of what was not acknowledged, lag); the sink's
copy wins on restart because it is the one written with the data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import ClassVar, Literal

import pyarrow as pa

from headwater.core import SourceError

#: An offset in one partition: int64 for most brokers, a sequence-number string for Kinesis.
Offset = int | str
#: partition -> offset of the last record handled in it.
Positions = dict[int, Offset]
#: Where a consumer starts: the oldest record kept, the next one produced, the first record at
#: or after a time, or after given positions (partitions not named start at ``earliest``).
StartAt = Literal["earliest", "latest"] | datetime | Mapping[int, Offset]

#: What ``Broker.produce`` takes (``timestamp`` optional).
PRODUCE_SCHEMA = pa.schema([
    ("key", pa.binary()),
    ("value", pa.binary()),
    ("timestamp", pa.timestamp("ms", tz="UTC")),
])

#: What ``Consumer.poll`` returns (Kinesis: ``offset`` is ``pa.string()``).
RECORD_SCHEMA = pa.schema([
    ("partition", pa.int32()),
    ("offset", pa.int64()),
    ("key", pa.binary()),
    ("value", pa.binary()),
    ("timestamp", pa.timestamp("ms", tz="UTC")),
])


class BrokerError(SourceError):
    """A broker cannot be reached, refused a request, or has no such topic."""


def unknown_topic(topic: str, where: str, known: Sequence[str],
                  detail: str = "") -> BrokerError:
    """The error for a topic that is not there: ``where`` (e.g. "on NATS at …"), the topics
    that are (ten at most), and how to list or create them (``detail``: more to say first).

    >>> unknown_topic("x", "on Kafka", ["a"]).message
    "no topic 'x' on Kafka (topics: a)"
    """
    listed = ", ".join(known[:10]) + (f", … ({len(known)} in all)" if len(known) > 10
                                      else "") or "none yet"
    return BrokerError(f"no topic '{topic}' {where} ({detail}topics: {listed})",
                       hint="`headwater stream topics` lists them; `headwater stream publish "
                       f"FILE --topic {topic}` creates it")


@dataclass(frozen=True)
class TopicInfo:
    """A topic as ``headwater stream topics`` shows it (``None``: the broker does not say)."""

    name: str
    partitions: int
    records: int | None = None
    bytes: int | None = None


class Consumer(ABC):
    """Reads one topic, for one consumer group, from the partitions assigned to it.

    Constructors record; the first ``poll`` connects. Without ``seek``, a consumer starts
    after its group's committed positions, and at ``earliest`` where the group has none.
    """

    topic: str
    group: str

    @abstractmethod
    def assignment(self) -> list[int]:
        """The partitions this consumer reads now (a group rebalance may change them)."""

    @abstractmethod
    def seek(self, start: StartAt) -> None:
        """Read from ``start`` on: ``earliest``, ``latest``, a time, or after positions."""

    @abstractmethod
    def poll(self, *, max_records: int = 10_000, timeout: float = 1.0) -> pa.Table:
        """Up to ``max_records`` records (:data:`RECORD_SCHEMA`), in offset order within each
        partition; an empty table when none arrived within ``timeout`` seconds."""

    @abstractmethod
    def commit(self, positions: Positions) -> None:
        """Acknowledge every record up to ``positions`` (durable for the group)."""

    @abstractmethod
    def committed(self) -> Positions:
        """The group's acknowledged positions on the assigned partitions."""

    def close(self) -> None:  # noqa: B027 - optional for consumers without a connection
        """Leave the group and release connections; nothing is acknowledged by closing."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Broker(ABC):
    """A streaming platform: the embedded log, NATS JetStream, Kafka or Kinesis."""

    #: ``embedded``, ``nats``, ``kafka`` or ``kinesis``.
    kind: ClassVar[str] = "broker"
    #: What a record's ``timestamp`` is: the one it was produced with (``producer``), or when
    #: the broker received it (``arrival``: Kinesis keeps no time of a record's own). A seek by
    #: time goes by the same clock.
    record_time: ClassVar[Literal["producer", "arrival"]] = "producer"

    @abstractmethod
    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        """Create ``topic`` with ``partitions`` partitions; nothing to do if it exists."""

    @abstractmethod
    def topics(self) -> list[TopicInfo]:
        """Every topic with its partition count (and size, where the broker knows it)."""

    @abstractmethod
    def partitions(self, topic: str) -> list[int]:
        """The partitions of ``topic``; :class:`BrokerError` naming the topic if unknown."""

    @abstractmethod
    def produce(self, topic: str, records: pa.Table) -> int:
        """Append ``records`` (:data:`PRODUCE_SCHEMA`), partitioned by key. Returns the count
        written; when it returns, the broker has them (acknowledged, or fsynced by policy)."""

    @abstractmethod
    def consumer(self, topic: str, *, group: str,
                 partitions: Sequence[int] | None = None) -> Consumer:
        """A consumer of ``topic`` for ``group``: on ``partitions`` if given, else on what the
        broker's group coordination assigns (all partitions where the broker has none)."""

    @abstractmethod
    def end_positions(self, topic: str) -> Positions:
        """Per partition, the offset of the last record now in it (empty partitions left out):
        what "drain to the end" reads up to, and what lag is measured against."""

    @property
    def max_value_bytes(self) -> int | None:
        """The most bytes one record's key and value may have together here (``None``: no
        limit headwater knows of). ``produce`` refuses bigger records with a
        :class:`BrokerError` naming the setting that raises the limit."""
        return None

    def group_lag(self, topic: str, group: str) -> dict[int, int] | None:
        """Per partition, the records of ``topic`` that ``group`` has not acknowledged, where
        the broker counts them itself (NATS: its consumers' pending counts); ``None`` where
        lag is the distance between offsets (see :func:`headwater.brokers.group_positions`)."""
        return None

    def groups(self, topic: str) -> list[str]:
        """The consumer groups known to have positions on ``topic`` (for lag; empty where the
        broker cannot list them)."""
        self.partitions(topic)
        return []

    def reset_group(self, topic: str, group: str, start: StartAt) -> Positions:
        """Commit ``group``'s positions so that its next consumer reads from ``start``.

        Here for ``latest`` (commit the end positions); brokers that can look offsets up by
        time or rewind a group override it.
        """
        if start != "latest":
            raise BrokerError(f"the {self.kind} broker cannot reset group '{group}' to "
                              f"{start!r} from headwater", hint="reset it to latest, or with "
                              "the broker's own tools")
        positions = self.end_positions(topic)
        with self.consumer(topic, group=group) as consumer:
            consumer.commit(positions)
        return positions

    def describe(self) -> str:
        """One line for people: which broker, where (never a secret)."""
        return self.kind

    def close(self) -> None:  # noqa: B027 - optional for brokers without a connection
        """Release connections."""

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

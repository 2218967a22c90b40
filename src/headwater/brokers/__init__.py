"""Streaming platforms behind one interface (see ``_base``): produce and consume Arrow batches.

Below both ``headwater.ingest`` (a stream as a source) and ``headwater.stream`` (the stream
processor), which must not import each other; it needs only ``headwater.core``.
"""

from headwater.brokers._base import (
    PRODUCE_SCHEMA,
    RECORD_SCHEMA,
    Broker,
    BrokerError,
    Consumer,
    Offset,
    Positions,
    StartAt,
    TopicInfo,
)
from headwater.brokers._partition import partition_for

__all__ = [
    "PRODUCE_SCHEMA",
    "RECORD_SCHEMA",
    "Broker",
    "BrokerError",
    "Consumer",
    "Offset",
    "Positions",
    "StartAt",
    "TopicInfo",
    "partition_for",
]

"""Streaming platforms behind one interface (see ``_base``): produce and consume Arrow batches.

Below both ``headwater.ingest`` (a stream as a source) and ``headwater.stream`` (the stream
processor), which must not import each other; it needs only ``headwater.core``,
``headwater.config`` and ``headwater.monitor``.
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
from headwater.brokers._embedded import EmbeddedBroker
from headwater.brokers._open import open_broker
from headwater.brokers._partition import partition_for, split_partitions
from headwater.brokers._tools import (
    PartitionPosition,
    encode_rows,
    follow,
    group_positions,
    lag,
    last_positions,
    offset_lag,
    parse_start,
    publish,
    reached,
    record_origins,
    reset_positions,
    tail,
)

__all__ = [
    "PRODUCE_SCHEMA",
    "RECORD_SCHEMA",
    "Broker",
    "BrokerError",
    "Consumer",
    "EmbeddedBroker",
    "Offset",
    "PartitionPosition",
    "Positions",
    "StartAt",
    "TopicInfo",
    "encode_rows",
    "follow",
    "group_positions",
    "lag",
    "last_positions",
    "offset_lag",
    "open_broker",
    "parse_start",
    "partition_for",
    "publish",
    "reached",
    "record_origins",
    "reset_positions",
    "split_partitions",
    "tail",
]

"""A topic of a broker as an ingestion source: micro-batches that commit with their positions.

Each extract is one micro-batch: up to ``max_rows`` records fetched in whole Arrow batches (or
what arrived within ``max_latency``), decoded in one pass (:mod:`._payloads`). Its position is
the last offset of every partition it read, stored under ``<topic>/<partition>`` in the sink's
state in the same transaction as its rows and quarantine; the consumer group is acknowledged
only after that commit (``Extract.acknowledge``). A run starts after the sink's positions (they
win over the group's, since they are the ones written with the data), so a crash at any moment
loses nothing and loads nothing twice.

Without ``follow`` a run drains the topic to the end it had when the run began. With
``follow`` the source keeps fetching until ``stop`` is set, and each call of ``extracts`` ends
after ``window_s`` seconds (at a commit), so that every window gets its own run record.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from headwater.brokers import last_positions, reached
from headwater.core import Batch, Extract, Source, State
from headwater.ingest.sources._avro import AvroDecoder, load_schema
from headwater.ingest.sources._payloads import PayloadDecoder, PayloadFormat
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.brokers import Broker, Consumer, Offset
    from headwater.config._sources import StreamSpec

log = get_logger(__name__)

#: Draining: give up on reaching the end after this long without a record (a broker whose
#: last offsets are never delivered, such as Kafka's transaction markers).
_IDLE_END_S = 10.0


class StreamSource(Source):
    """The records of ``topic`` on ``broker``, for consumer group ``group``.

    Parameters
    ----------
    broker:
        Any :class:`headwater.brokers.Broker`; the source does not close it.
    topic, group:
        What to read, and the consumer group acknowledged after each commit.
    format:
        ``json``, ``jsonl``, ``csv`` or ``avro`` (see :class:`._payloads.PayloadDecoder`,
        which also takes ``max_payload_bytes``, ``encoding``, ``columns``, ``nested`` and, for
        avro, ``avro``: an :class:`._avro.AvroDecoder`).
    start:
        ``earliest`` or ``latest``: where a pipeline with no committed positions starts.
    max_rows, max_latency_s:
        A micro-batch (one commit) ends at ``max_rows`` records or, while following, after
        ``max_latency_s`` seconds, whichever comes first.
    follow, window_s, stop:
        Keep reading until ``stop`` is set; each ``extracts`` call lasts at most ``window_s``.
    partitions:
        Read only these partitions (default: what the broker's group assigns).
    """

    kind = "stream"

    def __init__(self, broker: Broker, topic: str, *, group: str,
                 format: PayloadFormat = "json", start: str = "earliest",
                 max_rows: int = 200_000, max_latency_s: float = 1.0, follow: bool = False,
                 window_s: float = 60.0, stop: threading.Event | None = None,
                 max_payload_bytes: int = 1 << 20, encoding: str = "utf-8",
                 columns: list[str] | None = None, nested: str = "flatten",
                 partitions: list[int] | None = None, avro: AvroDecoder | None = None) -> None:
        self.broker = broker
        self.topic = topic
        self.group = group
        self.format = format
        self.start = start
        self.max_rows = max_rows
        self.max_latency_s = max_latency_s
        self.follow = follow
        self.window_s = window_s
        self.stop = stop or threading.Event()
        self.partitions = partitions
        self.decoder = PayloadDecoder(format, label=topic, max_payload_bytes=max_payload_bytes,
                                      encoding=encoding, columns=columns, nested=nested,
                                      avro=avro)
        #: Close the broker with the source (set when the source opened it).
        self.owns_broker = False
        self._consumer: Consumer | None = None
        self._at: dict[int, Offset] | None = None  # where the consumer stands (committed)

    @classmethod
    def from_spec(cls, spec: StreamSpec, broker: Broker, *, pipeline: str,
                  columns: list[str] | None = None,
                  root: str | Path = ".") -> StreamSource:
        """Build from the headwater.yaml model; ``columns`` (csv) default to the contract's;
        an Avro schema file is under ``root``, the project folder."""
        from headwater.core import duration_ms

        avro = None
        if spec.avro is not None:
            path = Path(spec.avro.schema_file).expanduser()
            avro = AvroDecoder(load_schema(path if path.is_absolute() else Path(root) / path),
                               framing=spec.avro.framing, schema_id=spec.avro.schema_id,
                               nested=spec.nested)

        return cls(broker, spec.topic, group=spec.group or f"headwater-{pipeline}",
                   format=spec.format, start=spec.start, max_rows=spec.max_rows,
                   max_latency_s=duration_ms(spec.max_latency) / 1000,
                   window_s=duration_ms(spec.window) / 1000,
                   max_payload_bytes=spec.max_payload_bytes, encoding=spec.encoding,
                   columns=spec.columns or columns, nested=spec.nested, avro=avro)

    def describe(self) -> str:
        """One line for people."""
        return f"{self.format} records of topic {self.topic} on {self.broker.describe()}"

    def state_key(self, partition: int) -> str:
        """Where the position of ``partition`` is kept in the sink's state."""
        return f"{self.topic}/{partition}"

    def close(self) -> None:
        """Leave the consumer group (nothing is acknowledged by closing); close the broker if
        the source opened it."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
            self._at = None
        if self.owns_broker:
            self.broker.close()

    # -- extracts ------------------------------------------------------------------------------

    def extracts(self, state: State) -> Iterator[Extract]:
        """One extract per micro-batch, from the sink's positions on: to the topic's end, or
        (``follow``) until ``stop`` is set or the window is over."""
        consumer = self._open(state)
        assigned = consumer.assignment() or self.broker.partitions(self.topic)
        end = {p: o for p, o in self.broker.end_positions(self.topic).items() if p in assigned}
        seen: dict[int, Offset] = dict(self._at or {})
        window_ends = time.monotonic() + self.window_s
        idle_since = time.monotonic()
        while not self.stop.is_set():
            if not self.follow and reached(seen, end):
                return
            if self.follow and time.monotonic() >= window_ends:
                return
            records = self._fetch(consumer, seen, end)
            if not records.num_rows:
                if not self.follow and time.monotonic() - idle_since > _IDLE_END_S:
                    log.warning("stream_end_not_reached", topic=self.topic,
                                reached={str(p): o for p, o in seen.items()},
                                end={str(p): o for p, o in end.items()})
                    return
                continue
            idle_since = time.monotonic()
            last = last_positions(records)
            yield self._extract(consumer, records, last)
            # here only once the extract committed: the loader stops at a failed one
            seen.update(last)
            self._at = {**(self._at or {}), **last}

    def _open(self, state: State) -> Consumer:
        """The consumer, placed after the sink's positions (re-placed if they moved)."""
        if self._consumer is None:
            self._consumer = self.broker.consumer(self.topic, group=self.group,
                                                  partitions=self.partitions)
        consumer = self._consumer
        assigned = consumer.assignment() or self.broker.partitions(self.topic)
        stored: dict[int, Offset] = {}
        for p in assigned:
            position = state.get(self.state_key(p))
            if position is not None:
                stored[p] = position["offset"]
        if stored != self._at:
            consumer.seek(stored if stored else self.start)  # type: ignore[arg-type]
            self._at = stored
        return consumer

    def _fetch(self, consumer: Consumer, seen: dict[int, Offset],
               end: dict[int, Offset]) -> pa.Table:
        """One micro-batch: whole batches from the broker until ``max_rows``, the latency
        bound (following), or the end (draining)."""
        parts: list[pa.Table] = []
        got = 0
        deadline = time.monotonic() + self.max_latency_s
        upto = dict(seen)
        while got < self.max_rows and not self.stop.is_set():
            left = deadline - time.monotonic()
            if parts and (left <= 0 or (not self.follow and reached(upto, end))):
                break
            records = consumer.poll(max_records=self.max_rows - got,
                                    timeout=max(0.0, min(left, self.max_latency_s)))
            if not records.num_rows:
                if parts or time.monotonic() >= deadline:
                    break
                continue
            parts.append(records)
            got += records.num_rows
            upto.update(last_positions(records))
        if not parts:
            return pa.table({"value": pa.array([], pa.binary())})
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def _extract(self, consumer: Consumer, records: pa.Table,
                 last: dict[int, Offset]) -> Extract:
        origins = _LazyOrigins(self, records)
        return Extract(
            source=self.topic, key="", position={}, unit="offset",
            batches=self._batches(records, origins), nbytes=records["value"].nbytes,
            meta={"states": {self.state_key(p): {"offset": o} for p, o in sorted(last.items())},
                  "origins": origins},
            acknowledge=functools.partial(consumer.commit, dict(last)), ordered=True)

    def _batches(self, records: pa.Table, origins: _LazyOrigins) -> Iterator[Batch]:
        """The micro-batch decoded (lazily: on the pipeline's typing thread)."""
        decoded = self.decoder.decode(records["value"])
        origins.rows_of = decoded.rows_of
        yield decoded.batch

    def origins(self, records: pa.Table, rows_of: np.ndarray) -> pa.Table:
        """Where each ``_hw_pos`` came from: ``topic[partition]`` and the offset."""
        from headwater.brokers import record_origins

        partitions = records["partition"].combine_chunks()
        offsets = records["offset"]
        if len(rows_of) != records.num_rows:
            take = pa.array(rows_of)
            partitions, offsets = partitions.take(take), offsets.take(take)
        sources, position = record_origins(self.topic, partitions, offsets)
        n = len(sources)
        return pa.table({"source": sources, "position": position,
                         "unit": pa.array(["offset"] * n, pa.string())})


class _LazyOrigins:
    """The ``origins`` of a micro-batch (columns ``source``, ``position``, ``unit`` indexed by
    ``_hw_pos``), built only if a row of it is quarantined."""

    def __init__(self, source: StreamSource, records: pa.Table) -> None:
        self.source = source
        self.records = records
        self.rows_of: np.ndarray | None = None  # set by the decode
        self._table: pa.Table | None = None

    def __getitem__(self, column: str) -> pa.ChunkedArray:
        if self._table is None:
            rows_of = self.rows_of if self.rows_of is not None else \
                np.arange(self.records.num_rows, dtype=np.int64)
            self._table = self.source.origins(self.records, rows_of)
        return self._table[column]

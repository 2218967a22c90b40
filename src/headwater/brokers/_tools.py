"""Looking at a broker (what ``headwater stream`` does): publish rows, tail, lag, reset a group.

Each works on any :class:`~headwater.brokers.Broker`; the CLI is a thin layer over them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.brokers._base import (
    RECORD_SCHEMA,
    Broker,
    BrokerError,
    Offset,
    Positions,
    StartAt,
)

_AGO = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class PartitionPosition:
    """One partition of a consumer group: what it committed, where the partition ends, lag."""

    partition: int
    committed: Offset | None
    end: Offset | None
    lag: int | None


def encode_rows(rows: pa.Table, *, key: str | None = None) -> pa.Table:
    """Rows as records (``key``, ``value``): each row a JSON object, ``key`` the text of a
    column (none: records spread round-robin). Vectorised (polars ``struct.json_encode``).

    >>> import pyarrow as pa
    >>> encode_rows(pa.table({"id": [1], "city": ["Oslo"]}), key="city")["value"].to_pylist()
    [b'{"id":1,"city":"Oslo"}']
    """
    import polars as pl

    if key is not None and key not in rows.column_names:
        raise BrokerError(f"no column '{key}' to take the key from (columns: "
                          f"{', '.join(rows.column_names)})", hint="pass --key with one of them")
    frame = pl.DataFrame(rows)
    keys = [pl.col(key).cast(pl.Utf8).cast(pl.Binary).alias("key")] if key else \
        [pl.lit(None, dtype=pl.Binary).alias("key")]
    out = frame.select(*keys, pl.struct(pl.all()).struct.json_encode().cast(pl.Binary)
                       .alias("value")).to_arrow()
    return pa.table([out["key"].cast(pa.binary()), out["value"].cast(pa.binary())],
                    names=["key", "value"])


def publish(broker: Broker, topic: str, records: pa.Table, *, partitions: int = 1,
            batch_rows: int = 100_000, progress: Callable[[int], None] | None = None) -> int:
    """Produce ``records`` to ``topic`` (created with ``partitions`` if it does not exist) in
    batches of ``batch_rows``; returns the count. ``progress`` gets the count after each."""
    broker.create_topic(topic, partitions=partitions)
    done = 0
    for start in range(0, records.num_rows, batch_rows):
        done += broker.produce(topic, records.slice(start, batch_rows))
        if progress is not None:
            progress(done)
    return done


def _scratch_group() -> str:
    return f"headwater-tail-{os.getpid()}"


def tail(broker: Broker, topic: str, n: int = 10, *, timeout: float = 1.0) -> pa.Table:
    """The last ``n`` records of ``topic`` (across partitions, oldest first by timestamp).

    Reads as a consumer of a scratch group that commits nothing.
    """
    ends = broker.end_positions(topic)
    if not ends or n <= 0:
        return RECORD_SCHEMA.empty_table()
    with broker.consumer(topic, group=_scratch_group()) as consumer:
        if all(isinstance(o, int) for o in ends.values()):
            consumer.seek({p: max(int(o) - n, -1) for p, o in ends.items()})
        else:  # sequence numbers: no arithmetic, read from the start and keep the last n
            consumer.seek("earliest")
        kept: list[pa.Table] = []
        reached: dict[int, int] = {}
        while any(reached.get(p, -1) < int(o) for p, o in ends.items()):
            got = consumer.poll(max_records=100_000, timeout=timeout)
            if not got.num_rows:
                break
            kept = [_last_per_partition(pa.concat_tables([*kept, got]), n)]
            for p, o in zip(got["partition"].to_pylist(), got["offset"].to_pylist(),
                            strict=True):
                reached[p] = max(reached.get(p, -1), int(o))
    if not kept:
        return RECORD_SCHEMA.empty_table()
    # newest last: by time, and among equal times the newest of each partition last
    records = kept[0]
    newest_first = np.concatenate([np.arange(k - 1, -1, -1) for k in _run_lengths(records)])
    ranked = records.take(pc.sort_indices(
        pa.table({"t": records["timestamp"], "age": newest_first}),
        sort_keys=[("t", "ascending"), ("age", "descending")]))
    return ranked.slice(max(0, ranked.num_rows - n))


def _last_per_partition(records: pa.Table, n: int) -> pa.Table:
    """The last ``n`` records of each partition, partition after partition (offset order)."""
    parts = [records.filter(pc.equal(records["partition"], p))
             for p in pc.unique(records["partition"]).to_pylist()]
    return pa.concat_tables([t.slice(max(0, t.num_rows - n)) for t in parts])


def _run_lengths(records: pa.Table) -> list[int]:
    """Lengths of the runs of equal partitions (as ``_last_per_partition`` lays them out)."""
    parts = records["partition"].to_numpy()
    cuts = np.flatnonzero(np.diff(parts)) + 1
    return np.diff(np.concatenate([[0], cuts, [len(parts)]])).tolist()


def follow(broker: Broker, topic: str, *, timeout: float = 1.0) -> Iterator[pa.Table]:
    """Records of ``topic`` as they arrive from now on (until the caller stops)."""
    with broker.consumer(topic, group=_scratch_group()) as consumer:
        consumer.seek("latest")
        while True:
            got = consumer.poll(max_records=10_000, timeout=timeout)
            if got.num_rows:
                yield got


def group_positions(broker: Broker, topic: str, group: str) -> list[PartitionPosition]:
    """Per partition of ``topic``: ``group``'s committed position, the end, and the lag (records
    produced and not yet committed: the broker's own count where it keeps one, else the distance
    between the offsets; ``None`` where offsets are not numbers)."""
    ends = broker.end_positions(topic)
    with broker.consumer(topic, group=group) as consumer:
        committed = consumer.committed()
    counted = broker.group_lag(topic, group)
    out = []
    for p in broker.partitions(topic):
        end, done = ends.get(p), committed.get(p)
        lag: int | None
        if counted is not None:
            lag = counted.get(p)
        elif isinstance(end, int) or end is None:
            lag = max((int(end) if end is not None else -1) -
                      (int(done) if done is not None else -1), 0)
        else:
            lag = None
        out.append(PartitionPosition(p, done, end, lag))
    return out


def lag(broker: Broker, topic: str, group: str) -> int | None:
    """Records of ``topic`` that ``group`` has not committed yet (``None``: not countable)."""
    lags = [p.lag for p in group_positions(broker, topic, group)]
    return None if any(v is None for v in lags) else sum(v for v in lags if v is not None)


def parse_start(text: str) -> StartAt:
    """``earliest``, ``latest``, an ISO time (``2024-05-01T12:00:00Z``) or how long ago
    (``15m``, ``2h``, ``7d``).

    >>> parse_start("latest")
    'latest'
    """
    value = text.strip()
    if value in ("earliest", "latest"):
        return value  # type: ignore[return-value]
    ago = _AGO.match(value)
    if ago:
        return datetime.now(UTC) - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BrokerError(f"cannot read {text!r} as a position to reset to",
                          hint="use earliest, latest, an ISO time such as 2024-05-01T12:00:00Z, "
                          "or how long ago: 15m, 2h, 7d") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def reset_positions(broker: Broker, topic: str, group: str, to: str | StartAt) -> Positions:
    """Commit ``group``'s positions so that it next reads from ``to`` (see :func:`parse_start`)."""
    return broker.reset_group(topic, group, parse_start(to) if isinstance(to, str) else to)



def last_positions(records: pa.Table) -> Positions:
    """Per partition, the offset of the last record in ``records`` (offsets grow within a
    partition, and records come in that order).

    >>> import pyarrow as pa
    >>> last_positions(pa.table({"partition": [0, 1, 0], "offset": ["9", "3", "10"]}))
    {0: '10', 1: '3'}
    """
    parts = records["partition"].to_numpy()
    if not len(parts):
        return {}
    unique, first_from_end = np.unique(parts[::-1], return_index=True)
    rows = len(parts) - 1 - first_from_end
    offsets = records["offset"].take(pa.array(rows)).to_pylist()
    return dict(zip(unique.tolist(), offsets, strict=True))


def reached(seen: Positions, end: Positions) -> bool:
    """Every partition of ``end`` read up to its offset there (sequence-number strings are
    compared as numbers).

    >>> reached({0: "10"}, {0: "9"}), reached({0: 3}, {0: 3, 1: 0})
    (True, False)
    """
    for p, o in end.items():
        got = seen.get(p)
        if got is None or int(got) < int(o):
            return False
    return True


def record_origins(topic: str, partitions: pa.Array | pa.ChunkedArray,
                   offsets: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Where records came from, for the quarantine: ``topic[partition]`` and the offset
    (int64); sequence numbers (Kinesis) exceed an int64, so they go into the text
    (``topic[3] @ 4962…``) and the position is null.

    >>> import pyarrow as pa
    >>> record_origins("t", pa.array([3], pa.int32()), pa.array(["17"]))[0].to_pylist()
    ['t[3] @ 17']
    """
    sources = pc.binary_join_element_wise(pa.scalar(f"{topic}["),
                                          pc.cast(partitions, pa.string()), pa.scalar("]"), "")
    if pa.types.is_integer(offsets.type):
        return sources, pc.cast(offsets, pa.int64())
    sources = pc.binary_join_element_wise(sources, pc.cast(offsets, pa.string()), " @ ")
    return sources, pa.nulls(len(sources), pa.int64())


def offset_lag(seen: Positions, end: Positions) -> int | None:
    """Records between ``seen`` and ``end`` where offsets count records (``None`` where they
    are sequence numbers, whose distance is no count).

    >>> offset_lag({0: 4}, {0: 9, 1: 2}), offset_lag({}, {0: "17"})
    (8, None)
    """
    if not all(isinstance(o, int) for o in [*seen.values(), *end.values()]):
        return None
    return sum(max(0, int(o) - int(seen.get(p, -1))) for p, o in end.items())

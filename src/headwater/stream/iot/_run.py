"""Devices and the gateway on a broker: publish a simulation, normalise a raw topic.

The gateway reads device payloads from a raw topic, normalises them (:func:`normalise`),
publishes the readings keyed by device (so a device's readings stay in one partition, in order)
and puts rejected payloads in the quarantine of a store, with their broker position and
reason. It acknowledges the raw records only after both are written. A crash between the two
can publish a reading twice; the stream processor drops it by message id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from headwater.brokers import Broker
from headwater.monitor import get_logger, metrics, run
from headwater.store import Store
from headwater.stream._decode import quarantine_payloads
from headwater.stream.iot._gateway import normalise
from headwater.stream.iot._simulate import Simulation

log = get_logger(__name__)


def publish_simulation(sim: Simulation, broker: Broker, topic: str, *, partitions: int = 4,
                       chunk: int = 10_000, speed: float | None = None,
                       stop: threading.Event | None = None) -> int:
    """Publish the simulated messages to ``topic``, keyed by device, in send order.

    ``speed`` paces them (1.0: real time, 10: ten times faster); ``None`` sends at once.
    Returns the number published.
    """
    broker.create_topic(topic, partitions=partitions)
    messages = sim.messages
    if messages.is_empty():
        return 0
    start_ms = int(messages["send_time"].min())  # type: ignore[arg-type]
    began = time.monotonic()
    sent = 0
    for part in messages.iter_slices(chunk):
        if stop is not None and stop.is_set():
            break
        if speed:
            due = (int(part["send_time"][0]) - start_ms) / 1000 / speed
            pause = due - (time.monotonic() - began)
            if pause > 0:
                time.sleep(pause)
        sent += broker.produce(topic, pa.table({
            "key": part["device"].cast(pl.Binary).to_arrow(),
            "value": part["payload"].to_arrow(),
            "timestamp": part["send_time"].cast(pl.Datetime("ms", "UTC")).to_arrow()}))
    return sent


@dataclass
class GatewayResult:
    """What a gateway run did."""

    payloads: int = 0
    readings: int = 0
    rejected: int = 0
    seconds: float = 0.0


def run_gateway(broker: Broker, source: str, target: str, *, store: Store,
                gateway: str = "gateway", group: str = "gateway", follow: bool = False,
                max_records: int = 50_000, stop: threading.Event | None = None,
                progress: Callable[[GatewayResult], None] | None = None) -> GatewayResult:
    """Normalise the payloads of topic ``source`` into readings on topic ``target``.

    Drains ``source`` to its current end, or with ``follow`` runs until ``stop`` is set.
    """
    stop = stop or threading.Event()
    result = GatewayResult()
    began = time.perf_counter()
    partitions = broker.partitions(source)
    if target not in {t.name for t in broker.topics()}:
        broker.create_topic(target, partitions=len(partitions))
    end = broker.end_positions(source)
    with run("gateway", gateway) as current, \
            broker.consumer(source, group=group) as consumer:
        seen: dict[int, int] = dict(consumer.committed())
        while not stop.is_set():
            records = consumer.poll(max_records=max_records, timeout=0.2)
            if records.num_rows:
                received = pa.array([int(time.time() * 1000)] * records.num_rows, pa.int64())
                out = normalise(records.column("value"), received_ms=received, gateway=gateway)
                if out.readings.height:
                    broker.produce(target, pa.table({
                        "key": out.readings["device"].cast(pl.Binary).to_arrow(),
                        "value": out.readings.select(pl.struct(pl.all()).struct.json_encode())
                        .to_series().cast(pl.Binary).to_arrow()}))
                if out.bad:
                    with store.transaction(f"gateway:{gateway}", current.id) as tx:
                        tx.quarantine(quarantine_payloads(
                            records, out.bad, out.reasons, topic=source, run_id=current.id,
                            pipeline=f"gateway:{gateway}", table=target,
                            first=result.rejected))
                last = records.group_by("partition").aggregate([("offset", "max")])
                done = dict(zip(last.column("partition").to_pylist(),
                                last.column("offset_max").to_pylist(), strict=True))
                consumer.commit(done)
                seen.update(done)
                result.payloads += records.num_rows
                result.readings += out.readings.height
                result.rejected += len(out.bad)
                metrics.ROWS.labels(f"gateway:{gateway}", source, target, "read").inc(
                    records.num_rows)
                metrics.STREAM_RECORDS.labels(f"gateway:{gateway}").inc(records.num_rows)
                metrics.ROWS.labels(f"gateway:{gateway}", source, target, "quarantined").inc(
                    len(out.bad))
            elif not follow and all(seen.get(p, -1) >= o for p, o in end.items()):
                break
            if progress is not None:
                result.seconds = time.perf_counter() - began
                progress(result)
        current.rows_read, current.rows_loaded = result.payloads, result.readings
        current.rows_quarantined = result.rejected
    result.seconds = time.perf_counter() - began
    return result

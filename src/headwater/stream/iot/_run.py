"""Devices and the gateway: publish a simulation, normalise payloads from MQTT or a raw topic.

The gateway takes device payloads from MQTT (:func:`run_mqtt_gateway`) or a raw topic,
normalises them (:func:`normalise`), validates them with a contract, publishes the readings
keyed by device (so a device's readings stay in one partition, in order) and puts rejected
payloads in the quarantine of a store, with where they came from and every reason. It
acknowledges the messages only after both are written. A crash between the two
can publish a reading twice; the stream processor drops it by message id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from headwater.brokers import Broker
from headwater.core import POSITION
from headwater.monitor import get_logger, metrics, run
from headwater.store import Store
from headwater.stream._decode import payload_text, quarantine_rows
from headwater.stream._processor import _stop_on_signals
from headwater.stream._validate import validate_events
from headwater.stream.iot._gateway import normalise
from headwater.stream.iot._mqtt import INFLIGHT, SESSION_EXPIRY_S, TOPIC_PREFIX, MqttSubscription
from headwater.stream.iot._simulate import Simulation

if TYPE_CHECKING:
    from headwater.contract import Contract
    from headwater.monitor import Run

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
    """What a gateway run did: every payload is a reading, a rejected payload (quarantined),
    or a duplicate the contract dropped."""

    payloads: int = 0
    readings: int = 0
    rejected: int = 0
    dropped: int = 0
    seconds: float = 0.0
    batches: int = 0
    #: MQTT: messages Mosquitto reported dropping meanwhile (broker-wide; None: no report yet).
    broker_dropped: int | None = None


class _Writer:
    """One batch of payloads: normalise, validate with the contract, publish the readings,
    quarantine what failed (with where it came from and every reason)."""

    def __init__(self, broker: Broker, target: str, store: Store, *, gateway: str,
                 source: str, contract: Contract | None, run_id: str) -> None:
        self.broker, self.target, self.store = broker, target, store
        self.pipeline = f"gateway:{gateway}"
        self.source = source
        self.checker = contract.checker() if contract is not None else None
        self.run_id = run_id

    def write(self, payloads: pa.Array, *, received_ms: pa.Array, gateway: str | pa.Array,
              where: pa.Array, positions: pa.Array, unit: str,
              result: GatewayResult) -> None:
        """``where`` and ``positions`` say, per payload, where it came from (for the
        quarantine): a topic and partition with an offset, or an MQTT topic and a count."""
        out = normalise(payloads, received_ms=received_ms, gateway=gateway)
        readings, dropped = out.readings, 0
        bad = pa.array(out.bad, pa.int64())
        rules: list = [["payload"]] * len(out.bad)
        reasons: list = [[r] for r in out.reasons]
        raw: pa.Array = payloads.take(bad)
        if self.checker is not None and readings.height:
            checked = validate_events(self.checker, readings)
            readings, dropped = checked.valid, checked.dropped
            if checked.invalid.num_rows:
                assert out.origin is not None
                rows = pa.array(out.origin.to_numpy()).take(
                    checked.invalid.column(POSITION).combine_chunks())
                bad = pa.concat_arrays([bad, rows.cast(pa.int64())])
                rules = pa.concat_arrays([pa.array(rules, pa.list_(pa.string())),
                                          checked.invalid.column("rules").combine_chunks()])
                reasons = pa.concat_arrays([pa.array(reasons, pa.list_(pa.string())),
                                            checked.invalid.column("reasons").combine_chunks()])
                raw = pa.concat_arrays([payload_text(raw),
                                        checked.invalid.column("raw").combine_chunks()])
        if readings.height:
            self.broker.produce(self.target, pa.table({
                "key": readings["device"].cast(pl.Binary).to_arrow(),
                "value": readings.select(pl.struct(pl.all()).struct.json_encode())
                .to_series().cast(pl.Binary).to_arrow()}))
        if len(bad):
            with self.store.transaction(self.pipeline, self.run_id) as tx:
                tx.quarantine(quarantine_rows(
                    raw=raw, sources=where.take(bad), positions=positions.take(bad), unit=unit,
                    rules=rules, reasons=reasons, run_id=self.run_id, pipeline=self.pipeline,
                    table=self.target, first=result.rejected))
        result.batches += 1
        result.payloads += len(payloads)
        result.readings += readings.height
        result.rejected += len(bad)
        result.dropped += dropped
        labels = (self.pipeline, self.source, self.target)
        metrics.ROWS.labels(*labels, "read").inc(len(payloads))
        metrics.STREAM_RECORDS.labels(self.pipeline).inc(len(payloads))
        metrics.ROWS.labels(*labels, "loaded").inc(readings.height)
        metrics.ROWS.labels(*labels, "quarantined").inc(len(bad))
        metrics.ROWS.labels(*labels, "dropped").inc(dropped)
        if readings.height or len(bad):  # share of what was checked that passed
            metrics.PASS_RATE.labels(self.pipeline, self.target, "*").set(
                readings.height / (readings.height + len(bad)))
        if readings.height:  # device clock to published: how late the readings travel
            metrics.observe_batch_age(metrics.INGEST_LATENCY, [self.pipeline, self.target],
                                      readings.get_column("event_time"))
            metrics.LAST_LOAD.labels(self.pipeline, self.target).set_to_current_time()


def _ensure_topic(broker: Broker, target: str, partitions: int) -> None:
    if target not in {t.name for t in broker.topics()}:
        broker.create_topic(target, partitions=partitions)


def run_gateway(broker: Broker, source: str, target: str, *, store: Store,
                gateway: str = "gateway", group: str = "gateway", follow: bool = False,
                contract: Contract | None = None, max_records: int = 50_000,
                stop: threading.Event | None = None,
                progress: Callable[[GatewayResult], None] | None = None) -> GatewayResult:
    """Normalise the payloads of topic ``source`` into readings on topic ``target``.

    Drains ``source`` to its current end, or with ``follow`` runs until ``stop`` is set.
    ``contract`` (a :class:`headwater.contract.Contract`) validates the readings; what fails
    goes to the quarantine with every reason.
    """
    stop = stop or threading.Event()
    result = GatewayResult()
    began = time.perf_counter()
    partitions = broker.partitions(source)
    _ensure_topic(broker, target, len(partitions))
    end = broker.end_positions(source)
    with run("gateway", gateway) as current, \
            broker.consumer(source, group=group) as consumer:
        writer = _Writer(broker, target, store, gateway=gateway, source=source,
                         contract=contract, run_id=current.id)
        seen: dict[int, int] = dict(consumer.committed())
        while not stop.is_set():
            records = consumer.poll(max_records=max_records, timeout=0.2)
            if records.num_rows:
                received = pa.array([int(time.time() * 1000)] * records.num_rows, pa.int64())
                where = pc.binary_join_element_wise(
                    pa.scalar(f"{source}["), pc.cast(records.column("partition"), pa.string()),
                    pa.scalar("]"), "")
                writer.write(records.column("value").combine_chunks(), received_ms=received,
                             gateway=gateway, where=where,
                             positions=records.column("offset").combine_chunks(),
                             unit="offset", result=result)
                last = records.group_by("partition").aggregate([("offset", "max")])
                done = dict(zip(last.column("partition").to_pylist(),
                                last.column("offset_max").to_pylist(), strict=True))
                consumer.commit(done)
                seen.update(done)
            elif not follow and all(seen.get(p, -1) >= o for p, o in end.items()):
                break
            if progress is not None:
                result.seconds = time.perf_counter() - began
                progress(result)
        _record(current, result)
    result.seconds = time.perf_counter() - began
    return result


def run_mqtt_gateway(url: str, broker: Broker, target: str, *, store: Store,
                     topics: Sequence[str] = (f"{TOPIC_PREFIX}/#",), group: str = "gateways",
                     client_id: str = "headwater-gateway", contract: Contract | None = None,
                     partitions: int = 4, max_records: int = 20_000,
                     max_latency_ms: int = 10, idle_s: float | None = 2.0,
                     session_expiry_s: int = SESSION_EXPIRY_S, inflight: int = INFLIGHT,
                     stop: threading.Event | None = None,
                     progress: Callable[[GatewayResult], None] | None = None) -> GatewayResult:
    """Subscribe to the devices' MQTT topics and publish their readings to ``target``.

    The subscription is persistent (``client_id`` names the session; see
    :class:`MqttSubscription`), QoS 1, shared by the gateways of ``group``. Messages are taken
    in batches (``max_records``, or whatever arrived within ``max_latency_ms``), normalised,
    validated with ``contract``, written to the stream broker (rejects to the quarantine), and
    only then acknowledged to the MQTT broker: a gateway killed at any moment loses nothing;
    what it had not acknowledged comes again, and the processor drops the copies by id.

    Runs until ``stop`` is set, or until nothing arrived for ``idle_s`` seconds.
    """
    stop = stop or threading.Event()
    result = GatewayResult()
    began = time.perf_counter()
    _ensure_topic(broker, target, partitions)
    subscription = MqttSubscription(url, topics=topics, group=group, client_id=client_id,
                                    session_expiry_s=session_expiry_s, inflight=inflight)
    with run("gateway", client_id) as current, _stop_on_signals(stop), subscription:
        writer = _Writer(broker, target, store, gateway=client_id, source=url,
                         contract=contract, run_id=current.id)
        quiet_since = time.monotonic()
        while not stop.is_set():
            batch = subscription.take(max_messages=max_records, timeout=max_latency_ms / 1000)
            if len(batch):
                # PREFIX/GATEWAY/DEVICE: the gateway is the last level but one
                gateways = pl.Series(batch.topics).str.split("/").list.get(
                    -2, null_on_oob=True).fill_null("gateway").to_arrow()
                writer.write(batch.payloads, received_ms=batch.received_ms,
                             gateway=gateways, where=batch.topics,
                             positions=pa.array(np.arange(result.payloads,
                                                          result.payloads + len(batch))),
                             unit="message", result=result)
                subscription.ack(batch)
                quiet_since = time.monotonic()
            elif idle_s is not None and time.monotonic() - quiet_since >= idle_s:
                break
            if progress is not None:
                result.seconds = time.perf_counter() - began
                result.broker_dropped = subscription.dropped_since_start()
                progress(result)
        result.broker_dropped = subscription.dropped_since_start()
        _record(current, result)
    result.seconds = time.perf_counter() - began
    return result


def _record(current: Run, result: GatewayResult) -> None:
    current.rows_read, current.rows_loaded = result.payloads, result.readings
    current.rows_quarantined, current.rows_dropped = result.rejected, result.dropped

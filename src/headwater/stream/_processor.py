"""The stream processor: read a topic, de-duplicate, window, detect, alert, write; exactly once.

One micro-batch at a time (``max_records`` or ``max_latency``, whichever comes first):

    poll ─► decode (bad payloads → quarantine) ─► de-duplicate ─► windows ─► detectors ─► alerts
         ─► ONE store transaction: readings, window results, anomalies, alerts, late events,
            quarantine, operator state and the consumed positions ─► acknowledge to the broker

The operator state (open windows, detector history, remembered ids, open alerts) is saved per
partition with the positions it belongs to, in the same transaction as the outputs. After a
crash the processor reloads both and reads again after the saved positions: no window result is
lost or counted twice. Because every piece of state is kept per partition and the watermarks
are per partition, processes that share a topic's partitions (consumer groups, or
``--member i/n``) together produce exactly what one process would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from headwater._version import __version__
from headwater.brokers import (
    Broker,
    Consumer,
    Offset,
    last_positions,
    offset_lag,
    reached,
    record_origins,
)
from headwater.core import POSITION, ConfigError, HeadwaterError, stop_on_signals
from headwater.monitor import get_logger, metrics, run
from headwater.store import QUARANTINE_SCHEMA, Store
from headwater.stream._alerts import AlertTracker
from headwater.stream._decode import decode_json, quarantine_payloads, quarantine_rows
from headwater.stream._dedupe import Deduplicator
from headwater.stream._detectors import DETECTORS, Detector
from headwater.stream._validate import validate_events
from headwater.stream._windows import Hopping, Session, Tumbling, WindowOperator

if TYPE_CHECKING:
    from headwater.config._stream import DetectorSpec, ProcessorSpec, WindowSpec
    from headwater.contract import Contract
    from headwater.monitor import Run
    from headwater.store import RunStore

log = get_logger(__name__)

#: Table of operator state: one row per processor and partition, written with the outputs.
STATE_TABLE = "_hw_stream_state"
#: While running, the run record (``headwater stream status``) is brought up to date this often.
STATUS_EVERY_S = 2.0
#: Bumped when the saved state's layout changes (a mismatch refuses to load, with a hint).
STATE_FORMAT = 1

_PARTITION = "partition"
_OFFSET = "offset"


def _ms(text: str | None) -> int:
    from headwater.core import duration_ms

    return 0 if text is None else duration_ms(text)


def build_window(spec: WindowSpec, processor: ProcessorSpec) -> WindowOperator:
    """The operator a ``windows:`` entry describes."""
    if spec.kind == "session":
        if not spec.gap:
            raise ConfigError(f"window {spec.name!r}: a session window needs gap (e.g. 30s)")
        window: Tumbling | Hopping | Session = Session(_ms(spec.gap))
    elif not spec.size:
        raise ConfigError(f"window {spec.name!r}: a {spec.kind} window needs size (e.g. 1m)")
    elif spec.kind == "hopping":
        if not spec.hop:
            raise ConfigError(f"window {spec.name!r}: a hopping window needs hop (e.g. 15s)")
        window = Hopping(_ms(spec.size), _ms(spec.hop))
    else:
        window = Tumbling(_ms(spec.size))
    return WindowOperator(window, keys=tuple(processor.keys), time=processor.time,
                          value=processor.value, partition=_PARTITION,
                          watermark_delay_ms=_ms(processor.watermark_delay),
                          allowed_lateness_ms=_ms(processor.allowed_lateness),
                          late=processor.late)


_DETECTOR_SETTINGS = ("low", "high", "window", "threshold", "min_periods", "alpha", "delta",
                      "direction", "max_per_second", "tolerance")


def build_detector(spec: DetectorSpec, processor: ProcessorSpec) -> Detector:
    """The detector a ``detectors:`` entry describes (its series keyed by partition too)."""
    cls = DETECTORS[spec.kind]
    settings: dict[str, Any] = {k: getattr(spec, k) for k in _DETECTOR_SETTINGS
                                if getattr(spec, k) is not None}
    if spec.kind == "silent":
        settings = {"after_ms": _ms(spec.after or "1m")}
    fields = cls.__dataclass_fields__
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise ConfigError(f"detector {spec.name or spec.kind!r}: {spec.kind} takes no "
                          f"setting(s) {unknown}")
    time_column = "ingest_time" if spec.kind == "silent" and spec.clock == "ingest" \
        else processor.time
    return cls(keys=(_PARTITION, *processor.keys), time=time_column, value=processor.value,
               name=spec.name, **settings)


@dataclass
class BatchResult:
    """Counts for one micro-batch."""

    records: int = 0
    events: int = 0
    quarantined: int = 0
    duplicates: int = 0
    late: int = 0
    windows: int = 0
    anomalies: int = 0
    alerts_opened: int = 0
    alerts_resolved: int = 0


@dataclass
class Committed:
    """What one micro-batch committed, handed to the processor's ``sinks`` after the commit:
    the tables written (name → rows as written) and the alerts it opened and resolved."""

    tables: dict[str, pl.DataFrame]
    opened: pl.DataFrame
    resolved: pl.DataFrame
    #: Wall clock (ms since the epoch) right after the commit.
    committed_ms: int


#: Called with every :class:`Committed`, e.g. to hand alerts on (webhook, pager, a test).
Sink = Callable[[Committed], None]


@dataclass
class ProcessorResult:
    """What a run of a processor did, in total."""

    name: str
    partitions: list[int]
    batches: int = 0
    totals: BatchResult = field(default_factory=BatchResult)
    seconds: float = 0.0
    watermark_ms: int | None = None
    open_windows: int = 0
    active_alerts: int = 0
    run_id: str | None = None
    #: The last offset taken from each partition.
    positions: dict[int, Offset] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.totals.records / self.seconds if self.seconds else 0.0


class Processor:
    """Runs one processor of headwater.yaml on the partitions it is given.

    Parameters
    ----------
    name, spec:
        The processor's name and its ``processors:`` entry.
    broker, store:
        Where it reads and where it writes (outputs, quarantine, state, positions).
    partitions:
        The partitions this process owns (default: every partition of the topic).
    sinks:
        Called after every commit with what it wrote (:class:`Committed`). Alerts always go
        to the log as well (one line per batch that opened or resolved any).
    contract:
        The contract (:class:`headwater.contract.Contract`) events must pass, the processor's
        ``contract:`` file; failures go to the quarantine with their broker position and
        every reason.
    """

    def __init__(self, name: str, spec: ProcessorSpec, *, broker: Broker, store: Store,
                 partitions: Sequence[int] | None = None,
                 on_alerts: Callable[[list[dict[str, Any]]], None] | None = None,
                 sinks: Sequence[Sink] = (), contract: Contract | None = None) -> None:
        self.name = name
        self.on_alerts = on_alerts
        self.sinks = list(sinks)
        self.contract = contract
        self.spec = spec
        self.broker = broker
        self.store = store
        self.requested = list(partitions) if partitions is not None else None
        self.pipeline = f"stream:{name}"
        self._quarantined = 0

    # --- set-up -------------------------------------------------------------------------

    def _operators(self) -> None:
        spec = self.spec
        self.windows = {w.name: build_window(w, spec) for w in spec.windows}
        if len(self.windows) != len(spec.windows):
            raise ConfigError(f"processor {self.name!r}: two windows share a name")
        self.detectors = [build_detector(d, spec) for d in spec.detectors]
        self.metrics_of = [d.metrics for d in spec.detectors]
        self.checker = self.contract.checker() if self.contract is not None else None
        self.dedupe = Deduplicator(_ms(spec.dedupe), id=spec.id, time=spec.time,
                                   partition=_PARTITION) if spec.dedupe and spec.id else None
        self.alerts = AlertTracker(
            self.name, keys=tuple(spec.keys), partition=_PARTITION,
            severities={d.name or d.kind: d.severity for d in spec.detectors},
            resolve_after_ms=_ms(spec.alerts.resolve_after),
            suppress_ms=_ms(spec.alerts.suppress))

    def _components(self) -> dict[str, Any]:
        parts: dict[str, Any] = {f"window:{n}": op for n, op in self.windows.items()}
        parts |= {f"detector:{i}": d for i, d in enumerate(self.detectors)}
        parts["alerts"] = self.alerts
        if self.dedupe is not None:
            parts["dedupe"] = self.dedupe
        return parts

    def _table(self, pattern: str | None) -> str | None:
        return None if pattern is None else pattern.format(name=self.name)

    # --- run ----------------------------------------------------------------------------

    def run(self, *, follow: bool = False, flush: bool = False,
            stop: threading.Event | None = None, runs: RunStore | None = None,
            progress: Callable[[ProcessorResult], None] | None = None) -> ProcessorResult:
        """Process the topic: to its current end (``follow=False``) or until ``stop`` is set.

        ``flush`` fires every open window once the end is reached (the input is complete).
        Ctrl-C or SIGTERM sets ``stop``: the run ends after the current commit.
        """
        self._operators()
        stop = stop or threading.Event()
        group = self.spec.input.group or self.name
        topic = self.spec.input.topic
        start = time.perf_counter()
        with run("stream", self.name) as current, _stop_on_signals(stop):
            consumer = self.broker.consumer(topic, group=group, partitions=self.requested)
            try:
                result = self._run(consumer, current, follow=follow, flush=flush, stop=stop,
                                   progress=progress, start=start, runs=runs)
            except BaseException as exc:
                current.status, current.error = "failed", str(exc)
                self._record(runs, current)
                raise
            finally:
                consumer.close()
            result.run_id = current.id
            _describe(current, result)
        self._record(runs, current)
        return result

    def _run(self, consumer: Consumer, current: Run, *, follow: bool, flush: bool,
             stop: threading.Event, progress: Callable[[ProcessorResult], None] | None,
             start: float, runs: RunStore | None = None) -> ProcessorResult:
        partitions = consumer.assignment() or self.broker.partitions(self.spec.input.topic)
        result = ProcessorResult(self.name, sorted(partitions))
        positions = self._restore(partitions)
        # the sink's positions win over the group's: what the sink holds is what happened
        consumer.seek(positions if positions else self.spec.input.start)
        end = {p: o for p, o in self.broker.end_positions(self.spec.input.topic).items()
               if p in partitions}
        seen = dict(positions)
        latency = max(_ms(self.spec.max_latency), 1) / 1000
        looked = reported = time.monotonic()
        while not stop.is_set():
            if not follow and reached(seen, end):
                break
            if follow and time.monotonic() - looked > _LAG_EVERY_S:  # new records arrived?
                looked = time.monotonic()
                end = {p: o for p, o in self.broker.end_positions(
                    self.spec.input.topic).items() if p in partitions}
            records = consumer.poll(max_records=self.spec.max_records, timeout=latency)
            if records.num_rows:
                batch = self._batch(records, current, result)
                seen.update(last_positions(records))
                result.positions.update(last_positions(records))
                consumer.commit(last_positions(records))
                _add(result.totals, batch)
                result.batches += 1
            counted = offset_lag(seen, end)
            if counted is not None:
                metrics.STREAM_LAG.labels(self.name, self.spec.input.topic).set(counted)
            if progress is not None:
                progress(self._finish(result, start))
            if runs is not None and time.monotonic() - reported > STATUS_EVERY_S:
                reported = time.monotonic()    # live figures for `headwater stream status`
                _describe(current, self._finish(result, start))
                self._record(runs, current)
        if flush and not follow:
            self._flush(current, result)
        return self._finish(result, start)

    def _finish(self, result: ProcessorResult, start: float) -> ProcessorResult:
        result.seconds = time.perf_counter() - start
        marks = [op.watermark_ms for op in self.windows.values() if op.watermark_ms is not None]
        result.watermark_ms = min(marks) if marks else None
        result.open_windows = sum(op.open_windows() for op in self.windows.values())
        result.active_alerts = self.alerts.active()
        if result.watermark_ms is not None:
            metrics.WATERMARK_DELAY.labels(self.name).set(time.time() - result.watermark_ms / 1000)
        return result

    # --- one micro-batch ------------------------------------------------------------------

    def _batch(self, records: pa.Table, current: Run, result: ProcessorResult) -> BatchResult:
        out = BatchResult(records=records.num_rows)
        spec = self.spec
        schema = pa.schema([*[(k, pa.string()) for k in spec.keys],
                            (spec.time, pa.int64()), (spec.value, pa.float64()),
                            *([(spec.id, pa.string())] if spec.id else []),
                            ("gateway", pa.string()), ("unit", pa.string()),
                            ("ingest_time", pa.int64())])
        decoded = decode_json(records.column("value"), schema,
                              required=(*spec.keys, spec.time, spec.value))
        where = records.select([_PARTITION, _OFFSET]).take(
            decoded.events.column("_hw_i"))
        events = pl.from_arrow(decoded.events.drop_columns(["_hw_i"]).append_column(
            _PARTITION, where.column(_PARTITION)).append_column(_OFFSET, where.column(_OFFSET)))
        assert isinstance(events, pl.DataFrame)
        events = events.with_columns(
            pl.col("ingest_time").fill_null(pl.col(spec.time)))
        quarantine = self._quarantine(records, decoded.bad, decoded.reasons, current)
        if self.checker is not None and events.height:
            checked = validate_events(self.checker, events, keep=(_PARTITION, _OFFSET))
            if checked.invalid.num_rows:
                quarantine = pa.concat_tables([quarantine, self._quarantine_invalid(
                    events, checked.invalid, current)])
            events = checked.valid
            out.duplicates += checked.dropped
        out.quarantined = quarantine.num_rows
        if self.dedupe is not None:
            events, out.duplicates = self.dedupe.process(events)
        out.events = events.height
        writes: list[tuple[str, pl.DataFrame, str, list[str] | None]] = []
        readings = self._table(spec.outputs.readings)
        if readings:
            writes.append((readings, _times(events, [spec.time, "ingest_time"]), "append",
                           None))
        late_frames = []
        for name, op in self.windows.items():
            window_out = op.process(events)
            out.late = max(out.late, window_out.late_count)
            if window_out.late.height:
                late_frames.append(window_out.late.with_columns(window=pl.lit(name)))
            if window_out.results.height:
                out.windows += window_out.results.height
                mode, key = ("merge", [*spec.keys, "window_start"]) \
                    if spec.late == "update" else ("append", None)
                writes.append((f"{self._table(spec.outputs.windows)}_{name}",
                               _times(window_out.results, ["window_start", "window_end"]),
                               mode, key))
        if late_frames:
            writes.append((self._table(spec.outputs.late) or "late",
                           _times(pl.concat(late_frames, how="diagonal_relaxed"),
                                  [spec.time, "ingest_time"]), "append", None))
        anomalies = self._detect(events)
        out.anomalies = anomalies.height
        watermarks = self._watermarks(events)
        changes = self.alerts.process(anomalies, watermarks)
        out.alerts_opened, out.alerts_resolved = changes.opened.height, changes.resolved.height
        if anomalies.height:
            writes.append((self._table(spec.outputs.anomalies) or "anomalies",
                           _times(anomalies.drop(_PARTITION), ["time"]), "append", None))
        if changes.rows.height:
            writes.append((self._table(spec.outputs.alerts) or "alerts",
                           _times(changes.rows, ["first_seen", "last_seen", "resolved_at"]),
                           "merge", ["alert_id"]))
        self._commit(writes, quarantine, records, current)
        self._announce(changes)
        if self.on_alerts is not None and (changes.opened.height or changes.resolved.height):
            self.on_alerts(_alert_changes(self.name, spec.keys, changes))
        metrics.STREAM_RECORDS.labels(self.name).inc(out.records)
        metrics.observe_batch_age(metrics.EVENT_LATENCY, [self.name], events.get_column(spec.time))
        self._hand_on(writes, changes.opened, changes.resolved)
        labels = (self.pipeline, spec.input.topic, readings or "")
        metrics.ROWS.labels(*labels, "read").inc(out.records)
        metrics.ROWS.labels(*labels, "loaded").inc(out.events)
        metrics.ROWS.labels(*labels, "quarantined").inc(out.quarantined)
        metrics.ROWS.labels(*labels, "dropped").inc(out.duplicates + out.late)
        return out

    def _detect(self, events: pl.DataFrame) -> pl.DataFrame:
        found = []
        delay = _ms(self.spec.watermark_delay)
        for detector, only in zip(self.detectors, self.metrics_of, strict=True):
            subset = events if not only or "metric" not in events.columns else \
                events.filter(pl.col("metric").is_in(only))
            newest = events.get_column(detector.time).max() if events.height else None
            clock = None if newest is None else int(newest) - (  # type: ignore[arg-type]
                delay if detector.time == self.spec.time else 0)
            found.append(detector.detect(subset, watermark_ms=clock))
        frames = [f for f in found if f.height]
        if not frames:
            return found[0].clear() if found else pl.DataFrame(
                schema={_PARTITION: pl.Int64, **{k: pl.String for k in self.spec.keys},
                        "time": pl.Int64, "value": pl.Float64, "detector": pl.String,
                        "score": pl.Float64, "reason": pl.String})
        return pl.concat(frames, how="vertical_relaxed")

    def _watermarks(self, events: pl.DataFrame) -> pl.DataFrame:
        """Per partition, the event-time watermark the alerts resolve against."""
        delay = _ms(self.spec.watermark_delay)
        ops = list(self.windows.values())
        if ops:
            marks = ops[0]._marks()
            return marks.select(pl.col("_p").alias(_PARTITION),
                                watermark=pl.col("_max") - delay)
        return events.group_by(_PARTITION).agg(
            watermark=pl.col(self.spec.time).max() - delay)

    def _quarantine(self, records: pa.Table, bad: list[int], reasons: list[str],
                    current: Run) -> pa.Table:
        if not bad:
            return QUARANTINE_SCHEMA.empty_table()
        first = self._quarantined
        self._quarantined += len(bad)
        return quarantine_payloads(
            records, bad, reasons, topic=self.spec.input.topic, run_id=current.id,
            pipeline=self.pipeline, table=self._table(self.spec.outputs.readings) or self.name,
            first=first)

    def _quarantine_invalid(self, events: pl.DataFrame, invalid: pa.Table,
                            current: Run) -> pa.Table:
        """Quarantine rows for events that failed the contract, at their broker position."""
        where = events.select(_PARTITION, _OFFSET).to_arrow().take(
            invalid.column(POSITION).combine_chunks())
        first = self._quarantined
        self._quarantined += invalid.num_rows
        sources, positions = record_origins(self.spec.input.topic, where.column(_PARTITION),
                                            where.column(_OFFSET))
        return quarantine_rows(
            raw=invalid.column("raw"), sources=sources,
            positions=positions, unit="offset", rules=invalid.column("rules"),
            reasons=invalid.column("reasons"), run_id=current.id, pipeline=self.pipeline,
            table=self._table(self.spec.outputs.readings) or self.name, first=first)

    def _commit(self, writes: list[tuple[str, pl.DataFrame, str, list[str] | None]],
                quarantine: pa.Table, records: pa.Table, current: Run) -> None:
        offsets = last_positions(records)
        state = self._state_rows(sorted(offsets))
        with self.store.transaction(self.pipeline, current.id) as tx:
            for table, frame, mode, key in writes:
                tx.write(table, frame.to_arrow(), mode=mode, primary_key=key)  # type: ignore[arg-type]
            if quarantine.num_rows:
                tx.quarantine(quarantine)
            tx.write(STATE_TABLE, state, mode="merge", primary_key=["processor", "partition"])
            for partition, offset in offsets.items():
                tx.set_state(str(partition), {"offset": offset})

    def _hand_on(self, writes: list[tuple[str, pl.DataFrame, str, list[str] | None]],
                 opened: pl.DataFrame, resolved: pl.DataFrame) -> None:
        if self.sinks:
            done = Committed({table: frame for table, frame, _, _ in writes}, opened, resolved,
                             int(time.time() * 1000))
            for sink in self.sinks:
                sink(done)

    def _announce(self, changes: Any) -> None:
        """One log line per batch that opened or resolved alerts, with a few examples."""
        if changes.opened.height or changes.resolved.height:
            examples = changes.opened.head(3).select("alert_id", "severity", "reason").rows()
            log.info("stream_alerts", processor=self.name, opened=changes.opened.height,
                     resolved=changes.resolved.height, suppressed=changes.suppressed,
                     examples=[f"{a} [{s}] {r}" for a, s, r in examples])

    def _flush(self, current: Run, result: ProcessorResult) -> None:
        """Fire every open window and write the results (the input is complete)."""
        writes = []
        spec = self.spec
        for name, op in self.windows.items():
            out = op.flush()
            if out.results.height:
                result.totals.windows += out.results.height
                mode, key = ("merge", [*spec.keys, "window_start"]) \
                    if spec.late == "update" else ("append", None)
                writes.append((f"{self._table(spec.outputs.windows)}_{name}",
                               _times(out.results, ["window_start", "window_end"]), mode, key))
        if writes:
            state = self._state_rows(result.partitions)
            with self.store.transaction(self.pipeline, current.id) as tx:
                for table, frame, mode, key in writes:
                    tx.write(table, frame.to_arrow(), mode=mode, primary_key=key)  # type: ignore[arg-type]
                tx.write(STATE_TABLE, state, mode="merge",
                         primary_key=["processor", "partition"])
            self._hand_on(writes, pl.DataFrame(), pl.DataFrame())

    # --- state ----------------------------------------------------------------------------

    def _state_rows(self, partitions: Sequence[int]) -> pa.Table:
        """One row per partition: every component's state for that partition, as Arrow IPC."""
        snapshots = {name: part.snapshot() for name, part in self._components().items()}
        blobs = [_pack(snapshots, partition) for partition in partitions]
        n = len(partitions)
        return pa.table({
            "processor": pa.array([self.name] * n), "partition": pa.array(partitions, pa.int64()),
            "format": pa.array([STATE_FORMAT] * n, pa.int32()),
            "headwater_version": pa.array([__version__] * n),
            "state": pa.array(blobs, pa.binary()),
            "saved_at": pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC")),
        })

    def _restore(self, partitions: Sequence[int]) -> dict[int, int]:
        """Positions and operator state the store holds for ``partitions``."""
        positions = {int(k): v["offset"] for k, v in self.store.state(self.pipeline).items()
                     if int(k) in partitions}
        if not positions:
            return {}
        try:
            saved = self.store.query(
                f'SELECT "partition", "format", "state" FROM {STATE_TABLE} '
                "WHERE processor = ?", [self.name])
        except HeadwaterError:
            saved = None
        if saved is None or not saved.num_rows:
            return positions
        rows = [r for r in saved.to_pylist() if int(r["partition"]) in partitions]
        for row in rows:
            if int(row["format"]) != STATE_FORMAT:
                raise ConfigError(
                    f"processor {self.name!r}: its saved state has format {row['format']}, "
                    f"this headwater reads format {STATE_FORMAT}",
                    hint="run it with the headwater version that saved it until it has "
                    "drained, or reset its group (`headwater stream positions --reset`)")
        _unpack_into(self._components(), [bytes(r["state"]) for r in rows])
        return positions

    def _record(self, runs: RunStore | None, current: Run) -> None:
        if runs is not None:
            try:
                runs.record(current)
            except HeadwaterError as exc:
                log.error("run_record_failed", error=str(exc))


# --- helpers -------------------------------------------------------------------------------


def _times(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Millisecond columns as UTC timestamps for the sink."""
    return frame.with_columns([pl.col(c).cast(pl.Datetime("ms", "UTC")) for c in columns
                               if c in frame.columns and frame.schema[c].is_integer()])


#: How often a following processor looks at its topic's end, for the lag metric.
_LAG_EVERY_S = 2.0


def _alert_changes(processor: str, keys: Sequence[str], changes: Any) -> list[dict[str, Any]]:
    """The batch's opened and resolved alerts in the shape monitor's alerts take (a handful
    of rows per batch, not one per record)."""
    out = []
    for status, frame in (("firing", changes.opened), ("resolved", changes.resolved)):
        for row in frame.iter_rows(named=True):
            out.append({"id": row["alert_id"], "rule": row["detector"], "status": status,
                        "severity": row["severity"], "value": row["score"],
                        "summary": f"{processor}: {row['detector']} on "
                        + ", ".join(f"{k} {row[k]}" for k in keys) + f": {row['reason']}",
                        "labels": {"processor": processor,
                                   **{k: str(row[k]) for k in keys}}})
    return out


def _add(total: BatchResult, batch: BatchResult) -> None:
    for name in total.__dataclass_fields__:
        setattr(total, name, getattr(total, name) + getattr(batch, name))


def _describe(current: Run, result: ProcessorResult) -> None:
    """Put the run's figures so far on its run record."""
    current.rows_read = result.totals.records
    current.rows_loaded = result.totals.events
    current.rows_quarantined = result.totals.quarantined
    current.rows_dropped = result.totals.duplicates + result.totals.late
    current.report.update(stream=_report(result))


def _report(result: ProcessorResult) -> dict[str, Any]:
    return {"partitions": result.partitions, "batches": result.batches,
            **vars(result.totals), "watermark_ms": result.watermark_ms,
            "open_windows": result.open_windows, "active_alerts": result.active_alerts,
            "events_per_second": round(result.events_per_second, 1),
            "positions": {str(p): o for p, o in sorted(result.positions.items())}}


def _partition_column(table: pa.Table) -> str | None:
    for name in ("_p", _PARTITION):
        if name in table.column_names:
            return name
    return None


def _pack(snapshots: dict[str, dict[str, Any]], partition: int) -> bytes:
    """Every component's state rows of one partition, as one Arrow IPC stream of
    (component, item, ipc) rows."""
    names, items, payloads = [], [], []
    for component, state in snapshots.items():
        for item, value in state.items():
            if isinstance(value, pa.Table):
                column = _partition_column(value)
                if column is not None:
                    value = value.filter(pc.equal(value.column(column), partition))
                payload = _ipc(value)
            else:
                payload = _ipc(pa.table({"scalar": pa.array([value], pa.int64())}))
            names.append(component)
            items.append(item)
            payloads.append(payload)
    return _ipc(pa.table({"component": names, "item": items,
                          "ipc": pa.array(payloads, pa.binary())}))


def _unpack_into(components: dict[str, Any], blobs: list[bytes]) -> None:
    """Load the state of several partitions into the components (tables concatenated)."""
    gathered: dict[str, dict[str, list[pa.Table]]] = {}
    for blob in blobs:
        table = _from_ipc(blob)
        for component, item, payload in zip(table.column("component").to_pylist(),
                                            table.column("item").to_pylist(),
                                            table.column("ipc").to_pylist(), strict=True):
            gathered.setdefault(component, {}).setdefault(item, []).append(_from_ipc(payload))
    for name, part in components.items():
        items = gathered.get(name)
        if not items:
            continue
        state: dict[str, Any] = {}
        for item, tables in items.items():
            if tables[0].column_names == ["scalar"]:
                values = [t.column("scalar")[0].as_py() for t in tables]
                known = [v for v in values if v is not None]
                state[item] = max(known) if known else None
            else:
                state[item] = pa.concat_tables(tables, promote_options="default")
        part.restore(state)


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema,
                           options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _from_ipc(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(blob)).read_all()


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM end the run after the current commit (main thread only)."""
    with stop_on_signals(stop, lambda signum: log.warning("stream_stopping", reason="signal",
                                                          signal=signum)):
        yield

"""The ingestion pipeline: source → cleanse and contract → store + quarantine, exactly once.

Each extract (a file, a slice of a table, a range of pages) commits in one store transaction
together with its position, so a re-run loads nothing twice and a crash loses nothing. Every row
read ends in exactly one place: the table, the quarantine, or the counted drops (duplicates).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from headwater.core import (
    POSITION,
    Batch,
    ContractError,
    Extract,
    HeadwaterError,
    Progress,
    Source,
    SourceError,
    State,
    WriteMode,
)
from headwater.ingest._ahead import WorkAhead
from headwater.ingest._quarantine import quarantine_rows, rejects_as_invalid, rule_counts
from headwater.monitor import Run, get_logger, metrics, run
from headwater.store import RunStore, Store, Transaction
from headwater.store._prepare import dedupe_on_key

if TYPE_CHECKING:
    from headwater.contract import Checker, Contract, Typed

log = get_logger(__name__)

@dataclass
class ExtractResult:
    """What happened to one extract (a file, a table slice, a range of pages)."""

    source: str
    status: str = "loaded"  # loaded | failed | skipped
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_dropped: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    rules: dict[str, int] = field(default_factory=dict)


@dataclass
class _CheckedBatch:
    """One batch after the contract, waiting to be written (the rows as read are let go):
    valid rows, and failing rows already in the quarantine's shape, with counts per rule."""

    read: int
    children: dict[str, pa.Table] = field(default_factory=dict)
    valid: pa.Table | None = None
    quarantine: list[pa.Table] = field(default_factory=list)
    rules: dict[str, int] = field(default_factory=dict)
    dropped: int = 0

    @property
    def quarantined(self) -> int:
        return sum(rows.num_rows for rows in self.quarantine)


class ConservationError(HeadwaterError):
    """Rows went missing between read and write: a bug in headwater, never the user's fault."""


#: Quarantine rows and child tables held while valid rows stream into the store; past this
#: many bytes the insert ends, they are written, and a new insert takes the following batches.
_HELD_BYTES = 256 << 20


@dataclass
class _Held:
    """What waits for the end of an insert: quarantine rows and child tables, in batch order."""

    quarantine: list[pa.Table] = field(default_factory=list)
    children: list[tuple[str, pa.Table]] = field(default_factory=list)
    loaded: int = 0
    quarantined: int = 0
    nbytes: int = 0
    exhausted: bool = False

    def add(self, checked: _CheckedBatch, loaded: int) -> None:
        self.loaded += loaded
        for rows in checked.quarantine:
            self.quarantine.append(rows)
            self.quarantined += rows.num_rows
            self.nbytes += rows.nbytes
        for suffix, child in checked.children.items():
            self.children.append((suffix, child))
            self.nbytes += child.nbytes


_BUG_HINT = ("this is a bug in headwater; the load was rolled back. Please report it with the "
             "log file under .headwater/logs/")


def _conserve(extract: Extract, read: int, loaded: int, quarantined: int, dropped: int) -> None:
    """Every row read is loaded, quarantined or dropped: anything else is a bug."""
    if loaded + quarantined + dropped != read:
        raise ConservationError(
            f"{extract.source}: read {read} rows but loaded {loaded}, quarantined "
            f"{quarantined} and dropped {dropped}", hint=_BUG_HINT)


def _all_written(extract: Extract, rows: str, where: str, passed: int, wrote: int) -> None:
    """The store wrote every row it was given: anything else is a bug."""
    if wrote != passed:
        raise ConservationError(f"{extract.source}: {passed} {rows} rows were passed to the "
                                f"{where} but it wrote {wrote}", hint=_BUG_HINT)


def ingest(source: Source, store: Store, *, table: str, pipeline: str | None = None,
           contract: Contract | None = None, mode: WriteMode = "append",
           primary_key: list[str] | None = None, runs: RunStore | None = None,
           progress: Progress | None = None) -> Run:
    """Load everything ``source`` has not yet delivered into ``table`` of ``store``.

    Parameters
    ----------
    source:
        Any :class:`headwater.core.Source` (files, SQL, REST, the quarantine, ...).
    store:
        Where rows, quarantined rows and positions land (one transaction per extract).
    table:
        Destination table; created on first load, its schema evolved on later ones.
    pipeline:
        Name under which positions and runs are kept (default: ``table``).
    contract:
        Types, cleansing and rules. Without one, a contract is inferred from the first batch
        (every column nullable, types only).
    mode:
        ``append``, ``merge`` (upsert on ``primary_key``) or ``replace``. Replace is
        all-or-nothing: one transaction for the whole run, and a file that fails leaves the
        table as it was.
    runs:
        Where to keep the run record (none: not recorded).
    progress:
        Called after each batch, for progress bars.

    Returns the :class:`headwater.monitor.Run` with counts, per-extract results
    (``run.report["extracts"]``) and the quality report (``run.report["quality"]``). The run's
    status is ``failed`` if any extract failed; the others are loaded all the same.
    """
    pipeline = pipeline or table
    with run("ingest", pipeline) as current:
        loader = _Loader(store, current, pipeline=pipeline, table=table, contract=contract,
                         mode=mode, primary_key=primary_key, progress=progress)
        try:
            loader.load_all(source)
        except BaseException as exc:
            current.status = "failed"
            current.error = str(exc)
            loader.finish_report()
            if runs is not None:
                _record(runs, current)
            raise
        loader.finish_report()
        current.report["metrics"] = metrics.record_run_metrics(current)
        failed = [r for r in loader.all_results if r.status == "failed"]
        if failed:
            current.status = "failed"
            current.error = f"{len(failed)} of {len(loader.all_results)} extracts failed: " + \
                "; ".join(f"{r.source}: {r.error}" for r in failed[:5])
    if runs is not None:
        _record(runs, current)
    return current


def _record(runs: RunStore, current: Run) -> None:
    try:
        runs.record(current)
    except HeadwaterError as exc:
        log.error("run_record_failed", error=str(exc))


@dataclass
class _Ids:
    """The next quarantine row number of a run, shared by the loaders of its tables."""

    next: int = 0


class _Loader:
    """Loads the extracts meant for one table; routes those of other tables to sub-loaders.

    A source that reads several tables (a SQL source with ``tables: [a, b]``) marks each extract
    with ``meta["table_suffix"]``: its rows go to ``<table>_<suffix>``, with a contract inferred
    for that table and the primary key the source reports, unless the pipeline names one.
    """

    def __init__(self, store: Store, current: Run, *, pipeline: str, table: str,
                 contract: Contract | None, mode: WriteMode, primary_key: list[str] | None,
                 progress: Progress | None, ids: _Ids | None = None) -> None:
        self.store = store
        self.run = current
        self.pipeline = pipeline
        self.table = table
        self.contract = contract
        self.mode = mode
        self.primary_key = primary_key
        self.progress = progress
        self.checker: Checker | None = contract.checker() if contract is not None else None
        self.inferred = False
        self.results: list[ExtractResult] = []
        self.routes: dict[str, _Loader] = {}
        self._ids = ids or _Ids()

    def load_all(self, source: Source) -> None:
        if self.mode == "replace":
            committed: list[Extract] = []
            with self.store.transaction(self.pipeline, self.run.id) as tx:
                tx.clear_state()
                for extract in source.extracts(State()):
                    result = self._route(extract)._load(extract, tx)
                    if result.status == "failed":
                        raise SourceError(f"{result.source}: {result.error}",
                                          hint="mode replace is all-or-nothing: fix or remove "
                                          "the file; the table was left as it was")
                    committed.append(extract)
            for extract in committed:
                _acknowledge(extract)
        else:
            extracts = source.extracts(self.store.state(self.pipeline))
            try:
                for extract in extracts:
                    result = self._route(extract)._load(extract, None)
                    if result.status == "failed" and extract.ordered:
                        break  # the extracts after it would move the position past its rows
            finally:
                close = getattr(extracts, "close", None)
                if close is not None:
                    close()

    def _route(self, extract: Extract) -> _Loader:
        suffix = extract.meta.get("table_suffix")
        if not suffix:
            return self
        table = f"{self.table}_{suffix}"
        if table not in self.routes:
            self.routes[table] = _Loader(
                self.store, self.run, pipeline=self.pipeline, table=table, contract=None,
                mode=self.mode, primary_key=self.primary_key or extract.meta.get("primary_key"),
                progress=self.progress, ids=self._ids)
        return self.routes[table]

    @property
    def all_results(self) -> list[ExtractResult]:
        """Results of this loader's extracts and of every routed table's."""
        return self.results + [r for sub in self.routes.values() for r in sub.results]

    def _load(self, extract: Extract, shared_tx: Transaction | None) -> ExtractResult:
        result = ExtractResult(source=extract.source, nbytes=extract.nbytes)
        start = time.perf_counter()
        first_id = self._ids.next
        checker_before = self.checker
        try:
            tx_context = nullcontext(shared_tx) if shared_tx is not None else \
                self.store.transaction(self.pipeline, self.run.id)
            with tx_context as tx:
                if extract.meta.get("truncate"):  # the source table was emptied: so is ours
                    tx.delete_all(self.table)
                self._load_batches(extract, tx, result)
                if extract.key:
                    tx.set_state(extract.key, extract.position)
                for key, position in extract.meta.get("states", {}).items():
                    tx.set_state(key, position)  # a position per partition of a stream
                replays = extract.meta.get("replays")
                if replays:
                    tx.mark_replayed(replays, self.run.id)
        except (SourceError, ContractError) as exc:
            # the extract alone fails; its rows were rolled back, the others go on
            result.status = "failed"
            result.error = exc.message
            self._ids.next = first_id
            if self.inferred and checker_before is None:
                self.checker, self.inferred = None, False
            log.error("extract_failed", source=extract.source, error=exc.message)
        result.seconds = time.perf_counter() - start
        self.results.append(result)
        if result.status == "loaded":
            self._count(result)
            if shared_tx is None:
                _acknowledge(extract)
            source_time = extract.meta.get("source_time")
            if source_time is not None:  # the source's own clock: how late the rows arrive
                metrics.INGEST_LATENCY.labels(self.pipeline, self.table).observe(
                    max(0.0, time.time() - source_time))
        else:
            metrics.ERRORS.labels("ingest", "extract_failed").inc()
        return result

    def _load_batches(self, extract: Extract, tx: Transaction, result: ExtractResult) -> None:
        """Three stages on three threads, in batch order: one types batch n + 2, one validates
        batch n + 1, and this one writes batch n (Polars, pyarrow and DuckDB release the GIL)."""
        validate = functools.partial(self._validate_batch, extract)
        with WorkAhead(extract.batches, self._type_batch, depth=1, name="hw-type") as typed, \
                WorkAhead(typed, validate, depth=1, name="hw-check") as checked_batches:
            batches = iter(checked_batches)
            while True:  # one INSERT for the valid rows; quarantine and child tables after it
                held = _Held()
                loaded = tx.write_stream(self.table, self._valid_rows(batches, extract, result,
                                                                      held),
                                         mode=self.mode, primary_key=self.primary_key)
                self._store_held(held, loaded, extract, tx, result)
                if held.exhausted:
                    return

    def _valid_rows(self, batches: Iterator[_CheckedBatch], extract: Extract,
                    result: ExtractResult, held: _Held) -> Iterator[pa.Table]:
        """Yield each batch's valid rows; hold its quarantine and child tables (the store is
        busy with the insert). Stops early when what is held grows past ``_HELD_BYTES``."""
        for checked in batches:
            valid = checked.valid
            loaded = valid.num_rows if valid is not None else 0
            _conserve(extract, checked.read, loaded, checked.quarantined, checked.dropped)
            held.add(checked, loaded)
            _add_rules(result, checked.rules)
            result.rows_read += checked.read
            result.rows_dropped += checked.dropped
            if valid is not None and (valid.num_rows or self.mode == "replace"):
                yield valid
            self._progress(extract, result)
            if held.nbytes > _HELD_BYTES:
                return
        held.exhausted = True

    def _store_held(self, held: _Held, loaded: int, extract: Extract, tx: Transaction,
                    result: ExtractResult) -> None:
        """After the insert: child tables, then the quarantine; check the insert's count."""
        _all_written(extract, "valid", "store", held.loaded, loaded)
        result.rows_loaded += loaded
        for suffix, child in held.children:
            tx.write(f"{self.table}__{suffix}", child,
                     mode="replace" if self.mode == "replace" else "append")
        quarantined = sum(tx.quarantine(rows) for rows in held.quarantine)
        _all_written(extract, "failing", "quarantine", held.quarantined, quarantined)
        result.rows_quarantined += quarantined

    def _progress(self, extract: Extract, result: ExtractResult) -> None:
        if self.progress is not None:
            self.progress(extract.source, result.rows_read, extract.nbytes)

    def _type_batch(self, batch: Batch) -> tuple[Batch, Typed | None]:
        """Cleanse and type one batch (no store access: runs on the typing thread)."""
        if batch.data.num_rows or batch.data.num_columns > 1:
            return batch, self._checker(batch.data).typed(batch.data)
        return batch, None

    def _validate_batch(self, extract: Extract,
                        item: tuple[Batch, Typed | None]) -> _CheckedBatch:
        """Apply the contract's rules to one typed batch; shape its failing rows for the
        quarantine (runs on the checking thread)."""
        batch, typed = item
        checked = _CheckedBatch(batch.num_rows, batch.children)
        invalid_parts = []
        if batch.rejects is not None and batch.rejects.num_rows:
            invalid_parts.append(rejects_as_invalid(batch.rejects))
        if typed is not None:
            assert self.checker is not None  # set by _type_batch with the first batch
            outcome = self.checker.validate(typed)
            checked.valid = outcome.valid
            invalid_parts.append(outcome.invalid)
            checked.dropped = outcome.dropped
            if self.mode == "merge" and outcome.valid.num_rows > 1:
                # a later row of a key replaces an earlier one of the same batch: dropped here,
                # counted, so that the store writes every row it is given
                checked.valid = dedupe_on_key(outcome.valid, self.primary_key or [], self.table)
                checked.dropped += outcome.valid.num_rows - checked.valid.num_rows
        for invalid in invalid_parts:
            if invalid.num_rows:
                checked.quarantine.append(self._quarantine_rows(invalid, extract))
                _add_rules(checked, rule_counts(invalid))
        return checked

    def _quarantine_rows(self, invalid: pa.Table, extract: Extract) -> pa.Table:
        """One batch's failing rows as quarantine rows (raw row, position, every rule and
        reason), numbered in batch order."""
        rows = quarantine_rows(invalid, run_id=self.run.id, pipeline=self.pipeline,
                               table=self.table, source=extract.source, unit=extract.unit,
                               first_id=self._ids.next, origins=extract.meta.get("origins"))
        self._ids.next += rows.num_rows
        return rows

    def _checker(self, sample: pa.Table) -> Checker:
        if self.checker is None:
            from headwater.contract import Contract, infer_contract

            columns = [c for c in sample.column_names if c != POSITION]
            self.contract = Contract.from_spec(infer_contract(sample.select(columns)))
            self.checker = self.contract.checker()
            self.inferred = True
            log.info("contract_inferred", table=self.table, columns=sample.num_columns - 1)
        return self.checker

    def _count(self, r: ExtractResult) -> None:
        self.run.rows_read += r.rows_read
        self.run.rows_loaded += r.rows_loaded
        self.run.rows_quarantined += r.rows_quarantined
        self.run.rows_dropped += r.rows_dropped
        self.run.bytes_read += r.nbytes
        labels = (self.pipeline, r.source, self.table)
        metrics.ROWS.labels(*labels, "read").inc(r.rows_read)
        metrics.ROWS.labels(*labels, "loaded").inc(r.rows_loaded)
        metrics.ROWS.labels(*labels, "quarantined").inc(r.rows_quarantined)
        metrics.ROWS.labels(*labels, "dropped").inc(r.rows_dropped)
        metrics.BYTES.labels(self.pipeline, r.source).inc(r.nbytes)
        for rule, count in r.rules.items():
            metrics.QUARANTINED.labels(self.pipeline, self.table, rule).inc(count)
        log.info("extract_loaded", source=r.source, rows_read=r.rows_read,
                 rows_loaded=r.rows_loaded, rows_quarantined=r.rows_quarantined,
                 rows_dropped=r.rows_dropped, seconds=round(r.seconds, 3))

    def finish_report(self) -> None:
        report: dict[str, Any] = self.run.report
        report["table"] = self.table
        report["mode"] = self.mode
        report["extracts"] = [vars(r) for r in self.all_results]
        rules: dict[str, int] = {}
        for r in self.all_results:
            for rule, count in r.rules.items():
                rules[rule] = rules.get(rule, 0) + count
        report["rules_failed"] = dict(sorted(rules.items(), key=lambda kv: -kv[1]))
        if self.checker is not None:
            findings = self.checker.finish()
            report["table_rules"] = [_finding_dict(f) for f in findings]
            report["quality"] = self.checker.report.to_dict()
            report["contract_inferred"] = self.inferred
        if self.routes:
            report["tables"] = {
                name: {"quality": sub.checker.report.to_dict() if sub.checker else None,
                       "table_rules": [_finding_dict(f) for f in sub.checker.finish()]
                       if sub.checker else []}
                for name, sub in self.routes.items()}
        report["conservation"] = {
            "read": self.run.rows_read, "loaded": self.run.rows_loaded,
            "quarantined": self.run.rows_quarantined, "dropped": self.run.rows_dropped,
            "holds": self.run.rows_read == (self.run.rows_loaded + self.run.rows_quarantined
                                            + self.run.rows_dropped),
        }


def _acknowledge(extract: Extract) -> None:
    """Tell the source its extract is committed; a failure here loses nothing (the sink's
    position is the one a restart resumes from), so it is logged, not raised."""
    if extract.acknowledge is None:
        return
    try:
        extract.acknowledge()
    except HeadwaterError as exc:
        log.warning("acknowledge_failed", source=extract.source, error=exc.message)


def _add_rules(into: ExtractResult | _CheckedBatch, counts: dict[str, int]) -> None:
    for rule, count in counts.items():
        into.rules[rule] = into.rules.get(rule, 0) + count


def _finding_dict(finding: Any) -> dict[str, Any]:
    if hasattr(finding, "to_dict"):
        return finding.to_dict()
    if hasattr(finding, "__dataclass_fields__"):
        return {k: getattr(finding, k) for k in finding.__dataclass_fields__}
    return {"finding": str(finding)}


"""Ingestion entry points for people: load files now, run a declared pipeline, replay."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.config import PipelineSpec, Project
from headwater.core import ConfigError, Progress, Source, State, WriteMode, stop_on_signals
from headwater.ingest._pipeline import ingest
from headwater.ingest._quarantine import QuarantineSource
from headwater.monitor import Run
from headwater.store import RunStore, Store, open_store, run_store

if TYPE_CHECKING:
    from headwater.contract import Contract


def load_contract(contract: Contract | str | Path | dict[str, Any] | Any | None,
                  root: Path | None = None) -> Contract | None:
    """A Contract from an object, a YAML file (relative to ``root``), a dict or a spec model."""
    if contract is None:
        return None
    from headwater.contract import Contract

    if isinstance(contract, Contract):
        return contract
    if isinstance(contract, str | Path):
        path = Path(contract)
        return Contract.load(path if path.is_absolute() or root is None else root / path)
    return Contract.from_spec(contract)


def infer_from_file(path: str | Path, *, rows: int = 100_000, **read_options: Any) -> str:
    """Contract YAML inferred from the first ``rows`` rows of a file, for a person to edit."""
    from headwater.ingest.sources import FileSource

    return infer_from_source(FileSource(path, **read_options), rows=rows, what=str(path))


def infer_for_pipeline(project: Project, name: str, *, rows: int = 100_000) -> str:
    """Contract YAML inferred from the first ``rows`` rows the pipeline ``name`` would read.

    Nothing is committed. A change-data-capture source is sampled by a plain read of its table,
    so no replication slot is created.
    """
    from headwater.config._sources import SqlSpec
    from headwater.ingest.sources import build_source
    from headwater.ingest.sources._sql import SqlSource

    spec: PipelineSpec = project.pipeline(name)
    source: Source
    if isinstance(spec.source, SqlSpec) and spec.source.cdc:
        source = SqlSource.from_spec(spec.source, project.root)
    else:
        source = build_source(spec.source, project)
    return infer_from_source(source, rows=rows, what=f"pipeline {name}")


def infer_from_source(source: Source, *, rows: int = 100_000, what: str = "the source") -> str:
    """Contract YAML inferred from the first ``rows`` rows of ``source``'s first extract."""
    import pyarrow as pa

    from headwater.contract import dump_contract, infer_contract
    from headwater.core import POSITION, ConfigError, FileFormatError

    parts: list[pa.Table] = []
    taken = 0
    for extract in source.extracts(State()):
        if extract.meta.get("table_suffix"):
            raise ConfigError(f"{what} reads several tables; a contract describes one",
                              hint="give each table a pipeline of its own (`tables: [one]`) to "
                              "infer and apply a contract")
        for batch in extract.batches:
            parts.append(batch.data)
            taken += batch.data.num_rows
            if taken >= rows:
                break
        break
    if not parts or taken == 0:
        raise FileFormatError(f"{what}: no rows to infer a contract from",
                              hint="sample a source that has at least one row")
    sample = pa.concat_tables(parts, promote_options="permissive").slice(0, rows)
    return dump_contract(infer_contract(sample.drop_columns([POSITION])))


def ingest_files(paths: str | Path | list[str | Path], store: Store, *, table: str,
                 contract: Contract | str | Path | dict[str, Any] | None = None,
                 mode: WriteMode = "append", primary_key: list[str] | None = None,
                 pipeline: str | None = None, runs: RunStore | None = None,
                 progress: Progress | None = None, **read_options: Any) -> Run:
    """Load files (paths, globs or folders) into ``table``: detect, cleanse, validate, load.

    ``read_options`` go to :class:`headwater.ingest.FileSource` (``format``, ``encoding``,
    ``delimiter``, ``sheet``, ``record_path``, ``nested``, ``batch_rows``). Files already loaded
    (same content hash) are skipped. See :func:`headwater.ingest.ingest` for the rest.

    >>> import tempfile, pathlib
    >>> from headwater.store import DuckDBStore
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.csv").write_text("id,amount\\n1,10\\n2,x\\n")
    >>> store = DuckDBStore(folder / "w.duckdb")
    >>> contract = {"columns": {"id": {"type": "integer"}, "amount": {"type": "integer"}}}
    >>> run = ingest_files(folder / "a.csv", store, table="t", contract=contract)
    >>> (run.rows_read, run.rows_loaded, run.rows_quarantined)
    (2, 1, 1)
    """
    from headwater.ingest.sources import FileSource

    source = FileSource(paths, **read_options)
    return ingest(source, store, table=table, pipeline=pipeline or table,
                  contract=load_contract(contract), mode=mode, primary_key=primary_key,
                  runs=runs, progress=progress)


def run_pipeline(project: Project, name: str, *, progress: Progress | None = None,
                 follow: bool = False, stop: threading.Event | None = None,
                 on_run: Callable[[Run], None] | None = None,
                 metrics_port: int | None = None) -> Run:
    """Run the pipeline ``name`` declared in headwater.yaml and record the run.

    Holds the pipeline's lock (the scheduler's), so two runs of one pipeline never overlap;
    raises ``PipelineBusy`` if another process is running it.

    A stream source is read to the end it has when the run starts. With ``follow`` it is read
    in micro-batches until ``stop`` is set (Ctrl-C and SIGTERM set it: the run ends after the
    current commit); every ``window`` of the source is a run of its own, recorded and passed
    to ``on_run``; meanwhile the alert rules are evaluated on a clock and, with
    ``metrics_port``, ``/metrics`` is served. Returns the last run.
    """
    from headwater.ingest._locks import pipeline_lock
    from headwater.ingest.sources import build_source

    spec: PipelineSpec = project.pipeline(name)
    if follow and spec.source.kind != "stream":
        raise ConfigError(f"pipeline {name} reads {spec.source.kind}, which has no end to "
                          "follow", hint="--follow is for stream sources; run it without, or "
                          "on a schedule (`headwater schedule run`)")
    source = build_source(spec.source, project)
    contract = load_contract(spec.contract, project.root)
    with pipeline_lock(project, name):
        store = open_store(project, spec.store)
        try:
            def once() -> Run:
                return ingest(source, store, table=spec.table, pipeline=name, contract=contract,
                              mode=spec.mode, primary_key=spec.primary_key or None,
                              runs=run_store(project), progress=progress)

            if not follow:
                current = once()
                if on_run is not None:
                    on_run(current)
                return current
            from headwater.monitor.alerts import monitoring

            with monitoring(project, job=f"ingest-{name}", metrics_port=metrics_port):
                return _follow(source, once, stop or threading.Event(), on_run)
        finally:
            store.close()
            close = getattr(source, "close", None)
            if close is not None:
                close()
            check_after_run(project, f"ingest-{name}")


def check_after_run(project: Project, job: str) -> None:
    """Evaluate the project's alert rules after a batch run (never raises; delivery runs on
    a thread, off the pipeline's path)."""
    if not project.alerts.rules:
        return
    from headwater.monitor.alerts import check_rules

    check_rules(project, job=job)


def _follow(source: Source, once: Callable[[], Run], stop: threading.Event,
            on_run: Callable[[Run], None] | None) -> Run:
    """Runs of a stream source, window after window, until ``stop`` is set."""
    from headwater.monitor import get_logger

    log = get_logger(__name__)
    source.follow, source.stop = True, stop  # type: ignore[attr-defined]
    with stop_on_signals(stop, lambda signum: log.warning("ingest_stopping", reason="signal",
                                                          signal=signum)):
        while True:
            current = once()
            if on_run is not None:
                on_run(current)
            if stop.is_set() or current.status == "failed":
                return current


def replay_quarantine(store: Store, *, table: str, contract: Contract | None = None,
                      pipeline: str | None = None, ids: list[str] | None = None,
                      mode: WriteMode = "append", primary_key: list[str] | None = None,
                      runs: RunStore | None = None) -> Run:
    """Load quarantined rows of ``table`` again, after the contract or the data was fixed.

    Rows that now pass are loaded; rows that still fail are quarantined again with today's
    reasons; either way the old quarantine rows are marked as replayed by this run, in the same
    transaction.
    """
    source = QuarantineSource(store, table=table, pipeline=pipeline, ids=ids)
    return ingest(source, store, table=table, pipeline=pipeline or table, contract=contract,
                  mode="append" if mode == "replace" else mode, primary_key=primary_key,
                  runs=runs)


def replay_table(project: Project, table: str, *, contract: str | Path | None = None,
                 pipeline: str | None = None, ids: list[str] | None = None,
                 store: str = "warehouse") -> Run:
    """Replay the quarantined rows of ``table`` with its pipeline's contract, mode and key
    (from headwater.yaml; ``contract`` overrides the contract) and record the run."""
    spec = next((s for n, s in project.pipelines.items()
                 if s.table == table and pipeline in (None, n)), None)
    chosen = contract or (spec.contract if spec else None)
    target = open_store(project, store)
    try:
        return replay_quarantine(target, table=table,
                                 contract=load_contract(chosen, project.root),
                                 pipeline=pipeline, ids=ids,
                                 mode=spec.mode if spec else "append",
                                 primary_key=(spec.primary_key or None) if spec else None,
                                 runs=run_store(project))
    finally:
        target.close()

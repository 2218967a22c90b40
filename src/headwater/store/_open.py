"""Open the stores a project's headwater.yaml names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from headwater.config import DeltaStoreSpec, DuckDBStoreSpec, PostgresStoreSpec, Project
from headwater.core import ConfigError
from headwater.monitor import Run, run
from headwater.store._base import Store
from headwater.store._delta import DeltaStore
from headwater.store._duckdb import DuckDBStore
from headwater.store._postgres import PostgresStore
from headwater.store._runs import RunStore


def open_store(project: Project, name: str = "warehouse", *, read_only: bool = False) -> Store:
    """The store called ``name`` in headwater.yaml (``warehouse`` by default).

    ``read_only`` applies to the DuckDB file (no write lock); PostgreSQL and Delta readers never
    block writers.
    """
    spec = project.stores.get(name)
    if spec is None:
        raise ConfigError(f"no store '{name}' in headwater.yaml (stores: {sorted(project.stores)})",
                          hint="add it under `stores:`")
    if isinstance(spec, DuckDBStoreSpec):
        return DuckDBStore(project.path(spec.path), read_only=read_only)
    if isinstance(spec, PostgresStoreSpec):
        return PostgresStore(spec.url.get_secret_value(), schema=spec.db_schema)
    if isinstance(spec, DeltaStoreSpec):
        uri = spec.uri if "://" in spec.uri else str(project.path(spec.uri))
        options = {k: v.get_secret_value() for k, v in spec.storage_options.items()}
        return DeltaStore(uri, storage_options=options)
    raise ConfigError(f"store '{name}' of kind '{spec.kind}' is not available in this build",
                      hint="use kind: duckdb, postgres or delta")


def run_store(project: Project) -> RunStore:
    """The metadata store for run records."""
    if project.metadata.url is not None:
        return RunStore(project.metadata.url.get_secret_value())
    return RunStore.at(project.state_dir)


@contextmanager
def recorded_run(project: Project, kind: str, name: str) -> Iterator[Run]:
    """A run (:func:`headwater.monitor.run`: a run id on every log line, timed, ``failed`` with
    the error if the block raises) whose record is stored when the block ends, however it ends,
    so that ``headwater runs`` lists failed runs too.

        with recorded_run(project, "train", "churn") as current:
            current.rows_read = len(frame)
    """
    runs = run_store(project)
    current = None
    try:
        with run(kind, name) as current:
            yield current
    finally:
        if current is not None:
            runs.record(current)

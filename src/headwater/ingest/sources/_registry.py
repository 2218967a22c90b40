"""From a source spec in headwater.yaml to a :class:`headwater.core.Source`."""

from __future__ import annotations

from typing import Any

from headwater.config import Project
from headwater.config._sources import (
    FilesSpec,
    RedisSpec,
    RestSpec,
    SoapSpec,
    SqlSpec,
    StreamSpec,
)
from headwater.core import ConfigError, Source


def build_source(spec: Any, project: Project, *, window: tuple[Any, Any] | None = None) -> Source:
    """The source a pipeline's ``source:`` block describes.

    Parameters
    ----------
    spec:
        One of the source models of :mod:`headwater.config` (``kind: files | sql | rest |
        soap | redis | stream``).
    project:
        The project: relative paths resolve against its folder, and the pipeline that declares
        ``spec`` is checked for settings the source needs (``mode: merge`` for lookback or cdc).
    window:
        ``(start, end)`` for a backfill run of a cursor-based source.

    Raises ConfigError when the combination cannot be loaded exactly once.

    >>> from headwater.config import parse_project
    >>> p = parse_project("pipelines: {a: {table: a, source: {kind: sql, url: 'sqlite:///x.db'}}}")
    >>> build_source(p.pipelines["a"].source, p).kind
    'sql'
    """
    _check_pipeline(spec, project)
    if isinstance(spec, FilesSpec):
        from headwater.ingest.sources._files import FileSource

        return FileSource.from_spec(spec, project.root)
    if isinstance(spec, SqlSpec):
        if spec.cdc:
            from headwater.ingest.sources._cdc import PostgresCdcSource

            if window is not None:
                raise ConfigError("a cdc source cannot be backfilled by window",
                                  hint="cdc always delivers every change; run it instead")
            return PostgresCdcSource.from_spec(spec, project.root)
        from headwater.ingest.sources._sql import SqlSource as SqlReader

        return SqlReader.from_spec(spec, project.root, window=window)
    if isinstance(spec, RestSpec):
        from headwater.ingest.sources._rest import RestSource as RestReader

        return RestReader.from_spec(spec, window=window)
    if window is not None:
        raise ConfigError(f"a {spec.kind} source cannot be backfilled by window",
                          hint="backfill works for sql sources with a cursor and rest sources "
                          "with incremental")
    if isinstance(spec, SoapSpec):
        from headwater.ingest.sources._soap import SoapSource as SoapReader

        return SoapReader.from_spec(spec, project.root)
    if isinstance(spec, RedisSpec):
        from headwater.ingest.sources._redis import RedisSource as RedisReader

        return RedisReader.from_spec(spec)
    if isinstance(spec, StreamSpec):
        return _stream_source(spec, project)
    raise ConfigError(f"no source for kind '{getattr(spec, 'kind', type(spec).__name__)}'",
                      hint="kinds: files, sql, rest, soap, redis, stream")


def _stream_source(spec: StreamSpec, project: Project) -> Source:
    """A topic of a broker under ``brokers:``; csv columns default to the contract's."""
    from headwater.brokers import open_broker
    from headwater.ingest.sources._topic import StreamSource as TopicReader

    name = next((n for n, p in project.pipelines.items() if p.source is spec), "ingest")
    columns = None
    if spec.format == "csv" and not spec.columns:
        contract = project.pipelines[name].contract if name in project.pipelines else None
        if contract is not None:
            from headwater.contract import Contract

            loaded = Contract.load(project.path(contract)) if isinstance(contract, str) \
                else Contract.from_spec(contract)
            columns = list(loaded.columns)
    broker = open_broker(project.broker(spec.broker), project.root)
    source = TopicReader.from_spec(spec, broker, pipeline=name, columns=columns,
                                   root=project.root)
    source.owns_broker = True
    return source


def _check_pipeline(spec: Any, project: Project) -> None:
    """Settings that would load rows twice are refused before anything is read."""
    for name, pipeline in project.pipelines.items():
        if pipeline.source is not spec:
            continue
        where = f"pipelines.{name}"
        if isinstance(spec, SqlSpec):
            if spec.cdc and pipeline.mode != "merge":
                raise ConfigError(f"{where}: cdc needs mode: merge (changes are upserts)",
                                  hint="set mode: merge and primary_key: [id]")
            if spec.cursor and spec.cursor.lookback is not None and pipeline.mode == "append":
                raise ConfigError(
                    f"{where}: a lookback re-reads rows, which mode append would load twice",
                    hint="set mode: merge with primary_key, or remove lookback")
        if isinstance(spec, StreamSpec) and pipeline.mode == "replace":
            raise ConfigError(f"{where}: a stream delivers each record once; mode replace "
                              "would keep only the last run's records",
                              hint="use mode: append, or merge with primary_key")
        if isinstance(spec, RestSpec) and spec.incremental and pipeline.mode == "replace":
            raise ConfigError(f"{where}: incremental loading with mode replace keeps only the "
                              "last run's changes", hint="use mode: append or merge")

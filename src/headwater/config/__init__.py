"""headwater.yaml: pydantic models, ``${ENV}`` interpolation, errors that name key and line."""

from headwater.config._project import (
    PROJECT_FILE,
    LoggingSpec,
    MetadataSpec,
    MetricsSpec,
    PipelineSpec,
    Project,
    load_project,
    parse_project,
)
from headwater.config._sources import FilesSource, SourceSpec
from headwater.config._stores import DeltaStore, DuckDBStore, PostgresStore, StoreSpec
from headwater.config._yaml import load_yaml

__all__ = [
    "PROJECT_FILE",
    "DeltaStore",
    "DuckDBStore",
    "FilesSource",
    "LoggingSpec",
    "MetadataSpec",
    "MetricsSpec",
    "PipelineSpec",
    "PostgresStore",
    "Project",
    "SourceSpec",
    "StoreSpec",
    "load_project",
    "load_yaml",
    "parse_project",
]

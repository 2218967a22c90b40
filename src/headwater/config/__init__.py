"""headwater.yaml: pydantic models, ``${ENV}`` interpolation, errors that name key and line."""

from headwater.config._cv import CV_MODELS, CVSpec
from headwater.config._ml import (
    ALGORITHMS,
    CostMatrix,
    MLSpec,
    RegistrySpec,
    ThresholdSpec,
    TrainSpec,
)
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
    "ALGORITHMS",
    "CV_MODELS",
    "PROJECT_FILE",
    "CVSpec",
    "CostMatrix",
    "DeltaStore",
    "DuckDBStore",
    "FilesSource",
    "LoggingSpec",
    "MLSpec",
    "MetadataSpec",
    "MetricsSpec",
    "PipelineSpec",
    "PostgresStore",
    "Project",
    "RegistrySpec",
    "SourceSpec",
    "StoreSpec",
    "ThresholdSpec",
    "TrainSpec",
    "load_project",
    "load_yaml",
    "parse_project",
]

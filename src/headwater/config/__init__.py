"""headwater.yaml: pydantic models, ``${ENV}`` interpolation, errors that name key and line."""

from headwater.config._alerts import (
    SEVERITIES,
    AlertsSpec,
    InhibitSpec,
    RouteSpec,
    RuleSpec,
    SinkSpec,
)
from headwater.config._brokers import (
    DEFAULT_BROKER,
    BrokerSpec,
    EmbeddedBrokerSpec,
    KafkaBrokerSpec,
    KinesisBrokerSpec,
    NatsBrokerSpec,
)
from headwater.config._cv import CV_MODELS, CVSpec
from headwater.config._ml import (
    ALGORITHMS,
    CostMatrixSpec,
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
from headwater.config._sources import FilesSpec, SourceSpec
from headwater.config._stores import DeltaStoreSpec, DuckDBStoreSpec, PostgresStoreSpec, StoreSpec
from headwater.config._stream import (
    DetectorSpec,
    ProcessorSpec,
    StreamInputSpec,
    StreamOutputsSpec,
    WindowSpec,
)
from headwater.config._yaml import load_yaml

__all__ = [
    "ALGORITHMS",
    "CV_MODELS",
    "DEFAULT_BROKER",
    "PROJECT_FILE",
    "SEVERITIES",
    "AlertsSpec",
    "BrokerSpec",
    "CVSpec",
    "CostMatrixSpec",
    "DeltaStoreSpec",
    "DetectorSpec",
    "DuckDBStoreSpec",
    "EmbeddedBrokerSpec",
    "FilesSpec",
    "InhibitSpec",
    "KafkaBrokerSpec",
    "KinesisBrokerSpec",
    "LoggingSpec",
    "MLSpec",
    "MetadataSpec",
    "MetricsSpec",
    "NatsBrokerSpec",
    "PipelineSpec",
    "PostgresStoreSpec",
    "ProcessorSpec",
    "Project",
    "RegistrySpec",
    "RouteSpec",
    "RuleSpec",
    "SinkSpec",
    "SourceSpec",
    "StoreSpec",
    "StreamInputSpec",
    "StreamOutputsSpec",
    "ThresholdSpec",
    "TrainSpec",
    "WindowSpec",
    "load_project",
    "load_yaml",
    "parse_project",
]

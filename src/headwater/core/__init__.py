"""The shared vocabulary: batches, extracts, sources, errors."""

from headwater.core._batch import (
    POSITION,
    REJECTS_SCHEMA,
    Batch,
    Extract,
    Source,
    State,
    WriteMode,
)
from headwater.core._duration import check_duration, duration_ms, parse_duration
from headwater.core._errors import (
    ConfigError,
    ContractError,
    FileFormatError,
    HeadwaterError,
    MissingExtraError,
    NotFoundError,
    SchemaChangeError,
    SinkError,
    SourceError,
    require,
)
from headwater.core._secrets import redact, register_secret
from headwater.core._signals import stop_on_signals
from headwater.core._types import Progress

__all__ = [
    "POSITION",
    "REJECTS_SCHEMA",
    "Batch",
    "ConfigError",
    "ContractError",
    "Extract",
    "FileFormatError",
    "HeadwaterError",
    "MissingExtraError",
    "NotFoundError",
    "Progress",
    "SchemaChangeError",
    "SinkError",
    "Source",
    "SourceError",
    "State",
    "WriteMode",
    "check_duration",
    "duration_ms",
    "parse_duration",
    "redact",
    "register_secret",
    "require",
    "stop_on_signals",
]

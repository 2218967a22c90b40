"""The shared vocabulary: batches, extracts, sources, errors.

Errors, durations, secrets and signals import at once (the CLI needs them to start); the batch
vocabulary loads pyarrow, so it loads on first use: `headwater --help` stays fast.
"""

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
from headwater.core._lazy import lazy_exports
from headwater.core._secrets import redact, register_secret
from headwater.core._signals import stop_on_signals
from headwater.core._types import Progress

_LAZY = {name: "._batch" for name in
         ("POSITION", "REJECTS_SCHEMA", "Batch", "Extract", "Source", "State", "WriteMode",
          "rejects_table")}

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
    "lazy_exports",
    "parse_duration",
    "redact",
    "register_secret",
    "rejects_table",
    "require",
    "stop_on_signals",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

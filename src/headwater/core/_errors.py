"""One exception tree for headwater.

    HeadwaterError
    ├── ConfigError (ValueError)          headwater.yaml, contracts, arguments
    ├── SourceError                       a source cannot be read
    │   └── FileFormatError (ValueError)  a file is empty, corrupt or of an unknown format
    ├── ContractError (ValueError)        a contract cannot be applied (not: a row failing it)
    ├── SinkError                         the warehouse or lake refused a write
    │   └── SchemaChangeError (ValueError) a load would lose data through a type change
    ├── NotFoundError (KeyError)          a run, table, model or pipeline does not exist
    └── MissingExtraError (ImportError)   an optional dependency is not installed

Every message says what failed, where, and how to fix it.
"""

from __future__ import annotations


class HeadwaterError(Exception):
    """Root of every error headwater raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


class ConfigError(HeadwaterError, ValueError):
    """headwater.yaml, a contract file or an argument is invalid."""


class SourceError(HeadwaterError):
    """A source could not be read."""


class FileFormatError(SourceError, ValueError):
    """A file is empty, corrupt, or not in a format headwater can read."""


class ContractError(HeadwaterError, ValueError):
    """A contract cannot be applied to the data (a rule names a missing column, ...)."""


class SinkError(HeadwaterError):
    """The warehouse, lake or database refused a write."""


class SchemaChangeError(SinkError, ValueError):
    """A load would change a column's type in a way that loses data."""


class NotFoundError(HeadwaterError, KeyError):
    """A run, table, model, or pipeline does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return Exception.__str__(self)


class MissingExtraError(HeadwaterError, ImportError):
    """An optional dependency is missing; the message names the install command."""


def require(module: str, extra: str):
    """Import an optional module, or raise MissingExtraError naming the extra to install.

    >>> require("json", "core").__name__
    'json'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module} is not installed",
            hint=f"pip install 'headwater[{extra}]'",
        ) from exc

"""From a headwater.yaml source spec to the Source that reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError, Source

if TYPE_CHECKING:
    from headwater.config import Project


def build_source(spec: Any, project: Project) -> Source:
    """The Source for a pipeline's ``source:`` spec; relative paths start at the project root."""
    kind = getattr(spec, "kind", None)
    if kind == "files":
        from headwater.ingest.sources._files import FileSource

        return FileSource.from_spec(spec, project.root)
    raise ConfigError(f"source kind {kind!r} has no reader in this version",
                      hint="use kind: files, or upgrade headwater")

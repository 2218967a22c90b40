"""Sources: where rows come from. Files in any format (detected from content), as Arrow batches."""

from headwater.ingest.sources._detect import FORMATS, Detected, detect
from headwater.ingest.sources._files import FileSource, file_sha256
from headwater.ingest.sources._registry import build_source

__all__ = ["FORMATS", "Detected", "FileSource", "build_source", "detect", "file_sha256"]

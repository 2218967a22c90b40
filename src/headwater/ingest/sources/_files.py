"""The file source: paths, globs and folders in, one Extract per file out."""

from __future__ import annotations

import glob
import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core import (
    Batch,
    Extract,
    FileFormatError,
    HeadwaterError,
    Source,
    SourceError,
    State,
)
from headwater.ingest.sources._detect import FORMATS, Detected, detect
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config import FilesSpec

log = get_logger(__name__)

HASH_BLOCK = 4 << 20
_GLOB_CHARS = set("*?[")
_NESTED = ("flatten", "json", "child_tables")


class FileSource(Source):
    """Files in any supported format, each loaded once (by content hash) as one Extract.

    Parameters
    ----------
    paths:
        Files, globs (``data/*.csv``, ``in/**/*.json``) or folders (read recursively), relative
        to ``root``. Hidden files and folders are skipped; files are read in sorted order.
    format:
        ``auto`` (detect from content) or one of csv, tsv, json, jsonl, parquet, xlsx, xml.
    encoding, delimiter:
        Text encoding and CSV separator; detected when None.
    header:
        Whether CSV files start with a header row; None detects it.
    sheet:
        xlsx: sheet name or 0-based index (default: the first).
    record_path:
        XML: the element of one record (``orders/order``); JSON: the key of the record list
        (``records`` or ``data.items``).
    nested:
        Nested JSON objects: ``flatten`` to ``a_b`` columns, keep as ``json`` text, or split
        lists of objects into ``child_tables``.
    batch_rows:
        Rows per batch: bounds memory.
    root:
        Folder that relative paths start from (default: the current directory).

    Example
    -------
    >>> source = FileSource("data/*.csv", root=Path("."))
    >>> for extract in source.extracts(State()):  # doctest: +SKIP
    ...     for batch in extract.batches: ...
    """

    kind = "files"

    def __init__(self, paths: str | Path | list[str | Path], *, format: str = "auto",
                 encoding: str | None = None, delimiter: str | None = None,
                 header: bool | None = None, sheet: str | int | None = None,
                 record_path: str | None = None, nested: str = "flatten",
                 batch_rows: int = 250_000, root: Path | None = None) -> None:
        self.paths = paths
        self.format = format
        self.encoding = encoding
        self.delimiter = delimiter
        self.header = header
        self.sheet = sheet
        self.record_path = record_path
        self.nested = nested
        self.batch_rows = batch_rows
        self.root = root

    @classmethod
    def from_spec(cls, spec: FilesSpec, root: Path) -> FileSource:
        """The source a ``kind: files`` entry of headwater.yaml describes."""
        return cls(spec.path, format=spec.format, encoding=spec.encoding,
                   delimiter=spec.delimiter, header=spec.header, sheet=spec.sheet,
                   record_path=spec.record_path, nested=spec.nested,
                   batch_rows=spec.batch_rows, root=root)

    def describe(self) -> str:
        """The paths this source reads."""
        paths = self.paths if isinstance(self.paths, list) else [self.paths]
        return "files: " + ", ".join(str(p) for p in paths)

    # -- what to read -------------------------------------------------------------------------

    def files(self) -> list[tuple[str, Path]]:
        """``(path as given, relative to root; resolved path)`` of every file to read, sorted.

        Raises ``SourceError`` when a pattern matches nothing.
        """
        self._check()
        root = (self.root or Path.cwd()).resolve()
        entries = self.paths if isinstance(self.paths, list) else [self.paths]
        found: dict[Path, str] = {}
        for entry in entries:
            matches = _expand(str(entry), root)
            if not matches:
                raise SourceError(
                    f"no file matches {str(entry)!r} in {root}",
                    hint="check the path (relative to the project folder), or that the files "
                         "have arrived; hidden files (.name) are skipped")
            for path in matches:
                found.setdefault(path, _shown(path, root))
        return sorted(((shown, path) for path, shown in found.items()), key=lambda x: x[1])

    def extracts(self, state: State) -> Iterator[Extract]:
        """One Extract per file not loaded yet; a file whose content hash is recorded is skipped.

        Errors in a file's content are raised when its batches are iterated, so a pipeline can
        fail that file alone.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hw-hash") as hashing:
            for shown, path in self.files():
                key = str(path)
                done = state.get(key)
                digest: str | None = None
                pending: Future[tuple[str, int]] | None = None
                if done is None:  # never loaded: the digest is computed while the file is read
                    size = path.stat().st_size  # before the hashing starts: growth shows
                    pending = hashing.submit(_timed_sha256, path, shown)
                else:
                    digest, size = _timed_sha256(path, shown)
                    if done.get("sha256") == digest:
                        log.info("file_skipped_unchanged", file=shown, sha256=digest[:12],
                                 reason="already loaded with the same content")
                        continue
                    log.info("file_changed", file=shown, sha256=digest[:12],
                             previous=str(done.get("sha256", ""))[:12])
                detected, problem = self._detect(path)
                position: dict[str, Any] = {"sha256": digest, "bytes": size,
                                            "format": detected.format if detected else "unknown"}
                batches = _Batches(self, path, shown, detected, problem)
                if pending is not None:
                    batches.then_record(pending, position)
                yield Extract(source=shown, key=key, position=position, batches=batches,
                              unit=detected.unit if detected else "record", nbytes=size,
                              meta={**_meta(detected), "source_time": path.stat().st_mtime})

    # -- reading ------------------------------------------------------------------------------

    def read(self, path: str | Path) -> Iterator[Batch]:
        """Batches of one file, detected and read with this source's options."""
        path = Path(path)
        detected, problem = self._detect(path)
        return iter(_Batches(self, path, str(path), detected, problem))

    def _detect(self, path: Path) -> tuple[Detected | None, HeadwaterError | None]:
        try:
            return detect(path, format=self.format, encoding=self.encoding,
                          delimiter=self.delimiter, header=self.header), None
        except FileFormatError as exc:
            return None, exc
        except OSError as exc:
            return None, SourceError(f"{path}: cannot be read ({exc.strerror or exc})",
                                     hint="check that the file exists and is readable")

    def _check(self) -> None:
        if self.format not in ("auto", *FORMATS):
            from headwater.core import ConfigError

            raise ConfigError(f"files source: unknown format {self.format!r}",
                              hint=f"use one of: auto, {', '.join(FORMATS)}")
        if self.nested not in _NESTED:
            from headwater.core import ConfigError

            raise ConfigError(f"files source: unknown nested mode {self.nested!r}",
                              hint=f"use one of: {', '.join(_NESTED)}")


class _Batches:
    """The batches of one file, read when iterated (so errors belong to that file)."""

    def __init__(self, source: FileSource, path: Path, shown: str, detected: Detected | None,
                 problem: HeadwaterError | None) -> None:
        self.source = source
        self.path = path
        self.shown = shown
        self.detected = detected
        self.problem = problem

        self._digest: Future[tuple[str, int]] | None = None
        self._position: dict[str, Any] = {}

    def then_record(self, digest: Future[tuple[str, int]], position: dict[str, Any]) -> None:
        """Once every batch is read, put the file's digest (computed meanwhile) in ``position``."""
        self._digest, self._position = digest, position

    def __iter__(self) -> Iterator[Batch]:
        if self.problem is not None:
            raise self.problem
        assert self.detected is not None  # set whenever problem is None
        yield from _guarded(self.path, _reader(self.source, self.path, self.detected))
        if self._digest is not None:
            self._position["sha256"], size = self._digest.result()
            if size != self._position["bytes"]:
                raise SourceError(f"{self.path}: the file changed while it was read "
                                  f"({self._position['bytes']:,} bytes, then {size:,})",
                                  hint="load files once they are complete (write them under "
                                       "another name, then rename); run again")


def _reader(source: FileSource, path: Path, detected: Detected) -> Iterator[Batch]:
    fmt = detected.format
    if fmt in {"csv", "tsv"}:
        from headwater.ingest.sources._csv import read_csv

        return read_csv(path, detected, batch_rows=source.batch_rows)
    if fmt == "jsonl":
        from headwater.ingest.sources._json import read_jsonl

        return read_jsonl(path, detected, batch_rows=source.batch_rows, nested=source.nested)
    if fmt == "json":
        from headwater.ingest.sources._json import read_json

        return read_json(path, detected, batch_rows=source.batch_rows, nested=source.nested,
                         record_path=source.record_path)
    if fmt == "parquet":
        from headwater.ingest.sources._parquet import read_parquet

        return read_parquet(path, batch_rows=source.batch_rows)
    if fmt == "xlsx":
        from headwater.ingest.sources._excel import read_xlsx

        return read_xlsx(path, sheet=source.sheet, header=source.header,
                         batch_rows=source.batch_rows)
    from headwater.ingest.sources._xml import read_xml

    return read_xml(path, detected, record_path=source.record_path,
                    batch_rows=source.batch_rows)


def _guarded(path: Path, batches: Iterator[Batch]) -> Iterator[Batch]:
    """Errors of third-party readers, as ``FileFormatError`` naming the file."""
    import pyarrow as pa

    try:
        yield from batches
    except HeadwaterError:
        raise
    except (pa.ArrowException, UnicodeError, ValueError, EOFError) as exc:
        raise FileFormatError(f"{path}: cannot be read ({exc})",
                              hint="check the file's format and encoding, or set format: and "
                                   "encoding: on the source") from exc
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})",
                          hint="check that the file exists and is readable") from exc


def _timed_sha256(path: Path, shown: str) -> tuple[str, int]:
    started = time.perf_counter()
    digest, size = file_sha256(path)
    seconds = time.perf_counter() - started
    log.debug("file_hashed", file=shown, bytes=size, seconds=round(seconds, 4),
              mib_per_s=round(size / 2**20 / seconds, 1) if seconds else None)
    return digest, size


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(HASH_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


def _expand(entry: str, root: Path) -> list[Path]:
    base = Path(entry).expanduser()
    pattern = base if base.is_absolute() else root / base
    if _GLOB_CHARS & set(entry):
        matches = [Path(p) for p in glob.glob(str(pattern), recursive=True)]
        anchor = Path(_static_prefix(str(pattern)))
        files = [p for p in matches if p.is_file() and not _hidden(p, anchor)]
    elif pattern.is_dir():
        files = [p for p in pattern.rglob("*") if p.is_file() and not _hidden(p, pattern)]
    elif pattern.is_file():
        files = [pattern]
    else:
        files = []
    return [p.resolve() for p in files]


def _static_prefix(pattern: str) -> str:
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "/"


def _hidden(path: Path, anchor: Path) -> bool:
    try:
        parts = path.relative_to(anchor).parts
    except ValueError:
        parts = path.parts
    return any(part.startswith(".") for part in parts)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _meta(detected: Detected | None) -> dict[str, Any]:
    if detected is None:
        return {}
    meta = {"format": detected.format, "compression": detected.compression,
            "encoding": detected.encoding, "delimiter": detected.delimiter,
            "header": detected.header}
    return {k: v for k, v in meta.items() if v is not None}

"""Format detection from content: magic bytes, encoding, first character, delimiter, header."""

from __future__ import annotations

import codecs
import csv
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from headwater.core import FileFormatError
from headwater.ingest.sources._stream import BOMS, RawReader, sniff_compression

Format = Literal["csv", "tsv", "json", "jsonl", "parquet", "xlsx", "xml"]
FORMATS: tuple[str, ...] = ("csv", "tsv", "json", "jsonl", "parquet", "xlsx", "xml")
TEXT_FORMATS = frozenset({"csv", "tsv", "json", "jsonl", "xml"})

#: Bytes of (decompressed) content looked at to detect encoding, format and delimiter.
SAMPLE_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")

_EXTENSIONS: dict[str, str] = {
    ".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".xml": "xml",
}
_BINARY_MAGIC: dict[bytes, str] = {
    b"\xd0\xcf\x11\xe0": "a legacy Excel .xls (OLE2) file: open it and save it as .xlsx",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"SQLite format 3": "an SQLite database: read it with a database source",
    b"ORC": "an ORC file: convert it to Parquet",
    b"Obj\x01": "an Avro file: convert it to Parquet",
    b"7z\xbc\xaf": "a 7-Zip archive: extract it first",
    b"Rar!": "a RAR archive: extract it first",
}


@dataclass(frozen=True)
class Detected:
    """What a file is: format, compression, and for text its encoding and CSV dialect."""

    format: str
    compression: str | None = None
    encoding: str | None = None
    #: Bytes of byte-order mark to skip at the start of the decompressed content.
    bom: int = 0
    #: True when UTF-8 was assumed from a plain-ASCII sample (a later non-UTF-8 byte means cp1252).
    encoding_assumed: bool = False
    delimiter: str | None = None
    header: bool | None = None

    @property
    def unit(self) -> str:
        """What ``_hw_pos`` counts for this format."""
        return "line" if self.format in {"csv", "tsv", "jsonl"} else "record"


def detect(path: Path, *, format: str = "auto", encoding: str | None = None,
           delimiter: str | None = None, header: bool | None = None) -> Detected:
    """Detect how to read ``path``; explicit arguments win over detection.

    Raises ``FileFormatError`` for an empty, binary or unsupported file.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.data"
    >>> _ = p.write_bytes(b"a;b\\n1;2\\n")
    >>> d = detect(p); (d.format, d.delimiter, d.encoding, d.header)
    ('csv', ';', 'utf-8', True)
    """
    if format not in ("auto", *FORMATS):
        raise FileFormatError(f"{path}: unknown format {format!r}",
                              hint=f"use one of: auto, {', '.join(FORMATS)}")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head:
        raise FileFormatError(f"{path}: the file is empty (0 bytes)",
                              hint="check the export that wrote it; remove it or replace it")
    compression = sniff_compression(head)
    if compression is None:
        if head.startswith(b"PAR1"):
            return _explicit_or(path, format, "parquet")
        if head.startswith(b"PK\x03\x04"):
            return _explicit_or(path, format, _zip_kind(path))
        for magic, what in _BINARY_MAGIC.items():
            if head.startswith(magic):
                raise FileFormatError(f"{path}: this is {what}, not a data file headwater reads",
                                      hint="formats read: CSV, TSV, JSON, JSON Lines, Parquet, "
                                           "xlsx, XML (optionally gzip/zstd compressed)")
    with RawReader(path, compression) as raw:
        sample = raw.read(SAMPLE_BYTES)
        complete = len(sample) < SAMPLE_BYTES or not raw.read(1)
    if not sample:
        raise FileFormatError(f"{path}: the file is empty after {compression} decompression",
                              hint="check the export that wrote it; remove it or replace it")
    if compression and (sample.startswith(b"PAR1") or sample.startswith(b"PK\x03\x04")):
        raise FileFormatError(f"{path}: a {compression}-compressed Parquet or xlsx file",
                              hint=f"decompress it first ({compression} -d); these formats "
                                   "compress internally")
    enc, bom, assumed = _encoding(path, sample, encoding, complete)
    text = _decode_sample(sample[bom:], enc)
    if _looks_binary(text):
        raise FileFormatError(f"{path}: binary content (NUL bytes) in a file read as text",
                              hint="formats read: CSV, TSV, JSON, JSON Lines, Parquet, xlsx, XML; "
                                   "if it is text in UTF-16/32, set encoding:")
    fmt = format if format != "auto" else _text_format(path, text)
    if fmt in {"parquet", "xlsx"}:
        raise FileFormatError(f"{path}: format {fmt} was given but the content is text",
                              hint="drop format: to let headwater detect it, or fix the file")
    delim = delimiter
    has_header = header
    if fmt in {"csv", "tsv"}:
        if delim is None:
            delim = "\t" if fmt == "tsv" else sniff_delimiter(text)
        if delim == "\t":
            fmt = "tsv"
        if has_header is None:
            has_header = sniff_header(text, delim)
    return Detected(format=fmt, compression=compression, encoding=enc, bom=bom,
                    encoding_assumed=assumed, delimiter=delim, header=has_header)


def _explicit_or(path: Path, format: str, detected: str) -> Detected:
    if format not in ("auto", detected):
        raise FileFormatError(f"{path}: format {format} was given but the content is {detected}",
                              hint="drop format: to let headwater detect it")
    return Detected(format=detected)


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile as exc:
        raise FileFormatError(f"{path}: a corrupt zip/xlsx file ({exc})",
                              hint="open it in Excel and save it again, or fetch it again") from exc
    if "xl/workbook.xml" in names:
        return "xlsx"
    raise FileFormatError(f"{path}: a zip archive, not an xlsx workbook",
                          hint="extract the archive and point the source at the files inside")


def _encoding(path: Path, sample: bytes, given: str | None,
              complete: bool) -> tuple[str, int, bool]:
    """(encoding, BOM length, assumed) for a text sample."""
    for mark, name in BOMS:
        if sample.startswith(mark):
            if given and codecs.lookup(given).name != codecs.lookup(name).name:
                return given, 0, False
            return name, len(mark), False
    if given:
        try:
            codecs.lookup(given)
        except LookupError as exc:
            raise FileFormatError(f"{path}: unknown encoding {given!r}",
                                  hint="use a Python codec name: utf-8, cp1252, latin-1, utf-16, "
                                       "shift_jis, ...") from exc
        return given, 0, False
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16, 0, False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
    except UnicodeDecodeError:
        return _guess_single_byte(sample), 0, False
    return "utf-8", 0, sample.isascii()


def _utf16_without_bom(sample: bytes) -> str | None:
    """UTF-16 text of mostly ASCII characters has a NUL in every other byte."""
    even, odd = sample[0:2000:2], sample[1:2000:2]
    if len(odd) < 8:
        return None
    if odd.count(0) > 0.7 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.7 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _guess_single_byte(sample: bytes) -> str:
    """The encoding of text that is not UTF-8: charset-normalizer's best guess, else cp1252."""
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(sample).best()
    except Exception:  # the guess is a convenience; cp1252 is the usual answer
        best = None
    if best is not None and best.encoding not in {"utf_8", "ascii"}:
        name = codecs.lookup(best.encoding).name
        # Western single-byte guesses are all read as cp1252, a superset of Latin-1's printables.
        if name in {"latin-1", "iso8859-1", "iso8859-15", "cp1250", "cp1252", "mac-roman"}:
            return "cp1252"
        return name
    return "cp1252"


def _decode_sample(sample: bytes, encoding: str) -> str:
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)


def _looks_binary(text: str) -> bool:
    head = text[:8192]
    return "\x00" in head or sum(ch < " " and ch not in "\t\r\n\f" for ch in head) > len(head) / 20


def _text_format(path: Path, text: str) -> str:
    stripped = text.lstrip()
    first = stripped[:1]
    if first == "[":
        return "json"
    if first == "<":
        return "xml"
    if first == "{":
        lines = [line.strip() for line in stripped.split("\n", 2)]
        try:
            import orjson

            value = orjson.loads(lines[0])
        except ValueError:
            return "json"  # an object across several lines: a JSON document
        more = len(lines) > 1 and lines[1].startswith("{")
        if isinstance(value, dict) and (more or not _record_list_document(value)):
            return "jsonl"
        return "json"
    by_extension = _EXTENSIONS.get(_base_suffix(path))
    if by_extension == "tsv":
        return "tsv"
    return "csv"


def _record_list_document(document: dict) -> bool:
    """A one-line ``{"records": [{...}, ...]}`` document rather than one JSON Lines record."""
    return len(document) == 1 and any(
        isinstance(v, list) and v and isinstance(v[0], dict) for v in document.values())


def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in {".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz"}:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


_QUOTED = re.compile(r'"(?:[^"]|"")*"')


def sniff_delimiter(text: str) -> str:
    """The separator that splits the sample's lines into the same number of fields.

    >>> sniff_delimiter("a;b;c\\n1;2,5;3\\n")
    ';'
    """
    lines = [_QUOTED.sub("", line) for line in _complete_lines(text)[:50] if line.strip()]
    if not lines:
        return ","
    best, best_score = ",", (0.0, 0)
    for delim in DELIMITERS:
        counts = [line.count(delim) for line in lines]
        if not any(counts):
            continue
        mode = max(set(counts), key=counts.count)
        if mode == 0:
            continue
        score = (counts.count(mode) / len(counts), mode)
        if score > best_score:
            best, best_score = delim, score
    return best


def sniff_header(text: str, delimiter: str) -> bool:
    """Whether the sample's first row names the columns (False if it looks like data).

    The first row is data when one of its fields is a number or date while the same column
    below holds numbers or dates too, or when it repeats a value of the rows below in every column.
    """
    rows = list(csv.reader(_complete_lines(text)[:50], delimiter=delimiter))
    rows = [row for row in rows if row]
    if len(rows) < 2:
        return True
    first, rest = rows[0], rows[1:]
    if any(not field.strip() for field in first) or len(set(first)) != len(first):
        return False
    for i, field in enumerate(first):
        below = [row[i] for row in rest if len(row) > i and row[i].strip()]
        if _is_value(field) and below and sum(map(_is_value, below)) > len(below) / 2:
            return False
    return True


_VALUE = re.compile(r"^\s*[-+]?(\d[\d,. ]*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*\d{4}-\d{2}-\d{2}")


def _is_value(field: str) -> bool:
    return bool(_VALUE.match(field))


def _complete_lines(text: str) -> list[str]:
    lines = text.splitlines()
    if not text.endswith(("\n", "\r")) and len(lines) > 1:
        lines = lines[:-1]  # the sample may end inside a line
    return lines

"""CSV and TSV: every column as text, unparseable records as rejects, each row's line number.

The file is cut into chunks of whole records (quote-aware), and chunks are parsed by
``pyarrow.csv`` on two threads. No type inference: '1,234.50', 'N/A', ' 12 ' survive as written
for the contract to cleanse. Every record lands in exactly one of ``data`` or ``rejects``.

Line numbers cost almost nothing in the common case: when a chunk holds one record per line, a
row's line is its index plus the chunk's first line, and rejects (placed by the record number
the parser reports) are taken out of that range. Chunks with quoted newlines or blank lines
take a NumPy pass that finds where each record starts.
"""

from __future__ import annotations

import codecs
import csv
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from headwater.core import POSITION, Batch, FileFormatError, rejects_table
from headwater.ingest.sources._detect import Detected
from headwater.ingest.sources._stream import RawReader, Utf8Blocks, transcode
from headwater.monitor import get_logger

log = get_logger(__name__)

QUOTE = 0x22
NEWLINE = 0x0A
MIN_BLOCK = 1 << 20
MAX_BLOCK = 64 << 20
#: A quoted field may span lines, but not more than this many bytes: beyond, its quote is
#: taken as never closed and the line that opened it is rejected.
MAX_RECORD_BYTES = 16 << 20
#: A record over this many lines with the wrong field count is taken for a stray quote that
#: swallowed the records after it (they are read again); a shorter one is one reject.
MAX_RECORD_LINES = 100
#: Encodings whose bytes can be cut at b"\\n" and transcoded chunk by chunk.
_SINGLE_BYTE = {"latin-1", "iso8859-1", "iso8859-15", "cp1250", "cp1252", "cp1251", "cp437",
                "cp850", "mac-roman", "iso8859-2", "koi8-r"}


def read_csv(path: Path, detected: Detected, *, batch_rows: int = 250_000,
             workers: int = 2) -> Iterator[Batch]:
    """Yield ``Batch``es of string columns (plus ``_hw_pos``, the line) from a CSV/TSV file.

    Raises ``FileFormatError`` when the file has no header row, is not decodable, or its
    compression is corrupt.
    """
    return _CsvReader(path, detected, batch_rows=batch_rows, workers=workers).batches()


@dataclass
class _Parsed:
    data: pa.Table
    #: (line relative to the chunk start, raw text, reason)
    rejects: list[tuple[int, str, str]] = field(default_factory=list)
    lines: int = 0
    transcode: bool = False


class _Invalid(NamedTuple):
    """A record the parser skipped: its 0-based number among the chunk's non-empty records."""

    record: int
    expected: int
    actual: int
    text: str


class _Transcode(Exception):
    """A chunk assumed UTF-8 is not: decode the rest of the file as cp1252."""


class _CsvReader:
    def __init__(self, path: Path, detected: Detected, *, batch_rows: int, workers: int) -> None:
        self.path = path
        self.detected = detected
        self.batch_rows = batch_rows
        self.workers = workers
        self.delimiter = detected.delimiter or ","
        encoding = codecs.lookup(detected.encoding or "utf-8").name
        self.utf8 = encoding == "utf-8"
        self.single_byte = encoding in _SINGLE_BYTE
        #: Encoding to transcode each chunk from (None: already UTF-8).
        self.chunk_encoding: str | None = encoding if self.single_byte else None
        self.switchable = detected.encoding_assumed
        self.names: list[str] = []
        self._convert: pacsv.ConvertOptions | None = None

    # -- the pipeline: header, chunks, parse in parallel, in order --------------------------

    def batches(self) -> Iterator[Batch]:
        raw = RawReader(self.path, self.detected.compression)
        try:
            stream: RawReader | Utf8Blocks = raw
            if self.utf8 or self.single_byte:
                skip = self.detected.bom
            else:  # UTF-16 and other multi-byte encodings: transcode the stream
                stream = Utf8Blocks(raw, self.detected.encoding or "utf-8", bom=self.detected.bom)
                skip = 0
            first = stream.read(MIN_BLOCK)[skip:]
            first, header_lines = self._header(first, stream)
            block = self._block_size(first)
            yield from self._run(stream, first, block, header_lines + 1)
        finally:
            raw.close()

    def _run(self, stream: RawReader | Utf8Blocks, first: bytes, block: int,
             first_line: int) -> Iterator[Batch]:
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="hw-csv")
        pending: deque[tuple[bytes, Future[_Parsed]]] = deque()
        line = first_line
        try:
            for chunk, even in _chunks(stream, first, block):
                pending.append(
                    (chunk, pool.submit(self._parse, chunk, self.chunk_encoding, even)))
                while len(pending) > self.workers:
                    parsed, pending = self._next(pool, pending)
                    yield from self._emit(parsed, line)
                    line += parsed.lines
            while pending:
                parsed, pending = self._next(pool, pending)
                yield from self._emit(parsed, line)
                line += parsed.lines
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def _next(self, pool: ThreadPoolExecutor,
              pending: deque[tuple[bytes, Future[_Parsed]]]
              ) -> tuple[_Parsed, deque[tuple[bytes, Future[_Parsed]]]]:
        chunk, future = pending.popleft()
        parsed = future.result()
        if not parsed.transcode:
            return parsed, pending
        # The sample was ASCII, so UTF-8 was assumed; this chunk is not UTF-8: it is cp1252.
        log.warning("csv_encoding_switched", file=str(self.path), encoding="cp1252",
                    hint="set encoding: on the source to skip this guess")
        self.switchable = False
        self.chunk_encoding = "cp1252"
        redo = deque([(chunk, pool.submit(self._parse, chunk, "cp1252"))])
        for other, old in pending:
            old.cancel()
            redo.append((other, pool.submit(self._parse, other, "cp1252")))
        chunk, future = redo.popleft()
        return future.result(), redo

    def _emit(self, parsed: _Parsed, first_line: int) -> Iterator[Batch]:
        data = parsed.data
        offset = pa.scalar(first_line, pa.int64())
        data = data.set_column(data.num_columns - 1, POSITION,
                               pc.add(data.column(POSITION), offset))
        rejects = None
        if parsed.rejects:
            at, raw, why = zip(*parsed.rejects, strict=True)
            rejects = rejects_table([first_line + n for n in at], raw, why)
        if data.num_rows <= self.batch_rows:
            yield Batch(data, rejects)
            return
        for start in range(0, data.num_rows, self.batch_rows):
            part = data.slice(start, self.batch_rows)
            yield Batch(part, rejects if start == 0 else None)

    # -- header and block size --------------------------------------------------------------

    def _header(self, first: bytes, stream: RawReader | Utf8Blocks) -> tuple[bytes, int]:
        """Read the header record; return the bytes after it and how many lines it took."""
        end = _record_end(first)
        while end < 0:
            more = stream.read(MIN_BLOCK)
            if not more:
                end = len(first)
                break
            first += more
            end = _record_end(first)
        head = first[:end]
        if self.chunk_encoding:
            head = transcode(head, self.chunk_encoding)
        text = head.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text.strip():
            raise FileFormatError(f"{self.path}: the first line is empty; no header or data",
                                  hint="remove blank lines at the top of the file")
        fields = next(csv.reader([text], delimiter=self.delimiter), [])
        if self.detected.header is False:
            self.names = [f"column_{i + 1}" for i in range(len(fields))]
            rest, lines = first, 0
        else:
            self.names = _column_names(fields)
            rest, lines = first[end:], head.count(b"\n") or 1
        self._convert = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in self.names},
            strings_can_be_null=False, quoted_strings_can_be_null=False)
        return rest, lines

    def _block_size(self, first: bytes) -> int:
        """Bytes per chunk: about nine tenths of ``batch_rows`` rows of the first block's size.

        Rows vary in length; a chunk just over ``batch_rows`` would be split into a full batch
        and a tiny one, and every batch costs a contract check and a store write.
        """
        lines = max(first.count(b"\n"), 1)
        per_row = max(len(first) // lines, 1)
        return int(min(max(per_row * self.batch_rows * 9 // 10, MIN_BLOCK), MAX_BLOCK))

    # -- parsing one chunk (runs on a worker thread) ----------------------------------------

    def _parse(self, chunk: bytes, encoding: str | None, even: bool = False) -> _Parsed:
        if encoding:
            chunk = transcode(chunk, encoding)
        try:
            return self._piece(chunk, even=even)
        except _Transcode:
            return _Parsed(self._empty(), transcode=True)

    def _piece(self, buf: bytes, *, even: bool = False) -> _Parsed:
        """Parse ``buf`` (whole lines); a quote left open rejects the line that opened it.

        ``even``: the caller knows ``buf`` holds an even number of quotes.
        """
        parts: list[_Parsed] = []
        line0 = 0
        while buf:
            a = np.frombuffer(buf, np.uint8)
            if even or _count(a, QUOTE) % 2 == 0:
                parts.append(_shift(self._even(buf), line0))
                break
            cut, cut_line = _last_even_boundary(a)
            if cut:
                parts.append(_shift(self._even(buf[:cut]), line0))
            rest = buf[cut:]
            newline = rest.find(b"\n")
            stop = newline if newline >= 0 else len(rest)
            opened = rest[:stop].decode("utf-8", "replace").rstrip("\r")
            parts.append(_Parsed(self._empty(), [(line0 + cut_line, opened, (
                "a quoted field opened on this line is never closed (unbalanced \")"))], 1))
            buf = rest[stop + 1:] if newline >= 0 else b""
            line0 += cut_line + 1
        return _merge(parts, self._empty())

    def _even(self, buf: bytes | bytearray) -> _Parsed:
        """Parse whole records; rejects are placed by their record number, rows by line."""
        found: list[_Invalid] = []

        def invalid(row: pacsv.InvalidRow) -> str:
            found.append(_Invalid(row.number - 1, row.expected_columns, row.actual_columns,
                                  row.text))
            return "skip"

        try:
            table = pacsv.read_csv(
                pa.BufferReader(buf),
                read_options=pacsv.ReadOptions(column_names=self.names, use_threads=False,
                                               block_size=max(len(buf) + 1, 1 << 16)),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter,
                                                 newlines_in_values=True,
                                                 invalid_row_handler=invalid),
                convert_options=self._convert,
            )
        except pa.ArrowInvalid as exc:
            if "utf8" in str(exc).lower():
                return self._not_utf8(buf)
            raise FileFormatError(f"{self.path}: cannot parse as CSV ({exc})",
                                  hint="check the delimiter and quoting, or set format:") from exc
        a = np.frombuffer(buf, np.uint8)
        lines = _count(a, NEWLINE) + (0 if buf.endswith(b"\n") else 1)
        records = table.num_rows + len(found)
        if not _numbered(found, records):  # the parser did not say where: keep the counts right
            log.warning("csv_reject_not_located", file=str(self.path))
            return self._approximate(table, found, lines)
        if records == lines and not any("\n" in f.text for f in found):
            return self._one_record_per_line(table, found, lines)
        return self._by_record_scan(a, table, found, lines)

    def _one_record_per_line(self, table: pa.Table, found: list[_Invalid],
                             lines: int) -> _Parsed:
        """Record *i* is line *i*: rows and rejects are placed without looking at the bytes."""
        keep = np.ones(lines, dtype=bool)
        keep[[f.record for f in found]] = False
        rejects = [(f.record, f.text, _field_reason(f.expected, f.actual)) for f in found]
        return _Parsed(_with_position(table, np.flatnonzero(keep)), rejects, lines)

    def _by_record_scan(self, a: np.ndarray, table: pa.Table, found: list[_Invalid],
                        lines: int) -> _Parsed:
        """Quoted newlines or blank lines: find each record's first line with NumPy."""
        starts, first_lines = _record_starts(a)
        if len(starts) != table.num_rows + len(found):
            log.warning("csv_records_not_aligned", file=str(self.path))
            return self._approximate(table, found, lines)
        is_reject = np.zeros(len(starts), dtype=bool)
        rejects: list[tuple[int, str, str]] = []
        extra: list[_Parsed] = []
        for f in found:
            expected, actual, text = f.expected, f.actual, f.text
            raw = text.encode("utf-8")
            is_reject[f.record] = True
            line = int(first_lines[f.record])
            spread = raw.count(b"\n")
            again = None
            if spread >= MAX_RECORD_LINES:
                # A record over many lines with the wrong field count: a stray quote swallowed
                # the records after it. Reject the line that opened it; read the rest again.
                head, _, tail = raw.partition(b"\n")
                again = _shift(self._piece(tail + b"\n"), line + 1)
                if again.data.num_rows:
                    rejects.append((line, head.decode("utf-8", "replace").rstrip("\r"), (
                        f"{_field_reason(expected, actual)} in a record over lines {line + 1}-"
                        f"{line + 1 + spread}: a quote opened on this line is never closed")))
                    extra.append(again)
            if not extra or extra[-1] is not again:
                where = f" (a record over lines {line + 1}-{line + 1 + spread})" if spread else ""
                rejects.append((line, text, _field_reason(expected, actual) + where))
        data = _with_position(table, first_lines[~is_reject].astype(np.int64))
        parsed = _Parsed(data, rejects, lines)
        if not extra:
            return parsed
        merged = _merge([parsed, *extra], self._empty())
        merged.data = merged.data.sort_by(POSITION)
        merged.rejects.sort(key=lambda r: r[0])
        merged.lines = lines
        return merged

    def _approximate(self, table: pa.Table, found: list[_Invalid], lines: int) -> _Parsed:
        """Positions by record number when lines cannot be matched (e.g. CR-only newlines)."""
        n = table.num_rows
        data = _with_position(table, np.arange(n, dtype=np.int64))
        rejects = [(n + i, f.text, _field_reason(f.expected, f.actual))
                   for i, f in enumerate(found)]
        return _Parsed(data, rejects, lines)

    def _not_utf8(self, buf: bytes) -> _Parsed:
        """Reject the lines with bytes that are not UTF-8; parse the rest."""
        if self.switchable:
            raise _Transcode
        parts: list[_Parsed] = []
        pos = 0
        line = 0
        view = memoryview(buf)
        while pos < len(buf):
            try:
                codecs.utf_8_decode(view[pos:], "strict", True)
                parts.append(_shift(self._piece(buf[pos:]), line))
                break
            except UnicodeDecodeError as err:
                bad = pos + err.start
            start = buf.rfind(b"\n", pos, bad) + 1
            if start < pos:
                start = pos
            end = buf.find(b"\n", bad)
            end = len(buf) if end < 0 else end
            if start > pos:
                parts.append(_shift(self._piece(buf[pos:start]), line))
                line += buf.count(b"\n", pos, start)
            text = buf[start:end].decode("utf-8", "replace").rstrip("\r")
            parts.append(_Parsed(self._empty(), [(line, text, (
                f"byte 0x{buf[bad]:02x} at column {bad - start + 1} is not valid UTF-8: the file "
                "mixes encodings; set encoding: if the whole file is not UTF-8"))], 1))
            line += 1
            pos = end + 1
        return _merge(parts, self._empty())

    def _empty(self) -> pa.Table:
        schema = pa.schema([*((n, pa.string()) for n in self.names), (POSITION, pa.int64())])
        return schema.empty_table()


# -- helpers on bytes -----------------------------------------------------------------------


def _chunks(stream: RawReader | Utf8Blocks, first: bytes,
            block: int) -> Iterator[tuple[bytearray, bool]]:
    """Chunks of whole records: cut after a newline with an even number of quotes before it.

    Yields ``(chunk, even)``; ``even`` is False when the chunk may hold an unclosed quote. Each
    chunk is a buffer of its own, filled by ``readinto``: the file's bytes are copied once, and
    only the partial record after a cut is carried over to the next chunk.
    """
    buf = bytearray(first)
    eof = False
    while True:
        if len(buf) < block and not eof:
            buf, eof = _fill(stream, buf, block - len(buf))
        if not buf:
            return
        cut = _cut(buf)
        even = cut > 0
        if cut <= 0:
            if eof or len(buf) >= MAX_RECORD_BYTES:
                # No record ends in here: an unclosed quote. The chunk parser rejects its line.
                cut = buf.rfind(b"\n") + 1 if not eof else len(buf)
                cut = cut or len(buf)
            else:
                buf, eof = _fill(stream, buf, block)
                continue
        if eof and cut < len(buf):
            # The tail after the last even cut holds an unclosed quote: give it all to the
            # parser, which rejects the opening line and reads the lines after it again.
            cut, even = len(buf), False
        rest = buf[cut:]
        del buf[cut:]
        yield buf, even
        buf = rest


def _fill(stream: RawReader | Utf8Blocks, head: bytearray, size: int) -> tuple[bytearray, bool]:
    """A new buffer: ``head``, then up to ``size`` bytes of ``stream``; and whether it ended."""
    buf = bytearray(len(head) + size)
    buf[:len(head)] = head
    filled, eof = len(head), False
    with memoryview(buf) as view:
        while filled < len(buf):
            n = stream.readinto(view[filled:])
            if not n:
                eof = True
                break
            filled += n
    del buf[filled:]
    return buf, eof


def _cut(buf: bytes) -> int:
    """End of the last whole record in ``buf`` (after its newline), or 0 if none ends here."""
    last = buf.rfind(b"\n")
    if last < 0:
        return 0
    total = _quotes(buf)
    tail = buf.count(b'"', last + 1)
    if (total - tail) % 2 == 0:
        return last + 1
    a = np.frombuffer(buf, np.uint8)
    cut, _ = _last_even_boundary(a)
    return cut


def _quotes(buf: bytes | bytearray) -> int:
    """Number of double quotes in ``buf``."""
    return _count(np.frombuffer(buf, np.uint8), QUOTE)


def _count(a: np.ndarray, byte: int) -> int:
    """How often ``byte`` occurs in ``a``: NumPy (the GIL is released) on 1 MiB pieces, whose
    masks stay in the CPU cache (2-3x faster than one mask of the whole chunk)."""
    step = 1 << 20
    return sum(int(np.count_nonzero(a[i:i + step] == byte)) for i in range(0, len(a), step))


def _last_even_boundary(a: np.ndarray) -> tuple[int, int]:
    """(byte after the last newline with an even number of quotes before it, its line index)."""
    newlines = np.flatnonzero(a == NEWLINE)
    quotes = np.flatnonzero(a == QUOTE)
    even = np.flatnonzero((np.searchsorted(quotes, newlines) & 1) == 0)
    if len(even) == 0:
        return 0, 0
    return int(newlines[even[-1]]) + 1, int(even[-1]) + 1


def _record_end(buf: bytes) -> int:
    """Byte after the first record's newline, or -1 when it does not end in ``buf``."""
    a = np.frombuffer(buf, np.uint8)
    newlines = np.flatnonzero(a == NEWLINE)
    if len(newlines) == 0:
        return -1
    quotes = np.flatnonzero(a == QUOTE)
    even = np.flatnonzero((np.searchsorted(quotes, newlines) & 1) == 0)
    return int(newlines[even[0]]) + 1 if len(even) else -1


def _record_starts(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Byte offset and 0-based first line of every non-empty record in ``a``."""
    newlines = np.flatnonzero(a == NEWLINE)
    quotes = np.flatnonzero(a == QUOTE)
    ends_at = np.flatnonzero((np.searchsorted(quotes, newlines) & 1) == 0)
    ends = newlines[ends_at]
    starts = np.concatenate([[0], ends + 1])
    stops = np.concatenate([ends, [len(a)]])
    first_lines = np.concatenate([[0], ends_at + 1])
    length = stops - starts
    cr = np.zeros(len(starts), dtype=bool)
    ones = np.flatnonzero(length == 1)
    cr[ones] = a[starts[ones]] == 0x0D
    keep = (length > 0) & ~cr
    return starts[keep], first_lines[keep]


def _numbered(found: list[_Invalid], records: int) -> bool:
    """True if every reject carries its record number, in order and within the chunk."""
    numbers = [f.record for f in found]
    return all(0 <= n < records for n in numbers) and numbers == sorted(set(numbers))


def _field_reason(expected: int, actual: int) -> str:
    return f"expected {expected} fields, found {actual}"


def _with_position(table: pa.Table, lines: np.ndarray) -> pa.Table:
    return table.append_column(POSITION, pa.array(lines, pa.int64()))


def _shift(parsed: _Parsed, lines: int) -> _Parsed:
    if lines:
        parsed.data = parsed.data.set_column(
            parsed.data.num_columns - 1, POSITION,
            pc.add(parsed.data.column(POSITION), pa.scalar(lines, pa.int64())))
        parsed.rejects = [(line + lines, raw, why) for line, raw, why in parsed.rejects]
    return parsed


def _merge(parts: list[_Parsed], empty: pa.Table) -> _Parsed:
    if len(parts) == 1:
        return parts[0]
    tables = [p.data for p in parts if p.data.num_rows] or [empty]
    return _Parsed(pa.concat_tables(tables), [r for p in parts for r in p.rejects],
                   sum(p.lines for p in parts))


def _column_names(fields: list[str]) -> list[str]:
    """Header fields as column names: trimmed, unique, never empty."""
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(fields):
        name = raw.strip().lstrip("\ufeff") or f"column_{i + 1}"
        base, n = name, 2
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        names.append(name)
    return names

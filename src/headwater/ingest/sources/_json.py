"""JSON Lines and JSON documents (arrays, ``{"records": [...]}``) into Arrow, natural types.

JSON Lines stream in chunks of whole lines through ``pyarrow.json``. A chunk that does not parse
is checked line by line (orjson, only on that chunk): invalid lines and lines that are not objects
become rejects, the others are parsed again. The schema of the first chunk is kept for the next
ones; a field whose type changes is widened (int -> double), or its row is rejected when it
cannot be (a string where numbers were).

A JSON document is split into its records by a NumPy pass over its structure (strings, depth,
commas at the record level), then parsed by the same reader.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from headwater.core import POSITION, Batch, FileFormatError, rejects_table
from headwater.ingest.sources._detect import Detected
from headwater.ingest.sources._nested import shape
from headwater.ingest.sources._stream import RawReader, Utf8Blocks, transcode
from headwater.monitor import get_logger

log = get_logger(__name__)

NEWLINE = 0x0A
BLOCK = 16 << 20
_SINGLE_BYTE = {"latin-1", "iso8859-1", "iso8859-15", "cp1250", "cp1252", "cp1251"}
_ROW = re.compile(r"in row (\d+)")


def read_jsonl(path: Path, detected: Detected, *, batch_rows: int = 250_000,
               nested: str = "flatten") -> Iterator[Batch]:
    """Yield batches of a JSON Lines file; ``_hw_pos`` is the 1-based line number."""
    reader = _Records(path, nested)
    raw = RawReader(path, detected.compression)
    try:
        encoding = codecs.lookup(detected.encoding or "utf-8").name
        single = encoding in _SINGLE_BYTE
        stream: RawReader | Utf8Blocks = raw
        skip = detected.bom
        if encoding != "utf-8" and not single:
            stream, skip = Utf8Blocks(raw, encoding, bom=detected.bom), 0
        line = 1
        carry = b""
        first = True
        block = BLOCK
        while True:
            data = stream.read(block)
            if first:
                data, first = data[skip:], False
                block = _block_size(data, batch_rows)
            buf = carry + data
            if not data:
                if not buf.strip():
                    break
                cut = len(buf)
            else:
                cut = buf.rfind(b"\n") + 1
                if cut == 0:
                    carry = buf
                    continue
            chunk, carry = buf[:cut], buf[cut:]
            if single:
                chunk = transcode(chunk, encoding)
            lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
            yield from reader.batches(chunk, line, batch_rows)
            line += lines
            if not data:
                break
    finally:
        raw.close()


def read_json(path: Path, detected: Detected, *, batch_rows: int = 250_000,
              nested: str = "flatten", record_path: str | None = None) -> Iterator[Batch]:
    """Yield batches of a JSON document's records; ``_hw_pos`` is the 1-based record number.

    The records are the top-level array, or the array at ``record_path`` (``records``,
    ``data.items``); without one, the document's only array of objects.
    """
    with RawReader(path, detected.compression) as raw:
        parts = []
        while data := raw.read(BLOCK):
            parts.append(data)
    buf = b"".join(parts)[detected.bom:]
    encoding = codecs.lookup(detected.encoding or "utf-8").name
    if encoding != "utf-8":
        buf = transcode(buf, encoding)
    structure = _Structure(path, buf)
    start, end = structure.records(record_path)
    starts, stops = structure.elements(start, end)
    reader = _Records(path, nested)
    if not len(starts):
        return
    # One record per line: whitespace newlines become spaces (a raw newline cannot be inside a
    # JSON string) and the record-level commas become newlines.
    lines = structure.a[start + 1:end].copy()
    lines[(lines == NEWLINE) | (lines == 0x0D)] = 0x20
    lines[stops[:-1] - start - 1] = NEWLINE
    for lo in range(0, len(starts), batch_rows):
        hi = min(lo + batch_rows, len(starts))
        chunk = lines[starts[lo] - start - 1:stops[hi - 1] - start - 1].tobytes()
        yield from reader.batches(chunk, lo + 1, batch_rows)


class _Records:
    """Parses chunks of one-object-per-line JSON with a schema kept across chunks."""

    def __init__(self, path: Path, nested: str) -> None:
        self.path = path
        self.nested = nested
        self.schema: pa.Schema | None = None

    def batches(self, chunk: bytes, first_line: int, batch_rows: int) -> Iterator[Batch]:
        """Rows of one-object-per-line ``chunk``, numbered from ``first_line``; rejects for
        lines that are not JSON objects or whose types conflict."""
        try:
            table = self._parse(chunk)
            a = np.frombuffer(chunk, np.uint8)
            lines = int(np.count_nonzero(a == NEWLINE)) + (0 if chunk.endswith(b"\n") else 1)
            if table.num_rows == lines:
                positions = np.arange(first_line, first_line + lines, dtype=np.int64)
            else:  # blank lines in between
                positions = first_line + _non_blank_lines(chunk)
            yield from self._emit(table, positions, None, batch_rows)
            return
        except pa.ArrowInvalid:
            pass
        # Check line by line (this chunk only) and parse the good lines again.
        import orjson

        good_lines: list[bytes] = []
        good_pos: list[int] = []
        rejects: list[tuple[int, str, str]] = []
        for i, line in enumerate(chunk.split(b"\n")):
            if not line.strip():
                continue
            number = first_line + i
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                rejects.append((number, _text(line), f"invalid JSON: {exc}"))
                continue
            if not isinstance(value, dict):
                rejects.append((number, _text(line), (
                    f"a record must be a JSON object, found {_kind(value)}")))
                continue
            good_lines.append(line)
            good_pos.append(number)
        table, kept, more = self._parse_lines(good_lines)
        rejects.extend((good_pos[i], _text(good_lines[i]), why) for i, why in more)
        rejects.sort()
        positions = np.asarray(good_pos, dtype=np.int64)[kept]
        yield from self._emit(table, positions, rejects, batch_rows)

    # -- parsing ------------------------------------------------------------------------------

    def _parse(self, chunk: bytes) -> pa.Table:
        options = pajson.ParseOptions(newlines_in_values=False)
        if self.schema is not None:
            options = pajson.ParseOptions(explicit_schema=self.schema,
                                          unexpected_field_behavior="infer")
        read = pajson.ReadOptions(block_size=max(1 << 20, min(len(chunk) + 1, 64 << 20)))
        try:
            table = pajson.read_json(pa.BufferReader(chunk), read_options=read,
                                     parse_options=options)
        except pa.ArrowInvalid:
            if self.schema is None:
                raise
            # A field's type changed (int -> double): infer this chunk alone and widen.
            table = pajson.read_json(pa.BufferReader(chunk), read_options=read)
            table = self._widen(table)
        if self.schema is None:
            self.schema = table.schema
        elif table.schema != self.schema:
            self.schema = _merge_schema(self.schema, table.schema)
        return table

    def _widen(self, table: pa.Table) -> pa.Table:
        assert self.schema is not None
        merged = _merge_schema(self.schema, table.schema)
        target = pa.schema([merged.field(n) for n in table.column_names])
        return table.cast(target)

    def _parse_lines(self, lines: list[bytes]) -> tuple[pa.Table, np.ndarray,
                                                         list[tuple[int, str]]]:
        """Parse valid JSON object lines; reject rows whose field types conflict.

        Returns the table, the indices (into ``lines``) of its rows, and ``(index, reason)``
        of the rejected lines.
        """
        index = list(range(len(lines)))
        rejected: list[tuple[int, str]] = []
        while True:
            if not index:
                return self._empty(), np.empty(0, np.int64), rejected
            chunk = b"\n".join(lines[i] for i in index)
            try:
                table = self._parse(chunk)
                return table, np.asarray(index, dtype=np.int64), rejected
            except pa.ArrowInvalid as exc:
                row = _ROW.search(str(exc))
                if row is None or int(row.group(1)) >= len(index):
                    # No row named: find the line by halving.
                    bad = self._first_bad(lines, index)
                else:
                    bad = int(row.group(1))
                reason = _conflict(str(exc))
                rejected.append((index[bad], reason))
                del index[bad]

    def _first_bad(self, lines: list[bytes], index: list[int]) -> int:
        lo, hi = 0, len(index)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                saved = self.schema
                self._parse(b"\n".join(lines[i] for i in index[lo:mid]))
                self.schema = saved
                lo = mid
            except pa.ArrowInvalid:
                self.schema = saved
                hi = mid
        return lo

    def _emit(self, table: pa.Table, positions: np.ndarray,
              rejects: list[tuple[int, str, str]] | None, batch_rows: int) -> Iterator[Batch]:
        table = table.append_column(POSITION, pa.array(positions, pa.int64()))
        table, children = shape(table, self.nested)
        reject_table = None
        if rejects:
            reject_table = rejects_table(*zip(*rejects, strict=True))
        if table.num_rows <= batch_rows or children:
            yield Batch(table, reject_table, children)
            return
        for lo in range(0, table.num_rows, batch_rows):
            yield Batch(table.slice(lo, batch_rows), reject_table if lo == 0 else None)

    def _empty(self) -> pa.Table:
        return (self.schema or pa.schema([])).empty_table()


class _Structure:
    """Where a JSON document's strings, nesting and record-level commas are (NumPy)."""

    def __init__(self, path: Path, buf: bytes) -> None:
        self.path = path
        self.a = np.frombuffer(buf, np.uint8)
        a = self.a
        quotes = np.flatnonzero(a == ord('"'))
        if len(quotes):
            escaped = _escaped(a, quotes)
            quotes = quotes[~escaped]
        self.quotes = quotes
        marks = np.flatnonzero((a == ord("{")) | (a == ord("}")) | (a == ord("["))
                               | (a == ord("]")) | (a == ord(",")) | (a == ord(":")))
        outside = (np.searchsorted(quotes, marks) & 1) == 0
        self.marks = marks[outside]
        kind = a[self.marks]
        step = np.where((kind == ord("{")) | (kind == ord("[")), 1,
                        np.where((kind == ord("}")) | (kind == ord("]")), -1, 0))
        depth_after = np.cumsum(step)
        #: Nesting depth at each mark (after an opening bracket, before a closing one).
        self.depth = np.where(step == -1, depth_after + 1, depth_after)
        if len(depth_after) == 0 or depth_after[-1] != 0 or depth_after.min() < 0:
            raise FileFormatError(f"{path}: not valid JSON (brackets do not balance)",
                                  hint="the file may be cut off: fetch it again, or check the "
                                       "export that wrote it")

    def records(self, record_path: str | None) -> tuple[int, int]:
        """Byte offsets of the record array's ``[`` and ``]``."""
        a, marks, depth = self.a, self.marks, self.depth
        first = marks[0]
        if a[first] == ord("["):
            if record_path:
                raise FileFormatError(f"{self.path}: record_path {record_path!r} was given but "
                                      "the document is an array", hint="remove record_path")
            return int(first), int(self._closing(0))
        if record_path:
            at = 0
            for key in record_path.split("."):
                at = self._key(at, key, record_path)
            if a[marks[at]] != ord("["):
                raise FileFormatError(f"{self.path}: {record_path!r} is not a list of records",
                                      hint="point record_path at the key that holds the list")
            return int(marks[at]), int(self._closing(at))
        # No path: the only top-level key whose value is a list.
        arrays = np.flatnonzero((depth == 2) & (a[marks] == ord("[")))
        arrays = [i for i in arrays.tolist() if i > 0 and a[marks[i - 1]] == ord(":")]
        if len(arrays) != 1:
            raise FileFormatError(
                f"{self.path}: a JSON object with {len(arrays)} top-level lists; which one "
                "holds the records?", hint="set record_path: to its key (e.g. records)")
        return int(marks[arrays[0]]), int(self._closing(arrays[0]))

    def elements(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and stop offsets (stripped of whitespace) of the array's elements."""
        a, marks = self.a, self.marks
        lo = int(np.searchsorted(marks, start))
        hi = int(np.searchsorted(marks, end))
        level = self.depth[lo]
        inner = slice(lo + 1, hi)
        commas = marks[inner][(self.depth[inner] == level) & (a[marks[inner]] == ord(","))]
        bounds = np.concatenate([[start], commas, [end]])
        starts, stops = bounds[:-1] + 1, bounds[1:]
        if len(starts) == 1 and not bytes(a[starts[0]:stops[0]]).strip():
            return np.empty(0, np.int64), np.empty(0, np.int64)
        space = np.zeros(256, dtype=bool)
        space[[9, 10, 13, 32]] = True
        # Skip leading whitespace of each element (elements are short; a few steps at most).
        for _ in range(64):
            move = space[a[np.minimum(starts, len(a) - 1)]] & (starts < stops)
            if not move.any():
                break
            starts = starts + move
        return starts, stops

    def _closing(self, index: int) -> int:
        level = self.depth[index]
        after = np.flatnonzero((self.depth[index + 1:] == level)
                               & np.isin(self.a[self.marks[index + 1:]], [ord("]"), ord("}")]))
        return int(self.marks[index + 1 + after[0]])

    def _key(self, at: int, key: str, record_path: str) -> int:
        """Index (into marks) of the value of ``key`` in the object opened at mark ``at``."""
        a, marks, depth = self.a, self.marks, self.depth
        level = depth[at]
        end = int(np.searchsorted(marks, self._closing(at)))
        colons = [i for i in range(at + 1, end)
                  if depth[i] == level and a[marks[i]] == ord(":")]
        import orjson

        for i in colons:
            q = int(np.searchsorted(self.quotes, marks[i])) - 2
            name = orjson.loads(bytes(a[self.quotes[q]:self.quotes[q + 1] + 1]))
            if name == key:
                value = int(np.searchsorted(marks, marks[i] + 1))
                if value < len(marks) and a[marks[value]] in (ord("["), ord("{")) and \
                        not bytes(a[marks[i] + 1:marks[value]]).strip():
                    return value
                break
        raise FileFormatError(f"{self.path}: no list or object at {record_path!r} (key {key!r})",
                              hint="check record_path against the document's keys")


def _escaped(a: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """Which quotes are escaped (preceded by an odd run of backslashes)."""
    escaped = np.zeros(len(quotes), dtype=bool)
    candidates = np.flatnonzero(a[np.maximum(quotes - 1, 0)] == ord("\\"))
    for i in candidates.tolist():  # only quotes right after a backslash
        q = int(quotes[i]) - 1
        run = 0
        while q >= 0 and a[q] == ord("\\"):
            run += 1
            q -= 1
        escaped[i] = run % 2 == 1
    return escaped


def _non_blank_lines(chunk: bytes) -> np.ndarray:
    a = np.frombuffer(chunk, np.uint8)
    newlines = np.flatnonzero(a == NEWLINE)
    solid = np.flatnonzero((a != 32) & (a != 9) & (a != 13) & (a != NEWLINE))
    return np.unique(np.searchsorted(newlines, solid)).astype(np.int64)


def _block_size(sample: bytes, batch_rows: int) -> int:
    lines = max(sample.count(b"\n"), 1)
    return int(min(max(len(sample) // lines * batch_rows, 1 << 20), 64 << 20))


def _merge_schema(old: pa.Schema, new: pa.Schema) -> pa.Schema:
    try:
        return pa.unify_schemas([old, new], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return old


def _conflict(message: str) -> str:
    detail = message.replace("JSON parse error: ", "")
    return f"a field's type differs from the records before it ({detail})"


def _text(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\r")


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)

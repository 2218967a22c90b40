"""Broker records → rows: the payloads of one fetch decoded in one pass, bad ones set aside.

A fetch (an Arrow table of records, :data:`headwater.brokers.RECORD_SCHEMA`) becomes one
:class:`headwater.core.Batch` whose ``_hw_pos`` is the row's index into the fetch (for JSON
Lines, the line's index in the fetch's lines; ``rows_of`` maps it back to its record).

First the checks every format shares, on whole columns: an empty payload, one larger than the
limit, text that is not valid in the source's encoding (found by halving the fetch, so a bad
payload costs ``log2(fetch)`` validations of shrinking slices, never a Python call per good
one). The rest is joined into one buffer and parsed by one reader call: ``pyarrow.json`` through
the file pipeline's JSON Lines reader (the same types, widening and per-line reasons as files)
or ``pyarrow.csv`` with the column names given.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from headwater.core import POSITION, REJECTS_SCHEMA, Batch, ConfigError, rejects_table
from headwater.ingest.sources._avro import AvroDecoder
from headwater.ingest.sources._json import _kind, _Records
from headwater.ingest.sources._stream import transcode

PayloadFormat = Literal["json", "jsonl", "csv", "avro"]

#: How much of a rejected payload the quarantine keeps when it is larger than the limit.
_RAW_KEPT = 64 << 10
_SINGLE_BYTE = {"latin-1", "iso8859-1", "iso8859-15", "cp1250", "cp1251", "cp1252"}


@dataclass
class Decoded:
    """One fetch as rows: the batch, and per row of it the record it came from."""

    batch: Batch
    #: Index into the fetch's records of every ``_hw_pos`` value (0 … n-1 for json and csv).
    rows_of: np.ndarray


class PayloadDecoder:
    """Decodes the payloads of fetches, one call per fetch; keeps the JSON schema across them.

    Parameters
    ----------
    format:
        ``json`` (a JSON object per record), ``jsonl`` (JSON objects, one a line) or ``csv``
        (one row per record, no header; ``columns`` names the fields in order).
    label:
        What to call the stream in messages (``topic``).
    max_payload_bytes:
        A larger payload goes to the rejects, and only its first 64 KiB to the quarantine.
    encoding:
        ``utf-8`` or a single-byte encoding (``latin-1``, ``cp1252``), transcoded to UTF-8.
    nested:
        JSON objects (Avro records) inside records: ``flatten`` to ``a_b`` columns, or
        ``json`` text.
    avro:
        For ``avro``: the :class:`._avro.AvroDecoder` (writer schema, framing, schema id).

    >>> d = PayloadDecoder("json", label="events")
    >>> out = d.decode(pa.array([b'{"id": 1}', b'oops', b'']))
    >>> out.batch.data["id"].to_pylist(), out.batch.rejects["reason"].to_pylist()[1]
    ([1], 'empty payload')
    """

    def __init__(self, format: PayloadFormat, *, label: str, max_payload_bytes: int = 1 << 20,
                 encoding: str = "utf-8", columns: list[str] | None = None,
                 nested: str = "flatten", avro: AvroDecoder | None = None) -> None:
        if format == "avro" and avro is None:
            raise ConfigError(f"stream {label}: format avro needs the writer schema",
                              hint="add `avro: {schema: FILE.avsc}` to the source")
        self.format = format
        self.avro = avro
        self.label = label
        self.max_payload_bytes = max_payload_bytes
        self.encoding = encoding
        self.columns = list(columns or [])
        self.nested = nested
        self._records: _Records | None = None
        self._duckdb: Any = None

    def decode(self, values: pa.Array | pa.ChunkedArray) -> Decoded:
        """Rows and rejects of one fetch's payloads (``values``, binary)."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
        values = values.cast(pa.binary())
        n = len(values)
        if self.format == "csv":  # one row each: a trailing line break is not a second row
            values = pc.replace_substring_regex(values, r"\r?\n$", b"")
        rejects: list[tuple[np.ndarray, list[str], list[str]]] = []
        keep = self._screen(values, rejects)
        index = np.flatnonzero(keep)
        kept = values.take(pa.array(index)) if len(index) != n else values
        if self.format == "avro":
            return Decoded(self._avro(kept, index, rejects), np.arange(n, dtype=np.int64))
        bad = self._invalid_text(kept)
        if bad:
            at = np.asarray(bad, dtype=np.int64)
            rejects.append((index[at], [_shown(kept[i].as_py()) for i in bad],
                            [self._encoding_reason(kept[i].as_py()) for i in bad]))
            good = np.ones(len(kept), dtype=bool)
            good[at] = False
            kept, index = kept.filter(pa.array(good)), index[good]
        rows_of = np.arange(n, dtype=np.int64)
        if self.format == "json":  # records that are not JSON objects out, in one pass
            kept, index = self._objects_only(kept, index, rejects)
        if self.format == "csv":
            batch = _shift(self._csv(kept), lambda p: index[p])
        elif self.format == "json":
            batch = _shift(self._json(kept)[0], lambda p: index[p])
        else:  # jsonl: the lines are numbered after the n records
            batch, line_of = self._json(kept)
            batch = _shift(batch, lambda p: p + n)
            rows_of = np.concatenate([rows_of, index[line_of]])
        if rejects:
            batch = Batch(batch.data, _with_rejects(batch.rejects, rejects), batch.children)
        return Decoded(batch, rows_of)

    # -- checks on whole columns ---------------------------------------------------------------

    def _screen(self, values: pa.Array,
                rejects: list[tuple[np.ndarray, list[str], list[str]]]) -> np.ndarray:
        """Which payloads go on to the parse: empty, oversized (and, for csv, multi-row)
        ones are rejected here."""
        lengths = pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
        empty = lengths == 0
        large = lengths > self.max_payload_bytes
        if self.format == "csv":
            rows = pc.fill_null(pc.greater_equal(pc.find_substring(values, b"\n"), 0), False)
            multi = rows.to_numpy(zero_copy_only=False) & ~large
            at = np.flatnonzero(multi)
            if len(at):
                rejects.append((at, [_shown(values[int(i)].as_py()) for i in at],
                                ["a csv payload must hold one row; this one has a line "
                                 "break"] * len(at)))
            large = large | multi
        if not (empty.any() or large.any()):
            return np.ones(len(values), dtype=bool)
        for mask, why in ((empty, None), (large, "large")):
            at = np.flatnonzero(mask)
            if not len(at):
                continue
            if why is None:
                rejects.append((at, [""] * len(at), ["empty payload"] * len(at)))
            else:
                at = np.flatnonzero(lengths > self.max_payload_bytes)
                if not len(at):
                    continue
                rejects.append((at, [_shown(values[int(i)].as_py()[:_RAW_KEPT]) + " …"
                                     for i in at],
                                [f"payload of {int(lengths[i]):,} bytes is larger than "
                                 f"max_payload_bytes ({self.max_payload_bytes:,})" for i in at]))
        return ~(empty | large)

    def _invalid_text(self, values: pa.Array) -> list[int]:
        """Indices of the payloads that are not valid UTF-8 (none for single-byte encodings:
        every byte means a character)."""
        if self._single_byte() or not len(values):
            return []
        bad: list[int] = []
        _halve(values, 0, len(values), bad)
        return bad

    def _single_byte(self) -> bool:
        name = codecs.lookup(self.encoding).name
        if name == "utf-8":
            return False
        if name not in _SINGLE_BYTE:
            raise ConfigError(f"stream {self.label}: encoding {self.encoding!r} is not supported "
                              "for payloads", hint="use utf-8 or a single-byte encoding such as "
                              "latin-1 or cp1252")
        return True

    def _encoding_reason(self, payload: bytes) -> str:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"payload is not valid UTF-8 (byte {exc.start}: {payload[exc.start:][:4]!r})"
        return "payload is not valid UTF-8"  # pragma: no cover - only bad ones get here

    def _objects_only(self, values: pa.Array, index: np.ndarray,
                      rejects: list[tuple[np.ndarray, list[str], list[str]]]
                      ) -> tuple[pa.Array, np.ndarray]:
        """Keep the payloads that are one JSON object (DuckDB's ``json_valid`` over the whole
        column); the reasons of the others are worked out one by one (they are few)."""
        if not len(values):
            return values, index
        if self._duckdb is None:
            import duckdb

            self._duckdb = duckdb.connect()
            self._duckdb.execute("SET threads = 1")
        text = values.view(pa.string()) if not self._single_byte() else None
        if text is None:  # single-byte text is checked after transcoding, by the parse
            return values, index
        payloads = pa.table({"v": text})  # noqa: F841 - read by the query below
        ok = self._duckdb.sql(
            "SELECT CASE WHEN json_valid(v) THEN json_type(v) = 'OBJECT' ELSE false END "
            "FROM payloads").to_arrow_table().column(0)
        good = pc.fill_null(ok, False).to_numpy(zero_copy_only=False)
        if good.all():
            return values, index
        at = np.flatnonzero(~good)
        raws = [values[int(i)].as_py() for i in at]
        rejects.append((index[at], [_shown(r) for r in raws], [_not_an_object(r) for r in raws]))
        return values.filter(pa.array(good)), index[good]

    # -- one parse per fetch -------------------------------------------------------------------

    def _avro(self, values: pa.Array, index: np.ndarray,
              rejects: list[tuple[np.ndarray, list[str], list[str]]]) -> Batch:
        assert self.avro is not None  # checked in __init__
        rows, bad = self.avro.decode(values)
        good = np.ones(len(values), dtype=bool)
        if bad:
            at = np.array(sorted(bad), dtype=np.int64)
            good[at] = False
            rejects.append((index[at], [_shown(values[int(i)].as_py()) for i in at],
                            [bad[int(i)] for i in at]))
        rows = rows.append_column(POSITION, pa.array(index[good], pa.int64()))
        return Batch(rows, _with_rejects(None, rejects))

    def _joined(self, values: pa.Array, *, one_line: bool) -> tuple[bytes, np.ndarray]:
        """The payloads as one UTF-8 buffer, each followed by a newline, and the line each
        payload starts on (lines are counted before transcoding, which keeps them)."""
        if one_line:  # a newline is only whitespace in valid JSON
            values = pc.replace_substring(values, b"\n", b" ")
        lines = pc.binary_join_element_wise(values, pa.scalar(b"\n"), pa.scalar(b""))
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
            lines.offset:lines.offset + len(lines) + 1]
        data = lines.buffers()[2]
        first, last = int(offsets[0]), int(offsets[-1])
        text = data[first:last].to_pybytes() if data is not None else b""
        starts = (offsets[:-1] - first).astype(np.int64)
        if self._single_byte():
            text = transcode(text, self.encoding)
        return text, starts

    def _json(self, values: pa.Array) -> tuple[Batch, np.ndarray]:
        """One parse of the payloads; and, per line, the payload it is in."""
        if self._records is None:
            self._records = _Records(self.label, self.nested)  # type: ignore[arg-type]
        one = self.format == "json"
        if not len(values):
            return Batch(pa.table({POSITION: pa.array([], pa.int64())})), \
                np.empty(0, np.int64)
        text, starts = self._joined(values, one_line=one)
        if one:
            line_of = np.arange(len(values), dtype=np.int64)
        else:  # the record each line is in, from where the newlines are
            a = np.frombuffer(text, np.uint8) if not self._single_byte() else None
            line_of = self._line_records(text if a is None else a, values, starts)
        parts = list(self._records.batches(text, 0, 1 << 62))
        batch = parts[0] if len(parts) == 1 else Batch(
            pa.concat_tables([p.data for p in parts], promote_options="permissive"),
            _concat_rejects([p.rejects for p in parts]))
        return _vanished(batch, len(line_of), one), line_of

    @staticmethod
    def _line_records(text: bytes | np.ndarray, values: pa.Array,
                      starts: np.ndarray) -> np.ndarray:
        """For each line of a JSON Lines fetch, the index of the payload it is in."""
        if isinstance(text, np.ndarray):
            newlines = np.flatnonzero(text == 0x0A)
            line_starts = np.concatenate([[0], newlines[:-1] + 1])
            return (np.searchsorted(starts, line_starts, side="right") - 1).astype(np.int64)
        counts = pc.add(pc.count_substring(values, b"\n"), 1).to_numpy(zero_copy_only=False)
        return np.repeat(np.arange(len(values), dtype=np.int64), counts)

    def _csv(self, values: pa.Array) -> Batch:
        if not self.columns:
            raise ConfigError(f"stream {self.label}: format csv needs the column names",
                              hint="give the pipeline a contract, or list `columns:` in the "
                              "source")
        if not len(values):
            return Batch(pa.table({**{c: pa.array([], pa.string()) for c in self.columns},
                                   POSITION: pa.array([], pa.int64())}))
        text, _ = self._joined(values, one_line=False)
        bad: list[tuple[int, str, str]] = []

        def invalid(row: pacsv.InvalidRow) -> str:
            bad.append((int(row.number or 0) - 1, row.text,
                        f"expected {row.expected_columns} fields, found {row.actual_columns}"))
            return "skip"

        table = pacsv.read_csv(
            pa.BufferReader(text),
            read_options=pacsv.ReadOptions(column_names=self.columns, use_threads=False,
                                           block_size=max(1 << 20, len(text) + 1)),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in self.columns}, strings_can_be_null=False,
                quoted_strings_can_be_null=False))
        lines = np.arange(len(values), dtype=np.int64)
        if bad:
            lines = np.setdiff1d(lines, np.array([b[0] for b in bad], np.int64))
        if len(lines) != table.num_rows:  # pragma: no cover - screened: one line per payload
            raise ConfigError(f"stream {self.label}: {table.num_rows} csv rows from "
                              f"{len(lines)} payloads", hint="report this: a bug in headwater")
        table = table.append_column(POSITION, pa.array(lines))
        rejects = None
        if bad:
            rejects = rejects_table(*zip(*bad, strict=True))
        return Batch(table, rejects)


def _shift(batch: Batch, move: Callable[[np.ndarray], np.ndarray]) -> Batch:
    """``_hw_pos`` of the rows and rejects moved by ``move`` (a function of a NumPy array)."""
    def moved(table: pa.Table) -> pa.Table:
        at = table.schema.get_field_index(POSITION)
        positions = table[POSITION].to_numpy()
        return table.set_column(at, POSITION, pa.array(move(positions), pa.int64()))

    rejects = moved(batch.rejects) if batch.rejects is not None else None
    return Batch(moved(batch.data), rejects, batch.children)


def _not_an_object(payload: bytes) -> str:
    """Why one payload is not a JSON object, in the words the file reader uses."""
    import orjson

    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON: {exc}"
    return f"a record must be a JSON object, found {_kind(value)}"


def _halve(values: pa.Array, start: int, stop: int, bad: list[int]) -> None:
    """Collect the indices in [start, stop) whose bytes are not valid UTF-8."""
    try:
        values.slice(start, stop - start).view(pa.string()).validate(full=True)
        return
    except pa.ArrowInvalid:
        pass
    if stop - start == 1:
        bad.append(start)
        return
    middle = (start + stop) // 2
    _halve(values, start, middle, bad)
    _halve(values, middle, stop, bad)


def _shown(payload: bytes | None) -> str:
    return "" if payload is None else payload.decode("utf-8", "backslashreplace")


def _vanished(batch: Batch, expected: int, by_record: bool) -> Batch:
    """Lines a reader skipped without a word (blank ones) become rejects: nothing is lost."""
    if not by_record:
        return batch
    seen = np.zeros(expected, dtype=bool)
    seen[batch.data[POSITION].to_numpy()] = True
    if batch.rejects is not None:
        seen[batch.rejects[POSITION].to_numpy()] = True
    missing = np.flatnonzero(~seen)
    if not len(missing):
        return batch
    extra = rejects_table(missing, [""] * len(missing),
                          ["payload holds only whitespace"] * len(missing))
    return Batch(batch.data, _concat_rejects([batch.rejects, extra]), batch.children)


def _concat_rejects(parts: list[pa.Table | None]) -> pa.Table | None:
    found = [p for p in parts if p is not None and p.num_rows]
    if not found:
        return None
    table = pa.concat_tables([p.cast(REJECTS_SCHEMA) for p in found])
    return table.take(pc.sort_indices(table, [(POSITION, "ascending")]))


def _with_rejects(rejects: pa.Table | None,
                  found: list[tuple[np.ndarray, list[str], list[str]]]) -> pa.Table | None:
    """``rejects`` of the parse (positions into the kept payloads, already mapped) plus the
    payloads screened out before it."""
    extra = [rejects_table(at, raw, why) for at, raw, why in found]
    return _concat_rejects([rejects, *extra])

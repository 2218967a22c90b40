"""Broker records → events: JSON payloads decoded a batch at a time, bad ones set aside.

The whole batch is parsed by one ``pyarrow.json`` call. Only when that fails (a malformed
payload somewhere) is the batch halved until the bad records are isolated: the cost of a bad
record is a few parses of ``log2(batch)`` shrinking halves, never a Python call per good one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson


@dataclass
class Decoded:
    """Events decoded from one batch of records, and the records that could not be."""

    events: pa.Table
    #: Indices (into the records) of the payloads that failed, and why, one reason each.
    bad: list[int]
    reasons: list[str]


def decode_json(values: pa.Array | pa.ChunkedArray, schema: pa.Schema, *,
                required: tuple[str, ...] = ()) -> Decoded:
    """Parse JSON object payloads into ``schema`` (other fields ignored). ``events`` also has
    ``_hw_i``, each event's index in ``values``.

    A payload fails when it is not UTF-8, not one JSON object, a field has the wrong type, or a
    ``required`` field is missing or null.

    >>> d = decode_json(pa.array([b'{"v": 1}', b'oops', b'{"v": 2.5}']),
    ...                 pa.schema([("v", pa.float64())]), required=("v",))
    >>> d.events.column("v").to_pylist(), d.bad
    ([1.0, 2.5], [1])
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    # one payload a line: a newline is only whitespace in valid JSON, so it becomes a space
    values = pc.replace_substring(pc.fill_null(values.cast(pa.binary()), b""), b"\n", b" ")
    parts: list[pa.Table] = []
    bad: dict[int, str] = {}
    _parse(values, 0, len(values), schema, parts, bad)
    parts.sort(key=lambda t: t.column("_hw_i")[0].as_py())
    out_schema = schema.append(pa.field("_hw_i", pa.int64()))
    events = pa.concat_tables(parts) if parts else out_schema.empty_table()
    if required and events.num_rows:
        missing = pc.is_null(events.column(required[0]))
        for name in required[1:]:
            missing = pc.or_(missing, pc.is_null(events.column(name)))
        if pc.any(missing).as_py():
            for row in events.filter(missing).to_pylist():   # the bad ones only
                absent = [k for k in required if row.get(k) is None]
                bad[row["_hw_i"]] = f"missing required field(s) {', '.join(absent)}"
            events = events.filter(pc.invert(missing))
    order = sorted(bad)
    return Decoded(events, order, [bad[i] for i in order])


def _parse(values: pa.Array, start: int, stop: int, schema: pa.Schema,
           parts: list[pa.Table], bad: dict[int, str]) -> None:
    """Parse records [start, stop); on failure halve until the bad ones are alone."""
    if stop <= start:
        return
    try:
        table = _read(values.slice(start, stop - start), schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        table = None
    if table is not None and table.num_rows == stop - start:
        parts.append(table.append_column("_hw_i", pa.array(np.arange(start, stop))))
        return
    if stop - start == 1:
        bad[start] = _reason(values[start].as_py(), schema)
        return
    middle = (start + stop) // 2
    _parse(values, start, middle, schema, parts, bad)
    _parse(values, middle, stop, schema, parts, bad)


def _read(piece: pa.Array, schema: pa.Schema) -> pa.Table:
    """One JSON Lines parse of the payloads, joined by newlines through Arrow."""
    lines = pc.binary_join_element_wise(piece, pa.scalar(b"\n"), pa.scalar(b""))
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    data = lines.buffers()[2]
    text = data[first:last] if data is not None else pa.py_buffer(b"")
    return pajson.read_json(
        pa.BufferReader(text),
        read_options=pajson.ReadOptions(block_size=max(1 << 16, last - first + 1)),
        parse_options=pajson.ParseOptions(explicit_schema=schema,
                                          unexpected_field_behavior="ignore"))


def _reason(payload: bytes | None, schema: pa.Schema) -> str:
    """Why one payload failed, for people (only ever called for bad records)."""
    if payload is None:
        return "empty payload"
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"payload is not UTF-8 (byte {exc.start})"
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"payload is not valid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(value, dict):
        return f"payload is a JSON {type(value).__name__}, not an object"
    for field in schema:
        got = value.get(field.name)
        if got is None:
            continue
        if pa.types.is_floating(field.type) or pa.types.is_integer(field.type):
            if isinstance(got, bool) or not isinstance(got, int | float):
                return f"field {field.name!r} is {got!r}, not a number"
        elif pa.types.is_string(field.type) and not isinstance(got, str | int | float):
            return f"field {field.name!r} is {type(got).__name__}, not text"
    return "payload does not match the expected fields"


def quarantine_payloads(records: pa.Table, bad: list[int], reasons: list[str], *, topic: str,
                        run_id: str, pipeline: str, table: str, first: int) -> pa.Table:
    """Quarantine rows (``QUARANTINE_SCHEMA``) for the records at ``bad``: the payload as text,
    ``topic[partition]`` and the offset as where, the reason; ids ``run_id:first+i``."""
    picked = records.select(["partition", "offset", "value"]).take(pa.array(bad, pa.int64()))
    from headwater.brokers import record_origins

    sources, positions = record_origins(topic, picked.column("partition"),
                                        picked.column("offset"))
    return quarantine_rows(raw=picked.column("value"), sources=sources,
                           positions=positions, unit="offset",
                           rules=[["payload"]] * len(bad), reasons=[[r] for r in reasons],
                           run_id=run_id, pipeline=pipeline, table=table, first=first)


def payload_text(raw: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Payloads as text for the quarantine: UTF-8, bad bytes escaped (``\\xff``)."""
    if not (pa.types.is_binary(raw.type) or pa.types.is_large_binary(raw.type)):
        return raw
    try:
        return pc.cast(raw, pa.string())
    except pa.ArrowInvalid:       # not UTF-8: one call per payload, only on this path
        return pa.array([None if v is None else v.decode("utf-8", "backslashreplace")
                         for v in raw.to_pylist()], pa.string())


def quarantine_rows(*, raw: pa.Array | pa.ChunkedArray, sources: pa.Array | pa.ChunkedArray,
                    positions: pa.Array | pa.ChunkedArray, unit: str,
                    rules: list[list[str]] | pa.Array | pa.ChunkedArray,
                    reasons: list[list[str]] | pa.Array | pa.ChunkedArray, run_id: str,
                    pipeline: str, table: str, first: int) -> pa.Table:
    """Quarantine rows (``QUARANTINE_SCHEMA``) from columns: the raw payload or row (bytes are
    decoded as UTF-8, bad bytes escaped), where it came from, every rule it failed and why;
    ids ``run_id:first+i``."""
    from headwater.store import QUARANTINE_SCHEMA

    n = len(raw)
    raw = payload_text(raw)
    ids = pc.binary_join_element_wise(
        pa.scalar(f"{run_id}:"), pc.cast(pa.array(np.arange(first, first + n)), pa.string()), "")
    now = datetime.now(UTC)
    return pa.table({
        "id": ids, "run_id": pa.array([run_id] * n, pa.string()),
        "pipeline": pa.array([pipeline] * n, pa.string()),
        "table_name": pa.array([table] * n, pa.string()),
        "source": pc.cast(sources, pa.string()), "position": pc.cast(positions, pa.int64()),
        "unit": pa.array([unit] * n, pa.string()), "raw": pc.cast(raw, pa.string()),
        "rules": pa.array(rules, pa.list_(pa.string())) if isinstance(rules, list)
        else pc.cast(rules, pa.list_(pa.string())),
        "reasons": pa.array(reasons, pa.list_(pa.string())) if isinstance(reasons, list)
        else pc.cast(reasons, pa.list_(pa.string())),
        "quarantined_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        "replayed_by": pa.nulls(n, pa.string()),
    }, schema=QUARANTINE_SCHEMA)

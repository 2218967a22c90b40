"""Avro payloads → Arrow: one parse per fetch, malformed payloads set aside with a reason.

A record's value is one Avro datum without a schema: either in the **Confluent wire format**
(``framing: confluent``: the magic byte 0, a 4-byte big-endian schema-registry id, the datum)
or **plain** (``framing: plain``: the datum alone). The writer schema comes from a file of the
project (``.avsc``); no registry is asked at run time.

The datums of a fetch are concatenated, behind an in-memory Avro container header, into one
block that polars decodes to columns in one call (no Python call per record). If that parse
fails, the fetch is checked payload by payload with fastavro (each datum must decode and fill
its payload exactly), the bad ones go to the rejects with fastavro's reason, and the rest is
decoded in one call again. A datum that is valid for the schema but framed with bytes of its
neighbour cannot be told from good data by any reader of a concatenated block; the per-payload
check catches it only when the block as a whole does not parse.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.core import ConfigError, require

AvroFraming = Literal["confluent", "plain"]
_MAGIC = b"\x00"


def load_schema(path: str | Path) -> dict[str, Any]:
    """The Avro schema in ``path`` (JSON), checked by fastavro; a :class:`ConfigError` naming
    the file otherwise."""
    fastavro = require("fastavro", "avro")
    try:
        schema = json.loads(Path(path).read_text())
        fastavro.parse_schema(schema)
    except FileNotFoundError:
        raise ConfigError(f"no Avro schema file {path}",
                          hint="give `avro: {schema: FILE.avsc}` a path relative to the project"
                          ) from None
    except (ValueError, TypeError, KeyError) as exc:  # JSON and schema errors
        raise ConfigError(f"{path} is not an Avro schema: {exc}",
                          hint="fix the .avsc file (see avro.apache.org/docs, Schema "
                          "Declaration)") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ConfigError(f"{path}: the schema of a record payload must be an Avro record",
                          hint='write {"type": "record", "name": ..., "fields": [...]}')
    return schema


def _varint(n: int) -> bytes:
    """An Avro long: zig-zag, then 7 bits a byte."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _data(values: pa.Array) -> bytes:
    """The bytes of a binary array's values, back to back (one copy)."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[
        values.offset:values.offset + len(values) + 1]
    data = values.buffers()[2]
    if data is None or offsets[-1] == offsets[0]:
        return b""
    return data[int(offsets[0]):int(offsets[-1])].to_pybytes()


class AvroDecoder:
    """Decodes fetches of Avro payloads written with ``schema`` (a parsed ``.avsc``).

    ``schema_id`` (Confluent framing): payloads carrying another registry id are rejected,
    since their writer schema is not the one given. ``nested``: record fields inside records
    become ``a_b`` columns (``flatten``) or stay structs (``json`` keeps them as JSON text).

    >>> import io, fastavro
    >>> schema = {"type": "record", "name": "R", "fields": [{"name": "id", "type": "long"}]}
    >>> out = io.BytesIO(); fastavro.schemaless_writer(out, schema, {"id": 7})
    >>> payloads = pa.array([out.getvalue(), out.getvalue() + b"?"])
    >>> rows, bad = AvroDecoder(schema, framing="plain").decode(payloads)
    >>> rows["id"].to_pylist(), bad[1]
    ([7], 'not an Avro datum of schema R: the payload has 1 byte(s) left over')
    """

    def __init__(self, schema: dict[str, Any], *, framing: AvroFraming = "confluent",
                 schema_id: int | None = None, nested: str = "flatten") -> None:
        fastavro = require("fastavro", "avro")
        self.schema = schema
        self.framing = framing
        self.schema_id = schema_id
        self.nested = nested
        self._parsed = fastavro.parse_schema(schema)
        self._header_sync = os.urandom(16)
        meta = {b"avro.schema": json.dumps(schema).encode(), b"avro.codec": b"null"}
        self._header = b"Obj\x01" + _varint(len(meta)) + b"".join(
            _varint(len(k)) + k + _varint(len(v)) + v for k, v in meta.items()) + _varint(0) + \
            self._header_sync
        # a datum of random values after the fetch's: read back unchanged only if every datum
        # before it took exactly its payload's bytes
        self._sentinel_row, self._sentinel_datum = self._sentinel()

    def decode(self, values: pa.Array) -> tuple[pa.Table, dict[int, str]]:
        """The rows of the good payloads (in order) and, per bad payload's index, why."""
        bad: dict[int, str] = {}
        if self.framing == "confluent":
            values, bad = self._unframe(values)
        good = np.ones(len(values), dtype=bool)
        good[list(bad)] = False
        table = self._block(values, good)
        if table is None:  # something in the fetch is not Avro: find it payload by payload
            for i, why in self._check_each(values, good).items():
                bad[i] = why
                good[i] = False
            table = self._block(values, good)
            if table is None:  # pragma: no cover - every payload was checked on its own
                raise ConfigError("the Avro payloads that fastavro reads, polars cannot",
                                  hint="report this: a bug in headwater")
        return self._shaped(table), bad

    def _unframe(self, values: pa.Array) -> tuple[pa.Array, dict[int, str]]:
        """The datums behind the Confluent header; payloads without one, or with another
        schema id, are bad (their datum is left empty)."""
        lengths = pc.binary_length(values).to_numpy(zero_copy_only=False)
        framed = (lengths >= 5) & pc.equal(pc.binary_slice(values, 0, 1), _MAGIC) \
            .to_numpy(zero_copy_only=False)
        bad = {int(i): "not in the Confluent wire format (magic byte 0, then a 4-byte schema "
               "id): set avro.framing to plain for datums without it"
               for i in np.flatnonzero(~framed)}
        ids = np.frombuffer(_data(pc.binary_slice(values, 1, 5).filter(pa.array(framed))),
                            dtype=">u4")
        if self.schema_id is not None:
            rows = np.flatnonzero(framed)
            for j in np.flatnonzero(ids != self.schema_id):
                bad[int(rows[j])] = (f"schema id {int(ids[j])}, but this source reads schema id "
                                     f"{self.schema_id} (avro.schema_id)")
        return pc.binary_slice(values, 5, np.iinfo(np.int32).max), bad

    def _block(self, values: pa.Array, good: np.ndarray) -> pa.Table | None:
        """``values[good]`` decoded in one call (``None``: the block does not parse)."""
        import polars as pl

        kept = values.filter(pa.array(good)) if not good.all() else values
        if not len(kept):
            return pl.DataFrame(schema=self._empty_schema()).to_arrow()
        body = _data(kept) + self._sentinel_datum
        block = self._header + _varint(len(kept) + 1) + _varint(len(body)) + body + \
            self._header_sync
        try:
            frame = pl.read_avro(io.BytesIO(block))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # polars raises a PanicException (not an Exception) on bad input
            return None
        if frame.height != len(kept) + 1 or \
                frame.tail(1).to_dicts()[0] != self._sentinel_row:
            return None  # a datum took more or fewer bytes than its payload: shifted
        return frame.head(len(kept)).to_arrow()

    def _sentinel(self) -> tuple[dict[str, Any], bytes]:
        """A datum of ``schema`` with random numbers and text, and the row polars reads."""
        import polars as pl
        from fastavro import schemaless_writer

        rng = np.random.default_rng()
        named: dict[str, Any] = {}  # record, enum and fixed types, by name, for references

        def value(kind: Any) -> Any:
            if isinstance(kind, list):  # a union: its first non-null branch
                branches = [k for k in kind if k != "null"] or kind
                return value(branches[0])
            if isinstance(kind, str) and kind in named:
                return value(named[kind])
            if isinstance(kind, dict):
                t = kind["type"]
                if "name" in kind and t in ("record", "enum", "fixed"):
                    named[kind["name"]] = named[".".join(
                        filter(None, [kind.get("namespace"), kind["name"]]))] = kind
                if t == "record":
                    return {f["name"]: value(f["type"]) for f in kind["fields"]}
                if t == "enum":
                    return kind["symbols"][0]
                if t == "array":
                    return []
                if t == "map":
                    return {}
                if t == "fixed":
                    return rng.bytes(kind["size"])
                return value_of_logical(kind) if "logicalType" in kind else value(t)
            return {"null": None, "boolean": True, "int": int(rng.integers(1, 1 << 30)),
                    "long": int(rng.integers(1, 1 << 60)), "float": 0.5, "double":
                    float(rng.random()), "string": rng.bytes(8).hex(), "bytes": rng.bytes(8)
                    }.get(kind)

        def value_of_logical(kind: dict[str, Any]) -> Any:
            from datetime import UTC, date, datetime
            from decimal import Decimal

            logical = kind["logicalType"]
            if logical in ("timestamp-millis", "timestamp-micros", "local-timestamp-millis",
                           "local-timestamp-micros"):
                return datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
            if logical == "date":
                return date(2001, 2, 3)
            if logical == "decimal":
                return Decimal(1).scaleb(-int(kind.get("scale", 0)))
            return value(kind["type"])

        datum = value(self.schema)
        out = io.BytesIO()
        schemaless_writer(out, self._parsed, datum)
        payload = out.getvalue()
        block = self._header + _varint(1) + _varint(len(payload)) + payload + self._header_sync
        return pl.read_avro(io.BytesIO(block)).to_dicts()[0], payload

    def _empty_schema(self) -> dict[str, Any]:
        """Column names of an empty fetch (typed by the first rows that come)."""
        import polars as pl

        return {f["name"]: pl.Null for f in self.schema["fields"]}

    def _check_each(self, values: pa.Array, good: np.ndarray) -> dict[int, str]:
        """Why each payload that does not decode alone fails (a Python call per payload: only
        for a fetch whose block did not parse)."""
        from fastavro import schemaless_reader

        name = self.schema.get("name", "record")
        out: dict[int, str] = {}
        for i in np.flatnonzero(good):
            payload = values[int(i)].as_py() or b""
            stream = io.BytesIO(payload)
            try:
                schemaless_reader(stream, self._parsed, None)
            except Exception as exc:  # fastavro raises many kinds on malformed data
                out[int(i)] = f"not an Avro datum of schema {name}: " \
                    f"{type(exc).__name__}: {exc}".strip().rstrip(":")
                continue
            left = len(payload) - stream.tell()
            if left:
                out[int(i)] = f"not an Avro datum of schema {name}: the payload has {left} " \
                    "byte(s) left over"
        return out

    def _shaped(self, table: pa.Table) -> pa.Table:
        """Struct columns flattened to ``a_b`` (``nested: flatten``) or made JSON text."""
        while any(pa.types.is_struct(f.type) for f in table.schema):
            columns, names = [], []
            for name, column in zip(table.column_names, table.columns, strict=True):
                if not pa.types.is_struct(column.type):
                    columns.append(column)
                    names.append(name)
                elif self.nested == "json":
                    import polars as pl

                    text = pl.Series(column.combine_chunks()).struct.json_encode()
                    columns.append(text.to_arrow())
                    names.append(name)
                else:
                    for k, field in enumerate(column.type):
                        columns.append(pc.struct_field(column, [k]))
                        names.append(f"{name}_{field.name}")
            table = pa.table(columns, names=names)
        return table

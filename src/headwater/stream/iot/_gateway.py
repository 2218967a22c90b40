"""The gateway: device payloads in, one schema out, bad payloads set aside with reasons.

Devices send JSON objects (``{"id", "device", "metric", "value", "unit", "ts"}``) or a compact
CSV line (``device,metric,value,unit,ts,id``). The gateway turns every payload into a reading
of :data:`READING_SCHEMA`: device, gateway, metric, value, unit, event time, ingest time and
message id, with values converted to one unit per metric (°F and K to °C, kPa and Pa to hPa).
A payload that cannot be read, lacks a field, or has an unknown unit is rejected with a reason.
All of it runs on whole batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from headwater.stream._decode import decode_json

#: What the gateway publishes, one record per reading.
READING_SCHEMA = pa.schema([
    ("device", pa.string()), ("gateway", pa.string()), ("metric", pa.string()),
    ("value", pa.float64()), ("unit", pa.string()), ("event_time", pa.int64()),
    ("ingest_time", pa.int64()), ("message_id", pa.string()),
])

#: unit → (metric, canonical unit, scale, offset): canonical = value * scale + offset.
UNITS: dict[str, tuple[str, str, float, float]] = {
    "C": ("temperature", "C", 1.0, 0.0),
    "F": ("temperature", "C", 5 / 9, -32 * 5 / 9),
    "K": ("temperature", "C", 1.0, -273.15),
    "%": ("humidity", "%", 1.0, 0.0),
    "hPa": ("pressure", "hPa", 1.0, 0.0),
    "kPa": ("pressure", "hPa", 10.0, 0.0),
    "Pa": ("pressure", "hPa", 0.01, 0.0),
}

_PAYLOAD_SCHEMA = pa.schema([
    ("id", pa.string()), ("device", pa.string()), ("metric", pa.string()),
    ("value", pa.float64()), ("unit", pa.string()), ("ts", pa.int64()),
])
_CSV_FIELDS = ("device", "metric", "value", "unit", "ts", "id")


@dataclass
class Normalised:
    """Readings made from one batch of payloads, and the payloads rejected (by index)."""

    readings: pl.DataFrame
    bad: list[int]
    reasons: list[str]
    #: For each reading, the index of the payload it came from.
    origin: pl.Series | None = None


def normalise(payloads: pa.Array | pa.ChunkedArray, *, received_ms: pa.Array | int,
              gateway: str | pa.Array = "gateway") -> Normalised:
    """Readings from device payloads (JSON objects or compact CSV lines).

    >>> out = normalise(pa.array([b'{"id": "a", "device": "d1", "metric": "temperature", '
    ...                           b'"value": 212, "unit": "F", "ts": 5}', b'd2,pressure,1,kPa,6,b',
    ...                           b'garbage']), received_ms=9)
    >>> out.readings.select("device", "value", "unit").rows(), out.bad
    ([('d1', 100.0, 'C'), ('d2', 10.0, 'hPa')], [2])
    """
    if isinstance(payloads, pa.ChunkedArray):
        payloads = payloads.combine_chunks()
    payloads = payloads.cast(pa.binary())
    n = len(payloads)
    received = pa.array([received_ms] * n, pa.int64()) if isinstance(received_ms, int) \
        else received_ms.cast(pa.int64())
    gateways = pa.array([gateway] * n, pa.string()) if isinstance(gateway, str) \
        else gateway.cast(pa.string())
    first = pl.Series(payloads).bin.starts_with(b"{") | pl.Series(payloads).bin.starts_with(
        b" {")
    csv = pc.invert(pc.fill_null(first.to_arrow(), False))
    json_rows = pc.indices_nonzero(pc.invert(csv))
    csv_rows = pc.indices_nonzero(csv)
    decoded = decode_json(payloads.take(json_rows), _PAYLOAD_SCHEMA,
                          required=("device", "metric", "value", "ts"))
    bad = {int(json_rows[i].as_py()): r for i, r in zip(decoded.bad, decoded.reasons,
                                                        strict=True)}
    parts = [pl.from_arrow(decoded.events).with_columns(
        _row=pl.Series(json_rows.to_numpy()).gather(
            pl.from_arrow(decoded.events.column("_hw_i")).cast(pl.Int64)))]
    if len(csv_rows):
        frame, rejected = _csv(payloads.take(csv_rows), csv_rows)
        parts.append(frame)
        bad.update(rejected)
    frames = [p for p in parts if isinstance(p, pl.DataFrame) and p.height]
    if not frames:
        return Normalised(pl.DataFrame(schema=dict(zip(READING_SCHEMA.names, [
            pl.String, pl.String, pl.String, pl.Float64, pl.String, pl.Int64, pl.Int64,
            pl.String], strict=True))), sorted(bad), [bad[i] for i in sorted(bad)])
    raw = pl.concat([f.select("id", "device", "metric", "value", "unit", "ts", "_row")
                     for f in frames]).sort("_row")
    readings, unit_bad = _units(raw)
    bad.update(unit_bad)
    arrival = pl.DataFrame({"_row": pl.int_range(n, eager=True, dtype=pl.Int64),
                            "gateway": pl.Series(gateways), "ingest_time": pl.Series(received)})
    readings = readings.with_columns(pl.col("_row").cast(pl.Int64)).join(
        arrival, on="_row", how="left", maintain_order="left").with_columns(
        message_id=pl.coalesce(pl.col("id"), pl.format("{}-{}", pl.col("device"),
                                                        pl.col("ts").cast(pl.String))))
    origin = readings["_row"]
    readings = readings.select(pl.col("device"), "gateway", "metric", "value", "unit",
                               event_time=pl.col("ts"), ingest_time=pl.col("ingest_time"),
                               message_id=pl.col("message_id"))
    order = sorted(bad)
    return Normalised(readings, order, [bad[i] for i in order], origin)


def _csv(lines: pa.Array, rows: pa.Array) -> tuple[pl.DataFrame, dict[int, str]]:
    """Compact CSV payloads: device,metric,value,unit,ts[,id]."""
    text = pl.Series(_text_or_null(lines)).str.strip_chars()
    fields = text.str.split(",")
    frame = pl.DataFrame({"_fields": fields, "_row": rows.to_numpy()}).with_columns(
        _n=pl.col("_fields").list.len().fill_null(0))
    shaped = pl.col("_n").is_between(5, 6)
    good = frame.filter(shaped).select(
        *[pl.col("_fields").list.get(i, null_on_oob=True).str.strip_chars().alias(name)
          for i, name in enumerate(_CSV_FIELDS)], "_row")
    typed = good.with_columns(value_num=pl.col("value").cast(pl.Float64, strict=False),
                              ts_num=pl.col("ts").cast(pl.Int64, strict=False))
    broken = typed.filter(pl.col("value_num").is_null() | pl.col("ts_num").is_null())
    rejected = {int(r): "compact payload: value or ts is not a number"
                for r in broken["_row"].to_list()}
    rejected |= {int(r): "payload is neither a JSON object nor device,metric,value,unit,ts"
                 for r in frame.filter(~shaped)["_row"].to_list()}
    ok = typed.filter(pl.col("value_num").is_not_null() & pl.col("ts_num").is_not_null())
    return ok.select(pl.col("id"), "device", "metric", value=pl.col("value_num"),
                     unit=pl.col("unit"), ts=pl.col("ts_num"), _row=pl.col("_row")), rejected


def _text_or_null(lines: pa.Array) -> pa.Array:
    """The payloads as text; those that are not UTF-8 become null (rejected as unreadable).
    Per payload only when the batch holds such bytes."""
    try:
        return pc.cast(lines, pa.string())
    except pa.ArrowInvalid:
        def text(value: bytes | None) -> str | None:
            try:
                return None if value is None else value.decode("utf-8")
            except UnicodeDecodeError:
                return None
        return pa.array([text(v) for v in lines.to_pylist()], pa.string())


def _units(raw: pl.DataFrame) -> tuple[pl.DataFrame, dict[int, str]]:
    """Values in each metric's canonical unit; unknown units and mismatches rejected."""
    table = pl.DataFrame([{"unit": u, "_metric": m, "_canonical": c, "_scale": s, "_shift": o}
                          for u, (m, c, s, o) in UNITS.items()])
    joined = raw.with_columns(pl.col("unit").fill_null("")).join(table, on="unit", how="left")
    known = pl.col("_metric").is_not_null() & (pl.col("_metric") == pl.col("metric"))
    wrong = joined.filter(~known)
    rejected = {int(r["_row"]): (f"unknown unit {r['unit']!r} for {r['metric']}"
                                 if r["_metric"] is None else
                                 f"unit {r['unit']!r} is not a unit of {r['metric']}")
                for r in wrong.select("_row", "unit", "metric", "_metric").iter_rows(named=True)}
    good = joined.filter(known).with_columns(
        value=pl.col("value") * pl.col("_scale") + pl.col("_shift"),
        unit=pl.col("_canonical")).drop("_metric", "_canonical", "_scale", "_shift")
    return good, rejected

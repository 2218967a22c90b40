"""Simulated sensors behind gateways, with faults on demand and the ground truth kept.

Signals are realistic enough to test detectors on: a daily cycle, noise, slow drift, per-device
calibration (offset and gain), a battery that decays, and units that differ by device (some
report °F or kPa, which the gateway converts). Faults are injected on chosen devices at chosen
times and written down in ``truth`` (device, metric, fault, start, end), so detectors can be
scored (:func:`headwater.stream.iot.score`).

Everything is generated with NumPy and Polars on whole arrays; payloads are encoded in one
vectorised pass. Only the publisher sends message by message, because MQTT does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import polars as pl

from headwater.core import ConfigError

#: Faults the simulator can inject, and what each does.
FAULTS: dict[str, str] = {
    "spike": "single readings far off the signal (±6 to 12 noise widths)",
    "dip": "single readings far below the signal",
    "stuck": "the sensor repeats one value for a while",
    "dropout": "readings lost for a while (the device keeps its clock)",
    "silent": "the device stops reporting until the end",
    "duplicate": "a message sent twice with the same id",
    "out_of_order": "messages sent in a shuffled order within a second",
    "late": "messages delivered 5 to 30 s after they were measured",
    "skew": "the device's clock runs 2 to 20 s off",
    "malformed": "payloads that are not valid JSON or lack fields",
}

#: Faults of one sensor (one metric of a device); the others hit every metric of a device.
SENSOR_FAULTS = frozenset({"spike", "dip", "stuck"})

#: Metric -> (base value, daily amplitude, noise, unit, alternative unit).
METRICS: dict[str, tuple[float, float, float, str, str]] = {
    "temperature": (21.0, 3.0, 0.15, "C", "F"),
    "humidity": (45.0, 8.0, 0.6, "%", "%"),
    "pressure": (1013.0, 2.0, 0.3, "hPa", "kPa"),
}


def to_alternative_unit(metric: str, values: np.ndarray) -> np.ndarray:
    """Values in the metric's alternative unit (°F, kPa), as some devices report them."""
    if metric == "temperature":
        return values * 9 / 5 + 32
    if metric == "pressure":
        return values / 10
    return values


@dataclass
class Simulation:
    """Messages in the order devices send them, and the faults that were injected."""

    #: device, gateway, metric, value, unit, event_time, send_time (ms), message_id, payload.
    messages: pl.DataFrame
    #: device, metric, fault, start, end (ms, event time; ``end`` inclusive).
    truth: pl.DataFrame
    settings: dict[str, object] = field(default_factory=dict)


def simulate(*, devices: int = 200, gateways: int = 10, seconds: float = 20.0,
             rate: float = 1.0, faults: tuple[str, ...] | list[str] = (),
             fault_share: float = 0.1, metrics: tuple[str, ...] = tuple(METRICS),
             start: datetime | None = None, seed: int = 0) -> Simulation:
    """Generate ``seconds`` of readings from ``devices`` sensors reporting ``rate`` times a
    second per metric, spread over ``gateways``, with ``faults`` injected on about
    ``fault_share`` of the devices each.

    >>> sim = simulate(devices=4, gateways=2, seconds=2, faults=["spike"], seed=1)
    >>> sim.messages.height, sorted(set(sim.messages["metric"]))
    (24, ['humidity', 'pressure', 'temperature'])
    """
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise ConfigError(f"unknown fault(s) {unknown}", hint=f"choose from {sorted(FAULTS)}")
    bad_metrics = sorted(set(metrics) - set(METRICS))
    if bad_metrics:
        raise ConfigError(f"unknown metric(s) {bad_metrics}", hint=f"choose from {list(METRICS)}")
    if devices < 1 or gateways < 1 or seconds <= 0 or rate <= 0:
        raise ConfigError("devices, gateways, seconds and rate must be positive")
    rng = np.random.default_rng(seed)
    t0 = int((start or datetime(2026, 1, 1, tzinfo=UTC)).timestamp() * 1000)
    step = 1000.0 / rate
    ticks = int(seconds * rate)
    frames, truths = [], []
    device_ids = np.array([f"dev-{i:04d}" for i in range(devices)])
    gateway_of = np.array([f"gw-{i % gateways:02d}" for i in range(devices)])
    phase = rng.uniform(0, step, devices)                       # devices are not in lockstep
    times = t0 + (np.arange(ticks)[None, :] * step + phase[:, None]).astype(np.int64)
    hours = (times - t0) / 3_600_000
    for metric in metrics:
        base, amplitude, noise, _, _ = METRICS[metric]
        offset = rng.normal(0, noise * 3, devices)[:, None]
        gain = rng.normal(1, 0.01, devices)[:, None]
        drift = np.cumsum(rng.normal(0, noise / 50, (devices, ticks)), axis=1)
        daily = amplitude * np.sin(2 * np.pi * (hours / 24 + rng.uniform(0, 1, devices)[:, None]))
        values = (base + daily + drift) * gain + offset + rng.normal(0, noise, (devices, ticks))
        frames.append(pl.DataFrame({
            "device": np.repeat(device_ids, ticks), "gateway": np.repeat(gateway_of, ticks),
            "metric": metric, "event_time": times.ravel(), "value": values.ravel(),
        }))
        for fault in faults:                        # a sensor's faults hit one metric
            if fault in SENSOR_FAULTS:
                hit = _fault_devices(rng, devices, fault_share)
                truths.append(_truth(fault, [metric], device_ids[hit], hit, times, rng))
    for fault in faults:                            # a device's faults hit all its metrics
        if fault not in SENSOR_FAULTS:
            hit = _fault_devices(rng, devices, fault_share)
            truths.append(_truth(fault, list(metrics), device_ids[hit], hit, times, rng))
    truth = pl.concat(truths) if truths else pl.DataFrame(schema=_TRUTH_SCHEMA)
    messages = pl.concat(frames).with_columns(send_time=pl.col("event_time"),
                                             true_time=pl.col("event_time"))
    messages = _apply_faults(messages, truth, rng)
    messages = _units(messages)
    messages = messages.sort("send_time", maintain_order=True).with_row_index("_n")
    messages = messages.with_columns(
        message_id=pl.format("{}-{}", pl.col("device"), pl.col("_n").cast(pl.String)))
    messages = _duplicates(messages, truth)
    messages = _payloads(messages, truth)
    return Simulation(messages.drop("_n"), truth, {
        "devices": devices, "gateways": gateways, "seconds": seconds, "rate": rate,
        "faults": list(faults), "seed": seed, "start_ms": t0})


_TRUTH_SCHEMA = {"device": pl.String, "metric": pl.String, "fault": pl.String,
                 "start": pl.Int64, "end": pl.Int64}


def _fault_devices(rng: np.random.Generator, devices: int, share: float) -> np.ndarray:
    count = max(1, round(devices * share))
    return np.sort(rng.choice(devices, size=min(count, devices), replace=False))


def _truth(fault: str, metrics: list[str], names: np.ndarray, rows: np.ndarray,
           times: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """When each chosen device has the fault: single readings, or an interval."""
    ticks = times.shape[1]
    warm = min(ticks - 1, max(1, ticks // 5))       # leave the detectors a history first
    at = rng.integers(warm, ticks, len(rows))
    if fault in ("spike", "dip", "duplicate", "malformed"):
        start = end = times[rows, at]
    else:
        length = np.maximum(1, (ticks * rng.uniform(0.05, 0.2, len(rows))).astype(int))
        if fault == "silent":
            length = ticks - at
        stop = np.minimum(at + length, ticks) - 1
        start, end = times[rows, at], times[rows, stop]
    return pl.concat([
        pl.DataFrame({"device": names, "metric": metric, "fault": fault,
                      "start": start.astype(np.int64), "end": end.astype(np.int64)},
                     schema=_TRUTH_SCHEMA) for metric in metrics])


def _during(truth: pl.DataFrame, messages: pl.DataFrame, fault: str) -> pl.Series:
    """For every message: is it inside an interval of ``fault`` on its device and metric?"""
    spans = truth.filter(pl.col("fault") == fault)
    if spans.is_empty():
        return pl.Series("hit", [False] * messages.height)
    hits = messages.with_row_index("_r").join(spans, on=["device", "metric"], how="inner") \
        .filter((pl.col("true_time") >= pl.col("start")) & (pl.col("true_time") <= pl.col("end")))
    return messages.with_row_index("_r").select(
        pl.col("_r").is_in(hits["_r"].implode())).to_series()


def _apply_faults(messages: pl.DataFrame, truth: pl.DataFrame,
                  rng: np.random.Generator) -> pl.DataFrame:
    n = messages.height
    noise = messages["metric"].replace_strict(
        {m: spec[2] for m, spec in METRICS.items()}, return_dtype=pl.Float64).to_numpy()
    value = messages["value"].to_numpy().copy()
    send = messages["send_time"].to_numpy().copy()
    event = messages["event_time"].to_numpy().copy()
    keep = np.ones(n, dtype=bool)
    for fault in ("spike", "dip"):
        hit = _during(truth, messages, fault).to_numpy()
        sign = 1 if fault == "spike" else -1
        value[hit] += sign * noise[hit] * rng.uniform(25, 50, hit.sum())
    stuck = _during(truth, messages, "stuck").to_numpy()
    if stuck.any():
        first = messages.with_columns(_stuck=pl.Series(stuck), _v=pl.Series(value)).with_columns(
            _held=pl.col("_v").filter(pl.col("_stuck")).first().over(
                ["device", "metric", pl.col("_stuck")]))
        value[stuck] = first["_held"].to_numpy()[stuck]
    for fault in ("dropout", "silent"):
        keep &= ~_during(truth, messages, fault).to_numpy()
    late = _during(truth, messages, "late").to_numpy()
    send[late] += rng.integers(5_000, 30_000, late.sum())
    shuffled = _during(truth, messages, "out_of_order").to_numpy()
    send[shuffled] += rng.integers(0, 1_000, shuffled.sum())
    skew = _during(truth, messages, "skew").to_numpy()
    if skew.any():
        offsets = messages.select(pl.col("device").hash(7)).to_series().to_numpy()[skew]
        sign = np.where(offsets % 2 == 1, 1, -1).astype(np.int64)
        event[skew] += ((offsets % 18_000).astype(np.int64) + 2_000) * sign
    return messages.with_columns(value=pl.Series(value), send_time=pl.Series(send),
                                 event_time=pl.Series(event)).filter(pl.Series(keep))


def _units(messages: pl.DataFrame) -> pl.DataFrame:
    """About one device in five reports temperature in °F and pressure in kPa."""
    alt = pl.col("device").str.slice(4).cast(pl.Int64) % 5 == 0
    out = []
    for metric, (_, _, _, unit, alt_unit) in METRICS.items():
        part = messages.filter(pl.col("metric") == metric)
        if part.is_empty():
            continue
        converted = pl.Series(to_alternative_unit(metric, part["value"].to_numpy()))
        part = part.with_columns(
            value=pl.when(alt).then(converted).otherwise(pl.col("value")),
            unit=pl.when(alt).then(pl.lit(alt_unit)).otherwise(pl.lit(unit)))
        out.append(part)
    return pl.concat(out)


def _duplicates(messages: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    dup = _during(truth, messages, "duplicate")
    copies = messages.filter(dup).with_columns(send_time=pl.col("send_time") + 1)
    return pl.concat([messages, copies]).sort("send_time", maintain_order=True)


def _payloads(messages: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """JSON payloads as devices send them; malformed ones where the fault says so."""
    payload = pl.struct(
        id=pl.col("message_id"), device=pl.col("device"), metric=pl.col("metric"),
        value=pl.col("value").round(4), unit=pl.col("unit"), ts=pl.col("event_time"),
    ).struct.json_encode()
    bad = _during(truth, messages, "malformed")
    garbage = pl.concat_str(pl.lit('{"id": "'), pl.col("message_id"),
                            pl.lit('", "device": '), pl.col("device"), pl.lit(", value=??"))
    return messages.with_columns(
        payload=pl.when(bad).then(garbage).otherwise(payload).cast(pl.Binary),
        malformed=bad)

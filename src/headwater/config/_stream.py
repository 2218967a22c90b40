"""Stream processors (``processors:`` in headwater.yaml): input, windows, detectors, alerts,
outputs. ``headwater stream run NAME`` runs one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from headwater.config._brokers import DEFAULT_BROKER
from headwater.core import check_duration


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StreamInputSpec(_Spec):
    """Where a processor reads: a topic of a broker, as a consumer group."""

    broker: str = Field(DEFAULT_BROKER, description="a name under `brokers:`")
    topic: str = Field(description="the topic to read, e.g. readings")
    group: str | None = Field(None, description="consumer group (default: the processor's name)")
    format: Literal["json"] = Field("json", description="payload format of each record")
    start: Literal["earliest", "latest"] = Field(
        "earliest", description="where a new group starts; later runs resume after the "
        "committed positions")


class WindowSpec(_Spec):
    """One windowed aggregation: count, mean, min, max, stddev and p95 per series."""

    name: str = Field(description="names the output table <outputs.windows>_<name>")
    kind: Literal["tumbling", "hopping", "session"] = "tumbling"
    size: str | None = Field(None, description="tumbling and hopping: window length, e.g. 1m")
    hop: str | None = Field(None, description="hopping: how often a window starts, e.g. 15s")
    gap: str | None = Field(None, description="session: inactivity that closes a session")

    _durations = field_validator("size", "hop", "gap")(check_duration)


class DetectorSpec(_Spec):
    """One anomaly detector, applied to every series; settings as its kind takes them."""

    kind: Literal["threshold", "zscore", "mad", "ewma", "jump", "rate", "stuck", "silent"]
    name: str | None = Field(None, description="a name for alerts (default: the kind)")
    metrics: list[str] | None = Field(None, description="only these metrics (default: all)")
    severity: Literal["info", "warning", "critical"] = Field(
        "warning", description="severity of the alerts it raises")
    low: float | None = Field(None, description="threshold: lower limit")
    high: float | None = Field(None, description="threshold: upper limit")
    window: int | None = Field(None, gt=1, description="zscore, mad, stuck: readings looked at")
    threshold: float | None = Field(None, gt=0, description="zscore, mad, ewma: how far is far")
    min_periods: int | None = Field(None, ge=1, description="readings needed before judging")
    alpha: float | None = Field(None, gt=0, le=1, description="ewma: weight of the newest value")
    delta: float | None = Field(None, gt=0, description="jump: the change that counts")
    direction: Literal["up", "down", "both"] | None = None
    max_per_second: float | None = Field(None, gt=0, description="rate: fastest normal change")
    tolerance: float | None = Field(None, ge=0, description="stuck: spread still called flat")
    after: str | None = Field(None, description="silent: no data for this long, e.g. 1m")
    clock: Literal["event", "ingest"] = Field(
        "event", description="silent: judge silence by event time (the watermark) or by when "
        "the gateway received the readings (ingest_time; a device with a wrong clock is not "
        "taken for silent)")

    _durations = field_validator("after")(check_duration)


class AlertPolicySpec(_Spec):
    """How anomalies become alerts."""

    resolve_after: str = Field("1m", description="an alert resolves after this long without "
                               "an anomaly of its detector on its series (event time)")
    suppress: str = Field("0s", description="after resolving, no new alert on the same series "
                          "and detector for this long")

    _durations = field_validator("resolve_after", "suppress")(check_duration)


class StreamOutputsSpec(_Spec):
    """Tables the processor writes, in one store, with its checkpoint, in one transaction."""

    store: str = Field("warehouse", description="a name under `stores:` (warehouse or a lake)")
    readings: str | None = Field("{name}_readings", description="raw history; null: not kept")
    windows: str = Field("{name}_windows", description="prefix: one table per window")
    anomalies: str = Field("{name}_anomalies")
    alerts: str = Field("{name}_alerts")
    late: str = Field("{name}_late", description="late events, with late: table")


class ProcessorSpec(_Spec):
    """A stream processor: read, de-duplicate, window, detect, alert, write; exactly once."""

    input: StreamInputSpec
    contract: str | None = Field(None, description="a contract file the events must pass; "
                                 "failures go to the quarantine with their broker position")
    keys: list[str] = Field(default_factory=lambda: ["device", "metric"],
                            description="columns that name a series")
    time: str = Field("event_time", description="event time column (ms or a timestamp)")
    value: str = Field("value", description="the measured value")
    id: str | None = Field("message_id", description="message id for de-duplication")
    dedupe: str | None = Field("10m", description="horizon of de-duplication; null: none")
    watermark_delay: str = Field("2s", description="bounded out-of-orderness")
    late: Literal["drop", "table", "update"] = "drop"
    allowed_lateness: str = Field("0s", description="with late: update")
    windows: list[WindowSpec] = Field(default_factory=list)
    detectors: list[DetectorSpec] = Field(default_factory=list)
    alerts: AlertPolicySpec = Field(default_factory=AlertPolicySpec)
    outputs: StreamOutputsSpec = Field(default_factory=StreamOutputsSpec)
    max_records: int = Field(50_000, gt=0, description="records per micro-batch at most")
    max_latency: str = Field("200ms", description="a micro-batch waits at most this long")

    _durations = field_validator("dedupe", "watermark_delay", "allowed_lateness",
                                 "max_latency")(check_duration)


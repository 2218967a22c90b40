"""Alert rules, sinks and routes (``alerts:`` in headwater.yaml).

A rule watches a metric or the runs; while its condition holds for ``for`` it fires, and routes
send it (grouped, de-duplicated, silenced or inhibited as declared) to sinks.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from headwater.core import duration_ms

Severity = Literal["info", "warning", "critical"]
#: Severities in rising order: inhibition and `min_severity` compare by this order.
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_duration(value: str | None) -> str | None:
    if value is not None:
        duration_ms(value)
    return value


class _Rule(_Spec):
    for_: str = Field("0s", alias="for", description="how long the condition must hold before "
                      "the alert fires, e.g. 5m")
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="added to the alert; routes match on them")
    summary: str | None = Field(None, description="one sentence for people; {labels} and "
                                "{value} are filled in")

    _durations = field_validator("for_")(_check_duration)


class _MetricRule(_Rule):
    metric: str = Field(description="a Prometheus metric name, e.g. headwater_rows_total")
    match: dict[str, str] = Field(default_factory=dict,
                                  description="only samples with these label values")


class _Bounds(_Spec):
    above: float | None = Field(None, description="fires when the value is above this")
    below: float | None = Field(None, description="fires when the value is below this")

    @model_validator(mode="after")
    def _one_bound(self) -> _Bounds:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` or `below`")
        return self


class ThresholdRule(_MetricRule, _Bounds):
    """A metric above or below a value."""

    kind: Literal["threshold"]


class RateRule(_MetricRule, _Bounds):
    """A metric's change per second over ``window`` above or below a value (counters: the rate;
    a rows counter `below: 1` means fewer than one row a second)."""

    kind: Literal["rate"]
    window: str = Field("5m", description="how far back to compare, e.g. 5m")

    _windows = field_validator("window")(_check_duration)


class AbsentRule(_MetricRule):
    """No sample of a metric (with the labels in ``match``) at all."""

    kind: Literal["absent"]


class StaleRule(_Rule):
    """Nothing new for too long: a pipeline's last successful run, or a timestamp metric."""

    kind: Literal["stale"]
    max_age: str = Field(description="e.g. 2h: fires when the last success is older")
    pipeline: str | None = Field(None, description="a pipeline (or a glob such as 'orders*')")
    metric: str | None = Field(None, description="a metric whose value is a Unix time")
    match: dict[str, str] = Field(default_factory=dict)

    _ages = field_validator("max_age")(_check_duration)

    @model_validator(mode="after")
    def _what(self) -> StaleRule:
        if (self.pipeline is None) == (self.metric is None):
            raise ValueError("give exactly one of `pipeline` or `metric`")
        return self


class QualityRule(_Rule):
    """A table's pass rate (share of rows passing a rule, or every rule) below a level."""

    kind: Literal["quality"]
    table: str | None = Field(None, description="a table (default: every table)")
    rule: str | None = Field(None, description="a contract rule (default: all rules together)")
    below: float = Field(ge=0, le=1, description="e.g. 0.99: fires under 99 % passing")


class LatencyRule(_Rule):
    """A latency histogram's percentile above a level."""

    kind: Literal["latency"]
    metric: str = Field("headwater_ingest_latency_seconds",
                        description="a histogram, e.g. headwater_stream_event_latency_seconds")
    match: dict[str, str] = Field(default_factory=dict)
    quantile: float = Field(0.95, gt=0, lt=1, description="e.g. 0.95 for the 95th percentile")
    above: float = Field(description="seconds")


class RunFailedRule(_Rule):
    """A pipeline's (or any run kind's) latest run failed; resolves when one succeeds."""

    kind: Literal["run_failed"]
    pipeline: str = Field("*", description="a pipeline or a glob (default: every pipeline)")
    run_kind: str | None = Field(None, description="only runs of this kind: ingest, stream, "
                                 "train, ...")


class LagRule(_Rule):
    """A stream consumer's lag (records behind the end of its topic) above a level."""

    kind: Literal["lag"]
    processor: str | None = Field(None, description="a stream processor (default: every one)")
    above: float = Field(description="records")


RuleSpec = Annotated[
    ThresholdRule | RateRule | AbsentRule | StaleRule | QualityRule | LatencyRule
    | RunFailedRule | LagRule,
    Field(discriminator="kind"),
]


class LogSink(_Spec):
    """Alerts as warning (firing) and info (resolved) lines in the log."""

    kind: Literal["log"]


class WebhookSink(_Spec):
    """An HTTP POST: generic JSON, or a Slack- or Microsoft Teams-compatible message."""

    kind: Literal["webhook"]
    url: SecretStr = Field(description="e.g. ${SLACK_WEBHOOK_URL}: from the environment")
    format: Literal["json", "slack", "teams"] = "json"
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: float = Field(5.0, gt=0, description="seconds per attempt")


class EmailSink(_Spec):
    """Mail over SMTP (STARTTLS or TLS when asked)."""

    kind: Literal["email"]
    host: str = "localhost"
    port: int = 25
    sender: str = Field(alias="from", description="the From address")
    to: list[str] = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = Field(None, description="e.g. ${SMTP_PASSWORD}")
    security: Literal["none", "starttls", "tls"] = "none"
    timeout: float = Field(10.0, gt=0)


class PagerDutySink(_Spec):
    """PagerDuty Events API v2: trigger on firing, resolve on resolved (same dedup key)."""

    kind: Literal["pagerduty"]
    routing_key: SecretStr = Field(description="the integration key, e.g. ${PAGERDUTY_KEY}")
    url: str = "https://events.pagerduty.com/v2/enqueue"
    timeout: float = Field(5.0, gt=0)


SinkSpec = Annotated[LogSink | WebhookSink | EmailSink | PagerDutySink,
                     Field(discriminator="kind")]


class RouteSpec(_Spec):
    """Alerts whose labels match go to ``sinks``; the first matching route wins unless it says
    ``continue: true``. Labels include ``rule``, ``severity`` and those the rule and metric
    carry."""

    match: dict[str, str] = Field(default_factory=dict, description="label values (globs)")
    sinks: list[str] = Field(min_length=1)
    group_by: list[str] = Field(default_factory=lambda: ["rule"],
                                description="alerts with the same values arrive as one message")
    continue_: bool = Field(False, alias="continue")


class InhibitSpec(_Spec):
    """While an alert matching ``source`` fires, alerts matching ``target`` with the same
    values of ``equal`` are not sent."""

    source: dict[str, str]
    target: dict[str, str]
    equal: list[str] = Field(default_factory=list)


class AlertsSpec(_Spec):
    """The ``alerts:`` section: rules, sinks, routes, inhibitions."""

    rules: dict[str, RuleSpec] = Field(default_factory=dict)
    sinks: dict[str, SinkSpec] = Field(
        default_factory=lambda: {"log": LogSink(kind="log")},
        description="named sinks; `log` always exists")
    routes: list[RouteSpec] = Field(
        default_factory=list, description="default: everything to every sink")
    inhibit: list[InhibitSpec] = Field(default_factory=list)
    evaluate_every: str = Field("15s", description="how often long-running processes and "
                                "`headwater alerts watch` evaluate the rules")
    repeat_after: str = Field("4h", description="a firing alert is sent again after this")
    stream: bool = Field(True, description="send the stream processors' alerts (detectors) "
                         "to the sinks too, routed like the rules' alerts")
    history: str = Field("7d", description="how long metric samples are kept for rates and "
                         "the dashboard")

    _durations = field_validator("evaluate_every", "repeat_after", "history")(_check_duration)

    @model_validator(mode="after")
    def _sinks_named(self) -> AlertsSpec:
        self.sinks.setdefault("log", LogSink(kind="log"))
        for i, route in enumerate(self.routes):
            for sink in route.sinks:
                if sink not in self.sinks:
                    raise ValueError(
                        f"routes[{i}].sinks: '{sink}' is not a sink "
                        f"(sinks: {', '.join(sorted(self.sinks))}); add it under `alerts.sinks`")
        return self

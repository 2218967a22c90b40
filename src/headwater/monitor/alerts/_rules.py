"""What each kind of rule sees: the series for which its condition holds right now."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from headwater.monitor.alerts._samples import Labels, Sample, labels_of, quantiles, select

#: For a rate rule: each series' newest sample at or before a time, with that sample's time.
HistoryFn = Callable[[str, float], list[tuple[float, Sample]]]


@dataclass
class Observation:
    """What the rules are judged on at ``now``.

    ``samples``: metric samples (this process's registry and the metrics textfiles);
    ``runs``: recent run records, newest first (dicts with ``kind``, ``pipeline``, ``status``,
    ``ended_at``, ``error``); ``pipelines``: the pipelines the project declares;
    ``history``: past samples, for rate rules.
    """

    now: float
    samples: list[Sample] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[str] = field(default_factory=list)
    history: HistoryFn | None = None


@dataclass(frozen=True)
class Hit:
    """One series for which a rule's condition holds."""

    labels: Labels
    value: float | None
    detail: str = ""


def duration_s(text: str) -> float:
    """``'5m'`` in seconds."""
    from headwater.core import duration_ms

    return duration_ms(text) / 1000


def hits(rule: Any, obs: Observation) -> list[Hit]:
    """The series for which ``rule`` (a spec from headwater.yaml's ``alerts.rules``) holds."""
    return _KINDS[rule.kind](rule, obs)


def _beyond(rule: Any, value: float) -> bool:
    return (rule.above is not None and value > rule.above) or (
        rule.below is not None and value < rule.below)


def _threshold(rule: Any, obs: Observation) -> list[Hit]:
    return [Hit(s.labels, s.value) for s in select(obs.samples, rule.metric, rule.match)
            if _beyond(rule, s.value)]


def _rate(rule: Any, obs: Observation) -> list[Hit]:
    if obs.history is None:
        return []
    window = duration_s(rule.window)
    before = {s.labels: (at, s.value) for at, s in obs.history(rule.metric, obs.now - window)}
    out = []
    for s in select(obs.samples, rule.metric, rule.match):
        if s.labels not in before:
            continue  # not known for a whole window yet
        at, old = before[s.labels]
        elapsed = obs.now - at
        if elapsed <= 0:
            continue
        change = s.value - old if s.value >= old or not s.name.endswith("_total") else s.value
        rate = change / elapsed
        if _beyond(rule, rate):
            out.append(Hit(s.labels, rate, f"{rate:.3g}/s over {rule.window}"))
    return out


def _absent(rule: Any, obs: Observation) -> list[Hit]:
    if select(obs.samples, rule.metric, rule.match):
        return []
    return [Hit(labels_of({k: v for k, v in rule.match.items() if "*" not in v}), None,
                f"no {rule.metric} reported")]


def _stale(rule: Any, obs: Observation) -> list[Hit]:
    limit = duration_s(rule.max_age)
    if rule.metric is not None:
        return [Hit(s.labels, obs.now - s.value, f"last at {_ago(obs.now - s.value)}")
                for s in select(obs.samples, rule.metric, rule.match)
                if obs.now - s.value > limit]
    names = {p for p in obs.pipelines if fnmatchcase(p, rule.pipeline)}
    names |= {r["pipeline"] for r in obs.runs if fnmatchcase(r["pipeline"], rule.pipeline)}
    out = []
    for name in sorted(names):
        ok = [r for r in obs.runs if r["pipeline"] == name and r["status"] == "succeeded"]
        last = _unix(ok[0].get("ended_at") or ok[0]["started_at"]) if ok else None
        age = None if last is None else obs.now - last
        if age is None or age > limit:
            detail = "never succeeded" if age is None else f"last success {_ago(age)}"
            out.append(Hit(labels_of({"pipeline": name}), age, detail))
    return out


def _quality(rule: Any, obs: Observation) -> list[Hit]:
    wanted = {"rule": rule.rule or "*", **({"table": rule.table} if rule.table else {})}
    return [Hit(s.labels, s.value, f"{s.value:.2%} of rows pass")
            for s in select(obs.samples, "headwater_quality_pass_rate", wanted)
            if s.value < rule.below]


def _latency(rule: Any, obs: Observation) -> list[Hit]:
    found = quantiles(obs.samples, rule.metric, rule.quantile, rule.match)
    return [Hit(labels, value, f"p{rule.quantile * 100:g} {value:.3g} s")
            for labels, value in found.items() if value > rule.above]


def _run_failed(rule: Any, obs: Observation) -> list[Hit]:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in obs.runs:  # newest first: the first seen is the latest
        if not fnmatchcase(r["pipeline"], rule.pipeline):
            continue
        if rule.run_kind and r["kind"] != rule.run_kind:
            continue
        latest.setdefault((r["kind"], r["pipeline"]), r)
    return [Hit(labels_of({"pipeline": p, "kind": k}), 1.0,
                f"run {r['id']} failed: {(r.get('error') or '').splitlines()[0][:200]}")
            for (k, p), r in sorted(latest.items()) if r["status"] == "failed"]


def _lag(rule: Any, obs: Observation) -> list[Hit]:
    wanted = {"processor": rule.processor} if rule.processor else {}
    return [Hit(s.labels, s.value, f"{s.value:,.0f} records behind")
            for s in select(obs.samples, "headwater_stream_lag_records", wanted)
            if s.value > rule.above]


_KINDS: dict[str, Callable[[Any, Observation], list[Hit]]] = {
    "threshold": _threshold, "rate": _rate, "absent": _absent, "stale": _stale,
    "quality": _quality, "latency": _latency, "run_failed": _run_failed, "lag": _lag,
}


def _unix(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        return datetime.fromisoformat(value).timestamp()
    return float(value)


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{seconds:.0f}s ago"

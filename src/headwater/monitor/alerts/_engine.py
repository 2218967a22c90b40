"""Evaluation: rules → pending → firing → resolved; silences, inhibition, routes and groups.

An alert is one rule on one label set (its ``fingerprint``). It is pending while its condition
holds for less than the rule's ``for``, then firing; it resolves when the condition no longer
holds. A firing alert is sent once (again after ``repeat_after``), its resolution once; a
silenced or inhibited alert is not sent, and is sent when the silence ends while it still fires.
Notifications go to the outbox (the database); a delivery thread sends them, so a slow or dead
sink never holds up whoever evaluated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from headwater.monitor._logging import get_logger
from headwater.monitor._metrics import ALERTS_FIRING
from headwater.monitor.alerts._rules import Hit, Observation, duration_s, hits
from headwater.monitor.alerts._samples import matches
from headwater.monitor.alerts._store import AlertStore, Silence

log = get_logger(__name__)

_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass
class Evaluation:
    """What one evaluation changed."""

    firing: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    #: notifications put in the outbox, one per (sink, group)
    notifications: int = 0


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    """A stable id of one rule on one label set."""
    text = json.dumps([rule, sorted(labels.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def evaluate(spec: Any, store: AlertStore, obs: Observation, *, project: str = "headwater"
             ) -> Evaluation:
    """Judge every rule of ``spec`` (headwater.yaml's ``alerts:``) on ``obs`` and record what
    changed; notifications due go to the outbox. Returns what fires, waits and resolved."""
    now = obs.now
    before = store.open_alerts(origin="rule")
    seen: dict[str, dict[str, Any]] = {}
    for name, rule in spec.rules.items():
        for hit in hits(rule, obs):
            alert = _alert(name, rule, hit, now, before)
            seen[alert["fingerprint"]] = alert
    result = Evaluation()
    events, deleted = [], []
    for fp, alert in seen.items():
        if alert["status"] == "pending" and now - alert["pending_since"] >= alert["_for"]:
            alert["status"], alert["fired_at"] = "firing", now
            events.append(_event(alert, "firing", now))
        (result.firing if alert["status"] == "firing" else result.pending).append(alert)
        before.pop(fp, None)
    for fp, old in before.items():  # the condition no longer holds
        if old["status"] == "pending":
            deleted.append(fp)
            continue
        old.update(status="resolved", resolved_at=now, evaluated_at=now)
        events.append(_event(old, "resolved", now))
        result.resolved.append(old)
    firing_now = result.firing + list(store.open_alerts(origin="stream").values())
    result.notifications = _notify(spec, store, result.firing, result.resolved, firing_now,
                                   now, project)
    store.save_alerts([*(_row(a) for a in seen.values()), *result.resolved], events, deleted)
    _gauge(firing_now)
    return result


def record_alerts(spec: Any, store: AlertStore, changes: Iterable[dict[str, Any]], *,
                  now: float, project: str = "headwater") -> int:
    """Take alerts raised elsewhere (the stream processor's detectors) into the same state,
    history, silences, routes and sinks. Each change has ``id``, ``rule``, ``status``
    (``firing`` or ``resolved``), ``severity``, ``labels``, optionally ``value`` and
    ``summary``. Returns the notifications queued."""
    before = store.open_alerts(origin="stream")
    firing, resolved, events = [], [], []
    for change in changes:
        fp = str(change["id"])
        old = before.get(fp)
        labels = {**{k: str(v) for k, v in change.get("labels", {}).items()},
                  "rule": change["rule"], "severity": change["severity"]}
        alert = {**(old or {}), "fingerprint": fp, "rule": change["rule"], "origin": "stream",
                 "severity": change["severity"], "labels": labels, "value": change.get("value"),
                 "summary": change.get("summary") or _default_summary(change["rule"], labels),
                 "evaluated_at": now}
        if change["status"] == "firing":
            if old is None:
                alert.update(status="firing", pending_since=now, fired_at=now)
                events.append(_event(alert, "firing", now))
            firing.append(alert)
            before[fp] = alert
        elif old is not None:
            alert.update(status="resolved", resolved_at=now)
            events.append(_event(alert, "resolved", now))
            resolved.append(alert)
            before.pop(fp)
    firing_now = list(before.values()) + list(store.open_alerts(origin="rule").values())
    queued = _notify(spec, store, firing, resolved, firing_now, now, project)
    store.save_alerts([*firing, *resolved], events)
    return queued


def _alert(name: str, rule: Any, hit: Hit, now: float, before: dict[str, dict[str, Any]]
           ) -> dict[str, Any]:
    labels = {**dict(hit.labels), **rule.labels, "rule": name, "severity": rule.severity}
    fp = fingerprint(name, labels)
    old = before.get(fp)
    summary = _summary(rule, name, labels, hit)
    alert = {**(old or {}), "fingerprint": fp, "rule": name, "origin": "rule",
             "severity": rule.severity, "labels": labels, "value": hit.value, "summary": summary,
             "evaluated_at": now, "_for": duration_s(rule.for_)}
    if old is None:
        alert.update(status="pending", pending_since=now, fired_at=None, resolved_at=None,
                     notified_at=None)
    return alert


def _summary(rule: Any, name: str, labels: dict[str, str], hit: Hit) -> str:
    if rule.summary:
        try:
            return rule.summary.format(value=hit.value, labels=labels, **labels)
        except (KeyError, IndexError, ValueError):
            return rule.summary
    text = _default_summary(name, labels)
    return f"{text}: {hit.detail}" if hit.detail else (
        f"{text}: value {hit.value:.4g}" if hit.value is not None else text)


def _default_summary(name: str, labels: dict[str, str]) -> str:
    where = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())
                      if k not in ("rule", "severity"))
    return f"{name}" + (f" ({where})" if where else "")


def _event(alert: dict[str, Any], status: str, now: float) -> dict[str, Any]:
    return {"at": now, "fingerprint": alert["fingerprint"], "rule": alert["rule"],
            "status": status, "severity": alert["severity"], "labels": alert["labels"],
            "value": alert.get("value"), "summary": alert.get("summary")}


def _row(alert: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in alert.items() if not k.startswith("_")}


def _inhibited(alert: dict[str, Any], firing: list[dict[str, Any]], rules: list[Any]) -> bool:
    labels = alert["labels"]
    for rule in rules:
        if not matches(labels, rule.target):
            continue
        for other in firing:
            if other["fingerprint"] == alert["fingerprint"]:
                continue
            if matches(other["labels"], rule.source) and all(
                    other["labels"].get(k) == labels.get(k) for k in rule.equal):
                return True
    return False


def _notify(spec: Any, store: AlertStore, firing: list[dict[str, Any]],
            resolved: list[dict[str, Any]], firing_now: list[dict[str, Any]], now: float,
            project: str) -> int:
    """Mark silenced and inhibited alerts; put what is due into the outbox, routed and
    grouped. Returns the number of notifications queued."""
    silences = store.silences(now)
    repeat = duration_s(spec.repeat_after)
    due: list[tuple[dict[str, Any], str]] = []
    for alert in firing:
        silence = _silenced(alert["labels"], silences, now)
        alert["silenced_by"] = silence.id if silence else None
        alert["inhibited"] = _inhibited(alert, firing_now, spec.inhibit)
        if alert["status"] != "firing" or silence or alert["inhibited"]:
            continue
        last = alert.get("notified_at")
        if last is None or now - last >= repeat:
            alert["notified_at"] = now
            due.append((alert, "firing"))
    for alert in resolved:
        if alert.get("notified_at") is not None and not _silenced(alert["labels"], silences, now):
            due.append((alert, "resolved"))
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for alert, status in due:
        for sink, group_by in _routes(spec, alert["labels"]):
            key = {k: alert["labels"].get(k, "") for k in group_by}
            groups.setdefault((sink, status, json.dumps(key, sort_keys=True)), []).append(alert)
    for (sink, status, key), alerts in groups.items():
        store.enqueue(sink, notification(project, status, json.loads(key), alerts), now)
        log.info("alert_queued", sink=sink, status=status, alerts=len(alerts),
                 rules=sorted({a["rule"] for a in alerts}))
    return len(groups)


def notification(project: str, status: str, group: dict[str, str],
                 alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The message every sink formats: status, the group's labels, its alerts."""
    return {
        "project": project, "status": status, "group": group,
        "alerts": [{"fingerprint": a["fingerprint"], "rule": a["rule"], "status": status,
                    "severity": a["severity"], "labels": a["labels"], "value": a.get("value"),
                    "summary": a.get("summary"), "starts_at": a.get("fired_at"),
                    "ends_at": a.get("resolved_at") if status == "resolved" else None}
                   for a in alerts],
    }


def _silenced(labels: dict[str, str], silences: list[Silence], now: float) -> Silence | None:
    return next((s for s in silences if s.covers(labels, now)), None)


def _routes(spec: Any, labels: dict[str, str]) -> list[tuple[str, list[str]]]:
    """The (sink, group_by) pairs an alert with these labels goes to."""
    if not spec.routes:
        return [(sink, ["rule"]) for sink in spec.sinks]
    out: list[tuple[str, list[str]]] = []
    for route in spec.routes:
        if all(fnmatchcase(labels.get(k, ""), v) for k, v in route.match.items()):
            out.extend((sink, route.group_by) for sink in route.sinks
                       if sink not in {s for s, _ in out})
            if not route.continue_:
                break
    return out


def _gauge(firing: list[dict[str, Any]]) -> None:
    counts: dict[tuple[str, str], int] = {}
    for alert in firing:
        key = (alert["rule"], alert["severity"])
        counts[key] = counts.get(key, 0) + 1
    ALERTS_FIRING.clear()
    for (rule, severity), n in counts.items():
        ALERTS_FIRING.labels(rule, severity).set(n)


def by_severity(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most severe first, then newest."""
    return sorted(alerts, key=lambda a: (-_RANK.get(a["severity"], 0), -(a.get("fired_at") or 0)))

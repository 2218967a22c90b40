"""Sinks: where notifications go — the log, a webhook (JSON, Slack, Teams), email, PagerDuty.

Each sink turns the notification (``status``, ``group``, ``alerts``) into its wire format and
sends it; a failure raises :class:`DeliveryError`, which the delivery thread retries with backoff.
Secrets (URLs with tokens, passwords, routing keys) come from the sink's settings, which read
them from the environment; they are never stored with the notification.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from headwater.core import HeadwaterError, redact
from headwater.monitor._logging import get_logger

log = get_logger("headwater.alerts")

_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4", "resolved": "#2ca02c"}


class DeliveryError(HeadwaterError):
    """A sink did not accept a notification (it is retried with backoff)."""


def title(note: dict[str, Any]) -> str:
    """``[FIRING:2] orders_failed (pipeline=orders)`` — one line for subjects and headers."""
    alerts = note["alerts"]
    rules = sorted({a["rule"] for a in alerts})
    group = ", ".join(f"{k}={v}" for k, v in sorted(note["group"].items()) if k != "rule" and v)
    return (f"[{note['status'].upper()}:{len(alerts)}] {', '.join(rules)}"
            + (f" ({group})" if group else ""))


def _lines(note: dict[str, Any]) -> list[str]:
    return [f"{a['severity']}: {a.get('summary') or a['rule']}" for a in note["alerts"]]


def _colour(note: dict[str, Any]) -> str:
    if note["status"] == "resolved":
        return _COLOURS["resolved"]
    worst = max((a["severity"] for a in note["alerts"]),
                key=lambda s: ("info", "warning", "critical").index(s))
    return _COLOURS.get(worst, _COLOURS["warning"])


def slack_payload(note: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (``text`` plus a coloured attachment)."""
    return {"text": title(note),
            "attachments": [{"color": _colour(note), "title": title(note),
                             "text": "\n".join(_lines(note)),
                             "footer": f"headwater · {note['project']}"}]}


def teams_payload(note: dict[str, Any]) -> dict[str, Any]:
    """A Microsoft Teams incoming-webhook message (MessageCard)."""
    return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
            "themeColor": _colour(note).lstrip("#"), "summary": title(note),
            "title": title(note),
            "sections": [{"activityTitle": a.get("summary") or a["rule"],
                          "facts": [{"name": k, "value": v}
                                    for k, v in sorted(a["labels"].items())]}
                         for a in note["alerts"]]}


def pagerduty_events(note: dict[str, Any], routing_key: str) -> list[dict[str, Any]]:
    """One Events API v2 event per alert: trigger or resolve, de-duplicated on the alert."""
    severity = {"critical": "critical", "warning": "warning", "info": "info"}
    events = []
    for a in note["alerts"]:
        event: dict[str, Any] = {
            "routing_key": routing_key,
            "event_action": "resolve" if note["status"] == "resolved" else "trigger",
            "dedup_key": a["fingerprint"],
        }
        if note["status"] != "resolved":
            event["payload"] = {"summary": (a.get("summary") or a["rule"])[:1024],
                                "source": f"headwater/{note['project']}",
                                "severity": severity.get(a["severity"], "warning"),
                                "component": a["labels"].get("pipeline")
                                or a["labels"].get("processor") or a["rule"],
                                "custom_details": a["labels"]}
        events.append(event)
    return events


def send(name: str, spec: Any, note: dict[str, Any]) -> None:
    """Deliver ``note`` through the sink ``spec`` (called ``name``); raise DeliveryError."""
    kind = spec.kind
    if kind == "log":
        for a in note["alerts"]:  # to the log file: the terminal is for headwater's problems
            log.info(f"alert_{note['status']}", rule=a["rule"], severity=a["severity"],
                  summary=a.get("summary"), labels=a["labels"], sink=name)
    elif kind == "webhook":
        body = {"json": note, "slack": slack_payload, "teams": teams_payload}[spec.format]
        _post(name, spec.url.get_secret_value(), body if isinstance(body, dict) else body(note),
              {k: v.get_secret_value() for k, v in spec.headers.items()}, spec.timeout)
    elif kind == "pagerduty":
        for event in pagerduty_events(note, spec.routing_key.get_secret_value()):
            _post(name, spec.url, event, {}, spec.timeout)
    elif kind == "email":
        _mail(name, spec, note)
    else:  # a new kind in config without a sender here is a bug
        raise DeliveryError(f"sink {name}: kind {kind!r} has no sender")


def _post(name: str, url: str, body: dict[str, Any], headers: dict[str, str],
          timeout: float) -> None:
    import httpx

    try:
        response = httpx.post(url, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"sink {name}: {type(exc).__name__}: {redact(str(exc))}") from None
    if response.status_code >= 300:
        raise DeliveryError(f"sink {name}: HTTP {response.status_code}: "
                            f"{redact(response.text[:200])}")


def _mail(name: str, spec: Any, note: dict[str, Any]) -> None:
    message = EmailMessage()
    message["Subject"] = f"headwater {note['project']}: {title(note)}"
    message["From"] = spec.sender
    message["To"] = ", ".join(spec.to)
    details = [f"\n{a['rule']} ({a['severity']}, {a['status']})\n"
               + "".join(f"  {k}: {v}\n" for k, v in sorted(a["labels"].items()))
               for a in note["alerts"]]
    message.set_content("\n".join(_lines(note)) + "\n" + "".join(details))
    try:
        smtp_class = smtplib.SMTP_SSL if spec.security == "tls" else smtplib.SMTP
        with smtp_class(spec.host, spec.port, timeout=spec.timeout) as smtp:
            if spec.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if spec.username and spec.password:
                smtp.login(spec.username, spec.password.get_secret_value())
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"sink {name}: SMTP {spec.host}:{spec.port}: "
                            f"{type(exc).__name__}: {redact(str(exc))}") from None

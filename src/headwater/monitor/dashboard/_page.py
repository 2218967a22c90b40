"""The dashboard page as HTML, rendered on the server from a :class:`Snapshot`.

:func:`page` is the whole document; :func:`content` is what the page's script fetches on every
refresh and swaps in (the same HTML, so the page also works with scripts off, refreshed by a
``<meta>`` tag).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

from headwater.monitor.dashboard._charts import bars, line_chart, number, percent, run_strip
from headwater.monitor.dashboard._data import Snapshot, alert_rate


def ago(seconds: float | None) -> str:
    """How long ago, in words a person reads at a glance.

    >>> ago(42), ago(600), ago(7300), ago(200000), ago(None)
    ('42 s ago', '10 min ago', '2.0 h ago', '2.3 d ago', 'never')
    """
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{max(0, seconds):.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"


def seconds(value: float | None) -> str:
    """A duration: 0.84 s, 12 s, 3.5 min."""
    if value is None:
        return "–"
    if value < 10:
        return f"{value:.2f} s"
    if value < 120:
        return f"{value:.0f} s"
    return f"{value / 60:.1f} min"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _when(value: Any) -> str:
    """A timestamp element; the page's script shows it in the reader's time zone."""
    if not isinstance(value, datetime):
        return "–"
    value = value.astimezone(UTC)
    return f'<time datetime="{value.isoformat()}">{value:%Y-%m-%d %H:%M:%S} UTC</time>'


def _badge(status: str | None) -> str:
    status = status or "never run"
    return f'<span class="badge badge-{escape(status.replace(" ", "-"))}">{escape(status)}</span>'


def _card(title: str, body: str, *, id_: str, note: str = "", wide: bool = False) -> str:
    extra = f'<p class="note">{note}</p>' if note else ""
    return (f'<section class="card{" wide" if wide else ""}" id="{id_}"><h2>{escape(title)}</h2>'
            f"{body}{extra}</section>")


def _table(headers: list[str], rows: list[list[str]], *, numeric: set[int] | None = None,
           empty: str = "nothing yet") -> str:
    if not rows:
        return f'<p class="empty">{escape(empty)}</p>'
    numeric = numeric or set()
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{escape(h)}</th>'
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            "</table></div>")


# --- the parts of the page ----------------------------------------------------------------

def _summary(snap: Snapshot) -> str:
    failing = [p for p in snap.pipelines if p.last and p.last["status"] == "failed"]
    ran = [p for p in snap.pipelines if p.last]
    newest = [pts[-1][1] for pts in snap.quality.values() if pts]
    quality = min(newest) if newest else None
    lag = sum(p["lag"] for p in snap.processors)
    firing = snap.firing
    tiles = [
        ("pipelines", f"{len(ran) - len(failing)}/{len(snap.pipelines)}",
         "ok" if not failing else "bad",
         f"{len(failing)} failing" if failing else "last runs succeeded" if ran else "none run"),
        ("rows loaded", number(sum(v for pts in snap.loaded.values() for _, v in pts)), "plain",
         "in the window shown"),
        ("worst table quality", percent(quality) if quality is not None else "–",
         "ok" if quality is None or quality >= 0.99 else "warn" if quality >= 0.9 else "bad",
         "pass rate of its newest run"),
        ("quarantined", number(snap.quarantine_waiting),
         "ok" if not snap.quarantine_waiting else "warn", "rows waiting for a fix"),
        ("alerts firing", str(len(firing)), "ok" if not firing else "bad",
         "now" if firing else "all quiet"),
    ]
    if snap.processors:
        tiles.append(("stream lag", number(lag), "ok" if lag == 0 else "warn",
                      f"records behind, {len(snap.processors)} processor(s)"))
    cells = "".join(f'<div class="tile tile-{tone}" data-tile="{escape(name)}">'
                    f'<span class="tile-name">{escape(name)}</span>'
                    f'<span class="tile-value">{escape(value)}</span>'
                    f'<span class="tile-note">{escape(note)}</span></div>'
                    for name, value, tone, note in tiles)
    return f'<div class="tiles">{cells}</div>'


def _labels(labels: dict[str, Any]) -> str:
    shown = {k: v for k, v in (labels or {}).items() if k not in ("rule", "severity")}
    return " ".join(f'<span class="label">{_e(k)}={_e(v)}</span>' for k, v in sorted(shown.items()))


def _unix(value: float | None) -> str:
    return _when(datetime.fromtimestamp(value, UTC)) if value else "–"


def _button(label: str, url: str, body: dict[str, Any], *, actions: bool, hint: str) -> str:
    """A button that POSTs ``body`` to ``url`` with the API key (dashboard.js)."""
    title = hint if actions else ("actions need an API key: start the dashboard with "
                                  "HEADWATER_MONITOR_API_KEY set")
    return (f'<button type="button" class="action" data-action="post" data-url="{_e(url)}" '
            f"data-body='{_e(json.dumps(body, sort_keys=True))}'"
            f'{"" if actions else " disabled"} title="{_e(title)}">{_e(label)}</button>')


def _alerts(snap: Snapshot, actions: bool) -> str:
    firing = snap.firing
    head = (f'<p class="alert-banner">{len(firing)} alert(s) firing</p>' if firing else "")
    active = []
    for a in snap.alerts:
        state = ("silenced" if a.get("silenced_by") else "inhibited" if a.get("inhibited")
                 else a.get("status"))
        matchers = {k: str(v) for k, v in (a.get("labels") or {}).items()}
        act = "" if a.get("silenced_by") else _button(
            "silence 1 h", "/api/alerts/silence",
            {"matchers": matchers, "duration": "1h", "comment": "silenced from the dashboard"},
            actions=actions, hint="hold back notifications of this alert for an hour")
        active.append([_badge(a.get("severity")), _badge(state),
                       f"<strong>{_e(a.get('rule'))}</strong><span class=sub>"
                       f"{_e(a.get('origin'))}</span>", _labels(a.get("labels")),
                       _e(a.get("summary")), _unix(a.get("fired_at")), act])
    for a in snap.stream_alerts:  # the processors' own tables, when not routed as alerts
        active.append([_badge(a.get("severity")), _badge(a.get("status")),
                       f"<strong>{_e(a.get('detector'))}</strong><span class=sub>"
                       f"{_e(a.get('processor'))}</span>", _e(a.get("series")),
                       f"{_e(a.get('reason'))} ({_e(a.get('count'))}×)",
                       _when(a.get("first_seen")), ""])
    body = head + _table(["severity", "state", "rule", "labels", "summary", "since", ""], active,
                         empty="no alerts: nothing is firing")
    if snap.silences:
        rows = [[f"<code>{_e(s['id'])}</code>", _labels(s["matchers"]) or "–", _when(s["ends"]),
                 _e(s.get("comment")), _e(s.get("created_by")),
                 _button("end", "/api/alerts/unsilence", {"id": s["id"]}, actions=actions,
                         hint="end this silence now")]
                for s in snap.silences]
        body += "<h3>silences</h3>" + _table(["id", "matching", "until", "comment", "by", ""],
                                              rows)
    if snap.alert_events:
        history = [[_when(e.get("time")), _badge(e.get("status")), _badge(e.get("severity")),
                    _e(e.get("rule")), _labels(e.get("labels")), _e(e.get("summary"))]
                   for e in snap.alert_events[:15]]
        chart = line_chart(alert_rate(snap.alert_events), label="alerts fired per hour",
                           width=900, height=150)
        body += ("<h3>history</h3>"
                 + _table(["when", "event", "severity", "rule", "labels", "summary"], history)
                 + f'<h3>fired per hour</h3><div class="narrow">{chart}</div>')
    return _card("Alerts", body, id_="alerts", wide=True)


def _pipelines(snap: Snapshot) -> str:
    rows = []
    for p in snap.pipelines:
        last = p.last or {}
        rows.append([
            f'<strong>{_e(p.name)}</strong><span class="sub">{_e(p.source)} → {_e(p.table)}'
            f'{" · " + _e(p.schedule) if p.schedule else ""}</span>',
            _badge(last.get("status")),
            _when(last.get("started_at")),
            seconds(last.get("duration_s")) if last else "–",
            number(last.get("rows_read") or 0) if last else "–",
            number(last.get("rows_loaded") or 0) if last else "–",
            number(last.get("rows_quarantined") or 0) if last else "–",
            run_strip(p.history),
            ago(p.age_s),
        ])
    errors = [f'<p class="error"><strong>{_e(p.name)}</strong>: {_e(p.last["error"])}</p>'
              for p in snap.pipelines if p.last and p.last.get("error")]
    body = _table(["pipeline", "last run", "started", "took", "read", "loaded", "quarantined",
                   "recent runs", "fresh"], rows, numeric={3, 4, 5, 6},
                  empty="no pipelines in headwater.yaml and no ingest runs yet")
    return _card("Pipelines", body + "".join(errors), id_="pipelines", wide=True)


def _charts(snap: Snapshot) -> str:
    return "".join([
        _card("Ingestion rate", line_chart(snap.rates, label="rows read per second by pipeline"),
              id_="chart-rate", note="rows read per second of each run"),
        _card("Rows loaded", line_chart(snap.loaded, label="rows loaded per run by pipeline"),
              id_="chart-loaded", note="rows each run loaded into its table"),
        _card("Data quality", line_chart(snap.quality, label="pass rate per table", fmt=percent,
                                         y_min=None, y_max=1.0),
              id_="chart-quality", note="share of checked rows that passed every rule"),
        _card("Latency", line_chart(snap.durations, label="run duration in seconds",
                                    fmt=lambda v: f"{number(v)} s"),
              id_="chart-latency", note="how long each run took, source to stored"),
    ])


def _rules(snap: Snapshot) -> str:
    failing = [r for r in snap.rules if r.failed]
    ranking = bars([(f"{r.table} · {r.rule}", 1 - r.pass_rate) for r in failing[:12]],
                   fmt=percent)
    charts = "".join(
        f'<div class="sub-chart"><h3>{_e(table)}</h3>'
        + line_chart(rules, label=f"pass rate per rule of {table}", fmt=percent, y_min=None,
                     y_max=1.0, height=180)
        + "</div>" for table, rules in sorted(snap.rule_quality.items()))
    if not snap.rules:
        body = '<p class="empty">no contract has checked rows yet</p>'
    elif not failing:
        body = f'<p class="good">every rule passed on every row ({len(snap.rules)} rules)</p>'
    else:
        body = (f"<h3>failing rows by rule, newest run</h3>{ranking}"
                f'<div class="sub-charts">{charts}</div>')
    return _card("Quality by table and rule", body, id_="rules", wide=True,
                 note="rules that failed at least once in the window, over time")


def _freshness(snap: Snapshot) -> str:
    rows = [[f"<strong>{_e(p.table)}</strong>", _e(p.name), _when(p.last_success), ago(p.age_s)]
            for p in snap.pipelines]
    fresh = _table(["table", "pipeline", "last loaded", "age"], rows,
                   empty="no tables loaded yet")
    stream = ""
    if snap.processors:
        prow = [[f"<strong>{_e(p['name'])}</strong><span class=sub>{_e(p['topic'])}</span>",
                 _badge(p["status"]), number(p["lag"]),
                 seconds(p["watermark_delay_s"]),
                 number(p["events_per_second"] or 0) if p["events_per_second"] is not None
                 else "–", _e(p["late"] if p["late"] is not None else "–"),
                 _e(p["open_windows"] if p["open_windows"] is not None else "–"),
                 _e(p["active_alerts"] if p["active_alerts"] is not None else "–")]
                for p in snap.processors]
        stream = ("<h3>stream processors</h3>" + _table(
            ["processor", "last run", "lag (records)", "watermark delay", "events/s", "late",
             "open windows", "alerts"], prow, numeric={2, 3, 4, 5, 6, 7}))
    return _card("Freshness and lag", fresh + stream, id_="freshness", wide=True)


def _quarantine(snap: Snapshot, actions: bool) -> str:
    ranking = bars([(f"{r['table_name']} · {r['rule']}", float(r["n_rows"]))
                    for r in snap.quarantine[:12]])
    tables = list(dict.fromkeys((r["table_name"], r["store"]) for r in snap.quarantine))
    buttons = "".join(
        _button(f"replay {t}", "/api/quarantine/replay", {"table": t, "store": st},
                actions=actions, hint="load these rows again with the current contract")
        for t, st in tables)
    samples = _table(
        ["table", "from", "raw row", "reasons"],
        [[_e(r["table_name"]), f'{_e(r["source"])}<span class=sub>{_e(r["unit"])} '
          f'{_e(r["position"])}</span>', f'<code>{_e(r["raw"])}</code>',
          "<ul class=reasons>" + "".join(f"<li>{_e(x)}</li>" for x in r["reasons"]) + "</ul>"]
         for r in snap.quarantine_rows])
    chart = line_chart(snap.quarantined, label="rows quarantined per run by pipeline")
    if snap.quarantine:
        left = f"<h3>waiting rows by rule</h3>{ranking}<div class=actions>{buttons}</div>"
        below = f"<h3>sample rows</h3>{samples}"
    else:
        left, below = '<p class="good">the quarantine is empty</p>', ""
    body = (f'<div class="split"><div>{left}</div><div><h3>quarantined per run</h3>{chart}'
            f"</div></div>{below}")
    return _card("Quarantine", body, id_="quarantine", wide=True)


def _models(snap: Snapshot) -> str:
    if not snap.models:
        return ""
    rows = [[f"<strong>{_e(m['name'])}</strong>", _e(m.get("latest")),
             " ".join(f'<span class="badge badge-alias">{_e(a)} → v{_e(v)}</span>'
                      for a, v in sorted((m.get("aliases") or {}).items())) or "–",
             _when(datetime.fromtimestamp(m["updated"] / 1000, UTC) if m.get("updated")
                   else None)]
            for m in snap.models]
    return _card("Models", _table(["model", "latest version", "aliases", "updated"], rows),
                 id_="models", wide=True)


def _runs(snap: Snapshot) -> str:
    rows = [[f"<code>{_e(r['id'])}</code>", _e(r["kind"]), _e(r["pipeline"]), _badge(r["status"]),
             _when(r["started_at"]), seconds(r.get("duration_s")),
             number(r.get("rows_read") or 0), number(r.get("rows_loaded") or 0),
             number(r.get("rows_quarantined") or 0)]
            for r in snap.runs[:20]]
    return _card("Recent runs", _table(["run", "kind", "pipeline", "status", "started", "took",
                                        "read", "loaded", "quarantined"], rows,
                                       numeric={5, 6, 7, 8}, empty="no runs yet"),
                 id_="runs", wide=True)


def content(snap: Snapshot, *, actions: bool = False) -> str:
    """The page's main part: every panel, in the order an operator reads them."""
    problems = "".join(f'<p class="problem">{_e(p)}</p>' for p in snap.problems)
    return (f'<div class="stamp" data-taken="{snap.taken_at.isoformat()}">updated '
            f"{_when(snap.taken_at)}</div>{problems}{_summary(snap)}"
            f'<div class="grid">{_alerts(snap, actions)}{_pipelines(snap)}{_charts(snap)}'
            f"{_rules(snap)}{_freshness(snap)}{_quarantine(snap, actions)}{_models(snap)}"
            f"{_runs(snap)}</div>")


def page(snap: Snapshot, *, refresh_s: int, actions: bool = False) -> str:
    """The whole HTML document."""
    title = f"headwater · {snap.project}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/dashboard.js" defer></script>
<noscript><meta http-equiv="refresh" content="{refresh_s}"></noscript>
</head>
<body data-refresh="{refresh_s}" data-actions="{'on' if actions else 'off'}">
<header class="top"><div class="brand"><img src="/static/favicon.svg" alt="" width="26" height="26">
<span>headwater</span><span class="project">{escape(snap.project)}</span></div>
<div class="live"><span class="pulse" id="pulse"></span><span id="live-text">refreshes every
{refresh_s} s</span>{'' if actions else '<span class="ro">read-only</span>'}</div></header>
<main id="content">{content(snap, actions=actions)}</main>
<div id="toast" role="status" aria-live="polite"></div>
</body></html>"""

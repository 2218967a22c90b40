"""``headwater alerts``: list, history, test, silence, unsilence, watch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from headwater.cli._app import MetricsPortOption, app, console, project

alerts_app = typer.Typer(
    help="Alerts from the rules in headwater.yaml and from stream detectors.\n\n"
    "Example: headwater alerts list", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _when(value: float | datetime | None) -> str:
    if value is None:
        return "-"
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    return f"{value:%Y-%m-%d %H:%M:%S}"


def _labels(labels: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("rule", "severity"))


@alerts_app.command("list")
def list_alerts() -> None:
    """Show the alerts firing now (silenced and inhibited ones marked) and the silences.

    Example: headwater alerts list
    """
    from headwater.monitor.alerts import active_alerts, alert_store
    from headwater.monitor.alerts._engine import by_severity

    store = alert_store(project())
    firing = by_severity(active_alerts(store))
    table = Table(header_style="bold cyan", title="alerts firing")
    for col in ("rule", "severity", "labels", "value", "since", "state", "summary"):
        table.add_column(col, overflow="fold")
    for a in firing:
        state = "silenced" if a["silenced_by"] else "inhibited" if a["inhibited"] else "sent" \
            if a["notified_at"] else "waiting"
        value = "-" if a["value"] is None else f"{a['value']:,.4g}"
        table.add_row(a["rule"], Text(a["severity"], style=_STYLE.get(a["severity"], "")),
                      _labels(a["labels"]), value, _when(a["fired_at"]), state,
                      a["summary"] or "")
    console.print(table if firing else "[green]no alerts firing[/]")
    silences = store.silences()
    if silences:
        quiet = Table(header_style="bold cyan", title="silences")
        for col in ("id", "matchers", "until", "comment"):
            quiet.add_column(col)
        for s in silences:
            quiet.add_row(s.id, _labels(s.matchers) or str(s.matchers), _when(s.ends_at),
                          s.comment or "")
        console.print(quiet)


@alerts_app.command("history")
def history(
    since: Annotated[str, typer.Option(help="how far back: 1h, 2d, ...")] = "1d",
    rule: Annotated[str | None, typer.Option(help="only this rule")] = None,
    limit: Annotated[int, typer.Option(help="at most this many events")] = 100,
    deliveries: Annotated[bool, typer.Option(
        "--deliveries", help="show the notifications sent (and failed) instead")] = False,
) -> None:
    """Show when alerts fired and resolved, newest first (or what was sent where).

    Example: headwater alerts history --since 2h
    """
    import time

    from headwater.monitor.alerts import alert_history, alert_store
    from headwater.monitor.alerts._rules import duration_s

    store = alert_store(project())
    if deliveries:
        table = Table(header_style="bold cyan", title="notifications")
        for col in ("queued", "sink", "status", "attempts", "alerts", "last error"):
            table.add_column(col, overflow="fold")
        for d in store.deliveries(limit):
            note = d["payload"]
            table.add_row(_when(d["created_at"]), d["sink"], d["status"], str(d["attempts"]),
                          f"{note['status']}: {', '.join(a['rule'] for a in note['alerts'])}",
                          d["last_error"] or "")
        console.print(table)
        return
    try:
        start = time.time() - duration_s(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    events = [e for e in alert_history(store, start, limit=limit) if not rule or e["rule"] == rule]
    table = Table(header_style="bold cyan", title=f"alert history since {_when(start)}")
    for col in ("time", "rule", "status", "severity", "labels", "summary"):
        table.add_column(col, overflow="fold")
    for e in events:
        table.add_row(_when(e["at"]), e["rule"],
                      Text(e["status"], style="red" if e["status"] == "firing" else "green"),
                      e["severity"], _labels(e["labels"]), e["summary"] or "")
    console.print(table if events else "no alert events in that time")


@alerts_app.command("test")
def test(
    sink: Annotated[str | None, typer.Argument(help="a sink under alerts.sinks (default: all)")]
    = None,
) -> None:
    """Send a test notification to the sinks now, and say which accepted it.

    Example: headwater alerts test slack
    """
    from headwater.monitor.alerts import send_test

    results = send_test(project(), sink)
    for name, error in results.items():
        if error is None:
            console.print(f"[green]sent[/] to {name}")
        else:
            console.print(Text.assemble(("failed ", "bold red"), f"{name}: {error}"))
    if any(results.values()):
        raise typer.Exit(1)


@alerts_app.command("silence")
def silence(
    matchers: Annotated[list[str], typer.Argument(help="label=glob, e.g. rule=orders_failed "
                                                  "pipeline='orders*'")],
    for_: Annotated[str, typer.Option("--for", help="how long: 30m, 2h, 1d")] = "2h",
    comment: Annotated[str | None, typer.Option(help="why, for the others")] = None,
) -> None:
    """Hold back notifications of matching alerts for a while (they still show as firing).

    Example: headwater alerts silence rule=orders_stale --for 4h --comment "source down"
    """
    import getpass

    from headwater.monitor.alerts import alert_store
    from headwater.monitor.alerts import silence as add_silence

    wanted = {}
    for item in matchers:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: write label=value", param_hint="MATCHERS")
        wanted[key] = value
    made = add_silence(alert_store(project()), wanted, duration=for_, comment=comment,
                       created_by=getpass.getuser())
    console.print(f"silence [bold]{made.id}[/] until {_when(made.ends_at)} UTC for "
                  f"{_labels(wanted) or wanted}; end it with `headwater alerts unsilence "
                  f"{made.id}`")


@alerts_app.command("unsilence")
def unsilence(
    silence_id: Annotated[str, typer.Argument(help="the silence's id (a unique prefix)")],
) -> None:
    """End a silence now; alerts it held back are sent at the next evaluation.

    Example: headwater alerts unsilence 3f9a1c
    """
    from headwater.monitor.alerts import alert_store
    from headwater.monitor.alerts import unsilence as end_silence

    ended = end_silence(alert_store(project()), silence_id)
    console.print(f"silence [bold]{ended.id}[/] ended")


@alerts_app.command("watch")
def watch(
    interval: Annotated[str | None, typer.Option(
        help="how often to evaluate (default: alerts.evaluate_every)")] = None,
    once: Annotated[bool, typer.Option("--once", help="evaluate once, deliver, and exit")]
    = False,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Evaluate the alert rules on a clock (staleness and absence need one) and deliver.

    Example: headwater alerts watch --interval 30s
    """
    from headwater.core import ConfigError
    from headwater.monitor.alerts import Watcher, monitoring
    from headwater.monitor.alerts._rules import duration_s

    proj = project()
    seconds = duration_s(interval) if interval else None
    if once:
        result = Watcher(proj, job="alerts-watch", interval_s=seconds).evaluate_once()
        from headwater.monitor.alerts import deliver_pending

        sent = deliver_pending(proj)
        console.print(f"{len(result.firing)} firing, {len(result.pending)} pending, "
                      f"{len(result.resolved)} resolved; {sent} notifications sent")
        return
    if not proj.alerts.rules:
        raise ConfigError("headwater.yaml has no alert rules to watch",
                          hint="add rules under `alerts: rules:` (docs/monitoring.md)")
    with monitoring(proj, job="alerts-watch", metrics_port=metrics_port,
                    interval_s=seconds) as running:
        if running.metrics is not None:
            console.print(f"metrics at {running.metrics.url}", highlight=False)
        assert running.watcher is not None  # the project has rules
        console.print(f"evaluating {len(proj.alerts.rules)} rules every "
                      f"{running.watcher.interval_s:g} s (Ctrl-C stops)")
        try:
            while not running.watcher.wait(1.0):
                pass
        except KeyboardInterrupt:
            console.print("stopped")


@app.command("logs")
def logs(
    run: Annotated[str | None, typer.Option("--run", "-r", help="a run id (a prefix is enough)")]
    = None,
    pipeline: Annotated[str | None, typer.Option(help="only this pipeline")] = None,
    level: Annotated[str | None, typer.Option(help="lowest level: debug, info, warning, error")]
    = None,
    since: Annotated[str | None, typer.Option(help="how far back: 10m, 2h, 1d")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON lines as they are")]
    = False,
) -> None:
    """Show the log (JSON lines under .headwater/logs), filtered by run, pipeline, level, time.

    Example: headwater logs --pipeline orders --level warning --since 2h -f
    """
    import json
    import time

    from headwater.monitor import format_line, read_logs
    from headwater.monitor.alerts._rules import duration_s

    if level is not None and level not in ("debug", "info", "warning", "error", "critical"):
        raise typer.BadParameter("choose debug, info, warning or error", param_hint="--level")
    start = None
    if since is not None:
        try:
            start = datetime.fromtimestamp(time.time() - duration_s(since), UTC)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--since") from None
    proj = project()
    try:
        for line in read_logs(proj.path(proj.logging.dir), run=run, pipeline=pipeline,
                              level=level, since=start, follow=follow):
            typer.echo(json.dumps(line) if as_json else format_line(line))
    except KeyboardInterrupt:
        pass

"""``headwater stream``: look at a broker: topics, publish a file, tail, a group's positions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from headwater.cli._app import MetricsPortOption, app, console, project
from headwater.config import DEFAULT_BROKER

if TYPE_CHECKING:
    import pyarrow as pa

    from headwater.brokers import Broker

stream_app = typer.Typer(
    help="Look at a streaming platform: topics, publish, tail, consumer-group positions.\n\n"
    "Example: headwater stream topics",
    no_args_is_help=True,
)
app.add_typer(stream_app, name="stream")

BrokerOption = Annotated[str, typer.Option(
    "--broker", "-b", help="a broker from headwater.yaml's `brokers:` (default: the embedded log)")]


def _broker(name: str) -> Broker:
    from headwater.brokers import open_broker

    proj = project()
    return open_broker(proj.broker(name), proj.root)


@stream_app.command("topics")
def topics(broker: BrokerOption = DEFAULT_BROKER) -> None:
    """List the topics with partitions, records, bytes and each consumer group's lag.

    Example: headwater stream topics --broker embedded
    """
    from headwater.brokers import lag

    with _broker(broker) as b:
        found = b.topics()
        table = Table(header_style="bold cyan")
        for col in ("topic", "partitions", "records", "bytes", "groups (lag)"):
            table.add_column(col, justify="left" if col in ("topic", "groups (lag)") else "right")
        for t in found:
            groups = ", ".join(f"{g}: {_n(lag(b, t.name, g))}" for g in b.groups(t.name))
            table.add_row(t.name, str(t.partitions), _n(t.records), _bytes(t.bytes), groups or "-")
    console.print(b.describe(), style="dim", highlight=False)
    console.print(table if found else "no topics yet: try "
                  "`headwater stream publish FILE --topic NAME`")


@stream_app.command("publish")
def publish(
    file: Annotated[Path, typer.Argument(help="CSV, JSON Lines or Parquet file", exists=True,
                                         dir_okay=False)],
    topic: Annotated[str, typer.Option("--topic", "-t", help="topic to publish to")],
    key: Annotated[str | None, typer.Option(
        "--key", "-k", help="column whose text is each record's key (same key, same partition)"
    )] = None,
    partitions: Annotated[int | None, typer.Option(
        help="partitions if the topic is new (default: the broker's `partitions` setting)",
        min=1)] = None,
    broker: BrokerOption = DEFAULT_BROKER,
) -> None:
    """Publish a file's rows to a topic, one JSON object per row (for tests and demos).

    Example: headwater stream publish events.jsonl --topic events --key device_id
    """
    from headwater.brokers import encode_rows
    from headwater.brokers import publish as publish_records

    rows = _read_rows(file)
    records = encode_rows(rows, key=key)
    spec = project().broker(broker)
    with _broker(broker) as b, _progress(f"publishing to {topic}", records.num_rows) as step:
        count = publish_records(b, topic, records, partitions=partitions or spec.partitions,
                                progress=step)
        where = b.describe()
    console.print(f"published [bold]{count:,}[/] records from {file.name} to topic "
                  f"[bold]{topic}[/] on {where}")


@stream_app.command("tail")
def tail(
    topic: Annotated[str, typer.Argument(help="topic to read")],
    n: Annotated[int, typer.Option("-n", "--lines", help="how many of the last records", min=0)]
    = 10,
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="then keep printing new records (Ctrl-C stops)")]
    = False,
    broker: BrokerOption = DEFAULT_BROKER,
) -> None:
    """Print the last records of a topic (commits no position).

    Example: headwater stream tail events -n 20 --follow
    """
    from headwater.brokers import follow as follow_records
    from headwater.brokers import tail as last_records

    with _broker(broker) as b:
        console.print(_records_table(last_records(b, topic, n), title=f"{topic}: last {n}"))
        if follow:
            try:
                for records in follow_records(b, topic):
                    console.print(_records_table(records))
            except KeyboardInterrupt:
                console.print("stopped")


@stream_app.command("positions")
def positions(
    topic: Annotated[str, typer.Argument(help="topic")],
    group: Annotated[str, typer.Option("--group", "-g", help="consumer group")],
    reset: Annotated[str | None, typer.Option(
        help="first move the group: earliest, latest, an ISO time or how long ago (2h)")] = None,
    broker: BrokerOption = DEFAULT_BROKER,
) -> None:
    """Show (or reset) a consumer group's committed positions, the ends and the lag.

    Example: headwater stream positions events --group loader --reset earliest
    """
    from headwater.brokers import group_positions, reset_positions

    with _broker(broker) as b:
        if reset is not None:
            reset_positions(b, topic, group, reset)
            console.print(f"group [bold]{group}[/] on [bold]{topic}[/] reset to {reset}")
        rows = group_positions(b, topic, group)
    table = Table(header_style="bold cyan", title=f"{topic} — group {group}")
    for col in ("partition", "committed", "end", "lag"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r.partition), _offset(r.committed), _offset(r.end), _n(r.lag))
    console.print(table)


@stream_app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="a processor under `processors:` in headwater.yaml")],
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="keep processing new records until Ctrl-C (stops after the "
        "current commit)")] = False,
    flush: Annotated[bool, typer.Option(
        help="at the end of the topic, close every open window (the input is complete)")]
    = False,
    member: Annotated[str | None, typer.Option(
        help="i/n: this process takes partitions p with p % n == i (scale out over "
        "processes)")] = None,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Run a stream processor: windows, detectors and alerts, written exactly once.

    Example: headwater stream run sensors --follow --member 0/2
    """
    from rich.live import Live

    from headwater.stream import run_processor

    proj = project()
    with Live(console=console, transient=True, refresh_per_second=4) as live:
        def show(result) -> None:
            live.update(f"[cyan]{name}[/]: {result.totals.records:,} records, "
                        f"{result.totals.windows:,} windows, {result.totals.anomalies:,} "
                        f"anomalies, {result.active_alerts} alerts firing "
                        f"({result.events_per_second:,.0f}/s)")

        result = run_processor(proj, name, follow=follow, flush=flush, member=member,
                               progress=show, metrics_port=metrics_port)
    console.print(_processor_table(result))


@stream_app.command("status")
def status() -> None:
    """Per processor and member (the processes sharing its partitions): lag, throughput,
    watermark, late and dropped counts, open windows and active alerts; live while running.

    Example: headwater stream status
    """
    from headwater.stream import processor_status

    found = processor_status(project())
    if not found:
        console.print("no processors in headwater.yaml: add one under `processors:`")
        return
    table = Table(header_style="bold cyan")
    for col in ("processor", "topic", "partitions", "lag", "events/s", "watermark", "late",
                "duplicates dropped", "open windows", "alerts firing", "run"):
        table.add_column(col, justify="left" if col in ("processor", "topic", "partitions",
                                                         "watermark", "run") else "right")
    for s in found:
        for i, m in enumerate(s.members or [{}]):
            state = "live" if m.get("live") else m.get("status", "-")
            table.add_row(s.name if i == 0 else "", s.topic if i == 0 else "",
                          ",".join(map(str, m.get("partitions") or [])) or "-",
                          _n(s.lag) if i == 0 else "", _n(m.get("events_per_second")),
                          _time(m.get("watermark_ms")), _n(m.get("late")),
                          _n(m.get("duplicates")), _n(m.get("open_windows")),
                          _n(m.get("active_alerts")),
                          f"{state} {m.get('run_id', '')}".strip())
    console.print(table)


def _processor_table(result) -> Table:
    totals = result.totals
    table = Table(header_style="bold cyan", title=f"processor {result.name} — partitions "
                  f"{', '.join(map(str, result.partitions)) or '-'}")
    table.add_column("")
    table.add_column("count", justify="right")
    for label, value in (("records read", totals.records), ("events", totals.events),
                         ("quarantined", totals.quarantined),
                         ("duplicates dropped", totals.duplicates), ("late", totals.late),
                         ("window results", totals.windows), ("anomalies", totals.anomalies),
                         ("alerts opened", totals.alerts_opened),
                         ("alerts resolved", totals.alerts_resolved),
                         ("alerts firing", result.active_alerts),
                         ("open windows", result.open_windows)):
        table.add_row(label, f"{value:,}")
    table.caption = (f"{result.seconds:.1f} s, {result.events_per_second:,.0f} records/s, "
                     f"watermark {_time(result.watermark_ms)}")
    return table


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _read_rows(file: Path) -> pa.Table:
    """A file's rows as Arrow: CSV, JSON Lines or Parquet, by its extension."""
    import polars as pl

    from headwater.core import FileFormatError

    suffix = file.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pl.read_csv(file, separator="\t" if suffix == ".tsv" else ",").to_arrow()
        if suffix in (".jsonl", ".ndjson", ".json"):
            return pl.read_ndjson(file).to_arrow()
        if suffix == ".parquet":
            return pl.read_parquet(file).to_arrow()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise FileFormatError(f"cannot read {file}: {exc}",
                              hint="check the file, or convert it to CSV, JSON Lines or Parquet"
                              ) from None
    raise FileFormatError(f"{file}: publish reads .csv, .tsv, .jsonl/.ndjson or .parquet files",
                          hint="convert the file, or load it with `headwater ingest file`")


@contextmanager
def _progress(title: str, total: int) -> Iterator[Callable[[int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(title, total=total)
        yield lambda done: progress.update(task, completed=done)


def _records_table(records: pa.Table, *, title: str | None = None) -> Table:
    table = Table(header_style="bold cyan", title=title)
    for col in ("partition", "offset", "timestamp", "key", "value"):
        table.add_column(col, justify="right" if col in ("partition", "offset") else "left",
                         overflow="fold")
    for row in records.to_pylist():  # a screenful of records, printed for people
        table.add_row(str(row["partition"]), str(row["offset"]),
                      f"{row['timestamp']:%Y-%m-%d %H:%M:%S.%f}"[:-3] if row["timestamp"] else "",
                      _text(row["key"]), _text(row["value"], 200))
    return table


def _text(value: bytes | None, limit: int = 60) -> str:
    if value is None:
        return ""
    text = value.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _n(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if isinstance(value, float) else f"{value:,}"


def _offset(value: object) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _bytes(value: int | None) -> str:
    if value is None:
        return "?"
    size, unit = float(value), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{size:,.0f} B" if unit == "B" else f"{size:,.1f} {unit}"

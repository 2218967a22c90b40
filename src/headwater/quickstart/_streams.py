"""Quickstart step: messy JSON events on the embedded log, loaded with a contract exactly once.

The events go to a topic of the embedded log (no server). A pipeline with ``kind: stream``
loads them through the same cleanse → contract → quarantine path as files; the broker
positions commit with the rows, so running it again loads nothing twice, and new events are
read from where the last run stopped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from headwater.config import PROJECT_FILE, load_project

TOPIC, EVENTS = "clicks", 5_000

_PIPELINE = """\
  clicks:                          # added by `headwater quickstart` (the streams step)
    source: {kind: stream, topic: clicks, format: json, max_payload_bytes: 2048}
    table: clicks
    contract: contracts/clicks.yaml
"""

_CONTRACT = """\
# Click events from a stream: the same contract language as for files.
columns:
  event_id: {type: integer, nullable: false}
  user_id: {type: string, nullable: false, cleanse: {case: lower}}
  kind: {type: string, allowed: [view, click, cart, buy], cleanse: {case: lower}}
  amount: {type: float, min: 0}
  at: {type: timestamp}
primary_key: [event_id]
"""


def add_pipeline(root: Path) -> None:
    """Declare the ``clicks`` pipeline (once), right under ``pipelines:``, and its contract."""
    contract = root / "contracts" / "clicks.yaml"
    contract.parent.mkdir(parents=True, exist_ok=True)
    contract.write_text(_CONTRACT, encoding="utf-8")
    file = root / PROJECT_FILE
    text = file.read_text(encoding="utf-8")
    if "\n  clicks:" in text:
        return
    if "\npipelines:\n  {}\n" in text:
        text = text.replace("\npipelines:\n  {}\n", "\npipelines:\n" + _PIPELINE, 1)
    elif "\npipelines:\n" in text:
        text = text.replace("\npipelines:\n", "\npipelines:\n" + _PIPELINE, 1)
    else:
        text = text.rstrip("\n") + "\npipelines:\n" + _PIPELINE
    file.write_text(text, encoding="utf-8")


def messy_events(n: int, *, first: int = 0, seed: int = 3) -> pa.Table:
    """``n`` click events as broker records (key: the user), about 2 % of them bad: broken
    JSON, text that is not UTF-8, an oversized payload, a missing user, an unknown kind, a
    negative amount; and messy good ones (padding, capitals)."""
    rng = np.random.default_rng(seed + first)
    ids = np.arange(first, first + n)
    kinds = rng.choice(["view", "click", "cart", "buy", " VIEW "], n)
    users = [f"U{u}" if u % 7 else f"  u{u} " for u in rng.integers(0, 500, n)]
    frame = pl.DataFrame({"event_id": ids, "user_id": users, "kind": kinds,
                          "amount": np.round(rng.gamma(2.0, 12.0, n), 2),
                          "at": [f"2026-12-01T10:{(i // 60) % 60:02d}:{i % 60:02d}+01:00"
                                 for i in ids]})
    values = frame.select(pl.struct(pl.all()).struct.json_encode()).to_series().to_list()
    keys = [u.strip().lower() for u in users]
    for i, bad in zip(rng.choice(n, 10 * (n // 1000), replace=False),
                      [b'{"event_id": 1, "user_id": "u1",', b"\xff\xfe not utf-8",
                       b'{"event_id": -1, "note": "' + b"x" * 4000 + b'"}',
                       b'{"kind": "view", "amount": 3}', b'{"event_id": 2, "user_id": "u2", '
                       b'"kind": "teleport"}', b'{"event_id": 3, "user_id": "u3", '
                       b'"kind": "buy", "amount": -5}', b"[1, 2, 3]", b"",
                       b'{"event_id": 4, "user_id": "u4", "kind": "buy", "amount": "lots"}',
                       b"null"] * (n // 1000), strict=True):
        values[int(i)] = bad
    return pa.table({"key": pa.array([k.encode() for k in keys], pa.binary()),
                     "value": pa.array([v if isinstance(v, bytes) else v.encode()
                                        for v in values], pa.binary())})


def step(root: Path, console: Console) -> None:
    """Publish messy events, load them with a contract, show the quarantine, load again."""
    from headwater.brokers import lag, open_broker, publish
    from headwater.ingest import run_pipeline
    from headwater.store import open_store

    add_pipeline(root)
    project = load_project(root)
    with open_broker(project.broker(), project.root) as broker:
        published = publish(broker, TOPIC, messy_events(EVENTS), partitions=2)
    console.print(f"{published:,} JSON click events published to topic '{TOPIC}' of the "
                  "embedded log (2 partitions), 2 % of them malformed or failing the contract")
    runs = Table(title="loads of pipeline clicks", title_justify="left",
                 header_style="bold cyan")
    for col in ("run", "records read", "loaded", "quarantined"):
        runs.add_column(col, justify="right")
    first = run_pipeline(project, "clicks")
    runs.add_row("1st", f"{first.rows_read:,}", f"{first.rows_loaded:,}",
                 f"{first.rows_quarantined:,}")
    again = run_pipeline(project, "clicks")
    runs.add_row("2nd (nothing new)", f"{again.rows_read:,}", f"{again.rows_loaded:,}",
                 f"{again.rows_quarantined:,}")
    with open_broker(project.broker(), project.root) as broker:
        publish(broker, TOPIC, messy_events(1_000, first=EVENTS), partitions=2)
    third = run_pipeline(project, "clicks")
    runs.add_row("3rd (1,000 new)", f"{third.rows_read:,}", f"{third.rows_loaded:,}",
                 f"{third.rows_quarantined:,}")
    console.print(runs)
    store = open_store(project, read_only=True)
    try:
        rows = store.query("SELECT count(*) AS n, count(DISTINCT event_id) AS ids "
                           "FROM clicks").to_pylist()[0]
        sample = store.query(  # one example of each kind of reason
            "SELECT rules[1] AS rule, count(*) AS n, arg_min(source || ' @ ' || position, "
            "position) AS at, arg_min(reasons[1], position) AS reason FROM _hw_quarantine "
            "WHERE pipeline = 'clicks' GROUP BY rules[1], left(reasons[1], 16) "
            "ORDER BY rule, n DESC").to_pylist()
    finally:
        store.close()
    quarantine = Table(title="quarantine: an example of each reason, with topic[partition] "
                       "@ offset", title_justify="left", header_style="bold cyan")
    for col in ("rule", "records", "first at", "reason"):
        quarantine.add_column(col)
    for row in sample:
        quarantine.add_row(row["rule"], str(row["n"]), row["at"], row["reason"])
    console.print(quarantine)
    with open_broker(project.broker(), project.root) as broker:
        behind = lag(broker, TOPIC, "headwater-clicks")
    loaded = first.rows_loaded + third.rows_loaded
    console.print(f"exactly once: {rows['n']:,} rows in table clicks, {rows['ids']:,} distinct "
                  f"event ids, {loaded:,} loaded by the runs; consumer group lag {behind}")
    console.print(f"try: headwater -p {root} ingest run clicks --follow   (Ctrl-C stops "
                  f"after the current commit); headwater -p {root} stream positions {TOPIC} "
                  "--group headwater-clicks")

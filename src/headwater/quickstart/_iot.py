"""Quickstart step: simulated sensors with faults → gateway → stream processor → alerts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from headwater.config import load_project

DEVICES, GATEWAYS, SECONDS = 200, 10, 20
FAULTS = ["spike", "dip", "stuck", "silent", "duplicate", "out_of_order", "late", "malformed"]

#: What the step adds to headwater.yaml, so `headwater stream run sensors` works afterwards.
PROCESSOR_YAML = """
processors:
  sensors:                       # added by `headwater quickstart` (the iot step)
    input: {topic: iot_readings}
    watermark_delay: 2s
    late: table
    windows:
      - {name: w5s, kind: tumbling, size: 5s}
      - {name: h10s, kind: hopping, size: 10s, hop: 5s}
    detectors:
      - {kind: zscore, threshold: 5}
      - {kind: mad, threshold: 8}
      - {kind: jump, delta: 4, severity: warning}
      - {kind: stuck, window: 3}
      - {kind: silent, after: 4s, severity: critical}
    alerts: {resolve_after: 10s}
"""


def step(root: Path, console: Console) -> None:
    """Simulate 200 sensors for 20 s with faults, normalise, process, score the detectors."""
    from headwater.brokers import open_broker
    from headwater.store import open_store
    from headwater.stream import run_processor
    from headwater.stream.iot import publish_simulation, run_gateway, score, simulate

    config = root / "headwater.yaml"
    if "\nprocessors:" not in config.read_text():
        config.write_text(config.read_text() + PROCESSOR_YAML)
    project = load_project(root)
    sim = simulate(devices=DEVICES, gateways=GATEWAYS, seconds=SECONDS, faults=FAULTS,
                   fault_share=0.05, seed=11)
    store = open_store(project)
    try:
        with open_broker(project.broker(), project.root) as broker, \
                console.status("devices publishing, the gateway normalising..."):
            publish_simulation(sim, broker, "iot_raw", partitions=4)
            gateway = run_gateway(broker, "iot_raw", "iot_readings", store=store)
    finally:
        store.close()
    console.print(f"{DEVICES} devices behind {GATEWAYS} gateways, {SECONDS} s, faults: "
                  f"{', '.join(FAULTS)}: {gateway.payloads:,} payloads → {gateway.readings:,} "
                  f"readings, {gateway.rejected} malformed payloads quarantined")
    with console.status("stream processor: windows, detectors, alerts..."):
        result = run_processor(project, "sensors", flush=True)
    totals = result.totals
    console.print(f"processor: {totals.events:,} events ({totals.duplicates} duplicates "
                  f"dropped, {totals.late} late), {totals.windows:,} window results, "
                  f"{totals.anomalies} anomalies, {totals.alerts_opened} alerts")
    store = open_store(project, read_only=True)
    try:
        windows = store.query("SELECT device, metric, strftime(window_start, '%H:%M:%S') AS start, "
                              '"count", round(mean, 2) '
                              'AS mean, round(p95, 2) AS p95 FROM sensors_windows_w5s '
                              "ORDER BY window_start, device, metric LIMIT 4")
        alerts = store.query("SELECT detector, severity, count(*) AS alerts FROM sensors_alerts "
                             "GROUP BY ALL ORDER BY alerts DESC")
        found = store.query("SELECT device, metric, epoch_ms(time) AS time, detector "
                            "FROM sensors_anomalies")
    finally:
        store.close()
    console.print(_table(windows, "window results (5 s tumbling), first rows"))
    console.print(_table(alerts, "alerts raised"))
    quality = score(pl.from_arrow(found), sim.truth,  # type: ignore[arg-type]
                    until_ms=int(sim.settings["start_ms"]) + SECONDS * 1000)  # type: ignore[call-overload]
    console.print(_table(quality.with_columns(pl.col("precision", "recall").round(2))
                         .to_arrow(), "detectors against the injected faults"))
    console.print(f"try: headwater -p {root} stream status; headwater -p {root} sql "
                  "\"SELECT * FROM sensors_alerts WHERE severity = 'critical' LIMIT 5\"")


def _table(data, title: str) -> Table:
    table = Table(title=title, header_style="bold cyan", title_justify="left")
    for name in data.column_names:
        table.add_column(name, justify="right" if name not in ("device", "metric", "detector",
                                                                 "severity") else "left")
    for row in data.to_pylist():
        table.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()])
    return table

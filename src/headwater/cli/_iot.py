"""``headwater iot``: simulated devices with faults, and the gateway that normalises them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from headwater.cli._app import app, console, project
from headwater.cli._stream import BrokerOption, MetricsPortOption
from headwater.config import DEFAULT_BROKER

iot_app = typer.Typer(
    help="IoT devices and gateways: simulate sensors with faults, normalise their payloads.\n\n"
    "Example: headwater iot simulate --devices 200 --seconds 20 --faults spike,stuck",
    no_args_is_help=True,
)
app.add_typer(iot_app, name="iot")

@iot_app.command("simulate")
def simulate(
    devices: Annotated[int, typer.Option(min=1, help="sensors")] = 200,
    gateways: Annotated[int, typer.Option(min=1, help="gateways they report through")] = 10,
    seconds: Annotated[float, typer.Option(min=0.001, help="simulated time")] = 20.0,
    rate: Annotated[float, typer.Option(min=0.001, help="readings per second per metric")]
    = 1.0,
    faults: Annotated[str, typer.Option(
        help="comma-separated: spike, dip, stuck, dropout, silent, duplicate, out_of_order, "
        "late, skew, malformed")] = "",
    topic: Annotated[str, typer.Option("--topic", "-t", help="raw topic to publish to")]
    = "iot_raw",
    partitions: Annotated[int, typer.Option(min=1, help="partitions of a new topic")] = 4,
    speed: Annotated[float | None, typer.Option(
        help="pace: 1 is real time, 10 ten times faster; default: as fast as possible")] = None,
    truth: Annotated[Path | None, typer.Option(
        help="write the injected faults (device, metric, fault, start, end) to this CSV")]
    = None,
    seed: Annotated[int, typer.Option(help="same seed, same readings")] = 0,
    broker: BrokerOption = DEFAULT_BROKER,
) -> None:
    """Simulate sensors (daily cycle, noise, drift, calibration, mixed units) with faults,
    publish their payloads to a topic, and keep the ground truth.

    Example: headwater iot simulate --devices 50 --seconds 60 --faults spike,stuck,malformed
    """
    from headwater.brokers import open_broker
    from headwater.stream.iot import publish_simulation
    from headwater.stream.iot import simulate as make

    proj = project()
    wanted = [f.strip() for f in faults.split(",") if f.strip()]
    sim = make(devices=devices, gateways=gateways, seconds=seconds, rate=rate, faults=wanted,
               seed=seed)
    with open_broker(proj.broker(broker), proj.root) as b, \
            console.status(f"publishing {sim.messages.height:,} messages to {topic}..."):
        sent = publish_simulation(sim, b, topic, partitions=partitions, speed=speed)
    if truth is not None:
        truth.parent.mkdir(parents=True, exist_ok=True)
        sim.truth.write_csv(truth)
    console.print(f"published [bold]{sent:,}[/] messages from {devices} devices to "
                  f"[bold]{topic}[/]; {sim.truth.height} faults injected"
                  + (f" (ground truth: {truth})" if truth else ""))


@iot_app.command("gateway")
def gateway(
    source: Annotated[str, typer.Option("--from", help="raw topic with device payloads")]
    = "iot_raw",
    target: Annotated[str, typer.Option("--to", help="topic for the normalised readings")]
    = "iot_readings",
    name: Annotated[str, typer.Option(help="this gateway's name (in every reading)")]
    = "gateway",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep going until Ctrl-C")]
    = False,
    broker: BrokerOption = DEFAULT_BROKER,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Normalise device payloads (JSON or compact CSV, any unit) into one reading schema;
    rejected payloads go to the quarantine with their position and reason.

    Example: headwater iot gateway --from iot_raw --to iot_readings
    """
    from headwater.brokers import open_broker
    from headwater.monitor.alerts import monitoring
    from headwater.store import open_store
    from headwater.stream.iot import run_gateway

    proj = project()
    store = open_store(proj)
    try:
        with open_broker(proj.broker(broker), proj.root) as b, \
                monitoring(proj, job=f"gateway-{name}", metrics_port=metrics_port,
                           alerts=follow), \
                console.status(f"normalising {source} → {target}..."):
            result = run_gateway(b, source, target, store=store, gateway=name, group=name,
                                 follow=follow)
    finally:
        store.close()
    table = Table(header_style="bold cyan")
    for col in ("payloads", "readings", "rejected", "seconds"):
        table.add_column(col, justify="right")
    table.add_row(f"{result.payloads:,}", f"{result.readings:,}", f"{result.rejected:,}",
                  f"{result.seconds:.1f}")
    console.print(table)
    if result.rejected:
        console.print("rejected payloads: headwater quarantine list")

"""``headwater iot``: simulated devices with faults, and the gateway that normalises them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from headwater.cli._app import MetricsPortOption, app, console, project
from headwater.cli._stream import BrokerOption
from headwater.config import DEFAULT_BROKER

iot_app = typer.Typer(
    help="IoT devices and gateways: simulate sensors with faults, normalise their payloads.\n\n"
    "Example: headwater iot simulate --devices 200 --seconds 20 --faults spike,stuck",
    no_args_is_help=True,
)
app.add_typer(iot_app, name="iot")

#: headwater.stream.iot.TOPIC_PREFIX, spelled out so that the CLI starts without Polars.
TOPIC_PREFIX = "headwater/iot"

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
    now: Annotated[bool, typer.Option(
        "--now", help="device clocks start now (default: 2026-01-01, reproducible)")] = False,
    broker: Annotated[str, typer.Option(
        "--broker", "-b", help="mqtt://HOST:PORT to publish over MQTT (one topic per gateway "
        "and device), or a broker of headwater.yaml's `brokers:` (default: the embedded "
        "log)")] = DEFAULT_BROKER,
    qos: Annotated[int, typer.Option(min=0, max=1, help="MQTT QoS: 0 or 1")] = 1,
    prefix: Annotated[str, typer.Option(help="MQTT topics: PREFIX/GATEWAY/DEVICE")]
    = TOPIC_PREFIX,
) -> None:
    """Simulate sensors (daily cycle, noise, drift, calibration, mixed units) with faults,
    publish their payloads over MQTT or to a topic, and keep the ground truth.

    Example: headwater iot simulate --devices 50 --seconds 60 --faults spike,stuck,malformed
    --broker mqtt://127.0.0.1:1883 --qos 1 --speed 1
    """
    from datetime import UTC, datetime

    from headwater.brokers import open_broker
    from headwater.stream.iot import is_mqtt_url, publish_mqtt, publish_simulation
    from headwater.stream.iot import simulate as make

    proj = project()
    wanted = [f.strip() for f in faults.split(",") if f.strip()]
    sim = make(devices=devices, gateways=gateways, seconds=seconds, rate=rate, faults=wanted,
               seed=seed, start=datetime.now(UTC) if now else None)
    if is_mqtt_url(broker):
        topic = f"{prefix}/#"
        with console.status(f"publishing {sim.messages.height:,} messages over MQTT "
                            f"({broker}, QoS {qos})..."):
            sent = publish_mqtt(sim, broker, prefix=prefix, qos=qos, speed=speed)
    else:
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
    source: Annotated[str, typer.Option(
        "--from", help="mqtt://HOST:PORT to subscribe to the devices over MQTT, or a raw "
        "topic of --broker with device payloads")] = "iot_raw",
    target: Annotated[str, typer.Option("--to", help="topic for the normalised readings")]
    = "iot_readings",
    name: Annotated[str, typer.Option(
        help="this gateway's name: its MQTT client id (the persistent session) and consumer "
        "group")] = "gateway",
    topics: Annotated[str, typer.Option(help="MQTT topic filter(s), comma-separated")]
    = f"{TOPIC_PREFIX}/#",
    group: Annotated[str, typer.Option(
        help="MQTT shared-subscription group: gateways of one group split the messages")]
    = "gateways",
    contract: Annotated[Path | None, typer.Option(
        help="a contract file the readings must pass (as for `headwater ingest`)")] = None,
    idle: Annotated[float, typer.Option(
        min=0.1, help="MQTT: stop after this many seconds without a message")] = 2.0,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep going until Ctrl-C")]
    = False,
    broker: BrokerOption = DEFAULT_BROKER,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Normalise device payloads (JSON or compact CSV, any unit) into one reading schema,
    validate them with a contract, publish them to the stream; rejected payloads go to the
    quarantine with where they came from and every reason. Over MQTT the session is
    persistent (QoS 1) and messages are acknowledged only once written: nothing is lost.

    Example: headwater iot gateway --from mqtt://127.0.0.1:1883 --to iot_readings --follow
    """
    from headwater.brokers import open_broker
    from headwater.contract import Contract
    from headwater.monitor.alerts import monitoring
    from headwater.store import open_store
    from headwater.stream.iot import is_mqtt_url, run_gateway, run_mqtt_gateway

    proj = project()
    checks = Contract.load(proj.root / contract if not contract.is_absolute() else contract) \
        if contract is not None else None
    store = open_store(proj)
    try:
        with open_broker(proj.broker(broker), proj.root) as b, \
                monitoring(proj, job=f"gateway-{name}", metrics_port=metrics_port,
                           alerts=follow), \
                console.status(f"normalising {source} → {target}..."):
            if is_mqtt_url(source):
                filters = [t.strip() for t in topics.split(",") if t.strip()]
                ready: list[bool] = []

                def announce(_: object) -> None:  # once subscribed: devices may start
                    if not ready:
                        ready.append(True)
                        console.print(f"subscribed to {', '.join(filters)} as {name}")

                result = run_mqtt_gateway(
                    source, b, target, store=store, client_id=name, group=group,
                    topics=filters, contract=checks, idle_s=None if follow else idle,
                    progress=announce)
            else:
                result = run_gateway(b, source, target, store=store, gateway=name, group=name,
                                     follow=follow, contract=checks)
    finally:
        store.close()
    table = Table(header_style="bold cyan")
    for col in ("payloads", "readings", "rejected", "duplicates", "seconds"):
        table.add_column(col, justify="right")
    table.add_row(f"{result.payloads:,}", f"{result.readings:,}", f"{result.rejected:,}",
                  f"{result.dropped:,}", f"{result.seconds:.1f}")
    console.print(table)
    if result.rejected:
        console.print("rejected payloads: headwater quarantine list")

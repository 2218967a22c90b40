"""Devices → MQTT (Mosquitto on loopback) → gateway → embedded log → stream processor → alerts,
at a fixed input rate: zero lost messages, end-to-end latency, against a bare paho subscriber
on the same broker at the same rate (the floor), same run.

    python benchmarks/iot_mqtt.py [--rate 10000] [--seconds 60] [--publishers 2]

Devices publish with QoS 1, paced in real time, each message carrying its device timestamp.
headwater: one gateway process (persistent session, shared subscription, acks after the log
write, the readings contract) and one processor process (1 s tumbling windows, z-score and jump
detectors, alerts, DuckDB), each pinned to a core. Reported:

- conservation: sent = readings stored + quarantined + counted duplicates, and no message id
  of the simulation missing from the stored readings (zero loss);
- alert latency p50/p99: device timestamp of the reading that opened an alert → the alert
  committed and handed to the sinks (target p99 ≤ 50 ms);
- window-result latency: window end → the result committed (includes the watermark delay);
- per core: messages per CPU-second of the gateway, and of the bare subscriber (the floor);
- Mosquitto's own dropped-messages counter before and after (broker-wide: other clients count).

The processor's throughput from the log alone is benchmarks/stream_process.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import json
import multiprocessing as mp
import platform
import shutil
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

URL = "mqtt://127.0.0.1:1883"
CONTRACT = Path(__file__).parents[1] / "examples" / "iot" / "contracts" / "readings.yaml"
FAULTS = ["spike", "dip", "duplicate", "malformed"]
#: A receiver that has taken nothing for this long after the publishers finished gives up.
QUIET_S = 20.0
SPEC = {
    "input": {"topic": "readings"},
    "windows": [{"name": "w1s", "kind": "tumbling", "size": "1s"}],
    "detectors": [{"kind": "zscore", "threshold": 6}, {"kind": "jump", "delta": 8}],
    "watermark_delay": "200ms",
    "max_records": 20_000,
    "max_latency": "5ms",
}


def _pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[cpu % len(cpus)]})


def _simulation(args: argparse.Namespace, start_ms: int):
    from headwater.stream.iot import simulate

    devices = max(1, round(args.rate / 3))          # 3 metrics, one reading a second each
    return simulate(devices=devices, gateways=20, seconds=args.seconds, rate=1.0,
                    faults=FAULTS, fault_share=0.01, seed=args.seed,
                    start=datetime.fromtimestamp(start_ms / 1000, UTC))


def publisher(args: argparse.Namespace, start_ms: int, share: int, prefix: str,
              out: mp.Queue) -> None:
    """One of ``args.publishers`` processes: every n-th gateway's devices, paced from
    ``start_ms`` on the wall clock."""
    from headwater.stream.iot import publish_mqtt
    from headwater.stream.iot._simulate import Simulation

    _pin(0)
    sim = _simulation(args, start_ms)
    mine = sim.messages.filter(pl.col("gateway").str.slice(3).cast(pl.Int64) % args.publishers
                               == share)
    wait = start_ms / 1000 - time.time()
    if wait > 0:
        time.sleep(wait)
    sent = publish_mqtt(Simulation(mine, sim.truth), URL, prefix=prefix, qos=1, speed=1.0,
                        client_id=f"bench-pub-{share}-{uuid.uuid4().hex[:6]}")
    out.put(("sent", sent, max(0.0, time.time() - start_ms / 1000 - args.seconds)))


def _done(taken: int, sent, last: dict) -> bool:
    """Whether a receiver is done: the publishers have reported ``sent`` (-1 before) and it
    has taken that many, or it has been quiet for ``QUIET_S`` since (a loss: it shows)."""
    now = time.monotonic()
    if taken != last["taken"]:
        last.update(taken=taken, at=now)
        return sent.value >= 0 and taken >= sent.value
    return sent.value >= 0 and now - last["at"] > QUIET_S


def gateway(folder: str, prefix: str, group: str, client: str, sent,
            out: mp.Queue) -> None:
    """The gateway, until it has taken every message sent (or was quiet for ``QUIET_S``)."""
    from headwater.brokers import EmbeddedBroker
    from headwater.contract import Contract
    from headwater.store import DuckDBStore
    from headwater.stream.iot import run_mqtt_gateway

    _pin(1)
    broker, store = EmbeddedBroker(Path(folder) / "log"), DuckDBStore(Path(folder) / "gw.duckdb")
    stop = threading.Event()
    last = {"taken": -1, "at": time.monotonic()}

    def drained(result) -> None:
        if _done(result.payloads, sent, last):
            stop.set()

    cpu = time.process_time()
    result = run_mqtt_gateway(URL, broker, "readings", store=store, topics=[f"{prefix}/#"],
                              group=group, client_id=client, contract=Contract.load(CONTRACT),
                              idle_s=None, stop=stop, progress=drained)
    out.put(("gateway", vars(result), time.process_time() - cpu))
    store.close()
    broker.close()


def processor(folder: str, expected, out: mp.Queue) -> None:
    """The processor, until it has read every record the gateway wrote (or was quiet for
    ``QUIET_S``)."""
    from headwater.brokers import EmbeddedBroker
    from headwater.config import ProcessorSpec
    from headwater.store import DuckDBStore
    from headwater.stream import Committed, Processor

    _pin(1)
    alert_ms: list[int] = []
    window_ms: list[int] = []

    def measure(done: Committed) -> None:
        if done.opened.height:
            alert_ms.extend((done.committed_ms - done.opened["first_seen"]).to_list())
        windows = done.tables.get("iot_windows_w1s")
        if windows is not None and windows.height:
            ends = windows["window_end"].dt.epoch("ms")
            window_ms.extend((done.committed_ms - ends).to_list())

    broker, store = EmbeddedBroker(Path(folder) / "log"), DuckDBStore(Path(folder) / "p.duckdb")
    stop = threading.Event()
    last = {"taken": -1, "at": time.monotonic()}

    def drained(result) -> None:
        if _done(result.totals.records, expected, last):
            stop.set()

    cpu = time.process_time()
    result = Processor("iot", ProcessorSpec.model_validate(SPEC), broker=broker, store=store,
                       sinks=[measure]).run(follow=True, stop=stop, progress=drained)
    cpu = time.process_time() - cpu
    ids = store.query("SELECT DISTINCT message_id FROM iot_readings").column(0).to_pylist()
    store.close()
    broker.close()
    Path(folder, "stored_ids.json").write_text(json.dumps(ids))
    out.put(("processor", {"records": result.totals.records, "events": result.totals.events,
                           "duplicates": result.totals.duplicates,
                           "quarantined": result.totals.quarantined,
                           "alerts": result.totals.alerts_opened, "windows": result.totals.windows,
                           "alert_ms": alert_ms, "window_ms": window_ms}, cpu))


def bare_subscriber(prefix: str, client: str, sent, out: mp.Queue) -> None:
    """The floor: paho, QoS 1, a persistent session, automatic acks, a count and the latency
    (device timestamp → paho's callback) per message; nothing else."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.subscribeoptions import SubscribeOptions

    _pin(1)
    latency: list[int] = []
    ts = b'"ts":'

    def on_message(c, u, m) -> None:
        p = m.payload
        at = p.rfind(ts)
        if at >= 0:
            try:
                latency.append(int(time.time() * 1000) - int(p[at + 5:].strip(b" }")))
            except ValueError:
                latency.append(-1)
        else:
            latency.append(-1)

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval, props.ReceiveMaximum = 60, 65_535
    c.on_connect = lambda cl, u, f, rc, pr: cl.subscribe(f"{prefix}/#",
                                                          options=SubscribeOptions(qos=1))
    c.connect("127.0.0.1", 1883, 30, clean_start=False, properties=props)
    cpu = time.process_time()
    c.loop_start()
    last = {"taken": -1, "at": time.monotonic()}
    while not _done(len(latency), sent, last):
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    out.put(("bare", {"received": len(latency), "latency": [x for x in latency if x >= 0]},
             time.process_time() - cpu))


def _dropped_counter(seconds: float = 3.0) -> int | None:
    """Mosquitto's $SYS/broker/publish/messages/dropped (retained; republished when it
    changes, every sys_interval); ``None``: no value came."""
    import paho.mqtt.client as mqtt

    got: list[int] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, u, m: got.append(int(m.payload))
    c.on_connect = lambda cl, u, f, rc, pr: cl.subscribe("$SYS/broker/publish/messages/dropped")
    c.connect("127.0.0.1", 1883)
    c.loop_start()
    deadline = time.monotonic() + seconds
    while not got and time.monotonic() < deadline:
        time.sleep(0.1)
    c.disconnect()
    c.loop_stop()
    return got[0] if got else None


def _publish_all(ctx, args: argparse.Namespace, prefix: str, out: mp.Queue) -> tuple[int, float]:
    start_ms = int((time.time() + 4) * 1000)         # publishers simulate, then start together
    procs = [ctx.Process(target=publisher, args=(args, start_ms, i, prefix, out))
             for i in range(args.publishers)]
    for p in procs:
        p.start()
    sent, behind = 0, 0.0
    for _ in procs:
        kind, n, late = out.get(timeout=args.seconds * 4 + 120)
        assert kind == "sent"
        sent += n
        behind = max(behind, late)
    for p in procs:
        p.join()
    return sent, behind


def _pct(values: list[int] | np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _collect(out: mp.Queue, kinds: set[str]) -> dict[str, tuple[dict, float]]:
    found = {}
    while kinds - set(found):
        kind, data, cpu = out.get(timeout=600)
        found[kind] = (data, cpu)
    return found


def headwater_run(ctx, args: argparse.Namespace, folder: Path) -> dict:
    from headwater.brokers import EmbeddedBroker

    with EmbeddedBroker(folder / "log") as log:
        log.create_topic("readings", partitions=4)
    tag = uuid.uuid4().hex[:8]
    prefix = f"hwbench/{tag}"
    out, sent_q = ctx.Queue(), ctx.Queue()
    published, written = ctx.Value("q", -1), ctx.Value("q", -1)
    gw = ctx.Process(target=gateway, args=(str(folder), prefix, f"g-{tag}", f"gw-{tag}",
                                           published, out))
    pr = ctx.Process(target=processor, args=(str(folder), written, out))
    gw.start()
    pr.start()
    time.sleep(3)                                   # connected, subscribed, log open
    sent, behind = _publish_all(ctx, args, prefix, sent_q)
    published.value = sent
    gw_data, gw_cpu = _collect(out, {"gateway"})["gateway"]
    written.value = gw_data["readings"]
    pr_data, pr_cpu = _collect(out, {"processor"})["processor"]
    gw.join()
    pr.join()
    sim = _simulation(args, 0)
    expected = set(sim.messages.filter(~pl.col("malformed"))["message_id"].to_list())
    stored = set(json.loads((folder / "stored_ids.json").read_text()))
    return {"sent": sent, "behind": behind, "gateway": gw_data, "gateway_cpu": gw_cpu,
            "processor": pr_data, "processor_cpu": pr_cpu,
            "missing": len(expected - stored), "expected": len(expected),
            "sim_messages": sim.messages.height,
            "sim_malformed": int(sim.messages["malformed"].sum())}


def bare_run(ctx, args: argparse.Namespace) -> dict:
    tag = uuid.uuid4().hex[:8]
    prefix = f"hwbench/{tag}"
    out, sent_q, published = ctx.Queue(), ctx.Queue(), ctx.Value("q", -1)
    sub = ctx.Process(target=bare_subscriber, args=(prefix, f"bare-{tag}", published, out))
    sub.start()
    time.sleep(2)
    sent, behind = _publish_all(ctx, args, prefix, sent_q)
    published.value = sent
    data, cpu = _collect(out, {"bare"})["bare"]
    sub.join()
    return {"sent": sent, "behind": behind, "received": data["received"],
            "latency": data["latency"], "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000, help="messages per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--publishers", type=int, default=2, help="publishing processes")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {load[0]:.1f} "
          f"(shared: other work runs too), Python {platform.python_version()}; Mosquitto on "
          f"loopback; publishers on cpu 0, the rest on cpu 1")
    print(f"input: {args.rate:,} messages/s for {args.seconds:.0f} s, QoS 1, "
          f"{args.publishers} publishing processes, faults {', '.join(FAULTS)}")
    dropped_before = _dropped_counter()
    tmp = Path(tempfile.mkdtemp(prefix="hw-bench-mqtt-"))
    try:
        floor = bare_run(ctx, args)
        ours = headwater_run(ctx, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    dropped_after = _dropped_counter()
    gw, pr = ours["gateway"], ours["processor"]
    print(f"\nbare paho subscriber (floor): sent {floor['sent']:,}, received "
          f"{floor['received']:,} ({floor['sent'] - floor['received']:,} lost); "
          f"{floor['received'] / max(floor['cpu'], 1e-9):,.0f} messages per CPU-second; "
          f"latency device → callback p50 {_pct(floor['latency'], 50):.1f} ms, "
          f"p99 {_pct(floor['latency'], 99):.1f} ms")
    print(f"headwater: sent {ours['sent']:,}; gateway took {gw['payloads']:,} "
          f"({gw['readings']:,} readings, {gw['rejected']:,} quarantined, {gw['dropped']:,} "
          f"dropped by the contract), {gw['payloads'] / max(ours['gateway_cpu'], 1e-9):,.0f} "
          f"messages per CPU-second")
    print(f"processor: {pr['records']:,} records → {pr['events']:,} events, "
          f"{pr['duplicates']:,} duplicates dropped, {pr['quarantined']:,} quarantined; "
          f"{pr['records'] / max(ours['processor_cpu'], 1e-9):,.0f} events per CPU-second; "
          f"{pr['windows']:,} window results, {pr['alerts']:,} alerts")
    accounted = pr["events"] + pr["duplicates"] + pr["quarantined"] + gw["rejected"] \
        + gw["dropped"]
    print(f"conservation: sent {ours['sent']:,} = stored {pr['events']:,} + quarantined "
          f"{gw['rejected'] + pr['quarantined']:,} + duplicates "
          f"{pr['duplicates'] + gw['dropped']:,} = {accounted:,}: "
          f"{'holds' if accounted == ours['sent'] else 'DOES NOT hold'}; message ids missing "
          f"from the stored readings: {ours['missing']:,} of {ours['expected']:,}")
    print(f"alert latency (device timestamp → alert committed): p50 "
          f"{_pct(pr['alert_ms'], 50):.1f} ms, p99 {_pct(pr['alert_ms'], 99):.1f} ms over "
          f"{len(pr['alert_ms'])} alerts; target p99 ≤ 50 ms: "
          f"{'met' if _pct(pr['alert_ms'], 99) <= 50 else 'NOT met'}")
    print(f"window-result latency (window end → result committed, incl. the "
          f"{SPEC['watermark_delay']} watermark delay): p50 {_pct(pr['window_ms'], 50):.0f} ms, "
          f"p99 {_pct(pr['window_ms'], 99):.0f} ms")
    # Mosquitto publishes the counter only once it is non-zero: no value is zero drops
    print(f"publishers fell behind the pace by at most {max(ours['behind'], floor['behind']):.1f}"
          f" s; Mosquitto's dropped counter (broker-wide; none published: nothing ever "
          f"dropped): {dropped_before} → {dropped_after}")


if __name__ == "__main__":
    main()

"""Stream processors for people: run one declared in headwater.yaml, show their status."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from headwater.brokers import Offset
from headwater.config import Project
from headwater.core import ConfigError, HeadwaterError
from headwater.store import open_store, run_store
from headwater.stream._processor import Processor, ProcessorResult, Sink


def member_partitions(partitions: list[int], member: str | None) -> list[int] | None:
    """The partitions member ``i/n`` owns (``p % n == i``); ``None`` without a member.

    >>> member_partitions([0, 1, 2, 3, 4], "1/2")
    [1, 3]
    """
    if member is None:
        return None
    try:
        index, count = (int(x) for x in member.split("/"))
    except ValueError:
        raise ConfigError(f"--member {member!r} is not i/n (e.g. 0/2, 1/2)") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--member {member!r}: i must be in 0 … n-1",
                          hint="two processes: --member 0/2 and --member 1/2")
    return [p for p in partitions if p % count == index]


def run_processor(project: Project, name: str, *, follow: bool = False, flush: bool = False,
                  member: str | None = None, stop: threading.Event | None = None,
                  progress: Callable[[ProcessorResult], None] | None = None,
                  metrics_port: int | None = None,
                  sinks: Sequence[Sink] = ()) -> ProcessorResult:
    """Run the processor ``name`` of headwater.yaml: to the end of its topic, or until
    stopped with ``follow``; ``member`` ``i/n`` takes every n-th partition. Its ``contract:``
    file (relative to the project) validates the events.

    Its alerts go to the project's alert sinks (``alerts:``) as well as to its alerts table,
    and every commit to ``sinks`` (see :class:`Processor`). While following, the project's
    alert rules are evaluated continuously and, with ``metrics_port``, ``/metrics`` is served
    for Prometheus.
    """
    from headwater.brokers import open_broker
    from headwater.contract import Contract
    from headwater.monitor.alerts import AlertHandOff, check_rules, monitoring

    spec = project.processor(name)
    contract = Contract.load(project.root / spec.contract) if spec.contract else None
    broker = open_broker(project.broker(spec.input.broker), project.root)
    store = open_store(project, spec.outputs.store)
    handoff = AlertHandOff(project) if project.alerts.stream else None
    job = f"stream-{name}" + (f"-{member.replace('/', 'of')}" if member else "")
    try:
        partitions = member_partitions(broker.partitions(spec.input.topic), member)
        processor = Processor(name, spec, broker=broker, store=store, partitions=partitions,
                              on_alerts=handoff.submit if handoff else None,
                              sinks=sinks, contract=contract)
        with monitoring(project, job=job, metrics_port=metrics_port, alerts=follow):
            result = processor.run(follow=follow, flush=flush, stop=stop,
                                   runs=run_store(project), progress=progress)
    finally:
        store.close()
        broker.close()
        if handoff is not None:
            handoff.close()
    if not follow:
        check_rules(project, job=job)
    return result


@dataclass
class ProcessorStatus:
    """What ``headwater stream status`` shows for one processor."""

    name: str
    topic: str
    committed: dict[int, Offset]
    end: dict[int, Offset]
    lag: int | None  # None: offsets are sequence numbers (Kinesis), no count
    last_run: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return vars(self)


def processor_status(project: Project) -> list[ProcessorStatus]:
    """Per processor: committed positions, the topic's end, lag and the last run's figures
    (throughput, watermark, late and dropped counts, open windows, active alerts)."""
    from headwater.brokers import offset_lag, open_broker

    found = []
    runs = run_store(project)
    for name, spec in sorted(project.processors.items()):
        store = open_store(project, spec.outputs.store, read_only=True)
        broker = open_broker(project.broker(spec.input.broker), project.root)
        try:
            committed = {int(k): v["offset"]
                         for k, v in store.state(f"stream:{name}").items()}
            try:
                end = broker.end_positions(spec.input.topic)
            except HeadwaterError:
                end = {}
        finally:
            store.close()
            broker.close()
        lag = offset_lag(committed, end)
        newest = runs.list(kind="stream", pipeline=name, limit=1)
        last = None
        if newest:
            record = runs.get(newest[0]["id"])
            last = {"run_id": record["id"], "status": record["status"],
                    "started_at": record["started_at"], **record["report"].get("stream", {})}
        found.append(ProcessorStatus(name, spec.input.topic, committed, end, lag, last))
    return found





"""Stream processors for people: run one declared in headwater.yaml, show their status."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    """What ``headwater stream status`` shows for one processor: its positions and lag, and
    per member (the processes that share its partitions) the figures of its newest run,
    brought up to date every few seconds while it runs."""

    name: str
    topic: str
    committed: dict[int, Offset]
    end: dict[int, Offset]
    lag: int | None  # None: offsets are sequence numbers (Kinesis), no count
    members: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return vars(self)


def processor_status(project: Project, *, now: datetime | None = None) -> list[ProcessorStatus]:
    """Per processor: committed positions, the topic's end, the lag, and per member its newest
    run: throughput, watermark, late and dropped counts, open windows, active alerts, and
    whether it is running (``live``: it reported within the last few seconds).

    While a member writes to an embedded (DuckDB) store, which it holds locked, the positions
    come from what the members reported instead of the store."""
    from headwater.brokers import offset_lag, open_broker

    now = now or datetime.now(UTC)
    found = []
    runs = run_store(project)
    for name, spec in sorted(project.processors.items()):
        members = _members(runs, name, now)
        try:
            store = open_store(project, spec.outputs.store, read_only=True)
            try:
                committed = {int(k): v["offset"]
                             for k, v in store.state(f"stream:{name}").items()}
            finally:
                store.close()
        except HeadwaterError:       # held by a running member
            committed = {int(p): o for m in members
                         for p, o in (m.get("positions") or {}).items()}
        broker = open_broker(project.broker(spec.input.broker), project.root)
        try:
            end = broker.end_positions(spec.input.topic)
        except HeadwaterError:
            end = {}
        finally:
            broker.close()
        lag = offset_lag(committed, end)
        found.append(ProcessorStatus(name, spec.input.topic, committed, end, lag, members))
    return found


def _members(runs: Any, name: str, now: datetime) -> list[dict[str, Any]]:
    """The newest run of each set of partitions, newest first (at most ``MEMBERS_SHOWN``)."""
    from headwater.stream._processor import STATUS_EVERY_S

    members: dict[tuple[int, ...], dict[str, Any]] = {}
    for row in runs.list(kind="stream", pipeline=name, limit=50, reports=True):
        stream = row["report"].get("stream", {})
        key = tuple(stream.get("partitions") or ())
        if key in members or len(members) >= MEMBERS_SHOWN:
            continue
        updated = row["started_at"] + timedelta(seconds=row.get("duration_s") or 0)
        members[key] = {"run_id": row["id"], "status": row["status"],
                        "started_at": row["started_at"], "updated_at": updated,
                        "live": row["status"] == "running"
                        and (now - updated).total_seconds() < 3 * STATUS_EVERY_S,
                        **stream}
    return list(members.values())


#: Members shown per processor (the newest run of each set of partitions).
MEMBERS_SHOWN = 16

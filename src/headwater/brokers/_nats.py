"""NATS JetStream behind the broker interface (nats-py).

A **topic** is a stream ``<prefix>-<topic>`` whose subjects are ``<prefix>.<topic>.<N>``, one
per partition, listed in the stream's configuration (so the partition count is the stream's
own). A **record** is a message: the value is the payload; the key (base64) and the record's
timestamp (ms) ride in the headers ``Hw-Key`` and ``Hw-Ts``, and ``Nats-Msg-Id`` makes a
retried ``produce`` idempotent within the stream's duplicate window. **Offsets** are stream
sequences: they grow within a partition but are shared by the partitions of a topic, so they
are not contiguous per partition.

A **consumer group** is one durable pull consumer per partition, ``<group>__p<N>``, filtered to
the partition's subject, with AckAll: ``commit`` acknowledges the last record handled, which
acknowledges everything before it, and the consumer's ack floor is the group's position. Each
partition keeps one pull request open (a long poll), so records arrive while the caller works.
A consumer that opens a group whose durable has deliveries nobody acknowledged (a crashed or
closed predecessor) recreates it at the ack floor: redelivery is immediate and in order, not
after ``ack_wait``. ``seek`` moves the durable too (it is the group's position store).

nats-py is asynchronous; the interface is not: a broker runs its connection on an event loop
in a daemon thread and every call waits for its coroutine there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.brokers._base import (
    RECORD_SCHEMA,
    Broker,
    BrokerError,
    Consumer,
    Positions,
    StartAt,
    TopicInfo,
    unknown_topic,
)
from headwater.brokers._partition import partition_for
from headwater.brokers._records import check_sizes, normalise, records_table
from headwater.brokers._retry import backoff
from headwater.core import duration_ms, require
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config import NatsBrokerSpec

log = get_logger(__name__)
T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_KEY, _TS, _ID = "Hw-Key", "Hw-Ts", "Nats-Msg-Id"
_HEADER_ROOM = 512  # what headwater's headers take of the server's max_payload, at most
_PULL_EXPIRES_NS = 10_000_000_000  # an idle pull request is renewed every 10 s
_PUBLISH_WINDOW = 20_000  # messages in flight before produce waits for acknowledgements
_ACK_TIMEOUT_S = 10.0
#: groups that ``headwater stream tail`` uses: their durables are deleted on close.
_SCRATCH = "headwater-tail-"


def _check(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BrokerError(f"{what} name {name!r} cannot be a NATS stream or consumer name",
                          hint="use letters, digits, '_' and '-' (at most 200 characters)")
    return name


class _Loop:
    """An asyncio event loop on a daemon thread, and a way to wait for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="headwater-nats")
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


class NatsBroker(Broker):
    """NATS JetStream as a broker (see the module docstring for how records map).

    Parameters (recorded; the first call connects): ``servers`` (URLs), ``token`` or
    ``user``/``password`` or a ``credentials`` file, ``stream_prefix`` (stream names and
    subjects start with it), ``replicas`` of streams it creates, ``ack_wait_s`` (how long a
    delivered record may stay unacknowledged before JetStream delivers it again),
    ``fetch_batch`` (records per pull request), ``connect_timeout`` and ``retries`` (of a
    connection or request, with backoff, before a :class:`BrokerError`), and ``name`` (the
    broker's key under ``brokers:``, for messages).
    """

    kind = "nats"

    def __init__(self, servers: Sequence[str] = ("nats://127.0.0.1:4222",), *,
                 token: str | None = None, user: str | None = None,
                 password: str | None = None, credentials: str | None = None,
                 stream_prefix: str = "headwater", replicas: int = 1,
                 ack_wait_s: float = 60.0, fetch_batch: int = 2000,
                 connect_timeout: float = 2.0, retries: int = 4,
                 name: str | None = None) -> None:
        self.servers = list(servers)
        self.token = token
        self.user = user
        self.password = password
        self.credentials = credentials
        self.stream_prefix = stream_prefix
        self.replicas = replicas
        self.ack_wait_s = ack_wait_s
        self.fetch_batch = fetch_batch
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.name = name
        self._loop: _Loop | None = None
        self._nc: Any = None
        self._js: Any = None
        self._partitions: dict[str, int] = {}
        self._max_payload: int | None = None
        self._last_error: BaseException | None = None
        self._lock = threading.Lock()

    # -- connection, retries, errors ------------------------------------------------------------

    def _setting(self, key: str) -> str:
        return f"brokers.{self.name or '<name>'}.{key}"

    def describe(self) -> str:
        shown = [urlsplit(s)._replace(netloc=urlsplit(s).hostname + (
            f":{urlsplit(s).port}" if urlsplit(s).port else "")).geturl()
            if "@" in s else s for s in self.servers]
        label = f"NATS broker '{self.name}'" if self.name else "NATS JetStream"
        return f"{label} at {', '.join(shown)}"

    async def _connect(self) -> None:
        nats = require("nats", "nats")

        async def quiet(exc: Exception) -> None:  # nats-py would log a traceback per error
            self._last_error = exc
            log.debug("nats_client_error", error=str(exc))

        options: dict[str, Any] = {
            "servers": self.servers, "connect_timeout": self.connect_timeout,
            # headwater reconnects itself (with backoff, see _run), and sees the real error
            # (nats-py's own loop would retry forever: 0 attempts means no limit to it)
            "allow_reconnect": False, "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0.1, "error_cb": quiet, "name": "headwater"}
        if self.token:
            options["token"] = self.token
        if self.user:
            options["user"], options["password"] = self.user, self.password or ""
        if self.credentials:
            options["user_credentials"] = self.credentials
        self._nc = await nats.connect(**options)
        self._js = self._nc.jetstream(timeout=self.connect_timeout * 2)

    def _run(self, make: Callable[[], Awaitable[T]], what: str) -> T:
        """Run ``make()`` on the connection's loop, connecting first; transient failures
        (refused, timed out, reconnecting) are retried with backoff, then reported."""
        require("nats", "nats")
        import nats.errors as ne
        import nats.js.errors as je

        with self._lock:
            if self._loop is None:
                self._loop = _Loop()
        loop = self._loop
        delays = backoff(self.retries)

        async def attempt() -> T:
            if self._nc is None or self._nc.is_closed:
                self._last_error = None
                await self._connect()
            return await make()

        while True:
            try:
                return loop.run(attempt(), timeout=self.connect_timeout * 4 + 30)
            except (OSError, TimeoutError, ne.Error) as exc:
                if _refused(exc) or _refused(self._last_error):
                    raise BrokerError(
                        f"{self.describe()} refused the credentials while trying to {what}",
                        hint=f"check {self._setting('token')}, {self._setting('user')}/"
                        f"{self._setting('password')} or {self._setting('credentials')} "
                        "(use ${ENV} for secrets)") from None
                if isinstance(exc, ne.Error) and not _transient(exc):
                    detail = exc.description if isinstance(exc, je.APIError) else str(exc)
                    raise BrokerError(f"{self.describe()} refused to {what}: {detail}",
                                      hint="check the stream with `nats stream info` and the "
                                      "server's limits") from None
                delay = next(delays, None)
                if delay is None:
                    raise self._unreachable(what, exc) from None
                log.warning("nats_retry", broker=self.describe(), action=what,
                            error=str(exc) or type(exc).__name__, wait_s=round(delay, 2))
                if self._nc is not None and isinstance(exc, OSError | ne.NoServersError):
                    self._nc = None  # connect afresh on the next attempt
                time.sleep(delay)

    def _unreachable(self, what: str, exc: BaseException) -> BrokerError:
        import nats.errors as ne

        if isinstance(exc, ne.NoRespondersError):
            return BrokerError(f"{self.describe()}: JetStream did not answer while trying to "
                               f"{what}", hint="start nats-server with JetStream enabled "
                               "(`nats-server -js`) or check the account's JetStream limits")
        if isinstance(exc, ne.NoServersError) and self._last_error is not None:
            exc = self._last_error  # why the servers were not available
        reason = str(exc) or type(exc).__name__
        return BrokerError(
            f"cannot reach {self.describe()} to {what} after {self.retries + 1} attempts "
            f"({reason})",
            hint=f"start the NATS server, or fix {self._setting('servers')} in headwater.yaml; "
            f"{self._setting('retries')} and {self._setting('connect_timeout')} set how long "
            "headwater keeps trying")

    # -- topics ---------------------------------------------------------------------------------

    def _stream(self, topic: str) -> str:
        return f"{self.stream_prefix}-{_check(topic, 'topic')}"

    def _subject(self, topic: str, partition: int) -> str:
        return f"{self.stream_prefix}.{topic}.{partition}"

    def _count(self, topic: str) -> int:
        """The partition count of ``topic`` (cached), or the unknown-topic error."""
        known = self._partitions.get(topic)
        if known is not None:
            return known
        from nats.js.errors import NotFoundError

        stream = self._stream(topic)

        async def info() -> int | None:
            try:
                found = await self._js.stream_info(stream)
            except NotFoundError:
                return None
            return len(found.config.subjects or [])

        count = self._run(info, f"look up topic '{topic}'")
        if count is None:
            raise unknown_topic(topic, f"on {self.describe()}",
                                [t.name for t in self.topics()])
        self._partitions[topic] = count
        return count

    def create_topic(self, topic: str, *, partitions: int = 1) -> None:
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        stream = self._stream(topic)
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise BrokerError(f"topic '{topic}': partitions must be a whole number >= 1, "
                              f"got {partitions!r}", hint="use 1 or more partitions")

        async def create() -> None:
            try:
                await self._js.stream_info(stream)
                return
            except NotFoundError:
                pass
            await self._js.add_stream(StreamConfig(
                name=stream, subjects=[self._subject(topic, p) for p in range(partitions)],
                storage=StorageType.FILE, num_replicas=self.replicas, duplicate_window=120.0,
                description=f"headwater topic {topic} ({partitions} partitions)"))

        self._run(create, f"create topic '{topic}'")

    def topics(self) -> list[TopicInfo]:
        start = f"{self.stream_prefix}-"

        async def listing() -> list[TopicInfo]:
            out = []
            for s in await self._js.streams_info():
                if s.config.name.startswith(start):
                    out.append(TopicInfo(s.config.name[len(start):], len(s.config.subjects or []),
                                         records=s.state.messages, bytes=s.state.bytes))
            return sorted(out, key=lambda t: t.name)

        return self._run(listing, "list topics")

    def partitions(self, topic: str) -> list[int]:
        return list(range(self._count(topic)))

    def end_positions(self, topic: str) -> Positions:
        from nats.js.errors import NotFoundError

        n, stream = self._count(topic), self._stream(topic)

        async def last(p: int) -> int | None:
            try:
                return (await self._js.get_last_msg(stream, self._subject(topic, p))).seq
            except NotFoundError:
                return None

        async def ends() -> list[int | None]:
            return await asyncio.gather(*(last(p) for p in range(n)))

        found = self._run(ends, f"read the end of topic '{topic}'")
        return {p: seq for p, seq in enumerate(found) if seq is not None}

    # -- producing ------------------------------------------------------------------------------

    @property
    def max_value_bytes(self) -> int | None:
        if self._max_payload is None:
            async def limit() -> int:
                return int(self._nc.max_payload)

            self._max_payload = self._run(limit, "read the server's max_payload")
        return self._max_payload - _HEADER_ROOM

    def produce(self, topic: str, records: pa.Table) -> int:
        import polars as pl

        n = self._count(topic)
        table = normalise(records, topic)
        if table.num_rows == 0:
            return 0
        check_sizes(table, self.max_value_bytes, topic=topic, where=self.describe(),
                    setting="max_payload in the NATS server's configuration")
        parts = partition_for(table["key"], n).tolist()
        keys = pl.Series(table["key"]).bin.encode("base64").to_list()
        stamps = pc.cast(table["timestamp"].cast(pa.int64()), pa.string()).to_pylist()
        values = table["value"].to_pylist()
        batch = uuid.uuid4().hex
        subjects = [self._subject(topic, p) for p in range(n)]
        messages = [
            (subjects[p], v, {_TS: t, _ID: f"{batch}.{i}"} if k is None else
             {_TS: t, _KEY: k, _ID: f"{batch}.{i}"})
            for i, (p, v, t, k) in enumerate(zip(parts, values, stamps, keys, strict=True))]
        self._run(lambda: self._publish(topic, messages), f"produce to topic '{topic}'")
        return table.num_rows

    async def _publish(self, topic: str, messages: list[tuple[str, bytes, dict]]) -> None:
        """Publish with a reply inbox and wait until JetStream acknowledged every message
        (``_PUBLISH_WINDOW`` in flight at most)."""
        import nats.errors as ne

        nc = self._nc
        inbox = nc.new_inbox()
        acked = 0
        errors: list[str] = []
        progress = asyncio.Event()

        async def on_ack(msg: Any) -> None:
            nonlocal acked
            if msg.headers and msg.headers.get("Status") == "503":
                errors.append("no stream listens on the subject (503 no responders)")
            elif b'"error"' in msg.data:
                errors.append(json.loads(msg.data)["error"].get("description", "?"))
            acked += 1
            progress.set()

        async def wait_for(count: int) -> None:
            while acked < count:
                progress.clear()
                try:
                    await asyncio.wait_for(progress.wait(), _ACK_TIMEOUT_S)
                except TimeoutError:
                    raise ne.TimeoutError from None

        sub = await nc.subscribe(inbox, cb=on_ack)
        try:
            for i, (subject, value, headers) in enumerate(messages):
                await nc.publish(subject, value, reply=inbox, headers=headers)
                if i - acked >= _PUBLISH_WINDOW:
                    await wait_for(i - _PUBLISH_WINDOW // 2)
            await wait_for(len(messages))
        finally:
            await sub.unsubscribe()
        if errors:
            raise BrokerError(f"{self.describe()} refused {len(errors)} record(s) produced to "
                              f"'{topic}': {errors[0]}",
                              hint="check the stream's limits (`nats stream info "
                              f"{self._stream(topic)}`)")

    # -- consuming ------------------------------------------------------------------------------

    def consumer(self, topic: str, *, group: str,
                 partitions: Sequence[int] | None = None) -> NatsConsumer:
        _check(group, "consumer group")
        n = self._count(topic)
        chosen = list(range(n)) if partitions is None else sorted(set(partitions))
        bad = [p for p in chosen if not 0 <= p < n]
        if bad:
            raise BrokerError(f"topic '{topic}' has partitions 0..{n - 1}, not {bad}",
                              hint="`headwater stream topics` shows the partition counts")
        return NatsConsumer(self, topic, group, chosen)

    def groups(self, topic: str) -> list[str]:
        stream = self._stream(topic)
        self._count(topic)

        async def names() -> list[str]:
            return [c.name for c in await self._js.consumers_info(stream)]

        found = self._run(names, f"list the consumer groups of '{topic}'")
        return sorted({n.rsplit("__p", 1)[0] for n in found if "__p" in n})

    def group_lag(self, topic: str, group: str) -> dict[int, int] | None:
        from nats.js.errors import NotFoundError

        n, stream = self._count(topic), self._stream(topic)

        async def lags() -> dict[int, int]:
            info = await self._js.stream_info(stream, subjects_filter=f"{self.stream_prefix}."
                                              f"{topic}.>")
            counts = info.state.subjects or {}
            out = {}
            for p in range(n):
                try:
                    c = await self._js.consumer_info(stream, _durable(group, p))
                    out[p] = int(c.num_pending or 0) + int(c.num_ack_pending or 0)
                except NotFoundError:
                    out[p] = int(counts.get(self._subject(topic, p), 0))
            return out

        return self._run(lags, f"read the lag of group '{group}' on '{topic}'")

    def reset_group(self, topic: str, group: str, start: StartAt) -> Positions:
        with self.consumer(topic, group=group) as consumer:
            consumer.seek(start)
            return consumer.committed()

    def close(self) -> None:
        loop, nc = self._loop, self._nc
        self._loop = self._nc = self._js = None
        if loop is None:
            return
        if nc is not None and not nc.is_closed:
            try:
                loop.run(nc.close(), timeout=5)
            except Exception as exc:  # closing: nothing left to protect
                log.debug("nats_close_failed", error=str(exc))
        loop.stop()


def _transient(exc: BaseException) -> bool:
    """A failure that a retry may cure (the server restarting, a network blip)."""
    import nats.errors as ne
    import nats.js.errors as je

    if isinstance(exc, je.ServiceUnavailableError):
        return True
    return isinstance(exc, ne.TimeoutError | ne.NoServersError | ne.ConnectionClosedError |
                      ne.ConnectionReconnectingError | ne.StaleConnectionError |
                      ne.NoRespondersError | ne.FlushTimeoutError | ne.UnexpectedEOF)


def _refused(exc: BaseException | None) -> bool:
    """The server turned the credentials down (nats-py does not always say so by type)."""
    import nats.errors as ne

    return isinstance(exc, ne.AuthorizationError | ne.InvalidUserCredentialsError) or \
        (exc is not None and "authorization violation" in str(exc).lower())


def _durable(group: str, partition: int) -> str:
    return f"{group}__p{partition}"


def _committed_of(info: Any) -> int | None:
    """The group's position in a durable's state: its ack floor, or where it was started."""
    from nats.js.api import DeliverPolicy

    if info.ack_floor is not None and info.ack_floor.stream_seq:
        return int(info.ack_floor.stream_seq)
    cfg = info.config
    if cfg.deliver_policy == DeliverPolicy.BY_START_SEQUENCE and (cfg.opt_start_seq or 0) > 1:
        return int(cfg.opt_start_seq) - 1
    return None


class _Reader:
    """One partition of a consumer: its durable, a subscription, one pull request kept open.

    Everything here runs on the broker's event loop; messages wait in ``buffer``.
    """

    def __init__(self, consumer: NatsConsumer, partition: int) -> None:
        self.consumer = consumer
        self.partition = partition
        self.durable = _durable(consumer.group, partition)
        self.buffer: list[Any] = []
        self.asked = 0
        self.failed: str | None = None
        self.sub: Any = None
        self.inbox = ""

    async def start(self) -> None:
        nc = self.consumer.broker._nc
        self.inbox = nc.new_inbox()
        self.buffer, self.asked, self.failed = [], 0, None
        self.sub = await nc.subscribe(self.inbox, cb=self._on_msg)
        await self.ask()

    async def stop(self) -> None:
        if self.sub is not None:
            sub, self.sub = self.sub, None
            await sub.unsubscribe()  # the server drops a pull request nobody listens to

    async def ask(self) -> None:
        """Open a pull request unless one is open or enough records are waiting."""
        c = self.consumer
        if self.sub is None or self.asked or self.failed or \
                len(self.buffer) >= 4 * c.broker.fetch_batch:
            return
        self.asked = c.broker.fetch_batch
        request = json.dumps({"batch": self.asked, "expires": _PULL_EXPIRES_NS}).encode()
        await c.broker._nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{c.stream}.{self.durable}", request, reply=self.inbox)

    async def _on_msg(self, msg: Any) -> None:
        if not msg.data and msg.headers and "Status" in msg.headers:
            status = msg.headers["Status"]
            if status == "100":  # idle heartbeat
                return
            self.asked = 0
            if status in ("404", "408"):  # no messages / the request expired: ask again
                await self.ask()
            else:
                self.failed = f"{status} {msg.headers.get('Description', '')}".strip()
            self.consumer.ready.set()
            return
        self.buffer.append(msg)
        self.asked -= 1
        self.consumer.ready.set()
        if self.asked <= 0:
            self.asked = 0
            await self.ask()


class NatsConsumer(Consumer):
    """A reader of one NATS topic for one group: a durable pull consumer per partition."""

    def __init__(self, broker: NatsBroker, topic: str, group: str,
                 partitions: list[int]) -> None:
        self.broker = broker
        self.topic = topic
        self.group = group
        self.stream = broker._stream(topic)
        self._partitions = partitions
        self._readers: dict[int, _Reader] | None = None
        self._conn: Any = None
        self._turn = 0
        self.ready: asyncio.Event | None = None
        # caller's side: per partition, delivered records not yet acknowledged (seqs, replies)
        self._unacked: dict[int, list[tuple[np.ndarray, list[str]]]] = {p: [] for p in partitions}
        self._delivered: dict[int, int] = {}
        self._acked: dict[int, int] = {}
        self._not_before: dict[int, int] = {}  # seek by time: skip records older than this (ms)

    def assignment(self) -> list[int]:
        return list(self._partitions)

    # -- durables -------------------------------------------------------------------------------

    def _config(self, partition: int, start: str | int | datetime = "earliest") -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        b = self.broker
        cfg = ConsumerConfig(
            durable_name=_durable(self.group, partition),
            filter_subject=b._subject(self.topic, partition), ack_policy=AckPolicy.ALL,
            ack_wait=b.ack_wait_s, max_ack_pending=-1, max_deliver=-1,
            description=f"headwater group {self.group}, partition {partition}",
            inactive_threshold=3600.0 if self.group.startswith(_SCRATCH) else None)
        if isinstance(start, int):
            cfg.deliver_policy, cfg.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, max(1, start)
        elif isinstance(start, datetime):
            cfg.deliver_policy, cfg.opt_start_time = DeliverPolicy.BY_START_TIME, start
        else:
            cfg.deliver_policy = DeliverPolicy.ALL
        return cfg

    async def _info(self, partition: int) -> Any:
        from nats.js.errors import NotFoundError

        try:
            return await self.broker._js.consumer_info(self.stream, _durable(self.group,
                                                                             partition))
        except NotFoundError:
            return None

    async def _recreate(self, partition: int, config: Any) -> None:
        from nats.js.errors import NotFoundError

        with contextlib.suppress(NotFoundError):
            await self.broker._js.delete_consumer(self.stream, config.durable_name)
        await self.broker._js.add_consumer(self.stream, config=config)

    async def _open(self) -> dict[int, _Reader]:
        """Attach every assigned partition's durable (creating or resetting it) and start
        reading; a durable with deliveries nobody acknowledged restarts at its ack floor.

        After a reconnection the same happens again: what this consumer already handed out
        (up to ``_delivered``) is dropped when it comes again, so the caller never gets a
        record twice within one consumer.
        """
        if self._readers is not None and self._conn is self.broker._nc:
            return self._readers
        if self._readers is not None:  # a new connection: the old subscriptions are gone
            log.warning("nats_consumer_reattached", topic=self.topic, group=self.group)
            self._unacked = {p: [] for p in self._partitions}
        self._conn = self.broker._nc
        self.ready = asyncio.Event()
        readers = {}
        for p in self._partitions:
            info = await self._info(p)
            if info is None:
                await self._recreate(p, self._config(p))
                done = None
            else:
                done = _committed_of(info)
                if info.num_ack_pending or info.num_waiting:
                    config = self._config(p, done + 1) if done is not None else info.config
                    await self._recreate(p, config)
            self._acked[p] = done or 0
            self._delivered[p] = max(self._delivered.get(p, 0), done or 0)
            readers[p] = _Reader(self, p)
            await readers[p].start()
        self._readers = readers
        return readers

    async def _move(self, partition: int, start: str | int | datetime, *,
                    reread: bool) -> None:
        """Restart one partition's durable at ``start`` (the group's position moves there);
        ``reread``: hand out again what comes from there (a seek), else drop what this
        consumer handed out already (a commit)."""
        readers = await self._open()
        reader = readers[partition]
        await reader.stop()
        await self._recreate(partition, self._config(partition, start))
        self._unacked[partition] = []
        floor = start - 1 if isinstance(start, int) else 0
        self._acked[partition] = floor
        self._delivered[partition] = floor if reread else max(floor,
                                                              self._delivered[partition])
        await reader.start()

    def seek(self, start: StartAt) -> None:
        b = self.broker

        async def last_seq() -> int:
            return int((await b._js.stream_info(self.stream)).state.last_seq)

        async def move_all() -> None:
            self._not_before.clear()
            latest = await last_seq() + 1 if start == "latest" else None
            for p in self._partitions:
                if start == "earliest":
                    await self._move(p, "earliest", reread=True)
                elif start == "latest":
                    await self._move(p, latest, reread=True)
                elif isinstance(start, datetime):
                    when = start if start.tzinfo else start.replace(tzinfo=UTC)
                    self._not_before[p] = int(when.timestamp() * 1000)
                    await self._move(p, when.astimezone(UTC), reread=True)
                else:
                    await self._move(p, int(start[p]) + 1 if p in start else "earliest",
                                     reread=True)

        if not (start in ("earliest", "latest") or isinstance(start, datetime | Mapping)):
            raise BrokerError(f"cannot seek to {start!r}",
                              hint="use 'earliest', 'latest', a datetime or {partition: offset}")
        b._run(move_all, f"seek group '{self.group}' on '{self.topic}'")

    # -- reading --------------------------------------------------------------------------------

    def poll(self, *, max_records: int = 10_000, timeout: float = 1.0) -> pa.Table:
        taken = self.broker._run(lambda: self._take(max_records, timeout),
                                 f"read topic '{self.topic}'")
        tables = [self._table(p, msgs) for p, msgs in taken]
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return RECORD_SCHEMA.empty_table()
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    async def _take(self, max_records: int, timeout: float) -> list[tuple[int, list[Any]]]:
        readers = await self._open()
        assert self.ready is not None
        deadline = time.monotonic() + timeout
        order = self._partitions[self._turn:] + self._partitions[:self._turn]
        self._turn = (self._turn + 1) % max(1, len(self._partitions))
        while True:
            self.ready.clear()
            out, left = [], max_records
            for p in order:
                reader = readers[p]
                if reader.failed:
                    raise BrokerError(
                        f"{self.broker.describe()}: the pull consumer of group '{self.group}' "
                        f"on '{self.topic}' partition {p} failed ({reader.failed})",
                        hint="run again; if it persists, check `nats consumer info "
                        f"{self.stream} {reader.durable}`")
                if left > 0 and reader.buffer:
                    got = reader.buffer[:left]
                    del reader.buffer[:left]
                    out.append((p, got))
                    left -= len(got)
                await reader.ask()
            remaining = deadline - time.monotonic()
            if out or remaining <= 0:
                return out
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), remaining)

    def _table(self, partition: int, msgs: list[Any]) -> pa.Table:
        """Messages as records (vectorised past the one pass that takes the fields out):
        redeliveries of what this consumer already holds are dropped."""
        import polars as pl

        replies = [m.reply for m in msgs]
        headers = [m.headers or {} for m in msgs]
        tokens = pl.Series(replies, dtype=pl.Utf8).str.split(".")
        width = len(replies[0].split("."))
        seq_at, ts_at = (5, 7) if width == 9 else (7, 9)  # $JS.ACK[.domain.hash].stream...
        seqs = tokens.list.get(seq_at).cast(pl.Int64).to_numpy()
        server_ms = (tokens.list.get(ts_at).cast(pl.Int64) // 1_000_000).to_arrow()
        stamps = pc.coalesce(pc.cast(pa.array([h.get(_TS) for h in headers], pa.string()),
                                     pa.int64()), server_ms)
        start = self._delivered.get(partition, 0)
        keep = seqs > np.maximum.accumulate(np.concatenate([[start], seqs[:-1]]))
        floor = self._not_before.get(partition)
        if floor is not None:
            reached = np.flatnonzero(stamps.to_numpy(zero_copy_only=False) >= floor)
            if len(reached):
                keep[:reached[0]] = False
                del self._not_before[partition]
            else:
                keep[:] = False
        if len(seqs):
            self._delivered[partition] = max(start, int(seqs.max()))
        fresh = np.flatnonzero(seqs > self._acked.get(partition, 0))
        if len(fresh):  # redeliveries too: after a reconnection they are what can be acked
            self._unacked[partition].append((seqs[fresh], [replies[i] for i in fresh]))
        if not keep.any():
            return RECORD_SCHEMA.empty_table()
        mask = pa.array(keep)
        keys = pl.Series([h.get(_KEY) for h in headers], dtype=pl.Utf8).str.decode("base64")
        table = records_table(
            partition, pa.array(seqs), keys.to_arrow().cast(pa.binary()),
            pa.array([m.data for m in msgs], pa.binary()),
            stamps.cast(RECORD_SCHEMA.field("timestamp").type))
        return table if keep.all() else table.filter(mask)

    # -- positions ------------------------------------------------------------------------------

    def commit(self, positions: Positions) -> None:
        bad = [p for p in positions if p not in self._unacked]
        if bad:
            raise BrokerError(f"this consumer of '{self.topic}' (group '{self.group}') is not "
                              f"assigned partitions {sorted(bad)}",
                              hint=f"it reads partitions {self._partitions}")
        acks: list[str] = []
        moves: dict[int, int] = {}
        for p, offset in positions.items():
            seq = int(offset)
            if seq <= self._acked.get(p, 0):
                continue
            if seq > self._delivered.get(p, 0):
                moves[p] = seq + 1  # beyond what was read here: move the durable
                continue
            # the newest delivery of the highest sequence <= seq (AckAll acknowledges every
            # pending record of the partition up to its stream sequence)
            reply, best = None, 0
            kept = []
            for seqs, replies in self._unacked[p]:
                upto = seqs <= seq
                if upto.any():
                    j = int(np.flatnonzero(upto)[np.argmax(seqs[upto])])
                    if int(seqs[j]) >= best:
                        reply, best = replies[j], int(seqs[j])
                if not upto.all():
                    rest = np.flatnonzero(~upto)
                    kept.append((seqs[rest], [replies[i] for i in rest]))
            self._unacked[p] = kept
            if reply is not None:
                acks.append(reply)
            else:  # read before a reconnection: no delivery to acknowledge, move the durable
                moves[p] = seq + 1
            self._acked[p] = seq
        if not acks and not moves:
            return
        nc_timeout = self.broker.connect_timeout * 2

        async def acknowledge() -> None:
            nc = self.broker._nc
            await asyncio.gather(*(nc.request(r, b"+ACK", timeout=nc_timeout) for r in acks))
            for p, start in moves.items():
                await self._move(p, start, reread=False)

        self.broker._run(acknowledge, f"commit group '{self.group}' on '{self.topic}'")

    def committed(self) -> Positions:
        async def floors() -> list[int | None]:
            infos = [await self._info(p) for p in self._partitions]
            return [None if i is None else _committed_of(i) for i in infos]

        found = self.broker._run(floors, f"read group '{self.group}' on '{self.topic}'")
        return {p: f for p, f in zip(self._partitions, found, strict=True) if f is not None}

    def close(self) -> None:
        readers, self._readers = self._readers, None
        if readers is None or self.broker._loop is None:
            return
        from nats.js.errors import NotFoundError

        async def stop() -> None:
            for reader in readers.values():
                await reader.stop()
                if self.group.startswith(_SCRATCH):
                    with contextlib.suppress(NotFoundError):
                        await self.broker._js.delete_consumer(self.stream, reader.durable)

        try:
            self.broker._run(stop, f"close group '{self.group}' on '{self.topic}'")
        except BrokerError as exc:  # the server went away: it drops the pull requests itself
            log.debug("nats_consumer_close_failed", error=exc.message)


def from_spec(spec: NatsBrokerSpec, root: Path) -> NatsBroker:
    """The broker a ``NatsBrokerSpec`` describes (a relative credentials file is under
    ``root``)."""
    creds = None
    if spec.credentials:
        path = Path(spec.credentials).expanduser()
        creds = str(path if path.is_absolute() else Path(root) / path)
    return NatsBroker(
        spec.servers, token=spec.token.get_secret_value() if spec.token else None,
        user=spec.user, password=spec.password.get_secret_value() if spec.password else None,
        credentials=creds, stream_prefix=spec.stream_prefix, replicas=spec.replicas,
        ack_wait_s=duration_ms(spec.ack_wait) / 1000, fetch_batch=spec.fetch_batch,
        connect_timeout=spec.connect_timeout, retries=spec.retries, name=spec._name)

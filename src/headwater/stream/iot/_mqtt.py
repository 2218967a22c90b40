"""MQTT, the device side: devices publish to Mosquitto, gateways take their messages in batches.

MQTT is not a log: a message the broker cannot hand on is gone. Mosquitto keeps, per client
session, up to ``Receive Maximum`` QoS 1 messages *in flight* (sent, not yet acknowledged) and
up to ``max_queued_messages`` (default 1000) more in a queue; past that it **drops messages
without telling anyone**. A gateway therefore

- connects with a persistent session (MQTT 5, ``clean_start=False`` and a session expiry), so
  that what arrives while it is down or reconnecting is kept for it;
- announces a large ``Receive Maximum`` (:data:`INFLIGHT`, the inflight window): the broker sends
  it everything at once instead of queueing (and dropping) behind a window of 20;
- acknowledges (manual PUBACKs, in arrival order) only after the batch is written to the stream
  log, so a crash before the write gets the messages redelivered, never lost;
- subscribes through a shared subscription ``$share/GROUP/FILTER``, so several gateways split
  the devices' messages and each message goes to one of them.

paho's network thread calls :meth:`MqttSubscription._on_message` once per message (its own
callback, unavoidable); that only appends to a buffer. :meth:`MqttSubscription.take` hands the
buffer over as Arrow arrays, and everything after that works on whole batches.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import numpy as np
import polars as pl
import pyarrow as pa

from headwater.core import ConfigError, SourceError, require
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.stream.iot._simulate import Simulation

log = get_logger(__name__)

#: Topics are ``PREFIX/GATEWAY/DEVICE``; a gateway subscribes to ``PREFIX/#``.
TOPIC_PREFIX = "headwater/iot"
#: The inflight window a gateway announces (MQTT 5 Receive Maximum; 65535 at most).
INFLIGHT = 65_535
#: How long Mosquitto keeps a disconnected gateway's session (and queues for it), seconds.
SESSION_EXPIRY_S = 3600
#: Messages a device publisher lets wait for the broker's acknowledgement before it waits.
UNCONFIRMED = 20_000
#: Mosquitto's count of messages it dropped (queues full), published every ``sys_interval``.
DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"


class MqttError(SourceError):
    """The MQTT broker cannot be reached or refused a connection or subscription."""


@dataclass(frozen=True)
class MqttEndpoint:
    """Where an MQTT broker listens: ``mqtt://[user[:password]@]host[:port]``."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:  # never the password
        return f"mqtt://{self.host}:{self.port}"


def is_mqtt_url(text: str) -> bool:
    """Whether ``text`` names an MQTT broker (``mqtt://…``) rather than a stream broker."""
    return text.startswith("mqtt://")


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """The endpoint of ``mqtt://[user[:password]@]host[:port]``.

    >>> parse_mqtt_url("mqtt://127.0.0.1:1884")
    MqttEndpoint(host='127.0.0.1', port=1884, username=None, password=None)
    """
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ConfigError(f"{url!r} is not an MQTT broker URL",
                          hint="write mqtt://HOST:PORT, e.g. mqtt://127.0.0.1:1883")
    try:
        port = parts.port or 1883
    except ValueError:
        raise ConfigError(f"{url!r}: the port is not a number",
                          hint="write mqtt://HOST:PORT, e.g. mqtt://127.0.0.1:1883") from None
    return MqttEndpoint(parts.hostname, port,
                        unquote(parts.username) if parts.username else None,
                        unquote(parts.password) if parts.password else None)


def device_topics(messages: pl.DataFrame, prefix: str = TOPIC_PREFIX) -> pl.Series:
    """One topic per gateway and device: ``PREFIX/GATEWAY/DEVICE``."""
    return messages.select(pl.concat_str([pl.lit(prefix), pl.col("gateway"), pl.col("device")],
                                         separator="/")).to_series()


def _client(client_id: str, *, manual_ack: bool = False) -> Any:
    mqtt = require("paho.mqtt.client", "mqtt")
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                       protocol=mqtt.MQTTv5, manual_ack=manual_ack)


def _connect(client: Any, endpoint: MqttEndpoint, **kwargs: Any) -> None:
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=30, **kwargs)
    except OSError as exc:
        raise MqttError(f"cannot reach the MQTT broker at {endpoint}: {exc}",
                        hint="start Mosquitto (`mosquitto -d`) or pass the right "
                        "mqtt://HOST:PORT") from None


def publish_mqtt(sim: Simulation, url: str, *, prefix: str = TOPIC_PREFIX, qos: int = 1,
                 speed: float | None = None, client_id: str | None = None,
                 stop: threading.Event | None = None, timeout: float = 60.0) -> int:
    """Publish the simulated messages over MQTT, one topic per gateway and device.

    ``speed`` paces them as :func:`publish_simulation` does (1.0: real time); ``qos`` 0 or 1.
    Returns the number published; with QoS 1, each was acknowledged by the broker.
    """
    if qos not in (0, 1):
        raise ConfigError(f"--qos {qos}: headwater publishes with QoS 0 or 1")
    messages = sim.messages
    if messages.is_empty():
        return 0
    endpoint = parse_mqtt_url(url)
    client = _client(client_id or f"headwater-devices-{uuid.uuid4().hex[:8]}")
    _connect(client, endpoint)
    client.loop_start()
    topics = device_topics(messages, prefix).to_list()
    payloads = messages["payload"].to_list()
    send = messages["send_time"].to_numpy()
    start_ms, began = int(send[0]), time.monotonic()
    # the offset of each message from the first one, in seconds of the pace
    due = (send - start_ms) / 1000 / speed if speed else np.zeros(len(send))
    sent, last = 0, None
    waiting: deque[Any] = deque()           # the last message of each step not yet confirmed
    try:
        step = 200                          # messages published between two looks at the clock
        for begin in range(0, len(topics), step):
            if stop is not None and stop.is_set():
                break
            pause = due[begin] - (time.monotonic() - began)
            if pause > 0:
                time.sleep(pause)
            for topic, payload in zip(topics[begin:begin + step], payloads[begin:begin + step],
                                      strict=True):
                last = client.publish(topic, payload, qos=qos)
            sent += len(topics[begin:begin + step])
            if qos and last is not None:
                # backpressure: at most UNCONFIRMED messages queued in the client (their
                # message ids must stay unique: 16 bits), else the broker's pace sets ours
                waiting.append(last)
                while len(waiting) * step > UNCONFIRMED:
                    waiting.popleft().wait_for_publish(timeout)
        if last is not None and qos:
            last.wait_for_publish(timeout)
            if not last.is_published():
                raise MqttError(f"the MQTT broker at {endpoint} did not acknowledge the "
                                f"messages within {timeout:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
    return sent


@dataclass
class MqttBatch:
    """Messages taken from the subscription's buffer, as arrays, in arrival order."""

    payloads: pa.Array          # binary
    topics: pa.Array            # string
    received_ms: pa.Array       # int64, wall clock when paho handed the message over
    _acks: list[tuple[int, int, int]]   # (connection, mid, qos) for the PUBACKs

    def __len__(self) -> int:
        return len(self.payloads)


class MqttSubscription:
    """A gateway's MQTT session: persistent, QoS 1, a shared subscription, manual acks.

    Parameters
    ----------
    url:
        ``mqtt://host:port`` of the broker (Mosquitto).
    topics:
        Topic filters, e.g. ``["headwater/iot/#"]``.
    group:
        Share name: gateways with the same group split the messages (``$share/GROUP/…``);
        ``None`` subscribes plainly (every subscriber gets everything).
    client_id:
        Names the session: a gateway restarted with the same id picks its session up again,
        with what was queued for it meanwhile.
    qos, session_expiry_s, inflight:
        Subscription QoS (1: nothing lost), how long the broker keeps the session after a
        disconnect, and the Receive Maximum the gateway announces.
    """

    def __init__(self, url: str, *, topics: Sequence[str] = (f"{TOPIC_PREFIX}/#",),
                 group: str | None = "gateways", client_id: str, qos: int = 1,
                 session_expiry_s: int = SESSION_EXPIRY_S, inflight: int = INFLIGHT) -> None:
        self.url = url
        self.topics = list(topics)
        self.group = group
        self.client_id = client_id
        self.qos = qos
        self.session_expiry_s = session_expiry_s
        self.inflight = inflight
        self._buffer: list[tuple[bytes, str, int, int, int]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._connection = 0             # bumped by every (re)connect: stale acks are skipped
        self._connected = threading.Event()
        self._failure: str | None = None
        self._client: Any = None
        self._want = 1                   # take() is woken once this many are buffered
        #: Mosquitto's dropped-messages counter: first and latest value seen (broker-wide).
        self.broker_dropped: tuple[int, int] | None = None

    # --- connection ---------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> MqttSubscription:
        """Connect, subscribe, and start receiving (on paho's network thread)."""
        if not 0 < self.inflight <= 65_535:
            raise ConfigError(f"inflight {self.inflight}: MQTT allows 1 … 65535")
        properties = require("paho.mqtt.properties", "mqtt")
        packets = require("paho.mqtt.packettypes", "mqtt")
        endpoint = parse_mqtt_url(self.url)
        client = _client(self.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.message_callback_add(DROPPED_TOPIC, self._on_dropped)
        client.reconnect_delay_set(0.1, 2)
        connect = properties.Properties(packets.PacketTypes.CONNECT)
        connect.SessionExpiryInterval = self.session_expiry_s
        connect.ReceiveMaximum = self.inflight
        self._client = client
        _connect(client, endpoint, clean_start=False, properties=connect)
        client.loop_start()
        if not self._connected.wait(timeout) or self._failure:
            self.close()
            raise MqttError(self._failure or f"no answer from the MQTT broker at {endpoint} "
                            f"within {timeout:.0f} s", hint="check the broker and its logs")
        return self

    def filters(self) -> list[str]:
        """The filters subscribed to (``$share/GROUP/…`` with a group)."""
        return [f"$share/{self.group}/{t}" if self.group else t for t in self.topics]

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self._failure = f"the MQTT broker at {self.url} refused the connection: {reason}"
            self._connected.set()
            return
        options = require("paho.mqtt.subscribeoptions", "mqtt").SubscribeOptions(qos=self.qos)
        client.subscribe([(f, options) for f in self.filters()])
        client.subscribe(DROPPED_TOPIC, qos=0)
        log.info("mqtt_connected", client_id=self.client_id, broker=self.url,
                 session_present=bool(flags.session_present), filters=self.filters())

    def _on_dropped(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            count = int(message.payload)
        except ValueError:
            return
        first, last = self.broker_dropped or (count, count)
        if count > last:
            log.warning("mqtt_broker_dropped", broker=self.url, dropped=count - last,
                        hint="Mosquitto's queues overflowed (max_queued_messages): a "
                        "subscriber lagged or a session was offline; see docs/iot.md")
        self.broker_dropped = (first, count)

    def dropped_since_start(self) -> int | None:
        """Messages Mosquitto dropped (any client: the counter is broker-wide) since this
        subscription first saw its counter; ``None`` before the first report."""
        if self.broker_dropped is None:
            return None
        return self.broker_dropped[1] - self.broker_dropped[0]

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        if self._connected.is_set():
            return
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            self._failure = f"the MQTT broker refused the subscription {self.filters()}: " \
                            f"{', '.join(refused)}"
        self._connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        with self._lock:
            # messages not yet acknowledged come again on the next connection
            self._connection += 1
            self._buffer.clear()
        if reason.is_failure:
            log.warning("mqtt_disconnected", client_id=self.client_id, reason=str(reason))

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self._buffer.append((message.payload, message.topic, message.mid, message.qos,
                                 self._connection))
            if len(self._buffer) >= self._want:
                self._arrived.notify()

    # --- batches ------------------------------------------------------------------------

    def take(self, *, max_messages: int = 50_000, timeout: float = 0.02) -> MqttBatch:
        """What arrived: returns at ``max_messages``, else after ``timeout`` seconds."""
        if self._failure:
            raise MqttError(self._failure)
        deadline = time.monotonic() + timeout
        with self._lock:
            self._want = max_messages
            while len(self._buffer) < max_messages:
                left = deadline - time.monotonic()
                if left <= 0 or not self._arrived.wait(left):
                    break
            taken, self._buffer = self._buffer[:max_messages], self._buffer[max_messages:]
        now = int(time.time() * 1000)
        if not taken:
            return MqttBatch(pa.array([], pa.binary()), pa.array([], pa.string()),
                             pa.array([], pa.int64()), [])
        payloads, topics, mids, qos, connections = zip(*taken, strict=True)
        return MqttBatch(pa.array(payloads, pa.binary()), pa.array(topics, pa.string()),
                         pa.array(np.full(len(taken), now, np.int64)),
                         [(c, m, q) for c, m, q in zip(connections, mids, qos, strict=True)
                          if q])

    def ack(self, batch: MqttBatch) -> int:
        """Acknowledge a batch (after it is written); returns the PUBACKs sent. Messages of
        an earlier connection are not acknowledged: the broker sends them again."""
        sent = 0
        with self._lock:
            current = self._connection
        for connection, mid, qos in batch._acks:
            if connection == current:
                self._client.ack(mid, qos)
                sent += 1
        return sent

    def close(self) -> None:
        """Disconnect; the session (and what is not acknowledged) stays with the broker."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def __enter__(self) -> MqttSubscription:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

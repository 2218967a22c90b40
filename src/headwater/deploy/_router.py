"""The local target's router: one process on the target's port that sends each request to a
model version's process, by weight, and can mirror a share of them to a staged version.

    python -m headwater.deploy._router STATE_DIR     # reads STATE_DIR/router.json, routes.json

Requests are read whole, forwarded over pooled keep-alive HTTP/1.1 connections (httptools
parses the answers) and answered with ``X-Headwater-Variant`` naming who answered. A request
that meets a stale pooled connection is retried on a fresh one; a version whose process
refuses connections is skipped for another that carries traffic. Changing the table
(``PUT /_router/routes`` with the router's token) persists it first, swaps it, then waits
until the requests in flight to every removed version are answered (drained), so a switch
fails no request. The table survives a restart of the router (``routes.json``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

#: The admin routes' prefix (they need the ``X-Router-Token`` header).
ADMIN = "/_router/"
#: Pooled upstream connections idle longer than this are dropped (uvicorn closes at 5 s).
IDLE_S = 4.0
#: Headers that belong to one hop, never forwarded.
HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                 b"transfer-encoding", b"upgrade", b"content-length", b"host"})


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (a reader sees the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


class UpstreamClosed(Exception):
    """The upstream connection ended before a whole answer (nothing was received)."""


class _Answer:
    """httptools callbacks collecting one response."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


@dataclass
class Upstream:
    """One version's process: its port, traffic share and pooled connections."""

    name: str
    port: int
    weight: float
    inflight: int = 0
    requests: int = 0
    failed: int = 0
    pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = field(
        default_factory=list)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def _connection(self, fresh: bool) -> tuple[Any, Any, bool]:
        now = time.monotonic()
        while self.pool and not fresh:
            reader, writer, used = self.pool.pop()
            if now - used < IDLE_S and not writer.is_closing():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return reader, writer, False

    async def send(self, head: bytes, body: bytes) -> tuple[int, list[tuple[bytes, bytes]],
                                                            bytes]:
        """Forward one request; (status, headers, body). A stale pooled connection is retried
        once on a fresh one; OSError when the process does not answer."""
        import httptools

        for attempt in (0, 1):
            reader, writer, pooled = await self._connection(fresh=attempt == 1)
            answer = _Answer()
            parser = httptools.HttpResponseParser(answer)
            try:
                writer.write(head + body)
                while not answer.done:
                    data = await reader.read(65536)
                    if not data:
                        raise UpstreamClosed
                    parser.feed_data(data)
            except (UpstreamClosed, ConnectionError) as exc:
                writer.close()
                if pooled and not answer.headers:
                    continue  # the process closed an idle connection: say it again
                raise ConnectionError(f"{self.name} closed the connection") from exc
            if parser.should_keep_alive():
                self.pool.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return parser.get_status_code(), answer.headers, b"".join(answer.body)
        raise ConnectionError(f"{self.name} does not answer")  # pragma: no cover

    def close(self) -> None:
        for _, writer, _ in self.pool:
            writer.close()
        self.pool.clear()


class Router:
    """The ASGI app: weighted routing, mirroring, and the admin routes."""

    def __init__(self, state: Path) -> None:
        self.state = state
        config = json.loads((state / "router.json").read_text())
        self.token = config["token"].encode()
        self.drain_s = float(config.get("drain_s", 30.0))
        self.upstreams: dict[str, Upstream] = {}
        self.mirror: tuple[str, float] | None = None
        self._lock = asyncio.Lock()
        routes = state / "routes.json"
        self._saved = json.loads(routes.read_text()) if routes.exists() else {"variants": {}}
        self._background: set[asyncio.Task[Any]] = set()

    def table(self) -> dict[str, Any]:
        return {"variants": {n: {"port": u.port, "weight": u.weight, "inflight": u.inflight,
                                 "requests": u.requests, "failed": u.failed}
                             for n, u in self.upstreams.items()},
                "mirror": {"variant": self.mirror[0], "share": self.mirror[1]}
                if self.mirror else None}

    async def apply(self, routes: dict[str, Any]) -> None:
        """Persist, swap, then drain the versions that left the table."""
        async with self._lock:
            write_json(self.state / "routes.json", routes)
            fresh: dict[str, Upstream] = {}
            for name, v in routes["variants"].items():
                old = self.upstreams.get(name)
                if old is not None and old.port == int(v["port"]):
                    old.weight = float(v["weight"])
                    fresh[name] = old
                else:
                    fresh[name] = Upstream(name, int(v["port"]), float(v["weight"]))
            gone = [u for n, u in self.upstreams.items() if fresh.get(n) is not u]
            mirror = routes.get("mirror")
            self.upstreams = fresh
            self.mirror = (mirror["variant"], float(mirror["share"])) if mirror else None
            deadline = time.monotonic() + self.drain_s
            for u in gone:
                while u.inflight and time.monotonic() < deadline:
                    u.idle.clear()
                    try:
                        await asyncio.wait_for(u.idle.wait(), deadline - time.monotonic())
                    except TimeoutError:
                        break
                u.close()

    def pick(self) -> list[Upstream]:
        """Versions to try, in order: one drawn by weight, then the others carrying traffic."""
        live = [u for u in self.upstreams.values() if u.weight > 0]
        if not live:
            return []
        first = random.choices(live, weights=[u.weight for u in live])[0] \
            if len(live) > 1 else live[0]
        return [first, *(u for u in live if u is not first)]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if scope["path"].startswith(ADMIN):
            await self._admin(scope, body, send)
            return
        path = scope["raw_path"] or scope["path"].encode()
        if scope["query_string"]:
            path += b"?" + scope["query_string"]
        head = [f"{scope['method']} ".encode() + path + b" HTTP/1.1\r\nhost: 127.0.0.1\r\n"]
        head += [n + b": " + v + b"\r\n" for n, v in scope["headers"] if n not in HOP]
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        request = b"".join(head)
        if self.mirror is not None and random.random() < self.mirror[1]:
            self._mirror(request, body)
        for upstream in self.pick():
            upstream.inflight += 1
            try:
                status, headers, answer = await upstream.send(request, body)
            except OSError:
                upstream.failed += 1
                continue
            finally:
                upstream.inflight -= 1
                if not upstream.inflight:
                    upstream.idle.set()
            upstream.requests += 1
            out = [(n, v) for n, v in headers if n not in HOP]
            out += [(b"content-length", str(len(answer)).encode()),
                    (b"x-headwater-variant", upstream.name.encode())]
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": answer})
            return
        await self._json(send, 503, {"error": "no model version answers on this target",
                                     "hint": "`headwater deploy history` shows what was "
                                     "deployed; `headwater deploy run` deploys one"})

    def _mirror(self, request: bytes, body: bytes) -> None:
        assert self.mirror is not None
        target = self.upstreams.get(self.mirror[0])
        if target is None:
            return

        async def copy() -> None:
            try:
                await target.send(request, body)
            except OSError:
                target.failed += 1

        task = asyncio.ensure_future(copy())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _admin(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        token = dict(scope["headers"]).get(b"x-router-token", b"")
        if not hmac.compare_digest(token, self.token):
            await self._json(send, 401, {"error": "missing or wrong X-Router-Token"})
            return
        if scope["method"] == "PUT" and scope["path"] == ADMIN + "routes":
            await self.apply(orjson.loads(body))
        await self._json(send, 200, self.table())

    @staticmethod
    async def _json(send: Any, status: int, data: Any) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": orjson.dumps(data)})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.apply(self._saved)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for u in self.upstreams.values():
                    u.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main(state: str) -> None:
    """Run the router of the target whose state folder is ``state``."""
    import uvicorn

    folder = Path(state)
    config = json.loads((folder / "router.json").read_text())
    uvicorn.run(Router(folder), host=config["host"], port=int(config["port"]), loop="uvloop",
                http="httptools", log_level="warning", access_log=False,
                timeout_keep_alive=75, lifespan="on", backlog=4096)


if __name__ == "__main__":
    main(sys.argv[1])

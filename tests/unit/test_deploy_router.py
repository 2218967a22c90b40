"""The local target's router on loopback: weights, drain, stale connections, the admin token."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from headwater.deploy._router import Router
from headwater.quickstart._deploy import free_port

TOKEN = "t0ken"


class Upstream:
    """A raw HTTP/1.1 server answering its name after ``delay`` s; ``close_idle`` drops each
    connection right after answering (as a server whose keep-alive timed out)."""

    def __init__(self, name: str, *, delay: float = 0.0, close_idle: bool = False) -> None:
        self.name, self.delay, self.close_idle = name, delay, close_idle
        self.port = free_port()
        self.served = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                await reader.readexactly(length)
                await asyncio.sleep(self.delay)
                body = self.name.encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
                self.served += 1
                if self.close_idle:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
def router(tmp_path: Path):
    import uvicorn

    port = free_port()
    (tmp_path / "router.json").write_text(json.dumps(
        {"host": "127.0.0.1", "port": port, "token": TOKEN, "drain_s": 5}))
    upstreams = {"v1": Upstream("v1"), "v2": Upstream("v2", close_idle=True),
                 "slow": Upstream("slow", delay=0.8)}
    loop = asyncio.new_event_loop()
    servers = []

    async def up() -> None:
        for u in upstreams.values():
            servers.append(await asyncio.start_server(u.handle, "127.0.0.1", u.port))

    loop.run_until_complete(up())
    threading.Thread(target=loop.run_forever, daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(Router(tmp_path), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"

    def put(weights: dict[str, float]) -> dict:
        routes = {"variants": {n: {"port": upstreams[n].port, "weight": w}
                               for n, w in weights.items()}, "mirror": None}
        answer = httpx.put(f"{base}/_router/routes", json=routes,
                           headers={"x-router-token": TOKEN}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    yield base, upstreams, put, tmp_path
    server.should_exit = True
    thread.join(timeout=10)
    loop.call_soon_threadsafe(loop.stop)


def test_no_version_is_a_clear_503_and_admin_needs_the_token(router) -> None:
    base, _, _, _ = router
    answer = httpx.get(f"{base}/predict")
    assert answer.status_code == 503 and "no model version" in answer.json()["error"]
    assert httpx.get(f"{base}/_router/routes").status_code == 401


def test_traffic_follows_the_weights_and_names_who_answered(router) -> None:
    base, _, put, state = router
    put({"v1": 0.8, "v2": 0.2})
    with httpx.Client(base_url=base) as http:
        seen = [http.post("/predict", json={"x": 1}) for _ in range(300)]
    assert all(a.status_code == 200 and a.text == a.headers["x-headwater-variant"]
               for a in seen)
    share = sum(a.text == "v2" for a in seen) / len(seen)
    assert 0.1 < share < 0.3
    # v2 closes every connection after answering: the stale pooled one was retried: no failure
    assert json.loads((state / "routes.json").read_text())["variants"]["v2"]["weight"] == 0.2


def test_a_retired_version_is_drained_before_the_table_call_returns(router) -> None:
    base, _, put, _ = router
    put({"slow": 1.0})
    answers: list[httpx.Response] = []
    inflight = threading.Thread(target=lambda: answers.append(httpx.get(f"{base}/x")))
    inflight.start()
    time.sleep(0.2)
    began = time.monotonic()
    table = put({"v1": 1.0})  # returns once the slow request was answered
    assert time.monotonic() - began > 0.4 and set(table["variants"]) == {"v1"}
    inflight.join()
    assert answers[0].status_code == 200 and answers[0].text == "slow"
    assert httpx.get(f"{base}/x").text == "v1"


def test_a_version_that_refuses_connections_is_skipped(router) -> None:
    base, upstreams, _, _ = router
    dead = free_port()
    answer = httpx.put(f"{base}/_router/routes", headers={"x-router-token": TOKEN}, json={
        "variants": {"dead": {"port": dead, "weight": 0.5},
                     "v1": {"port": upstreams["v1"].port, "weight": 0.5}}, "mirror": None})
    assert answer.status_code == 200
    assert {httpx.get(f"{base}/x").text for _ in range(20)} == {"v1"}
    assert httpx.get(f"{base}/_router/routes",
                     headers={"x-router-token": TOKEN}).json()["variants"]["dead"]["failed"] > 0


def test_a_mirrored_version_gets_copies_and_answers_nobody(router) -> None:
    base, upstreams, _, _ = router
    routes = {"variants": {"v1": {"port": upstreams["v1"].port, "weight": 1.0},
                           "v2": {"port": upstreams["v2"].port, "weight": 0.0}},
              "mirror": {"variant": "v2", "share": 1.0}}
    httpx.put(f"{base}/_router/routes", json=routes, headers={"x-router-token": TOKEN})
    with httpx.Client(base_url=base) as http:
        assert {http.get("/x").text for _ in range(20)} == {"v1"}
    time.sleep(0.2)
    assert upstreams["v2"].served == 20

"""Alert sinks against local servers: webhooks (JSON, Slack, Teams), SMTP (aiosmtpd),
PagerDuty Events API v2; a sink that is down is retried with backoff and recorded."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from headwater.config import parse_project
from headwater.monitor.alerts import AlertStore, Dispatcher, Observation, deliver_due, evaluate

pytestmark = pytest.mark.integration


class _Receiver:
    """A local HTTP server that records every POST (path, JSON body) and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[str, dict]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((self.path, json.loads(body)))
                self.send_response(outer.status)
                self.end_headers()
                self.wfile.write(b'{"status": "success"}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = _Receiver()
    yield r
    r.close()


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    messages = []

    class Keep(Message):
        def handle_message(self, message) -> None:
            messages.append(message)

    controller = Controller(Keep(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    controller.messages = messages
    yield controller
    controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _project(receiver: _Receiver, smtp_port: int, monkeypatch) -> object:
    monkeypatch.setenv("HW_TEST_PD_KEY", "pd-routing-key-1234")
    monkeypatch.setenv("HW_TEST_HOOK", f"{receiver.url}/hook")
    return parse_project(f"""
project: sinks
alerts:
  sinks:
    generic: {{kind: webhook, url: "${{HW_TEST_HOOK}}", format: json}}
    slack: {{kind: webhook, url: "{receiver.url}/slack", format: slack}}
    teams: {{kind: webhook, url: "{receiver.url}/teams", format: teams}}
    pager: {{kind: pagerduty, routing_key: "${{HW_TEST_PD_KEY}}", url: "{receiver.url}/pd"}}
    mail: {{kind: email, host: 127.0.0.1, port: {smtp_port}, from: hw@example.org,
            to: [ops@example.org]}}
  rules:
    failed: {{kind: run_failed, severity: critical}}
""")


def _runs(status: str) -> list[dict]:
    return [{"id": "r1", "kind": "ingest", "pipeline": "orders", "status": status,
             "error": "source down", "started_at": 0, "ended_at": 0}]


def test_every_sink_gets_firing_then_resolved(tmp_path, receiver, smtp, monkeypatch) -> None:
    project = _project(receiver, smtp.port, monkeypatch)
    store = AlertStore(f"sqlite:///{tmp_path}/m.db")
    evaluate(project.alerts, store, Observation(now=time.time(), runs=_runs("failed")))
    assert deliver_due(project.alerts, store) == 6  # five sinks and the log
    evaluate(project.alerts, store, Observation(now=time.time(), runs=_runs("succeeded")))
    assert deliver_due(project.alerts, store) == 6
    by_path: dict[str, list[dict]] = {}
    for path, body in receiver.received:
        by_path.setdefault(path, []).append(body)
    generic = by_path["/hook"]
    assert [b["status"] for b in generic] == ["firing", "resolved"]
    assert generic[0]["alerts"][0]["labels"]["pipeline"] == "orders"
    assert by_path["/slack"][0]["text"].startswith("[FIRING:1] failed")
    assert by_path["/slack"][0]["attachments"][0]["color"] == "#d62728"
    assert by_path["/teams"][0]["@type"] == "MessageCard"
    assert by_path["/teams"][1]["themeColor"] == "2ca02c"
    pd = by_path["/pd"]
    assert [e["event_action"] for e in pd] == ["trigger", "resolve"]
    assert pd[0]["routing_key"] == "pd-routing-key-1234"
    assert pd[0]["dedup_key"] == pd[1]["dedup_key"]
    assert pd[0]["payload"]["severity"] == "critical"
    assert [m["Subject"].split(": ", 1)[1][:10] for m in smtp.messages] == [
        "[FIRING:1]", "[RESOLVED:"]
    assert "source down" in smtp.messages[0].get_payload()
    stored = json.dumps(store.deliveries())
    assert "pd-routing-key-1234" not in stored  # secrets stay in the environment


def test_a_sink_that_is_down_is_retried_with_backoff_and_recorded(tmp_path, monkeypatch) -> None:
    port = _free_port()  # nothing listens here yet
    project = parse_project(f"""
alerts:
  sinks:
    hook: {{kind: webhook, url: "http://127.0.0.1:{port}/h", timeout: 1}}
  routes: [{{sinks: [hook]}}]
  rules:
    failed: {{kind: run_failed}}
""")
    store = AlertStore(f"sqlite:///{tmp_path}/m.db")
    started = time.perf_counter()
    evaluate(project.alerts, store, Observation(now=time.time(), runs=_runs("failed")))
    assert time.perf_counter() - started < 1.0  # queued, not sent: nothing waits on the sink
    dispatcher = Dispatcher(project.alerts, store, base_backoff=0.2, idle_s=0.2).start()
    try:
        deadline = time.time() + 5
        while store.deliveries()[0]["attempts"] < 2 and time.time() < deadline:
            time.sleep(0.05)
        first = store.deliveries()[0]
        assert first["status"] == "pending" and first["attempts"] >= 2
        assert "ConnectError" in first["last_error"]
        late = _Receiver()
        late.server.server_close()  # rebind the sink's port with a receiver
        late.server = ThreadingHTTPServer(("127.0.0.1", port), late.server.RequestHandlerClass)
        threading.Thread(target=late.server.serve_forever, daemon=True).start()
        try:
            dispatcher.kick()
            deadline = time.time() + 10
            while store.deliveries()[0]["status"] != "delivered" and time.time() < deadline:
                time.sleep(0.05)
            assert store.deliveries()[0]["status"] == "delivered"
            assert late.received[0][1]["alerts"][0]["rule"] == "failed"
        finally:
            late.close()
    finally:
        dispatcher.close(timeout=1)

"""`monitor export` proven with the real programs (Debian's prometheus and
prometheus-alertmanager; scripts/monitoring.sh installs them): promtool and amtool accept what
export writes, and Prometheus scraping a running headwater gateway fires a generated rule that
Alertmanager delivers to a local webhook."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from headwater.config import load_project
from headwater.monitor.alerts import export

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADWATER = str(Path(sys.executable).with_name("headwater"))
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture(scope="module", autouse=True)
def programs() -> None:
    if not (shutil.which("prometheus") and shutil.which("promtool") and ALERTMANAGER):
        pytest.fail("prometheus, promtool or alertmanager is missing: run scripts/monitoring.sh "
                    "(apt-get install prometheus prometheus-alertmanager)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _project(root: Path, hook: str) -> object:
    (root / "headwater.yaml").write_text(f"""
project: exported
alerts:
  evaluate_every: 1s
  sinks:
    hook: {{kind: webhook, url: "{hook}"}}
    team: {{kind: email, host: 127.0.0.1, port: 2525, from: hw@example.org,
            to: [ops@example.org], password: "${{SMTP_PASSWORD:-not-in-git}}"}}
  routes:
    - {{match: {{severity: critical}}, sinks: [hook], group_by: [processor]}}
    - {{sinks: [team]}}
  inhibit:
    - {{source: {{severity: critical}}, target: {{severity: warning}}, equal: [processor]}}
  rules:
    gateway_busy:
      kind: threshold
      metric: headwater_stream_records
      match: {{processor: "gateway:*"}}
      above: 10
      severity: critical
      summary: "gateway {{processor}} read {{value}} records"
    slow: {{kind: rate, metric: headwater_rows, window: 5m, below: 1}}
    orders_stale: {{kind: stale, pipeline: "orders*", max_age: 2h}}
    quality: {{kind: quality, table: orders, below: 0.99, for: 10m}}
    latency: {{kind: latency, quantile: 0.95, above: 60}}
    failed: {{kind: run_failed}}
    lag: {{kind: lag, above: 1000}}
    gone: {{kind: absent, metric: headwater_stream_records, match: {{processor: sensors}}}}
""")
    return load_project(root)


def test_export_passes_promtool_and_a_rule_fires_through_alertmanager(tmp_path) -> None:
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    metrics_port, prom_port, am_port = _port(), _port(), _port()
    project = _project(tmp_path, f"http://127.0.0.1:{hook.server_address[1]}/am")
    out = tmp_path / "monitoring"
    paths = export(project, out, targets=[f"127.0.0.1:{metrics_port}"],
                   alertmanager=f"127.0.0.1:{am_port}", secrets=True, scrape_interval="1s",
                   group_wait="1s")
    check = subprocess.run(["promtool", "check", "config", str(paths["scrape"])],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "8 rules found" in check.stdout + check.stderr
    rules = subprocess.run(["promtool", "check", "rules", str(paths["rules"])],
                           capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    amtool = shutil.which("amtool")
    if amtool:
        am_check = subprocess.run([amtool, "check-config", str(paths["alertmanager"])],
                                  capture_output=True, text=True)
        assert am_check.returncode == 0, am_check.stdout + am_check.stderr
    dashboard = json.loads(paths["grafana"].read_text())
    assert len(dashboard["panels"]) >= 12

    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run([HEADWATER, "iot", "simulate", "--devices", "5", "--seconds", "5"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    started: list[subprocess.Popen] = []
    try:
        started.append(subprocess.Popen(
            [HEADWATER, "iot", "gateway", "--follow", "--metrics-port", str(metrics_port)],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        started.append(subprocess.Popen(
            [ALERTMANAGER, f"--config.file={paths['alertmanager']}",
             f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
             "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        started.append(subprocess.Popen(
            ["prometheus", f"--config.file={paths['scrape']}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 90
        while time.time() < deadline and not any(
                a["labels"].get("alertname") == "gateway_busy"
                for note in received for a in note["alerts"]):
            for proc in started:
                assert proc.poll() is None, f"{proc.args[0]} exited with {proc.returncode}"
            time.sleep(0.5)
        fired = [a for note in received for a in note["alerts"]
                 if a["labels"].get("alertname") == "gateway_busy"]
        assert fired, "Alertmanager delivered nothing to the webhook"
        assert fired[0]["status"] == "firing"
        assert fired[0]["labels"]["severity"] == "critical"
        assert fired[0]["labels"]["processor"] == "gateway:gateway"
        assert "read" in fired[0]["annotations"]["summary"]
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        hook.shutdown()
        hook.server_close()

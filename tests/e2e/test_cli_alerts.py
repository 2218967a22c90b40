"""Alerts and the terminal, end to end: a failing pipeline fires a rule after its run, a
webhook receives it, `alerts list | silence | unsilence | history | test` show and steer it;
terminal lines are plain sentences; `sql` shows repeated column names."""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from headwater.store import RunStore

pytestmark = pytest.mark.e2e


@pytest.fixture
def hook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received = received  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_failed_run_fires_its_rule_and_the_cli_steers_it(hw, hook) -> None:
    (hw.cwd / "in").mkdir()
    (hw.cwd / "in" / "good.csv").write_text("id,amount\n1,5\n2,7\n")
    (hw.cwd / "in" / "broken.csv.gz").write_bytes(gzip.compress(b"id,amount\n1,2\n")[:15])
    (hw.cwd / "headwater.yaml").write_text("""
project: shop
pipelines:
  orders:
    source: {kind: files, path: in}
    table: orders
alerts:
  sinks:
    hook: {kind: webhook, url: "${HOOK_URL}"}
  routes: [{sinks: [hook]}]
  rules:
    orders_failed: {kind: run_failed, pipeline: orders, severity: critical}
    never_read:
      kind: threshold
      metric: headwater_rows
      match: {outcome: read, pipeline: orders}
      above: 1000
""")
    env = {"HOOK_URL": hook.url}
    run = hw("ingest", "run", "orders", env=env)
    assert run.code == 1
    # one plain sentence per problem on the terminal, no structlog dump, no traceback
    assert "warning: extract failed (source" in run.err or "error: extract failed (source" \
        in run.err, run.err
    for noise in ("{'", "[error", "Traceback", "UserWarning"):
        assert noise not in run.err + run.out
    logged = hw("logs", "--pipeline", "orders", "--level", "warning", "--since", "1h", env=env)
    assert "extract_failed" in logged.out and "broken.csv.gz" in logged.out, logged.err
    deadline = time.time() + 10
    while not hook.received and time.time() < deadline:
        time.sleep(0.1)
    assert [(n["status"], n["alerts"][0]["rule"]) for n in hook.received] == [
        ("firing", "orders_failed")]
    listed = hw("alerts", "list", env=env)
    assert "orders_failed" in listed.out and "critical" in listed.out and "sent" in listed.out
    quiet = hw("alerts", "silence", "rule=orders_failed", "--for", "1h", env=env)
    silence_id = quiet.out.split("silence ")[1].split()[0]
    assert "silenced" in hw("alerts", "list", env=env).out
    assert hw("alerts", "unsilence", silence_id, env=env).code == 0
    sent = hw("alerts", "history", "--deliveries", env=env)
    assert "hook" in sent.out and "delivered" in sent.out
    (hw.cwd / "in" / "broken.csv.gz").unlink()
    (hw.cwd / "in" / "more.csv").write_text("id,amount\n3,1\n")
    assert hw("ingest", "run", "orders", env=env).code == 0
    deadline = time.time() + 10
    while len(hook.received) < 3 and time.time() < deadline:
        time.sleep(0.1)
    assert hook.received[-1]["status"] == "resolved"
    history = hw("alerts", "history", env=env)
    assert "orders_failed" in history.out and "resolved" in history.out and "firing" in history.out
    assert "sent to hook" in hw("alerts", "test", "hook", env=env).out
    assert hook.received[-1]["alerts"][0]["rule"] == "headwater_test"
    runs = RunStore.at(hw.cwd / ".headwater")
    record = runs.get(runs.list(limit=1)[0]["id"])
    assert record["report"]["metrics"]["pass_rate"]["orders"]["*"] == 1.0


def test_an_invalid_rule_fails_config_check_naming_key_and_line(hw) -> None:
    (hw.cwd / "headwater.yaml").write_text(
        "alerts:\n  rules:\n    slow:\n      kind: rate\n      metric: m\n      window: soon\n"
        "      below: 1\n")
    result = hw("config", "check")
    assert result.code == 1
    assert "line 6, alerts.rules.slow.window" in result.err and "hint" in result.err


def test_sql_shows_repeated_column_names(hw) -> None:
    (hw.cwd / "a.csv").write_text("id\n1\n")
    assert hw("ingest", "file", "a.csv", "--table", "a").code == 0
    result = hw("sql", "select 1 as x, 2 as x")
    assert result.code == 0, result.err
    header = next(line for line in result.out.splitlines() if "x" in line)
    assert header.count("x") == 2
    assert hw("sql", "select 1 as x, 2 as x", "--csv").out.splitlines() == ['"x","x"', "1,2"]


def test_monitor_export_writes_files_promtool_accepts(hw) -> None:
    import shutil
    import subprocess

    (hw.cwd / "headwater.yaml").write_text(
        "alerts:\n  rules:\n    failed: {kind: run_failed, severity: critical}\n"
        "    stale: {kind: stale, pipeline: 'orders*', max_age: 2h}\n")
    result = hw("monitor", "export", "out", "--target", "127.0.0.1:9108")
    assert result.code == 0, result.err
    assert {p.name for p in (hw.cwd / "out").iterdir()} == {
        "prometheus.yml", "headwater-rules.yml", "alertmanager.yml", "grafana-dashboard.json"}
    import yaml

    rules = yaml.safe_load((hw.cwd / "out" / "headwater-rules.yml").read_text())
    exprs = {r["alert"]: r["expr"] for r in rules["groups"][0]["rules"]}
    assert exprs["stale"] == \
        'time() - headwater_last_success_timestamp_seconds{pipeline=~"orders.*"} > 7200'
    assert exprs["failed"] == "headwater_last_run_failed == 1"
    if shutil.which("promtool"):  # scripts/monitoring.sh installs it; the integration test needs it
        check = subprocess.run(["promtool", "check", "config",
                                str(hw.cwd / "out" / "prometheus.yml")], capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr

"""Metrics reach a textfile and a Pushgateway (a local HTTP server standing in for one)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from headwater.monitor import metrics, publish_metrics


def test_textfile_and_pushgateway(tmp_path) -> None:
    received: list[tuple[str, str, bytes]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    metrics.ROWS.labels("p", "s.csv", "t", "loaded").inc(3)
    publish_metrics("ingest-p", textfile_dir=tmp_path,
                    pushgateway=f"http://127.0.0.1:{server.server_address[1]}")
    thread.join(timeout=10)
    server.server_close()
    text = (tmp_path / "ingest-p.prom").read_text()
    assert 'headwater_rows_total{outcome="loaded",pipeline="p",source="s.csv",table="t"}' in text
    assert received and received[0][1] == "/metrics/job/ingest-p"
    assert b"headwater_rows_total" in received[0][2]

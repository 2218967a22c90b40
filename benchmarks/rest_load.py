"""Benchmark: records per second from a local paginated JSON API (100 records a page).

The API runs in its own process (so the client does not share its interpreter) and serves
``--records`` records as pages of 100, twice: as fast as it can (cached pages, loopback), and
like a real API that takes ``--latency-ms`` (default 5) to answer each page. For each, it times:

* the baseline: a bare httpx loop that fetches every page and parses its JSON (no retries, no
  Arrow, no warehouse) — what the server allows;
* headwater: the REST source through the full pipeline (records to Arrow, inferred contract,
  DuckDB warehouse, one transaction per 50 pages with the resumable position).

Target: at least 5,000 records/s, limited by the server, not by headwater: against the API that
takes its time, headwater should reach nearly the bare client's rate (it fetches the next pages
while it loads the last ones).
Run: ``.venv/bin/python benchmarks/rest_load.py [--records 100000] [--latency-ms 5]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import tempfile
import time
from pathlib import Path


def serve(port: int, n: int, latency: float = 0.0) -> None:
    """The API: GET /items?page=N&per_page=100 -> {"data": [...], "total": n}, each answer
    ``latency`` seconds late."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse

    records = [{"id": i, "name": f"item {i}", "price": round(i * 0.37, 2), "in_stock": i % 3 > 0,
                "updated_at": f"2026-01-01T00:00:{i % 60:02d}Z",
                "tags": ["a", "b"], "vendor": {"id": i % 50, "country": "NO"}}
               for i in range(1, n + 1)]
    pages: dict[tuple[int, int], bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per response
        wbufsize = 1 << 16  # headers and body leave in one write

        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:
            q = parse_qs(urlparse(self.path).query)
            page, size = int(q.get("page", ["1"])[0]), int(q.get("per_page", ["100"])[0])
            if latency:
                time.sleep(latency)
            raw = pages.get((page, size))
            if raw is None:
                raw = json.dumps({"data": records[(page - 1) * size: page * size],
                                  "total": n}).encode()
                pages[(page, size)] = raw
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(url: str, records: int, work: Path) -> tuple[float, float]:
    """Seconds for the bare client and for headwater to take every page of ``url``."""
    import httpx
    import orjson

    from headwater.ingest._pipeline import ingest
    from headwater.ingest.sources import Paginator, RestSource
    from headwater.store import DuckDBStore

    for _ in range(100):
        try:
            httpx.get(url, params={"page": 1})
            break
        except httpx.TransportError:
            time.sleep(0.05)
    with httpx.Client() as warm:  # the server caches each page body: warm it for both runs
        for page in range(1, -(-records // 100) + 2):
            warm.get(url, params={"page": page, "per_page": 100})
    start = time.perf_counter()
    total = 0
    with httpx.Client() as client:
        page = 1
        while True:
            body = orjson.loads(client.get(url, params={"page": page, "per_page": 100}).content)
            if not body["data"]:
                break
            total += len(body["data"])
            page += 1
    baseline = time.perf_counter() - start
    assert total == records

    store = DuckDBStore(work / f"w{time.monotonic_ns()}.duckdb")
    source = RestSource(url, records="data", pagination=Paginator(
        "page", size_param="per_page", size=100), total_path="total")
    start = time.perf_counter()
    run = ingest(source, store, table="items", pipeline="bench")
    elapsed = time.perf_counter() - start
    assert run.status == "succeeded" and run.rows_loaded == records, run.error
    store.close()
    return baseline, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=5.0,
                        help="how long the slower API takes per page")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.records:,} records, "
          f"{-(-args.records // 100):,} pages of 100")
    work = Path(tempfile.mkdtemp(prefix="hw-rest-bench-"))
    try:
        for label, latency in (("API as fast as it can", 0.0),
                               (f"API taking {args.latency_ms:g} ms a page", args.latency_ms)):
            port = free_port()
            server = mp.get_context("spawn").Process(
                target=serve, args=(port, args.records, latency / 1000), daemon=True)
            server.start()
            try:
                baseline, elapsed = measure(f"http://127.0.0.1:{port}/items", args.records, work)
            finally:
                server.terminate()
            hw_rate, base_rate = args.records / elapsed, args.records / baseline
            print(f"{label}:")
            print(f"  baseline (httpx + orjson, nothing stored): {baseline:6.2f} s "
                  f"{base_rate:>10,.0f} rec/s")
            print(f"  headwater (pipeline into DuckDB):          {elapsed:6.2f} s "
                  f"{hw_rate:>10,.0f} rec/s")
            print(f"  headwater reaches {hw_rate / base_rate:.0%} of the bare client's rate "
                  f"(target >= 5,000 rec/s: {'met' if hw_rate >= 5000 else 'NOT met'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Quickstart step: a SQLite database and a local REST API, both loaded incrementally.

The API is a small server on 127.0.0.1 (a free port) that this step starts in a thread; the
database is a SQLite file in the project. Both pipelines are declared in headwater.yaml. They run
twice: the second run reads only what changed in between.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from rich.console import Console
from rich.table import Table

from headwater.config import PROJECT_FILE, load_project

API_ENV = "HEADWATER_QUICKSTART_API"

_PIPELINES = """\
  shop_customers:                  # a database table, incremental by updated_at
    source:
      kind: sql
      url: sqlite:///shop.db       # or postgresql://user:${PGPASSWORD}@host/db, mysql+pymysql://...
      tables: [customers]
      cursor:
        column: updated_at
        lookback: 1h               # re-read the last hour: late commits are never lost
    table: shop_customers
    mode: merge                    # so the lookback never duplicates
    primary_key: [id]
    schedule: every 15m            # `headwater schedule run` runs it on this schedule
  support_tickets:                 # a paginated REST API, incremental by a since-parameter
    source:
      kind: rest
      url: ${HEADWATER_QUICKSTART_API:-http://127.0.0.1:8765}/tickets
      records: data
      pagination: {type: page, param: page, size_param: per_page, size: 100}
      incremental: {param: updated_since, field: updated_at}
      rate_limit: {requests_per_second: 50}
    table: support_tickets
    mode: merge
    primary_key: [id]
    schedule: every 5m
"""

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


class TicketApi:
    """A paginated JSON API of support tickets: ``GET /tickets?page=&per_page=&updated_since=``.

    >>> api = TicketApi(3).start(); api.url.startswith("http://127.0.0.1:"); api.stop()
    True
    """

    def __init__(self, n: int = 500) -> None:
        self.tickets = [_ticket(i, _T0 + timedelta(minutes=i)) for i in range(1, n + 1)]
        self._server: ThreadingHTTPServer | None = None
        self.requests = 0

    @property
    def url(self) -> str:
        """Base URL (no trailing slash)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> TicketApi:
        """Serve on a free port in a daemon thread."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            wbufsize = 1 << 16

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                api.requests += 1
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != "/tickets":
                    return self._send(404, {"error": "try /tickets"})
                since = q.get("updated_since")
                rows = [t for t in api.tickets if not since or t["updated_at"] > since]
                page, size = int(q.get("page", 1)), min(int(q.get("per_page", 100)), 500)
                chunk = rows[(page - 1) * size: page * size]
                return self._send(200, {"data": chunk, "page": page, "total": len(rows)})

            def _send(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def change(self, *, new: int, updated: list[int], at: datetime) -> None:
        """Add ``new`` tickets and update some, all stamped ``at``."""
        by_id = {t["id"]: t for t in self.tickets}
        for i in updated:
            by_id[i].update(status="closed", updated_at=_iso(at))
        start = len(self.tickets) + 1
        self.tickets += [_ticket(i, at) for i in range(start, start + new)]
        self.tickets.sort(key=lambda t: (t["updated_at"], t["id"]))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _ticket(i: int, at: datetime) -> dict[str, Any]:
    return {"id": i, "customer_id": 1 + i % 200, "status": ("open", "pending", "closed")[i % 3],
            "subject": f"ticket {i}", "updated_at": _iso(at),
            "details": {"channel": ("email", "chat", "phone")[i % 3], "priority": 1 + i % 4}}


def make_shop_db(path: Path, n: int = 200) -> None:
    """A SQLite database with a ``customers`` table (``updated_at`` as ISO text)."""
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "email TEXT, country TEXT, credit_limit NUMERIC, updated_at TEXT NOT NULL)")
    con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", [
        (i, f"Customer {i}", f"c{i}@example.com", ("NO", "SE", "DE", "FR")[i % 4], 500 + i,
         (_T0 + timedelta(hours=2 * i)).strftime("%Y-%m-%d %H:%M:%S")) for i in range(1, n + 1)])
    con.commit()
    con.close()


def add_pipelines(root: Path) -> None:
    """Declare the two pipelines in the project's headwater.yaml (once)."""
    file = root / PROJECT_FILE
    text = file.read_text(encoding="utf-8")
    if "shop_customers:" in text:
        return
    if text.rstrip().endswith("pipelines:\n  {}") or text.rstrip().endswith("{}"):
        text = text.rstrip()[: -len("{}")].rstrip() + "\n"
    file.write_text(text.rstrip("\n") + "\n" + _PIPELINES, encoding="utf-8")


def step(root: Path, console: Console) -> None:
    """Load a database table and an API twice; the second run reads only the changes."""
    from headwater.ingest import run_pipeline

    make_shop_db(root / "shop.db")
    add_pipelines(root)
    api = TicketApi().start()
    previous = os.environ.get(API_ENV)
    os.environ[API_ENV] = api.url
    try:
        project = load_project(root)
        console.print(f"a SQLite database (shop.db) and an API on {api.url}, declared in "
                      f"{PROJECT_FILE} as pipelines shop_customers and support_tickets")
        table = Table(title="incremental loads")
        for col in ("run", "pipeline", "rows read", "loaded", "quarantined", "status"):
            table.add_column(col)
        for name in ("shop_customers", "support_tickets"):
            run = run_pipeline(project, name)
            table.add_row("1st", name, f"{run.rows_read:,}", f"{run.rows_loaded:,}",
                          f"{run.rows_quarantined:,}", run.status)
        later = datetime.now(UTC)
        con = sqlite3.connect(root / "shop.db")
        stamp = later.strftime("%Y-%m-%d %H:%M:%S")
        con.execute("UPDATE customers SET credit_limit = 9999, updated_at = ? "
                    "WHERE id IN (3, 7, 11)", [stamp])
        con.executemany("INSERT INTO customers VALUES (?, ?, ?, 'NO', 100, ?)",
                        [(i, f"Customer {i}", f"c{i}@example.com", stamp) for i in (201, 202)])
        con.commit()
        con.close()
        api.change(new=4, updated=[1, 2], at=later)
        for name in ("shop_customers", "support_tickets"):
            run = run_pipeline(project, name)
            table.add_row("2nd", name, f"{run.rows_read:,}", f"{run.rows_loaded:,}",
                          f"{run.rows_quarantined:,}", run.status)
        console.print(table)
        console.print("the 2nd run read only the changes (5 customers, 6 tickets) plus, for the "
                      "database, the rows inside its 1h lookback; merge on the primary key "
                      "keeps one row per id")
    finally:
        api.stop()
        if previous is None:
            os.environ.pop(API_ENV, None)
        else:
            os.environ[API_ENV] = previous
    console.print(f"try: headwater -p {root} schedule list | headwater -p {root} sql "
                  '"SELECT status, count(*) FROM support_tickets GROUP BY 1"')

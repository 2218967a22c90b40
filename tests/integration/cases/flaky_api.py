"""A local JSON API that misbehaves on purpose, for the REST source tests.

Started in a thread on 127.0.0.1 (free port). Records ``{id, name, amount, updated_at, tags,
address{city, zip}}``; endpoints for each pagination style; faults are queued per request key
(``"page:3"``, ``"cursor:<token>"``, ...) and consumed one per request:

``429`` (with Retry-After), ``500``, ``slow`` (sleeps past the client timeout), ``drop`` (closes
the connection without answering), ``malformed`` (truncated JSON), ``duplicate`` (serves the
previous page's records), ``empty`` (an empty page in the middle), ``404``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def make_records(n: int, *, start: int = 1) -> list[dict[str, Any]]:
    """``n`` records with ids from ``start``; updated_at one minute apart."""
    return [{"id": i, "name": f"item {i}", "amount": round(i * 1.25, 2),
             "updated_at": (BASE + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
             "tags": ["a", "b"] if i % 2 else [],
             "address": {"city": f"city {i % 7}", "zip": f"{10000 + i}"}}
            for i in range(start, start + n)]


class FlakyApi:
    """The server and its state: records, queued faults, a request log, tokens."""

    def __init__(self, records: list[dict[str, Any]] | None = None, *, page_size: int = 10,
                 retry_after: float = 0.2, slow_s: float = 1.5) -> None:
        self.records = records if records is not None else make_records(95)
        self.page_size = page_size
        self.retry_after = retry_after
        self.slow_s = slow_s
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.log: list[str] = []
        self.tokens: dict[str, float] = {}
        self.token_ttl = 3600.0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # -- control
    def fault(self, key: str, *kinds: str) -> None:
        """Queue faults for the request ``key`` (e.g. ``page:3``)."""
        with self.lock:
            self.faults[key].extend(kinds)

    def take(self, key: str) -> str | None:
        with self.lock:
            queue = self.faults.get(key)
            return queue.pop(0) if queue else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FlakyApi:
        api = self

        class Handler(_Handler):
            server_api = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- data
    def visible(self, since: str | None, until: str | None = None) -> list[dict[str, Any]]:
        rows = self.records
        if since:
            rows = [r for r in rows if r["updated_at"] > since]
        if until:
            rows = [r for r in rows if r["updated_at"] <= until]
        return rows


class _Handler(BaseHTTPRequestHandler):
    server_api: FlakyApi
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def log_message(self, *args: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        api = self.server_api
        if self.path.startswith("/token"):
            auth = self.headers.get("Authorization", "")
            form = parse_qs(body)
            expected = "Basic " + base64.b64encode(b"client:s3cret-client").decode()
            if auth != expected or form.get("grant_type") != ["client_credentials"]:
                return self._json(401, {"error": "invalid_client"})
            token = secrets.token_hex(8)
            api.tokens[token] = time.time() + api.token_ttl
            api.log.append("token")
            return self._json(200, {"access_token": token, "expires_in": api.token_ttl,
                                    "token_type": "bearer"})
        return self._json(404, {"error": "not found"})

    def do_GET(self) -> None:
        api = self.server_api
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        api.log.append(self.path)
        route = url.path.strip("/")
        if route in ("secure",):
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ")
            if token not in api.tokens or api.tokens[token] < time.time():
                return self._json(401, {"error": "invalid_token"})
        if route == "basic":
            expected = "Basic " + base64.b64encode(b"ann:pw-basic-123").decode()
            if self.headers.get("Authorization") != expected:
                return self._json(401, {"error": "no"})
        if route == "apikey" and q.get("api_key") != "key-abc-123" and \
                self.headers.get("X-API-Key") != "key-abc-123":
            return self._json(403, {"error": "bad key"})
        rows = api.visible(q.get("since"), q.get("until"))
        size = int(q.get("per_page") or q.get("limit") or api.page_size)
        if route in ("items", "secure", "basic", "apikey"):
            page = int(q.get("page") or 1)
            key = f"page:{page}"
            chunk = rows[(page - 1) * size: page * size]
            prev = rows[max(page - 2, 0) * size: (page - 1) * size]
            body = {"data": chunk, "meta": {"total": len(rows), "page": page}}
            return self._serve(key, body, prev_body={"data": prev, "meta": {"total": len(rows)}})
        if route == "offset":
            offset = int(q.get("offset") or 0)
            body = {"items": rows[offset: offset + size]}
            return self._serve(f"offset:{offset}", body)
        if route == "cursor":
            start = int(q.get("cursor") or 0)
            chunk = rows[start: start + size]
            nxt = str(start + size) if start + size < len(rows) else None
            return self._serve(f"cursor:{start}", {"results": chunk, "next_cursor": nxt})
        if route == "link":
            page = int(q.get("page") or 1)
            chunk = rows[(page - 1) * size: page * size]
            headers = {}
            if page * size < len(rows):
                nq = dict(q, page=str(page + 1))
                headers["Link"] = f'</link?{urlencode(nq)}>; rel="next"'
            return self._serve(f"link:{page}", chunk, headers=headers)
        if route == "next":
            page = int(q.get("page") or 1)
            chunk = rows[(page - 1) * size: page * size]
            nq = dict(q, page=str(page + 1))
            nxt = f"/next?{urlencode(nq)}" if page * size < len(rows) else None
            return self._serve(f"next:{page}", {"records": chunk, "links": {"next": nxt}})
        if route == "mixed":
            body = [{"id": 1, "v": 1}, {"id": 2, "v": "two"}, "not an object", {"id": 3}]
            return self._json(200, body)
        return self._json(404, {"error": "no such route"})

    def _serve(self, key: str, body: Any, *, prev_body: Any = None,
               headers: dict[str, str] | None = None) -> None:
        api = self.server_api
        fault = api.take(key)
        if fault == "429":
            return self._json(429, {"error": "slow down"},
                              headers={"Retry-After": str(api.retry_after)})
        if fault == "500":
            return self._json(500, {"error": "boom"})
        if fault == "404":
            return self._json(404, {"error": "gone"})
        if fault == "slow":
            time.sleep(api.slow_s)
        if fault == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if fault == "duplicate" and prev_body is not None:
            body = prev_body
        if fault == "empty":
            body = {"data": [], "meta": body.get("meta", {})} if isinstance(body, dict) else []
        if fault == "malformed":
            raw = json.dumps(body).encode()[:-7]
            return self._raw(200, raw, headers=headers)
        return self._json(200, body, headers=headers)

    def _json(self, status: int, body: Any, *, headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(body).encode(), headers=headers)

    def _raw(self, status: int, raw: bytes, *, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(raw)

"""The dashboard's web app (FastAPI): the page, its parts, JSON, ``/metrics`` and actions.

Read-only unless started with an API key; then the actions (replay a quarantine) take the key
in an ``X-API-Key`` header or as ``Authorization: Bearer KEY``.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from headwater.config import Project
from headwater.core import HeadwaterError, require
from headwater.monitor._metrics import DASHBOARD_SNAPSHOT

STATIC = Path(__file__).with_name("static")
#: The environment variable the command reads the actions' API key from.
API_KEY_ENV = "HEADWATER_MONITOR_API_KEY"
#: Every script, style and image comes from the dashboard itself.
_CSP = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'")


class _Snapshots:
    """One snapshot at a time, reused for ``ttl_s`` so that many open tabs cost one read.

    ``lock`` also serialises the actions with reading: DuckDB refuses a writing connection in a
    process that has the file open for reading.
    """

    def __init__(self, project: Project, ttl_s: float) -> None:
        self.project = project
        self.ttl_s = ttl_s
        self.lock = threading.Lock()
        self._value: Any = None
        self._at = float("-inf")

    def get(self) -> Any:
        from headwater.monitor.dashboard._data import collect

        with self.lock:
            if time.monotonic() - self._at >= self.ttl_s:
                began = time.perf_counter()
                self._value = collect(self.project)
                self._at = time.monotonic()
                DASHBOARD_SNAPSHOT.observe(time.perf_counter() - began)
            return self._value

    def clear(self) -> None:
        self._at = float("-inf")


def create_app(project: Project, *, api_key: str | None = None, refresh_s: int = 5) -> Any:
    """The dashboard of ``project`` as an ASGI app (FastAPI).

    Parameters
    ----------
    project:
        The loaded headwater.yaml.
    api_key:
        Enables the actions for requests that carry it; None keeps the dashboard read-only.
    refresh_s:
        How often the page refreshes itself.

    Raises MissingExtraError naming ``headwater[serve]`` when FastAPI is not installed.
    """
    require("fastapi", "serve")
    from fastapi import Body, Depends, FastAPI, Header, HTTPException
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles

    from headwater.monitor._serve import metrics_response, process_registry
    from headwater.monitor.dashboard._page import content, page

    snapshots = _Snapshots(project, ttl_s=min(2.0, refresh_s / 2))
    app = FastAPI(title=f"headwater monitor · {project.project}", docs_url=None,
                  redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def same_origin_only(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    actions = api_key is not None

    def authorised(x_api_key: str | None = Header(None),
                   authorization: str | None = Header(None)) -> None:
        if api_key is None:
            raise HTTPException(403, f"actions are off: start `headwater monitor` with "
                                     f"{API_KEY_ENV} set to enable them")
        given = x_api_key or (authorization or "").removeprefix("Bearer ").strip()
        if not given or not secrets.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(401, "wrong or missing API key (X-API-Key header)")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page(snapshots.get(), refresh_s=refresh_s, actions=actions)

    @app.get("/content", response_class=HTMLResponse)
    def part() -> str:
        return content(snapshots.get(), actions=actions)

    @app.get("/api/snapshot")
    def snapshot() -> Response:
        return JSONResponse(_jsonable(dataclasses.asdict(snapshots.get())))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    served = process_registry()
    app.add_route("/metrics", lambda request: metrics_response(request, served))

    @app.post("/api/quarantine/replay", dependencies=[Depends(authorised)])
    def replay(table: str = Body(..., embed=True), store: str = Body("warehouse", embed=True),
               pipeline: str | None = Body(None, embed=True)) -> dict[str, Any]:
        from headwater.ingest._run import replay_table

        with snapshots.lock:
            run = _act(lambda: replay_table(project, table, store=store, pipeline=pipeline))
            snapshots.clear()
        return {"run_id": run.id, "status": run.status, "read": run.rows_read,
                "loaded": run.rows_loaded, "quarantined": run.rows_quarantined,
                "message": f"replayed {table}: {run.rows_loaded:,} loaded, "
                           f"{run.rows_quarantined:,} still quarantined (run {run.id})"}

    @app.post("/api/alerts/silence", dependencies=[Depends(authorised)])
    def silence(matchers: dict[str, str] = Body(..., embed=True),
                duration: str = Body("1h", embed=True),
                comment: str | None = Body(None, embed=True)) -> dict[str, Any]:
        from headwater.monitor.alerts import alert_store
        from headwater.monitor.alerts import silence as add_silence

        made = _act(lambda: add_silence(alert_store(project), matchers, duration=duration,
                                        comment=comment, created_by="dashboard"))
        snapshots.clear()
        return {"id": made.id, "ends_at": made.ends_at,
                "message": f"silenced for {duration}: "
                           + ", ".join(f"{k}={v}" for k, v in sorted(matchers.items()))
                           + f" (silence {made.id})"}

    @app.post("/api/alerts/unsilence", dependencies=[Depends(authorised)])
    def unsilence(id: str = Body(..., embed=True)) -> dict[str, Any]:
        from headwater.monitor.alerts import alert_store
        from headwater.monitor.alerts import unsilence as end_silence

        ended = _act(lambda: end_silence(alert_store(project), id))
        snapshots.clear()
        return {"id": ended.id, "message": f"silence {ended.id} ended"}

    def _act(action: Any) -> Any:
        """Run an action; a user's mistake (HeadwaterError) answers 400 with its message."""
        try:
            return action()
        except HeadwaterError as exc:
            raise HTTPException(400, exc.message + (f" ({exc.hint})" if exc.hint else "")) \
                from None

    return app


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def serve(project: Project, *, host: str = "127.0.0.1", port: int = 8750,
          api_key: str | None = None, refresh_s: int = 5) -> None:
    """Serve the dashboard until interrupted (uvicorn)."""
    uvicorn = require("uvicorn", "serve")
    uvicorn.run(create_app(project, api_key=api_key, refresh_s=refresh_s), host=host,
                port=port, log_level="warning", access_log=False)

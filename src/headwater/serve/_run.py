"""Start a model server: load the model(s), build the app, run uvicorn (uvloop, httptools)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from headwater.core import require
from headwater.serve._settings import ServeSettings


def build(settings: ServeSettings, *, tracker: Any) -> tuple[Any, Any]:
    """(server, app) for ``settings``: the models are loaded when this returns."""
    require("fastapi", "serve")
    from headwater.serve._app import create_app
    from headwater.serve._server import Server

    server = Server(settings, tracker=tracker).load()
    return server, create_app(server)


def run_server(settings: ServeSettings, *, tracker: Any, host: str = "127.0.0.1",
               port: int = 8000, on_ready: Callable[[Any], None] | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM finish the requests in flight first).

    ``on_ready(server)`` is called once the models are loaded, before the port opens.
    """
    uvicorn = require("uvicorn", "serve")
    server, app = build(settings, tracker=tracker)
    _freeze_heap()
    if on_ready is not None:
        on_ready(server)
    config = uvicorn.Config(app, host=host, port=port, loop=_best("uvloop", "asyncio"),
                            http=_best("httptools", "h11"), log_level="warning",
                            access_log=False, timeout_graceful_shutdown=10)
    previous = signal.signal(signal.SIGTERM, _stopped)  # uvicorn re-raises it once drained
    try:
        uvicorn.Server(config).run()
    except (KeyboardInterrupt, _Stopped):
        pass  # requests in flight were answered: a clean stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def _freeze_heap() -> None:
    """Move everything loaded so far (libraries, the models) out of the garbage collector's
    reach: a full collection then walks only what requests create, which keeps its pauses
    out of the latency tail."""
    import gc

    gc.collect()
    gc.freeze()


class _Stopped(Exception):
    pass


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped


def _best(module: str, fallback: str) -> str:
    import importlib.util

    return module if importlib.util.find_spec(module) is not None else fallback


@contextmanager
def serving(settings: ServeSettings, *, tracker: Any, host: str = "127.0.0.1",
            port: int = 0, timeout: float = 60.0) -> Iterator[tuple[str, Any]]:
    """Run a model server in a background thread (a notebook, the quickstart); yield its base
    URL and the :class:`~headwater.serve.Server`; stop it (requests in flight answered) on exit.

    ``port=0`` picks a free port.
    """
    import socket
    import threading
    import time

    uvicorn = require("uvicorn", "serve")
    server, app = build(settings, tracker=tracker)
    if port == 0:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
    config = uvicorn.Config(app, host=host, port=port, loop=_best("uvloop", "asyncio"),
                            http=_best("httptools", "h11"), log_level="warning",
                            access_log=False)
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, name="headwater-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not runner.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the model server did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}", server
    finally:
        runner.should_exit = True
        thread.join(timeout=15)

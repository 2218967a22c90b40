"""``/metrics`` for every long-running process, one way.

A process without an HTTP server of its own (stream processor, gateway, scheduler, alert
watcher) starts :func:`serve_metrics`: a small HTTP server on its own thread. A process with
one (the model server, the dashboard) answers ``GET /metrics`` with :func:`metrics_response`.
Both expose the same thing: headwater's registry, the process's own registries (a model
server's request metrics) and the process itself (CPU, memory, open files, Python version),
as Prometheus text or OpenMetrics, whichever the scraper asks for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from headwater.core import ConfigError
from headwater.monitor._logging import get_logger
from headwater.monitor._metrics import REGISTRY

log = get_logger(__name__)

#: process_* (CPU seconds, resident memory, open fds, start time) and python_info.
_PROCESS: list[Any] = [ProcessCollector(registry=None), PlatformCollector(registry=None)]


class _Registries:
    def __init__(self, collectors: Iterable[Any]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Any]:
        for collector in self.collectors:
            yield from collector.collect()

    describe = collect  # the names, once, so a name served twice fails at start-up


def process_registry(*registries: CollectorRegistry) -> CollectorRegistry:
    """What a long-running process serves at ``/metrics``: headwater's registry, then
    ``registries`` (the process's own), then the process collectors. Build it once per
    process; raises ``ValueError`` if two registries hold the same metric name.

    >>> from prometheus_client import generate_latest
    >>> b"process_cpu_seconds_total" in generate_latest(process_registry())
    True
    """
    if any(r is DEFAULT_REGISTRY for r in registries):  # its process collectors twice
        raise ValueError("pass headwater's or a process's own registry, not prometheus' default")
    served = CollectorRegistry(auto_describe=True)
    served.register(_Registries([REGISTRY, *registries, *_PROCESS]))
    return served


def metrics_response(request: Any, registry: CollectorRegistry) -> Any:
    """The answer to ``GET /metrics`` of a FastAPI/Starlette app (the model server, the
    dashboard) from its :func:`process_registry`: OpenMetrics when the scraper asks for it,
    Prometheus text otherwise; ``?name[]=...`` picks metrics, as prometheus-client's own
    server does.

    >>> # served = process_registry(my_registry)
    >>> # @app.get("/metrics")
    >>> # def metrics(request: Request) -> Response: return metrics_response(request, served)
    """
    from starlette.responses import Response

    names = request.query_params.getlist("name[]")
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    body = encoder(registry.restricted_registry(names) if names else registry)
    return Response(body, media_type=content_type)


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; :meth:`close` stops it."""

    host: str
    port: int
    _server: Any

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(port: int = 0, *, host: str = "127.0.0.1",
                  registries: Iterable[CollectorRegistry] = ()) -> MetricsServer:
    """Serve :func:`process_registry` at ``http://host:port/metrics`` on a thread of its own
    (port 0: any free port; read it from the result). For the stream processor, gateway,
    scheduler and alert watcher; Prometheus scrapes it. Raises ``ConfigError`` if the port is
    taken.

    >>> server = serve_metrics(0)
    >>> import httpx; b"headwater_runs" in httpx.get(server.url).content
    True
    >>> server.close()
    """
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from prometheus_client import make_wsgi_app

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # no line per scrape
            pass

    try:
        server = make_server(host, port, make_wsgi_app(process_registry(*registries)), Server,
                             handler_class=Quiet)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror}",
                          hint="choose another --metrics-port, or 0 for any free port") from None
    # a short poll: close() waits for the loop to notice, and a batch run should not wait long
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                     name="hw-metrics", daemon=True).start()
    bound = server.server_address[1]
    log.info("metrics_serving", url=f"http://{host}:{bound}/metrics")
    return MetricsServer(host=host, port=bound, _server=server)

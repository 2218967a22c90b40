"""``/metrics`` for long-running processes: one small HTTP server on its own thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import start_http_server

from headwater.core import ConfigError
from headwater.monitor._logging import get_logger
from headwater.monitor._metrics import REGISTRY

log = get_logger(__name__)


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


def serve_metrics(port: int = 0, *, host: str = "127.0.0.1") -> MetricsServer:
    """Serve headwater's metrics registry at ``http://host:port/metrics`` (port 0: any free
    port; read it from the result). For the stream processor, gateway, scheduler, model servers
    and dashboard; Prometheus scrapes it.

    >>> server = serve_metrics(0)
    >>> import httpx; b"headwater_runs" in httpx.get(server.url).content
    True
    >>> server.close()
    """
    try:
        server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror}",
                          hint="choose another --metrics-port, or 0 for any free port") from None
    bound = server.server_address[1]
    log.info("metrics_serving", url=f"http://{host}:{bound}/metrics")
    return MetricsServer(host=host, port=bound, _server=server)

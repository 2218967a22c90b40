"""Sources: where rows come from, as Arrow batches. Files in any format (detected from content),
SQL databases (incremental by cursor, PostgreSQL CDC), REST and SOAP APIs, Redis.

Each source is built from its spec in headwater.yaml by :func:`build_source`, or directly:

    >>> from headwater.ingest.sources import SqlSource
    >>> SqlSource("sqlite:///shop.db", tables=["orders"], cursor="updated_at").tables
    ['orders']
"""

from __future__ import annotations

from headwater.core import lazy_exports

# public name -> module that defines it; loaded on first use (database drivers, httpx, zeep)
_EXPORTS = {
    "FORMATS": "headwater.ingest.sources._detect",
    "Detected": "headwater.ingest.sources._detect",
    "detect": "headwater.ingest.sources._detect",
    "FileSource": "headwater.ingest.sources._files",
    "file_sha256": "headwater.ingest.sources._files",
    "build_source": "headwater.ingest.sources._registry",
    "SqlSource": "headwater.ingest.sources._sql",
    "PostgresCdcSource": "headwater.ingest.sources._cdc",
    "RestSource": "headwater.ingest.sources._rest",
    "Paginator": "headwater.ingest.sources._rest",
    "BearerAuth": "headwater.ingest.sources._rest",
    "BasicAuth": "headwater.ingest.sources._rest",
    "ApiKeyAuth": "headwater.ingest.sources._rest",
    "OAuth2Auth": "headwater.ingest.sources._rest",
    "SoapSource": "headwater.ingest.sources._soap",
    "RedisSource": "headwater.ingest.sources._redis",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

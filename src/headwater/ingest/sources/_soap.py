"""A SOAP operation as a source, with zeep: called page by page, the response flattened.

zeep builds the request from the WSDL; the HTTP exchange goes through the same retrying,
rate-limited client as the REST source (429 with Retry-After, 5xx, timeouts, dropped
connections, malformed XML). Each page commits with the next page number, so a failed run
resumes where it stopped; the run that reaches the last page starts from the first next time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow as pa

from headwater.core import (
    POSITION,
    Batch,
    Extract,
    Source,
    SourceError,
    State,
    redact,
    rejects_table,
)
from headwater.core import require as _require
from headwater.ingest.sources._http import (
    RateLimiter,
    RetryPolicy,
    Unreadable,
    UnreadableError,
    send,
)
from headwater.ingest.sources._records import find_records, records_to_table
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config._sources import SoapSpec

log = get_logger(__name__)


def _xml_check(response: httpx.Response) -> None:
    from lxml import etree

    try:
        etree.fromstring(response.content)
    except etree.XMLSyntaxError as exc:
        raise Unreadable(f"malformed XML: {exc}") from None


def _transport(client: httpx.Client, policy: RetryPolicy, limiter: RateLimiter) -> Any:
    zeep = _require("zeep", "soap")

    class HttpxTransport(zeep.Transport):
        """zeep's transport over httpx with headwater's retries and rate cap."""

        def __init__(self) -> None:
            super().__init__()

        def post(self, address: str, message: Any, headers: dict[str, str]) -> httpx.Response:
            request = client.build_request("POST", address, content=message, headers=headers)
            response, _ = send(client, request, policy=policy, limiter=limiter,
                               check=_xml_check, what="SOAP call")
            return response

        def _load_remote_data(self, url: str) -> bytes:
            request = client.build_request("GET", url)
            response, _ = send(client, request, policy=policy, limiter=limiter, what="WSDL")
            return response.content

    return HttpxTransport()


class SoapSource(Source):
    """Records returned by a SOAP operation.

    Parameters
    ----------
    wsdl:
        URL or file of the WSDL.
    operation:
        Operation to call.
    args:
        Its arguments.
    records:
        Dotted path of the record list in the (serialized) response.
    page_arg:
        Argument that takes the page number; None: one call.
    """

    kind = "soap"

    def __init__(self, wsdl: str, operation: str, *, args: dict[str, Any] | None = None,
                 records: str | None = None, page_arg: str | None = None, page_start: int = 1,
                 service: str | None = None, port: str | None = None,
                 address: str | None = None, username: str | None = None,
                 password: str | None = None, policy: RetryPolicy | None = None,
                 timeout: float = 30.0) -> None:
        self.wsdl = wsdl
        self.operation = operation
        self.args = dict(args or {})
        self.records = records
        self.page_arg = page_arg
        self.page_start = page_start
        self.service = service
        self.port = port
        self.address = address
        self.username = username
        self.password = password
        self.policy = policy or RetryPolicy()
        self.timeout = timeout

    @classmethod
    def from_spec(cls, spec: SoapSpec, root: Path | None = None) -> SoapSource:
        """Build from the headwater.yaml model; a relative WSDL path starts at the project."""
        wsdl = spec.wsdl
        if "://" not in wsdl and root is not None and not Path(wsdl).is_absolute():
            wsdl = str(root / wsdl)
        rl = spec.rate_limit
        return cls(wsdl, spec.operation, args=spec.args, records=spec.records,
                   page_arg=spec.page_arg, page_start=spec.page_start, service=spec.service,
                   port=spec.port, address=spec.address, username=spec.username,
                   password=spec.password.get_secret_value() if spec.password else None,
                   policy=RetryPolicy(rl.max_retries, rl.backoff, rl.max_backoff,
                                      rl.requests_per_second), timeout=spec.timeout)

    def describe(self) -> str:
        """One line for people."""
        return f"soap: {self.operation} at {redact(self.wsdl)}"

    @property
    def key(self) -> str:
        """The state key."""
        return f"soap:{self.wsdl}#{self.operation}"

    def extracts(self, state: State) -> Iterator[Extract]:
        """One extract per page, each with the next page to read."""
        zeep = _require("zeep", "soap")
        previous = state.get(self.key) or {}
        page = previous.get("next_page") or self.page_start
        auth = (self.username, self.password) if self.username else None
        with httpx.Client(timeout=self.timeout, auth=auth, follow_redirects=True) as http:
            limiter = RateLimiter(self.policy.requests_per_second)
            try:
                client = zeep.Client(self.wsdl, transport=_transport(http, self.policy, limiter),
                                     service_name=self.service, port_name=self.port)
            except (OSError, ValueError, zeep.exceptions.Error) as exc:
                raise SourceError(f"cannot read the WSDL {redact(self.wsdl)}: {exc}",
                                  hint="check `wsdl:` (a URL or a file in the project)") from None
            service = client.service
            if self.address:
                service = client.create_service(str(client.service._binding.name),
                                                self.address)
            try:
                call = service[self.operation]
            except (AttributeError, KeyError, zeep.exceptions.Error):
                ops = sorted(client.service._operations)
                raise SourceError(f"the WSDL has no operation '{self.operation}'",
                                  hint="operations: " + ", ".join(ops)) from None
            while True:
                args = dict(self.args)
                if self.page_arg:
                    args[self.page_arg] = page
                batch, count = self._call(zeep, call, args, page)
                last = not self.page_arg or count == 0
                position = ({"next_page": None,
                             "completed_at": datetime.now(UTC).isoformat()} if last
                            else {"next_page": page + 1})
                yield Extract(source=f"{self.operation} page {page}" if self.page_arg
                              else self.operation, key=self.key, position=position,
                              batches=[batch] if batch.num_rows else [], unit="record")
                if last:
                    return
                page += 1

    def _call(self, zeep: Any, call: Any, args: dict[str, Any], page: int) -> tuple[Batch, int]:
        try:
            result = call(**args)
        except UnreadableError as exc:
            raw = exc.response.text[:1_000_000]
            log.error("soap_response_unreadable", operation=self.operation, page=page)
            rejects = rejects_table([0], [raw], [f"malformed XML from {self.operation}"])
            return Batch(data=pa.table({POSITION: pa.array([], pa.int64())}),
                         rejects=rejects), 1
        except zeep.exceptions.Fault as exc:
            raise SourceError(f"{self.operation} returned a SOAP fault: {exc.message}",
                              hint="check `args:` against the WSDL") from None
        except (zeep.exceptions.Error, TypeError) as exc:
            raise SourceError(f"{self.operation} failed: {exc}",
                              hint="check `args:` against the WSDL") from None
        body = zeep.helpers.serialize_object(result, dict)
        records = find_records(body, self.records) or []
        table, rejects = records_to_table(records)
        return Batch(data=table, rejects=rejects), len(records)

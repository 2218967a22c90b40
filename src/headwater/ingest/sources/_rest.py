"""A JSON REST API as a source: auth, pagination, incremental since-parameter, retries.

Pages are fetched in groups of ``pages_per_commit``; each group is one extract whose position is
where the next group starts (and the run's since value). If the API or the process dies, the
next run continues from the last committed group with the same since value: nothing is lost,
nothing loaded twice. Once the last page is in, the position holds the new since value (the
largest ``incremental.field`` seen) and no next page.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from headwater.core import (
    Batch,
    Extract,
    Source,
    SourceError,
    State,
    redact,
    rejects_table,
)
from headwater.ingest._ahead import WorkAhead
from headwater.ingest.sources._http import (
    RateLimiter,
    RetryPolicy,
    Unreadable,
    UnreadableError,
    send,
)
from headwater.ingest.sources._records import dig, find_records, records_to_table
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config._sources import RestSpec

log = get_logger(__name__)


# ---------------------------------------------------------------- authentication


class Auth:
    """Adds credentials to a request; ``refresh`` after a 401 (OAuth2 only)."""

    def apply(self, request: httpx.Request) -> httpx.Request:
        """Return the request with credentials."""
        return request

    def refresh(self, client: httpx.Client) -> bool:
        """Get new credentials; True if that may help."""
        return False


@dataclass
class BearerAuth(Auth):
    """``Authorization: Bearer <token>``."""

    token: str

    def apply(self, request: httpx.Request) -> httpx.Request:
        """Set the header."""
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


@dataclass
class BasicAuth(Auth):
    """HTTP basic."""

    username: str
    password: str

    def apply(self, request: httpx.Request) -> httpx.Request:
        """Set the header."""
        request.headers["Authorization"] = basic_header(self.username, self.password)
        return request


@dataclass
class ApiKeyAuth(Auth):
    """A key in a header or a query parameter."""

    name: str
    value: str
    location: str = "header"

    def apply(self, request: httpx.Request) -> httpx.Request:
        """Set the header or the query parameter."""
        if self.location == "query":
            return httpx.Request(request.method, request.url.copy_set_param(self.name, self.value),
                                 headers=request.headers, content=request.content)
        request.headers[self.name] = self.value
        return request


@dataclass
class OAuth2Auth(Auth):
    """OAuth2 client credentials; the token is cached and refreshed before it expires."""

    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    _token: str | None = None
    _expires: float = 0.0
    _client: httpx.Client | None = None

    def bind(self, client: httpx.Client) -> None:
        """The client to fetch tokens with."""
        self._client = client

    def apply(self, request: httpx.Request) -> httpx.Request:
        """Set ``Authorization: Bearer``, fetching a token when none is valid."""
        if self._token is None or time.time() > self._expires - 30:
            self._fetch()
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def refresh(self, client: httpx.Client) -> bool:
        """Forget the token (a 401 means it was revoked or expired early)."""
        self._token = None
        return True

    def _fetch(self) -> None:
        assert self._client is not None
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        request = self._client.build_request(
            "POST", self.token_url, data=form,
            headers={"Authorization": basic_header(self.client_id, self.client_secret)})
        _, body = send(self._client, request, policy=self.policy,
                       limiter=RateLimiter(None), check=_json_body, what="token request")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise SourceError(f"token endpoint {self.token_url} returned no access_token",
                              hint="check token_url, client_id and client_secret")
        self._token = str(token)
        self._expires = time.time() + float(body.get("expires_in") or 3600)
        from headwater.core import register_secret

        register_secret(self._token)


def basic_header(username: str, password: str) -> str:
    """``Basic base64(user:password)``.

    >>> basic_header("a", "b")
    'Basic YTpi'
    """
    import base64

    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def auth_from_spec(spec: Any, policy: RetryPolicy) -> Auth | None:
    """The Auth an ``auth:`` block describes."""
    if spec is None:
        return None
    if spec.type == "bearer":
        return BearerAuth(spec.token.get_secret_value())
    if spec.type == "basic":
        return BasicAuth(spec.username, spec.password.get_secret_value())
    if spec.type == "api_key":
        return ApiKeyAuth(spec.name, spec.value.get_secret_value(), spec.location)
    return OAuth2Auth(spec.token_url, spec.client_id, spec.client_secret.get_secret_value(),
                      spec.scope, policy=policy)


# ---------------------------------------------------------------- pagination


@dataclass
class Paginator:
    """Where the next page is; its ``state`` is JSON and goes into the committed position."""

    type: str = "none"
    param: str | None = None
    start: int = 1
    size_param: str | None = None
    size: int = 100
    path: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    done: bool = False
    _seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        default = {"page": "page", "offset": "offset", "cursor": "cursor"}
        self.param = self.param or default.get(self.type)
        if not self.state:
            if self.type == "page":
                self.state = {"page": self.start}
            elif self.type == "offset":
                self.state = {"offset": 0}

    def request_params(self) -> dict[str, Any]:
        """Query parameters of the next request (besides the source's own)."""
        assert self.param is not None or self.type in ("none", "link_header", "next_url")
        out: dict[str, Any] = {}
        if self.size_param:
            out[self.size_param] = self.size
        if self.type == "page":
            out[self.param] = self.state["page"]
        elif self.type == "offset":
            out[self.param] = self.state["offset"]
        elif self.type == "cursor" and self.state.get("cursor") is not None:
            out[self.param] = self.state["cursor"]
        return out

    def next_url(self) -> str | None:
        """For link_header / next_url: the absolute URL of the next page, if known."""
        return self.state.get("url")

    def advance(self, response: httpx.Response, body: Any, count: int) -> None:
        """Move to the next page, or mark the end."""
        if self.type == "none":
            self.done = True
        elif self.type in ("page", "offset"):
            if count == 0 or (self.size_param and count < self.size):
                self.done = True
            elif self.type == "page":
                self.state = {"page": self.state["page"] + 1}
            else:
                self.state = {"offset": self.state["offset"] + count}
        elif self.type == "cursor":
            token = dig(body, self.path or "next_cursor")
            self._follow("cursor", None if token in (None, "") else str(token), count)
        elif self.type == "link_header":
            link = response.links.get("next", {}).get("url")
            self._follow("url", urljoin(str(response.url), link) if link else None, count)
        elif self.type == "next_url":
            link = dig(body, self.path or "next")
            self._follow("url", urljoin(str(response.url), str(link)) if link else None, count)

    def _follow(self, key: str, value: str | None, count: int) -> None:
        if value is None or count == 0:
            self.done = True
            return
        if value in self._seen:
            log.warning("pagination_loop", key=key, value=redact(value)[:200],
                        action="stopped: the server sent a page pointer it sent before")
            self.done = True
            return
        self._seen.add(value)
        self.state = {key: value}


# ---------------------------------------------------------------- the source


def _json_body(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise Unreadable(f"malformed JSON: {exc}") from None


class RestSource(Source):
    """Records from a paginated JSON API.

    Parameters
    ----------
    url:
        The endpoint.
    records:
        Dotted path of the record list in each response body.
    pagination:
        A :class:`Paginator` (type none, page, offset, cursor, link_header, next_url).
    since_param, since_field, since_initial:
        Incremental loading: send the largest ``since_field`` of the last run as
        ``since_param``.
    pages_per_commit:
        Pages per extract (one transaction); a failure resumes from the last committed one.
    total_path:
        Dotted path of a total count in the body; ending with fewer records is an error
        (a page went missing), so the since value is not advanced past lost records.
    transport:
        An httpx transport (tests use it to talk to an in-process app).

    >>> RestSource("https://api.example.com/v1/orders").describe()
    'rest: GET https://api.example.com/v1/orders'
    """

    kind = "rest"

    def __init__(self, url: str, *, method: str = "GET", params: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None, body: dict[str, Any] | None = None,
                 auth: Auth | None = None, records: str | None = None,
                 pagination: Paginator | None = None, since_param: str | None = None,
                 since_field: str | None = None, since_initial: str | None = None,
                 until_param: str | None = None, policy: RetryPolicy | None = None,
                 timeout: float = 30.0, pages_per_commit: int = 50,
                 total_path: str | None = None, window: tuple[Any, Any] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self.method = method
        self.params = dict(params or {})
        self.headers = dict(headers or {})
        self.body = body
        self.auth = auth
        self.records = records
        self.pagination = pagination or Paginator()
        self.since_param = since_param
        self.since_field = since_field
        self.since_initial = since_initial
        self.until_param = until_param
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.pages_per_commit = pages_per_commit
        self.total_path = total_path
        self.window = window
        self.transport = transport

    @classmethod
    def from_spec(cls, spec: RestSpec, *, window: tuple[Any, Any] | None = None,
                  transport: httpx.BaseTransport | None = None) -> RestSource:
        """Build from the headwater.yaml model."""
        rl = spec.rate_limit
        policy = RetryPolicy(rl.max_retries, rl.backoff, rl.max_backoff, rl.requests_per_second)
        p = spec.pagination
        inc = spec.incremental
        return cls(
            spec.url, method=spec.method, params=spec.params, headers=spec.headers,
            body=spec.body, auth=auth_from_spec(spec.auth, policy), records=spec.records,
            pagination=Paginator(p.type, p.param, p.start, p.size_param, p.size, p.path),
            since_param=inc.param if inc else None, since_field=inc.field if inc else None,
            since_initial=inc.initial if inc else None,
            until_param=inc.until_param if inc else None, policy=policy,
            timeout=spec.timeout, pages_per_commit=spec.pages_per_commit,
            total_path=p.total_path, window=window, transport=transport,
        )

    def describe(self) -> str:
        """One line for people."""
        return f"rest: {self.method} {redact(self.url)}"

    @property
    def key(self) -> str:
        """The state key: method, URL and the source's own parameters (no credentials)."""
        digest = hashlib.sha1(orjson.dumps(self.params, option=orjson.OPT_SORT_KEYS)
                              ).hexdigest()[:8]
        return f"{self.method} {self.url}#{digest}"

    def extracts(self, state: State) -> Iterator[Extract]:
        """Groups of pages, each with the position after it. The next group is fetched on a
        background thread while the pipeline loads this one, so the API sets the pace."""
        with WorkAhead(self._groups(state), _same, depth=1, name="hw-rest") as groups:
            yield from groups

    def _groups(self, state: State) -> Iterator[Extract]:
        key = self.key
        previous = dict(state.get(key) or {})
        since = previous.get("since", self.since_initial)
        if self.window is not None:
            if not self.since_param:
                from headwater.core import ConfigError

                raise ConfigError("a backfill window needs `incremental:` with param",
                                  hint="add incremental: {param: ..., field: ..., until_param: "
                                  "...}")
            key = f"{key}@{self.window[0]}/{self.window[1]}"
            previous = dict(state.get(key) or {})
            since = str(self.window[0])
            if previous and not previous.get("next"):
                log.info("window_already_loaded", url=redact(self.url), window=list(self.window))
                return
        run_since = previous.get("run_since", since) if previous.get("next") else since
        pager = Paginator(**{k: getattr(self.pagination, k) for k in
                             ("type", "param", "start", "size_param", "size", "path")})
        if previous.get("next"):
            pager.state = dict(previous["next"])
            log.info("rest_resume", url=redact(self.url), at=previous["next"])
        max_seen = previous.get("max_seen") if previous.get("next") else None
        total_seen = int(previous.get("count", 0)) if previous.get("next") else 0
        expected: int | None = None
        with self._client() as client:
            if isinstance(self.auth, OAuth2Auth):
                self.auth.bind(client)
            limiter = RateLimiter(self.policy.requests_per_second)
            first_page = True
            last_hash = ""
            while not pager.done:
                start_state = dict(pager.state)
                pending: list[Any] = []  # records of this group, converted once at its end
                bad_pages: list[tuple[str, str]] = []
                pages = dup_pages = 0
                while pages < self.pages_per_commit and not pager.done:
                    response, body = self._fetch(client, limiter, pager, run_since, last_hash)
                    if first_page and self.total_path:
                        found = dig(body, self.total_path) if body is not _BAD else None
                        expected = int(found) if isinstance(found, int | str) and str(
                            found).isdigit() else None
                    first_page = False
                    pages += 1
                    if body is _DUPLICATE:
                        dup_pages += 1
                        body = _json_body(response)
                        log.warning("duplicate_page", url=redact(str(response.url)),
                                    action="skipped: same records as the page before, "
                                    "on every retry")
                        pager.advance(response, body, len(find_records(body, self.records) or []))
                        continue
                    records = None if body is _BAD else find_records(body, self.records)
                    if records is None:
                        reason = (f"malformed JSON from {response.url}" if body is _BAD else
                                  f"no record list in the response (records: {self.records!r})")
                        bad_pages.append((response.text[:1_000_000], reason))
                        count = pager.size  # counts as a full page: the pages after it still come
                        last_hash = ""
                    else:
                        pending.extend(records)
                        count = len(records)
                        total_seen += count
                        last_hash = self._records_hash(body)
                    if body is _BAD and pager.type not in ("page", "offset"):
                        raise SourceError(
                            f"{redact(str(response.url))}: the page is not JSON, so the next "
                            "page cannot be found",
                            hint="the rows so far are committed; run again once the API is fixed")
                    pager.advance(response, body, count)
                data, rejects = records_to_table(pending)
                if bad_pages:
                    page_rejects = rejects_table(
                        range(len(pending), len(pending) + len(bad_pages)),
                        [raw for raw, _ in bad_pages], [reason for _, reason in bad_pages])
                    rejects = page_rejects if rejects is None else pa.concat_tables(
                        [rejects, page_rejects]).combine_chunks()
                if self.since_field and data.num_rows and self.since_field in data.column_names:
                    top = pc.max(data[self.since_field]).as_py()
                    if top is not None:
                        top = top.isoformat() if hasattr(top, "isoformat") else top
                        max_seen = top if _later(top, max_seen) else max_seen
                if pager.done:
                    if expected is not None and total_seen < expected:
                        raise SourceError(
                            f"{redact(self.url)}: the API announced {expected} records but "
                            f"pagination ended after {total_seen}: a page went missing",
                            hint="pages loaded so far are committed; the next run resumes "
                            "from there and the since value is not advanced")
                    new_since = since
                    if max_seen is not None and _later(max_seen, since):
                        new_since = max_seen
                    position: dict[str, Any] = {"since": new_since, "next": None,
                                                "count": total_seen}
                else:
                    position = {"since": since, "run_since": run_since, "next": dict(pager.state),
                                "max_seen": max_seen, "count": total_seen}
                batch = Batch(data=data, rejects=rejects)
                yield Extract(source=f"{redact(self.url)} {_where(start_state)}", key=key,
                              position=position, batches=[batch], unit="record",
                              meta={"pages": pages, "duplicate_pages": dup_pages})

    def _client(self) -> httpx.Client:
        return httpx.Client(timeout=self.timeout, follow_redirects=True,
                            headers=self.headers, transport=self.transport)

    def _fetch(self, client: httpx.Client, limiter: RateLimiter, pager: Paginator,
               since: Any, last_hash: str) -> tuple[httpx.Response, Any]:
        """One page, retried until readable; a repeat of the page before is retried too."""
        url = pager.next_url()
        params: dict[str, Any] = {}
        if url is None:
            url = self.url
            params = {**self.params, **pager.request_params()}
            if self.since_param and since is not None:
                params[self.since_param] = since
            if self.until_param and self.window is not None:
                params[self.until_param] = str(self.window[1])
        request = client.build_request(self.method, url, params=params or None,
                                       json=self.body if self.method == "POST" else None)
        if self.auth is not None:
            request = self.auth.apply(request)

        def reauth(old: httpx.Request) -> httpx.Request | None:
            if self.auth is None or not self.auth.refresh(client):
                return None
            fresh = client.build_request(old.method, url, params=params or None,
                                         json=self.body if self.method == "POST" else None)
            return self.auth.apply(fresh)

        def check(response: httpx.Response) -> Any:
            body = _json_body(response)
            if last_hash and self._records_hash(body) == last_hash:
                raise Unreadable("the same records as the page before")
            return body

        try:
            return send(client, request, policy=self.policy, limiter=limiter,
                        check=check, on_unauthorized=reauth, what=f"{self.method}")
        except UnreadableError as exc:
            try:
                if self._records_hash(_json_body(exc.response)) == last_hash:
                    return exc.response, _DUPLICATE
            except Unreadable:
                pass
            # malformed after every retry: the body goes to the quarantine
            log.error("page_unreadable", url=redact(str(request.url)), error=exc.message)
            return exc.response, _BAD

    def _records_hash(self, body: Any) -> str:
        """A digest of a page's records ('' for none): equal digests mean a repeated page."""
        records = find_records(body, self.records)
        if not records:
            return ""
        return hashlib.sha1(orjson.dumps(records, default=str)).hexdigest()


_BAD = object()
_DUPLICATE = object()


def _same(extract: Extract) -> Extract:
    return extract


def _later(a: Any, b: Any) -> bool:
    """``a > b`` for since values: numbers as numbers, anything else as ISO text."""
    if b is None:
        return a is not None
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a > b
    return str(a) > str(b)


def _where(state: dict[str, Any]) -> str:
    if not state:
        return "(first page)"
    key, value = next(iter(state.items()))
    return f"({key} {redact(str(value))[:80]})"

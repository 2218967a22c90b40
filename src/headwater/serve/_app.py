"""The HTTP edge of the model server: a FastAPI app (OpenAPI docs at ``/docs``) whose routes
call :class:`~headwater.serve.Server`, an API-key gate and per-request metrics.

Routes by model kind — classifiers and regressors: ``POST /predict``; recommenders:
``GET /recommendations/{user_id}``, ``POST /interactions``, ``GET /similar/{item_id}``; both:
``/healthz``, ``/readyz``, ``/metrics``, and on request SageMaker's ``/ping`` +
``/invocations`` and Azure ML's ``/`` + ``/score``.

The two requests a recommender answers most (``GET /recommendations/{user_id}`` and ``POST
/interactions``) take a hot path in the :class:`Gate`: validated with the same models as the
FastAPI routes, answered without FastAPI's per-request machinery (which costs more than the
answer itself). A request the hot path cannot take as it is (one that fails validation) goes on
to the FastAPI route, which answers it in full, with the error naming the field.
"""

import hmac
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from headwater.core import ConfigError, HeadwaterError, NotFoundError
from headwater.monitor import get_logger, metrics_response, process_registry
from headwater.serve._predictor import parse_rows
from headwater.serve._server import RECOMMENDER, Server
from headwater.serve._state import Interaction

log = get_logger(__name__)

#: Paths a load balancer or orchestrator probes: never behind the API key.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/ping", "/"})
_DOCS = frozenset({"/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"})


class ORJSONResponse(Response):
    """JSON rendered by orjson (the server's response class)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _json(status: int, body: Any) -> tuple[dict[str, Any], bytes]:
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json")]}, orjson.dumps(body))


def error_answer(exc: HeadwaterError) -> tuple[int, dict[str, Any]]:
    """The status and body a headwater error is answered with."""
    status = 404 if isinstance(exc, NotFoundError) else 422 if isinstance(
        exc, ConfigError) else 503
    return status, {"error": exc.message, "hint": exc.hint}


#: Longest user id a request may name; most items one request may ask for.
USER_ID_MAX = 200
K_MAX = 200


class RecommendQuery(BaseModel):
    """Query parameters of ``GET /recommendations/{user_id}``."""

    k: int = Field(10, ge=1, le=K_MAX, description="how many items")
    exclude: list[str] | None = Field(None, description="items not to recommend (repeat or "
                                      "comma-separate)")
    category: str | None = Field(None, description="only items of this category")

    @property
    def skip(self) -> list[str]:
        """The excluded items, comma-separated lists split."""
        return [e for part in self.exclude or () for e in part.split(",") if e]


class InteractionIn(BaseModel):
    """One interaction: a user did something with an item."""

    user_id: str | int = Field(description="the user")
    item_id: str | int = Field(description="the item")
    event: str = Field("click", description="view, click, add_to_cart, purchase, rating, ...")
    value: float = Field(1.0, description="a rating, a price, or 1")
    timestamp: float | None = Field(None, description="seconds since 1970 (default: now)")
    category: str | None = None


class InteractionBatch(BaseModel):
    """Several interactions in one request."""

    interactions: list[InteractionIn] = Field(min_length=1, max_length=10_000)


InteractionsBody = InteractionIn | list[InteractionIn] | InteractionBatch
_INTERACTIONS: TypeAdapter[InteractionsBody] = TypeAdapter(InteractionsBody)


def interaction_rows(body: InteractionsBody) -> list[Interaction]:
    """The interactions a request body holds (ConfigError when there are none)."""
    given = body.interactions if isinstance(body, InteractionBatch) else (
        body if isinstance(body, list) else [body])
    if not given:
        raise ConfigError("body: no interactions", hint="send at least one")
    now = time.time()
    return [Interaction(str(i.user_id), str(i.item_id), i.event, i.value, i.timestamp or now,
                        i.category) for i in given]


#: A hot route: (server, scope, body) -> (route labels, status, answer), or None when the
#: request must go on to FastAPI.
HotRoute = Callable[[Server, dict[str, Any], bytes],
                    Awaitable[tuple[tuple[str, str, str], int, Any] | None]]
_RECOMMENDATIONS = "/recommendations/"


async def _hot_recommendations(server: Server, scope: dict[str, Any], _: bytes,
                               ) -> tuple[tuple[str, str, str], int, Any] | None:
    user = scope["path"][len(_RECOMMENDATIONS):]
    if not user or "/" in user or len(user) > USER_ID_MAX:
        return None
    given: dict[str, Any] = {}
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"),
                                 keep_blank_values=True):
        if name == "exclude":
            given.setdefault("exclude", []).append(value)
        elif name in ("k", "category"):
            given[name] = value
    try:
        query = RecommendQuery.model_validate(given)
    except ValidationError:
        return None
    variant, body = await server.recommend(user, k=query.k, exclude=query.skip,
                                           category=query.category)
    return variant.labels, 200, body


async def _hot_interactions(server: Server, _: dict[str, Any], raw: bytes,
                            ) -> tuple[tuple[str, str, str], int, Any] | None:
    try:
        body = _INTERACTIONS.validate_json(raw)
    except ValidationError:
        return None
    return server.variants["a"].labels, 200, await server.interact(interaction_rows(body))


#: Hot routes by method and path prefix, with the route template their metrics carry.
HOT_ROUTES: dict[tuple[str, str], tuple[str, HotRoute]] = {
    ("GET", _RECOMMENDATIONS): ("/recommendations/{user_id}", _hot_recommendations),
    ("POST", "/interactions"): ("/interactions", _hot_interactions),
}
#: Largest request body the hot path reads (FastAPI takes larger ones, and refuses them).
HOT_BODY_MAX = 1 << 20


class Gate:
    """Pure ASGI middleware: the API-key check, then latency, status and error metrics per
    route template, model version and variant (a route sets ``scope['hw']`` to its labels)."""

    def __init__(self, app: Any, *, server: Server, api_key: str | None,
                 hot: bool = True) -> None:
        self.app = app
        self.server = server
        self.key = api_key.encode() if api_key else None
        self.hot = HOT_ROUTES if hot and server.kind == RECOMMENDER else {}

    def _allowed(self, scope: dict[str, Any]) -> bool:
        if self.key is None or scope["path"] in OPEN_PATHS or scope["path"] in _DOCS:
            return True
        for name, value in scope["headers"]:
            if name == b"x-api-key" and hmac.compare_digest(value, self.key):
                return True
            if name == b"authorization" and value.startswith(b"Bearer ") and \
                    hmac.compare_digest(value[7:], self.key):
                return True
        return False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._allowed(scope):
            start, body = _json(401, {"error": "missing or wrong API key",
                                      "hint": "send the key as X-API-Key: <key> or "
                                      "Authorization: Bearer <key>"})
            await send(start)
            await send({"type": "http.response.body", "body": body})
            self._count(scope, 401, 0.0)
            return
        began = time.perf_counter()
        hot = self.hot.get((scope["method"], scope["path"][:len(_RECOMMENDATIONS)]
                            if scope["path"].startswith(_RECOMMENDATIONS) else scope["path"]))
        if hot is not None:
            receive = await self._hot(hot, scope, receive, send, began)
            if receive is None:
                return
        status = 500

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._count(scope, status, time.perf_counter() - began)

    async def _hot(self, hot: tuple[str, HotRoute], scope: dict[str, Any], receive: Any,
                   send: Any, began: float) -> Any:
        """Answer on the hot path and return None, or return the ``receive`` FastAPI
        reads the request from (the body replayed) when the hot path cannot take it."""
        template, route = hot
        raw = b""
        if scope["method"] == "POST":
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return receive
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = message.get("more_body", False)
                if size > HOT_BODY_MAX:
                    return _replay(b"".join(chunks), receive, more)
            raw = b"".join(chunks)
        try:
            answer = await route(self.server, scope, raw)
        except HeadwaterError as exc:
            status, body = error_answer(exc)
            answer = (scope.get("hw", ("", "", "")), status, body)
        if answer is None:
            return _replay(raw, receive, False)
        labels, status, body = answer
        start, data = _json(status, body)
        start["headers"].append((b"content-length", str(len(data)).encode()))
        await send(start)
        await send({"type": "http.response.body", "body": data})
        self._count_route(template, labels, status, time.perf_counter() - began)
        return None

    def _count(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        route = scope.get("route")
        self._count_route(getattr(route, "path", "unmatched"), scope.get("hw", ("", "", "")),
                          status, seconds)

    def _count_route(self, path: str, hw: tuple[str, str, str], status: int,
                     seconds: float) -> None:
        labels = (path, *hw)
        m = self.server.metrics
        m.requests.labels(*labels, str(status)).inc()
        if seconds:
            m.latency.labels(*labels).observe(seconds)
        if status >= 400:
            m.errors.labels(*labels, "client" if status < 500 else "server").inc()


def create_app(server: Server) -> Any:
    """The FastAPI app for a loaded :class:`Server` (routes follow the model's kind)."""
    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    s = server.settings
    a = server.variants["a"].served
    app = FastAPI(title=f"headwater model server: {a.label}", lifespan=lifespan,
                  default_response_class=ORJSONResponse,
                  description="A registered headwater model behind HTTP. Send the API key as "
                  "`X-API-Key` (or `Authorization: Bearer`).")

    def answer(request: Request, labels: tuple[str, str, str], body: Any,
               status: int = 200) -> ORJSONResponse:
        request.scope["hw"] = labels
        return ORJSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> ORJSONResponse:
        fields = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]
        first = exc.errors()[0]
        return ORJSONResponse({"error": f"{fields[0]}: {first['msg']}", "fields": fields,
                               "detail": [{"field": f, "message": e["msg"]}
                                          for f, e in zip(fields, exc.errors(), strict=True)]},
                              status_code=422)

    @app.exception_handler(HeadwaterError)
    async def _headwater(request: Request, exc: HeadwaterError) -> ORJSONResponse:
        status, body = error_answer(exc)
        return ORJSONResponse(body, status_code=status)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> ORJSONResponse:
        """Liveness: the process answers."""
        return ORJSONResponse({"status": "ok"})

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> ORJSONResponse:
        """Readiness: every model is loaded and the online state answers (503 if not)."""
        ready = await server.readiness()
        return ORJSONResponse(ready, status_code=200 if ready["ready"] else 503)

    served = process_registry(server.metrics.registry)

    @app.get("/metrics", tags=["operations"])
    async def metrics(request: Request) -> Response:
        """Prometheus metrics: requests, latency, errors per model version and variant, and
        the process (CPU, memory)."""
        return metrics_response(request, served)

    @app.get("/", tags=["operations"])
    async def about() -> ORJSONResponse:
        """What this server serves (Azure ML's liveness route too)."""
        return ORJSONResponse({"kind": server.kind, "variants": {
            n: v.served.describe() for n, v in server.variants.items()}})

    if server.kind == RECOMMENDER:
        UserId = Annotated[str, Path(description="any user id: unknown users get popular items",
                                     max_length=USER_ID_MAX)]

        async def recommendations(request: Request, user_id: UserId,
                                  query: Annotated[RecommendQuery, Query()]) -> ORJSONResponse:
            """The best ``k`` items for a user, reflecting every interaction sent so far."""
            variant, body = await server.recommend(user_id, k=query.k, exclude=query.skip,
                                                   category=query.category)
            return answer(request, variant.labels, body)

        app.get("/recommendations/{user_id}", tags=["recommendations"])(recommendations)

        @app.post("/interactions", tags=["recommendations"])
        async def interactions(request: Request, body: InteractionsBody) -> ORJSONResponse:
            """Record one interaction or a batch; the next recommendation reflects them."""
            out = await server.interact(interaction_rows(body))
            return answer(request, server.variants["a"].labels, out)

        @app.get("/similar/{item_id}", tags=["recommendations"])
        async def similar(request: Request, item_id: str,
                          k: Annotated[int, Query(ge=1, le=K_MAX)] = 10) -> ORJSONResponse:
            """Items like this one (popular items for an item the model does not know)."""
            variant, body = await server.similar(item_id, k=k)
            return answer(request, variant.labels, body)

        async def invoke(request: Request) -> ORJSONResponse:
            body = await _body(request)
            if not isinstance(body, dict) or "user_id" not in body:
                raise ConfigError("body.user_id is missing",
                                  hint='send {"user_id": "42", "k": 10}')
            k = body.get("k", 10)
            if not isinstance(k, int) or not 1 <= k <= K_MAX:
                raise ConfigError(f"body.k must be a whole number from 1 to {K_MAX}, got {k!r}",
                                  hint='send {"user_id": "42", "k": 10}')
            variant, out = await server.recommend(str(body["user_id"]), k=k,
                                                  exclude=body.get("exclude") or (),
                                                  category=body.get("category"))
            return answer(request, variant.labels, out)
    else:
        rows_doc = {"requestBody": {"content": {"application/json": {"schema": {
            "description": "a row {column: value}, a list of rows, or {\"rows\": [...]}",
            "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}}},
            "required": True}}

        async def invoke(request: Request) -> ORJSONResponse:
            rows = parse_rows(await _body(request))
            variant, out = await server.predict(rows, key=request.headers.get("x-user-id"))
            return answer(request, variant.labels, out)

        app.post("/predict", tags=["predictions"], openapi_extra=rows_doc,
                 summary="Score rows with the model (its signature is checked)")(invoke)

    if s.sagemaker:
        @app.get("/ping", tags=["sagemaker"])
        async def ping() -> ORJSONResponse:
            """SageMaker's health check: 200 once the model is loaded."""
            ready = await server.readiness()
            return ORJSONResponse({"status": "ok" if ready["ready"] else "loading"},
                                  status_code=200 if ready["ready"] else 503)

        app.post("/invocations", tags=["sagemaker"])(invoke)
    if s.azureml:
        app.post("/score", tags=["azureml"])(invoke)

    return Gate(app, server=server, api_key=s.api_key if s.auth else None)


async def _body(request: Any) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"the body is not JSON: {exc}",
                          hint="send Content-Type: application/json with a JSON body") from None


def _replay(body: bytes, receive: Any, more: bool) -> Any:
    """A ``receive`` that gives ``body`` first, then what is left of the request."""
    given = False

    async def replayed() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed

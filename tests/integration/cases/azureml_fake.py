"""A local stand-in for the Azure REST routes the azureml deploy target calls, for its tests.

No Azure ML emulator exists, so this fake implements, on one loopback port:

* Entra ID's token endpoint (client-credentials flow), ``/login/{tenant}/oauth2/v2.0/token``;
* Resource Manager routes of Microsoft.MachineLearningServices (api-version 2024-04-01):
  workspaces, model and environment versions, online endpoints (traffic, mirrorTraffic,
  listKeys) and deployments, with long-running operations (``Azure-AsyncOperation`` for PUT,
  ``Location`` for DELETE) that go Creating/Updating → Succeeded (or Failed);
* Azure Monitor metrics of an endpoint (api-version 2018-01-01): ``RequestsPerMinute`` by
  ``deployment`` and ``statusCodeClass``, ``RequestLatency_P99`` by ``deployment``;
* Blob storage (Put Blob, Put Block, Put Block List, Get Container Properties, HEAD);
* a container registry under ``/acr``: ACR's token exchange and the OCI distribution API's
  manifest HEAD, holding the images in ``images``;
* the data plane: ``/inference/{endpoint}/score`` with the endpoint key, routed by the traffic
  split (or the ``azureml-model-deployment`` header) and mirrored by ``mirrorTraffic``, proxied
  to real model servers: each deployment runs the bundle its environment's image stands for
  (``images``) with the model files uploaded to the fake's blob storage (as Azure mounts them).

Every request is checked against the published API: method, path, api-version, bearer token of
the right audience, and the body's fields, types and required members (unknown fields are
rejected the way Azure ML does, ``400 UserError``). Every request is logged in ``log``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import httpx

from headwater.deploy._bundle import run_bundle

ML_API = "2024-04-01"
METRICS_API = "2018-01-01"
ARM = "https://management.azure.com/.default"
STORAGE = "https://storage.azure.com/.default"
NAME = r"[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}"
ISO_DURATION = re.compile(r"^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$")

# -- the published shapes (2024-04-01), as far as the target uses them ---------------------------
STR, INT, BOOL = "string", "integer", "boolean"
MAP_STR, MAP_INT = {"map": STR}, {"map": INT}
SKU = {"keys": {"name": STR, "tier": {"enum": {"Free", "Basic", "Standard", "Premium"}},
                "size": STR, "family": STR, "capacity": INT}, "required": {"name"}}
IDENTITY = {"keys": {"type": {"enum": {"None", "SystemAssigned", "UserAssigned",
                                       "SystemAssigned,UserAssigned"}},
                     "userAssignedIdentities": {"map": "object"}}, "required": {"type"}}
ROUTE = {"keys": {"path": STR, "port": INT}, "required": {"path", "port"}}
PROBE = {"keys": {"failureThreshold": INT, "successThreshold": INT, "timeout": "duration",
                  "period": "duration", "initialDelay": "duration"}}
TRACKED = {"location": STR, "tags": MAP_STR, "identity": IDENTITY, "kind": STR, "sku": SKU}
ENDPOINT = {"keys": {**TRACKED, "properties": {"keys": {
    "authMode": {"enum": {"AMLToken", "Key", "AADToken"}}, "compute": STR, "description": STR,
    "keys": {"keys": {"primaryKey": STR, "secondaryKey": STR}}, "mirrorTraffic": MAP_INT,
    "properties": MAP_STR, "publicNetworkAccess": {"enum": {"Enabled", "Disabled"}},
    "traffic": MAP_INT}, "required": {"authMode"}}}, "required": {"location", "properties"}}
DEPLOYMENT = {"keys": {**TRACKED, "properties": {"keys": {
    "endpointComputeType": {"enum": {"Managed", "Kubernetes"}}, "appInsightsEnabled": BOOL,
    "codeConfiguration": {"keys": {"codeId": STR, "scoringScript": STR},
                          "required": {"scoringScript"}},
    "description": STR, "egressPublicNetworkAccess": {"enum": {"Enabled", "Disabled"}},
    "environmentId": STR, "environmentVariables": MAP_STR, "instanceType": STR,
    "livenessProbe": PROBE, "readinessProbe": PROBE, "model": STR, "modelMountPath": STR,
    "properties": MAP_STR,
    "requestSettings": {"keys": {"maxConcurrentRequestsPerInstance": INT,
                                 "maxQueueWait": "duration", "requestTimeout": "duration"}},
    "scaleSettings": {"keys": {"scaleType": {"enum": {"Default", "TargetUtilization"}},
                               "minInstances": INT, "maxInstances": INT,
                               "pollingInterval": "duration",
                               "targetUtilizationPercentage": INT},
                      "required": {"scaleType"}}},
    "required": {"endpointComputeType"}}}, "required": {"location", "properties"}}
ASSET = {"description": STR, "isAnonymous": BOOL, "isArchived": BOOL, "properties": MAP_STR,
         "tags": MAP_STR, "stage": STR}
MODEL_VERSION = {"keys": {"properties": {"keys": {
    **ASSET, "flavors": {"map": "object"}, "jobName": STR, "modelType": STR, "modelUri": STR}}},
    "required": {"properties"}}
ENVIRONMENT_VERSION = {"keys": {"properties": {"keys": {
    **ASSET, "autoRebuild": {"enum": {"Disabled", "OnBaseImageUpdate"}},
    "build": {"keys": {"contextUri": STR, "dockerfilePath": STR}, "required": {"contextUri"}},
    "condaFile": STR, "image": STR, "osType": {"enum": {"Linux", "Windows"}},
    "inferenceConfig": {"keys": {"livenessRoute": ROUTE, "readinessRoute": ROUTE,
                                 "scoringRoute": ROUTE}}}}},
    "required": {"properties"}}
METRICS = {"RequestsPerMinute": ({"Total", "Average", "Count", "Maximum", "Minimum"},
                                 {"deployment", "statuscode", "statuscodeclass",
                                  "modelstatuscode"}),
           "RequestLatency_P99": ({"Average", "Maximum", "Minimum"}, {"deployment"})}


def check(value: Any, schema: Any, where: str) -> list[str]:
    """Why ``value`` does not match ``schema`` (empty when it does)."""
    if schema == STR:
        return [] if isinstance(value, str) else [f"{where}: expected a string"]
    if schema == INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected an integer, got {value!r}"]
    if schema == BOOL:
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean"]
    if schema == "duration":
        ok = isinstance(value, str) and ISO_DURATION.match(value) and value not in ("P", "PT")
        return [] if ok else [f"{where}: '{value}' is not an ISO 8601 duration"]
    if schema == "object":
        return [] if isinstance(value, dict) else [f"{where}: expected an object"]
    if "enum" in schema:
        ok = value in schema["enum"]
        return [] if ok else [f"{where}: '{value}' is not one of {sorted(schema['enum'])}"]
    if "map" in schema:
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        return [e for k, v in value.items() for e in check(v, schema["map"], f"{where}.{k}")]
    if not isinstance(value, dict):
        return [f"{where}: expected an object"]
    out = [f"Could not find member '{k}' on object of type '{where}'"
           for k in value if k not in schema["keys"]]
    out += [f"{where}.{k} is required" for k in schema.get("required", ()) if k not in value]
    for k, v in value.items():
        if k in schema["keys"] and v is not None:
            out += check(v, schema["keys"][k], f"{where}.{k}")
    return out


class Reject(Exception):
    """An Azure error answer."""

    def __init__(self, status: int, code: str, message: str, details: list[str] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, list(details)


@dataclass
class Operation:
    """A long-running operation: done after ``polls`` status reads, then ``finish`` runs."""

    finish: Callable[[], str | None]
    polls: int = 1
    status: str = "InProgress"
    error: dict[str, str] | None = None
    ready: Callable[[], bool] = lambda: True

    def poll(self) -> str:
        if self.status == "InProgress":
            self.polls -= 1
            if self.polls < 0 and self.ready():
                failure = self.finish()
                self.status = "Failed" if failure else "Succeeded"
                if failure:
                    code, _, message = failure.partition(": ")
                    self.error = {"code": code, "message": message}
        return self.status


@dataclass
class Container:
    """A deployment's model server: a bundle process serving the mounted model files."""

    process: Any
    port: int
    folder: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except Exception:
                self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Event:
    """One scoring request as Azure Monitor counts it."""

    at: float
    deployment: str
    status: int
    latency_ms: float
    mirrored: bool = False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AzureFake:
    """The state of the fake Azure: one subscription, resource group and workspace."""

    subscription: str = "00000000-1111-2222-3333-444444444444"
    resource_group: str = "hw-rg"
    workspace: str = "hw-ws"
    location: str = "westeurope"
    tenant: str = "hw-tenant"
    client_id: str = "hw-client"
    client_secret: str = "hw-secret"
    account: str = "hwmodels"
    containers: set[str] = field(default_factory=lambda: {"headwater-models"})
    images: dict[str, Path] = field(default_factory=dict)
    polls: int = 1
    seed: int = 7

    def __post_init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.blocks: dict[tuple[str, str, str], bytes] = {}
        self.models: dict[tuple[str, str], dict[str, Any]] = {}
        self.environments: dict[tuple[str, str], dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.live: dict[str, dict[str, Any]] = {}  # routing in effect per endpoint
        self.running: dict[tuple[str, str], Container] = {}
        self.operations: dict[str, Operation] = {}
        self.busy: dict[str, str] = {}  # resource path -> operation id in progress
        self.events: dict[str, list[Event]] = {}
        self.keys: dict[str, tuple[str, str]] = {}
        self.log: list[dict[str, Any]] = []
        self.faults: list[tuple[str, Callable[[str, dict[str, Any]], bool], int, str]] = []
        self.lock = threading.RLock()
        self.random = random.Random(self.seed)
        self.server: ThreadingHTTPServer | None = None

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> AzureFake:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _go(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, headers, body = fake.handle(self.command, self.path, self.headers, raw)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _go

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for container in list(self.running.values()):
            container.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def workspace_path(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace}")

    def fail_next(self, method: str, when: Callable[[str, dict[str, Any]], bool],
                  status: int = 500, code: str = "InternalServerError") -> None:
        """Answer the next ``method`` request for which ``when(path, body)`` holds with an error."""
        self.faults.append((method, when, status, code))

    def calls(self, method: str, pattern: str) -> list[dict[str, Any]]:
        """Logged requests with ``method`` whose path matches ``pattern``."""
        return [r for r in self.log if r["method"] == method and re.search(pattern, r["path"])]

    # -- dispatch --------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Any, raw: bytes,
               ) -> tuple[int, dict[str, str], bytes]:
        parsed = urlparse(target)
        path, query = unquote(parsed.path), {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        try:
            body = json.loads(raw) if raw and "json" in (headers.get("Content-Type") or "") \
                else None
        except ValueError:
            return self._error(Reject(400, "UserError", "The request body is not valid JSON."))
        with self.lock:
            self.log.append({"method": method, "path": path, "query": query, "body": body})
        try:
            if path.startswith("/login/"):
                return self._token(method, path, raw)
            if path.startswith("/blob/"):
                return self._blob(method, path, query, headers, raw)
            if path.startswith("/inference/"):
                return self._score(path, headers, raw)
            if path.startswith("/acr/"):
                return self._registry(method, path[4:], headers, raw)
            self._authorize(headers, ARM)
            for i, (m, when, status, code) in enumerate(self.faults):
                if m == method and when(path, body or {}):
                    del self.faults[i]
                    raise Reject(status, code, "Injected fault.")
            return self._management(method, path, query, body)
        except Reject as exc:
            return self._error(exc)

    def _error(self, exc: Reject) -> tuple[int, dict[str, str], bytes]:
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details:
            error["details"] = [{"code": "InvalidRequestContent", "message": d}
                                for d in exc.details]
        return exc.status, {"Content-Type": "application/json",
                            "x-ms-error-code": exc.code}, json.dumps({"error": error}).encode()

    @staticmethod
    def _json(status: int, body: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()

    # -- Entra ID --------------------------------------------------------------------------------
    def _token(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        if method != "POST" or path != f"/login/{self.tenant}/oauth2/v2.0/token":
            return self._json(400, {"error": "invalid_request", "error_description":
                                    f"AADSTS90002: Tenant '{path.split('/')[2]}' not found."})
        if form.get("grant_type") != "client_credentials" or form.get("scope") not in (
                ARM, STORAGE):
            return self._json(400, {"error": "invalid_request", "error_description":
                                    "AADSTS900144: grant_type or scope is missing or wrong."})
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id,
                                                                  self.client_secret):
            return self._json(401, {"error": "invalid_client", "error_description":
                                    "AADSTS7000215: Invalid client secret provided."})
        token = secrets.token_urlsafe(24)
        self.tokens[token] = form["scope"]
        return self._json(200, {"token_type": "Bearer", "expires_in": 3599,
                                "access_token": token})

    def _authorize(self, headers: Any, scope: str) -> None:
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            raise Reject(401, "AuthenticationFailed", "Authentication failed. The "
                         "'Authorization' header is missing.")
        if self.tokens.get(auth[7:]) != scope:
            raise Reject(401, "InvalidAuthenticationToken", "The access token is invalid or "
                         "has the wrong audience.")

    # -- Resource Manager ------------------------------------------------------------------------
    def _management(self, method: str, path: str, query: dict[str, str], body: Any,
                    ) -> tuple[int, dict[str, str], bytes]:
        m = re.fullmatch(r"/subscriptions/([^/]+)/providers/Microsoft.MachineLearningServices"
                         r"/locations/([^/]+)/(mfeOperationsStatus|mfeOperationResults)/([^/]+)",
                         path)
        if m:
            self._api(query, ML_API)
            op = self.operations.get(m.group(4))
            if op is None or method != "GET":
                raise Reject(404, "NotFound", "Operation not found.")
            status = op.poll()
            if m.group(3) == "mfeOperationResults":
                return (202, {"Location": self._op_url(m.group(4), "mfeOperationResults"),
                              "Retry-After": "1"}, b"") if status == "InProgress" else (200, {},
                                                                                         b"")
            out: dict[str, Any] = {"id": m.group(4), "name": m.group(4), "status": status}
            if op.error:
                out["error"] = op.error
            return self._json(200, out)
        prefix = f"/subscriptions/{self.subscription}"
        if not path.startswith(prefix + "/"):
            raise Reject(404, "SubscriptionNotFound",
                         f"The subscription '{path.split('/')[2]}' could not be found.")
        rest = path[len(prefix):]
        rg = re.match(r"/resourceGroups/([^/]+)", rest)
        if rg is None or rg.group(1) != self.resource_group:
            raise Reject(404, "ResourceGroupNotFound", f"Resource group "
                         f"'{rg.group(1) if rg else ''}' could not be found.")
        ws = re.match(r"/resourceGroups/[^/]+/providers/Microsoft.MachineLearningServices"
                      r"/workspaces/([^/]+)(.*)", rest)
        if ws is None:
            raise Reject(400, "InvalidResourceType", f"No route for {method} {path}.")
        if ws.group(1) != self.workspace:
            raise Reject(404, "ResourceNotFound", "The Resource 'Microsoft.MachineLearning"
                         f"Services/workspaces/{ws.group(1)}' under resource group "
                         f"'{self.resource_group}' was not found.")
        sub = ws.group(2)
        metrics = re.fullmatch(r"/onlineEndpoints/([^/]+)/providers/Microsoft.Insights/metrics",
                               sub)
        if metrics:
            self._api(query, METRICS_API)
            return self._metrics(method, metrics.group(1), query)
        self._api(query, ML_API)
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", r"", self._get_workspace),
            ("GET|PUT", rf"/models/({NAME})/versions/({NAME})", self._model),
            ("GET|PUT", rf"/environments/({NAME})/versions/({NAME})", self._environment),
            ("GET|PUT|DELETE", r"/onlineEndpoints/([a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9])",
             self._endpoint),
            ("POST", r"/onlineEndpoints/([^/]+)/listKeys", self._list_keys),
            ("GET", r"/onlineEndpoints/([^/]+)/deployments", self._list_deployments),
            ("GET|PUT|DELETE", r"/onlineEndpoints/([^/]+)/deployments/"
             r"([a-zA-Z0-9][a-zA-Z0-9-]{1,30}[a-zA-Z0-9])", self._deployment),
        ]
        for methods, pattern, handler in routes:
            found = re.fullmatch(pattern, sub)
            if found:
                if method not in methods.split("|"):
                    raise Reject(405, "MethodNotAllowed", f"{method} is not allowed on {path}.")
                with self.lock:
                    return handler(method, path, body, *found.groups())
        raise Reject(400, "InvalidResourceType", f"No route for {method} {path}.")

    @staticmethod
    def _api(query: dict[str, str], wanted: str) -> None:
        given = query.get("api-version")
        if given is None:
            raise Reject(400, "MissingApiVersionParameter", "The api-version query parameter "
                         "(?api-version=) is required for all requests.")
        if given != wanted:
            raise Reject(400, "InvalidApiVersionParameter", f"The api-version '{given}' is "
                         f"invalid. The supported versions are '{wanted}'.")

    @staticmethod
    def _validate(body: Any, schema: dict[str, Any], kind: str) -> dict[str, Any]:
        problems = check(body, schema, kind) if body is not None else [f"{kind}: no body"]
        if problems:
            raise Reject(400, "UserError", "The request is invalid.", problems)
        return body

    def _op_url(self, op_id: str, kind: str = "mfeOperationsStatus") -> str:
        return (f"{self.url}/subscriptions/{self.subscription}/providers/Microsoft."
                f"MachineLearningServices/locations/{self.location}/{kind}/{op_id}"
                f"?api-version={ML_API}")

    def _start(self, path: str, finish: Callable[[], str | None],
               ready: Callable[[], bool] = lambda: True) -> str:
        if path in self.busy and self.operations[self.busy[path]].status == "InProgress":
            raise Reject(409, "Conflict", f"Another operation is in progress on {path}.")
        op_id = uuid.uuid4().hex
        self.operations[op_id] = Operation(finish=finish, polls=self.polls, ready=ready)
        self.busy[path] = op_id
        return op_id

    def _get_workspace(self, method: str, path: str, body: Any) -> Any:
        return self._json(200, {"id": path, "name": self.workspace, "location": self.location,
                                "type": "Microsoft.MachineLearningServices/workspaces",
                                "properties": {"provisioningState": "Succeeded"}})

    def _asset(self, store: dict, schema: dict, kind: str, method: str, path: str, body: Any,
               name: str, version: str, check_more: Callable[[dict], None]) -> Any:
        if method == "GET":
            if (name, version) not in store:
                raise Reject(404, "UserError", f"{kind} {name}:{version} not found.")
            return self._json(200, store[(name, version)])
        self._validate(body, schema, kind)
        check_more(body["properties"])
        created = (name, version) not in store
        if not created and store[(name, version)]["properties"].get("modelUri") != body[
                "properties"].get("modelUri"):
            raise Reject(409, "UserError", f"{kind} {name}:{version} exists and assets are "
                         "immutable.")
        store[(name, version)] = {"id": path, "name": version, "type": path.split("/")[-4],
                                  "properties": {**body["properties"],
                                                 "provisioningState": "Succeeded"}}
        return self._json(201 if created else 200, store[(name, version)])

    def _model(self, method: str, path: str, body: Any, name: str, version: str) -> Any:
        def uri_exists(props: dict) -> None:
            uri = props.get("modelUri") or ""
            prefix = f"{self.url}/blob/{self.account}/"
            container, _, folder = uri[len(prefix):].partition("/")
            if not uri.startswith(prefix) or not any(
                    c == container and n.startswith(folder + "/") for c, n in self.blobs):
                raise Reject(400, "UserError", f"No model files found at modelUri '{uri}'.")
        return self._asset(self.models, MODEL_VERSION, "ModelVersion", method, path, body,
                           name, version, uri_exists)

    def _environment(self, method: str, path: str, body: Any, name: str, version: str) -> Any:
        def image_given(props: dict) -> None:
            if not props.get("image") and not props.get("build"):
                raise Reject(400, "UserError", "An environment needs an image or a build.")
        return self._asset(self.environments, ENVIRONMENT_VERSION, "EnvironmentVersion",
                           method, path, body, name, version, image_given)

    def _endpoint(self, method: str, path: str, body: Any, name: str) -> Any:
        if method == "GET":
            if name not in self.endpoints:
                raise Reject(404, "UserError", f"Online endpoint '{name}' not found.")
            return self._json(200, self.endpoints[name])
        if method == "DELETE":
            if name not in self.endpoints:
                return 204, {}, b""
            if any(e == name for e, _ in self.deployments):
                raise Reject(400, "UserError", "Delete the endpoint's deployments first.")

            def gone() -> None:
                self.endpoints.pop(name, None)
                self.live.pop(name, None)
            op = self._start(path, gone)
            return 202, {"Location": self._op_url(op, "mfeOperationResults"),
                         "Retry-After": "1"}, b""
        self._validate(body, ENDPOINT, "OnlineEndpoint")
        props = body["properties"]
        traffic, mirror = props.get("traffic") or {}, props.get("mirrorTraffic") or {}
        known = {d for e, d in self.deployments if e == name}
        problems = [f"traffic: deployment '{d}' does not exist" for d in traffic
                    if d not in known]
        problems += [f"mirrorTraffic: deployment '{d}' does not exist" for d in mirror
                     if d not in known]
        if any(v < 0 or v > 100 for v in traffic.values()):
            problems.append("traffic values must be between 0 and 100")
        if sum(traffic.values()) not in (0, 100):
            problems.append(f"traffic must sum to 100 (got {sum(traffic.values())})")
        if sum(mirror.values()) > 50 or any(v < 0 for v in mirror.values()):
            problems.append("mirrorTraffic values must sum to at most 50")
        if len([v for v in mirror.values() if v]) > 1:
            problems.append("traffic can be mirrored to one deployment only")
        problems += [f"deployment '{d}' cannot take both live and mirrored traffic"
                     for d, v in mirror.items() if v and traffic.get(d)]
        states = {d: dep["properties"]["provisioningState"]
                  for (e, d), dep in self.deployments.items() if e == name}
        problems += [f"deployment '{d}' is {states[d]}: it cannot take traffic"
                     for d, v in {**traffic, **mirror}.items()
                     if v and d in known and states[d] != "Succeeded"]
        if problems:
            raise Reject(400, "BadArgument", "; ".join(problems))
        created = name not in self.endpoints
        if created:
            self.keys[name] = (secrets.token_urlsafe(16), secrets.token_urlsafe(16))
        resource = {
            "id": path, "name": name, "location": body["location"],
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "tags": body.get("tags") or {}, "identity": body.get("identity"),
            "properties": {"authMode": props["authMode"], "description": props.get(
                "description"), "traffic": traffic, "mirrorTraffic": mirror, "keys": None,
                "provisioningState": "Creating" if created else "Updating",
                "scoringUri": f"{self.url}/inference/{name}/score",
                "swaggerUri": f"{self.url}/inference/{name}/swagger.json"}}

        def apply() -> None:
            resource["properties"]["provisioningState"] = "Succeeded"
            self.live[name] = {"traffic": dict(traffic), "mirror": dict(mirror)}
        op = self._start(path, apply)
        self.endpoints[name] = resource
        return self._json(201 if created else 200, resource,
                          **{"Azure-AsyncOperation": self._op_url(op), "Retry-After": "1"})

    def _list_keys(self, method: str, path: str, body: Any, name: str) -> Any:
        if name not in self.endpoints:
            raise Reject(404, "UserError", f"Online endpoint '{name}' not found.")
        primary, secondary = self.keys[name]
        return self._json(200, {"primaryKey": primary, "secondaryKey": secondary})

    def _list_deployments(self, method: str, path: str, body: Any, name: str) -> Any:
        if name not in self.endpoints:
            raise Reject(404, "UserError", f"Online endpoint '{name}' not found.")
        return self._json(200, {"value": [d for (e, _), d in sorted(self.deployments.items())
                                          if e == name]})

    def _deployment(self, method: str, path: str, body: Any, endpoint: str, name: str) -> Any:
        if endpoint not in self.endpoints:
            raise Reject(404, "UserError", f"Online endpoint '{endpoint}' not found.")
        key = (endpoint, name)
        if method == "GET":
            if key not in self.deployments:
                raise Reject(404, "UserError", f"Deployment '{name}' not found.")
            return self._json(200, self.deployments[key])
        if method == "DELETE":
            if key not in self.deployments:
                return 204, {}, b""
            props = self.endpoints[endpoint]["properties"]
            if props["traffic"].get(name) or props["mirrorTraffic"].get(name):
                raise Reject(400, "UserError", f"Deployment '{name}' has traffic; set its "
                             "traffic and mirrorTraffic to 0 before deleting it.")
            self.deployments[key]["properties"]["provisioningState"] = "Deleting"

            def gone() -> None:
                self.deployments.pop(key, None)
                container = self.running.pop(key, None)
                if container is not None:
                    container.stop()
            op = self._start(path, gone)
            return 202, {"Location": self._op_url(op, "mfeOperationResults"),
                         "Retry-After": "1"}, b""
        self._validate(body, DEPLOYMENT, "OnlineDeployment")
        props = body["properties"]
        model_path, env_path = props.get("model") or "", props.get("environmentId") or ""
        mm = re.fullmatch(re.escape(self.workspace_path) + r"/models/([^/]+)/versions/([^/]+)",
                          model_path)
        em = re.fullmatch(re.escape(self.workspace_path)
                          + r"/environments/([^/]+)/versions/([^/]+)", env_path)
        if mm is None or mm.groups() not in self.models:
            raise Reject(400, "UserError", f"Model '{model_path}' not found.")
        if em is None or em.groups() not in self.environments:
            raise Reject(400, "UserError", f"Environment '{env_path}' not found.")
        if not props.get("instanceType"):
            raise Reject(400, "UserError", "instanceType is required for a managed deployment.")
        created = key not in self.deployments
        resource = {"id": path, "name": name, "location": body["location"],
                    "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
                            "/deployments",
                    "tags": body.get("tags") or {}, "sku": body.get("sku"),
                    "properties": {**props, "provisioningState": "Creating" if created
                                   else "Updating"}}
        environment = self.environments[em.groups()]["properties"]
        model = self.models[mm.groups()]["properties"]
        old = self.running.pop(key, None)
        if old is not None:
            old.stop()
        container = self._run(key, environment, model, props)

        def settle() -> str | None:
            if isinstance(container, str):
                resource["properties"]["provisioningState"] = "Failed"
                return container
            if container.process.poll() is not None:
                resource["properties"]["provisioningState"] = "Failed"
                return "ResourceNotReady: User container has crashed or terminated."
            self.running[key] = container
            resource["properties"]["provisioningState"] = "Succeeded"
            return None
        op = self._start(path, settle, ready=lambda: isinstance(container, str)
                         or self._ready(container, environment))
        self.deployments[key] = resource
        return self._json(201 if created else 200, resource,
                          **{"Azure-AsyncOperation": self._op_url(op), "Retry-After": "1"})

    def _run(self, key: tuple[str, str], environment: dict, model: dict,
             props: dict) -> Container | str:
        """Start the container the environment's image stands for, with the model mounted."""
        bundle = self.images.get(environment.get("image", ""))
        if bundle is None:
            return (f"ImagePullFailure: image '{environment.get('image')}' was not found in "
                    "the container registry.")
        folder = Path(tempfile.mkdtemp(prefix="azureml-fake-"))
        container, _, prefix = model["modelUri"][len(f"{self.url}/blob/{self.account}/"):
                                                 ].partition("/")
        for (c, name), data in self.blobs.items():
            if c == container and name.startswith(prefix + "/"):
                target = folder / "model" / name[len(prefix) + 1:]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        port = _free_port()
        try:
            process = run_bundle(bundle, port=port, workdir=folder, model_dir=folder / "model")
        except (OSError, ValueError):  # the image cannot start
            shutil.rmtree(folder, ignore_errors=True)
            return "ResourceNotReady: User container has crashed or terminated."
        return Container(process, port, folder)

    @staticmethod
    def _ready(container: Container, environment: dict) -> bool:
        if container.process.poll() is not None:
            return True  # settle() reports the crash
        route = (environment.get("inferenceConfig") or {}).get("readinessRoute") or {}
        try:
            answer = httpx.get(f"http://127.0.0.1:{container.port}{route.get('path', '/')}",
                               timeout=2)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    # -- Azure Monitor ---------------------------------------------------------------------------
    def _metrics(self, method: str, endpoint: str, query: dict[str, str]) -> Any:
        if method != "GET":
            raise Reject(405, "MethodNotAllowed", "Metrics are read with GET.")
        if endpoint not in self.endpoints:
            raise Reject(404, "ResourceNotFound", f"Online endpoint '{endpoint}' not found.")
        names = [n for n in query.get("metricnames", "").split(",") if n]
        aggregation = query.get("aggregation", "")
        if not names or any(n not in METRICS for n in names):
            raise Reject(400, "BadRequest", f"Failed to find metric configuration for "
                         f"'{query.get('metricnames')}'. Valid metrics: {sorted(METRICS)}")
        try:
            start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
                          for t in query["timespan"].split("/"))
        except (KeyError, ValueError):
            raise Reject(400, "BadRequest", "timespan must be start/end in ISO 8601.") from None
        if query.get("interval") != "PT1M":
            raise Reject(400, "BadRequest", "This fake serves interval PT1M only.")
        dims: dict[str, str] = {}
        for part in filter(None, query.get("$filter", "").split(" and ")):
            m = re.fullmatch(r"(\w+) eq '([^']*)'", part.strip())
            if m is None:
                raise Reject(400, "BadRequest", f"Unsupported $filter clause '{part}'.")
            dims[m.group(1).lower()] = m.group(2)
        value = []
        with self.lock:
            events = [e for e in self.events.get(endpoint, []) if start <= e.at <= end + 1]
        for name in names:
            allowed_aggregations, allowed_dims = METRICS[name]
            if aggregation not in allowed_aggregations:
                raise Reject(400, "BadRequest", f"Aggregation '{aggregation}' is not valid "
                             f"for {name}.")
            bad = sorted(set(dims) - allowed_dims)
            if bad:
                raise Reject(400, "BadRequest", f"Dimension {bad} is not valid for {name}.")
            chosen = [e for e in events if dims.get("deployment", "*") in ("*", e.deployment)]
            split = "statuscodeclass" in dims and dims["statuscodeclass"] == "*"
            groups: dict[str, list[Event]] = {}
            for e in chosen:
                groups.setdefault(f"{e.status // 100}xx" if split else "", []).append(e)
            series = []
            for group, members in sorted(groups.items()):
                buckets: dict[int, list[Event]] = {}
                for e in members:
                    buckets.setdefault(int(e.at // 60) * 60, []).append(e)
                data = []
                for minute, batch in sorted(buckets.items()):
                    point: dict[str, Any] = {"timeStamp": datetime.fromtimestamp(
                        minute, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
                    if name == "RequestsPerMinute":
                        point[aggregation.lower()] = float(len(batch))
                    else:
                        lat = sorted(e.latency_ms for e in batch)
                        point[aggregation.lower()] = lat[min(len(lat) - 1,
                                                             int(len(lat) * 0.99))]
                    data.append(point)
                meta = [{"name": {"value": "statusCodeClass"}, "value": group}] if split else []
                if "deployment" in dims:
                    meta.append({"name": {"value": "deployment"}, "value": dims["deployment"]})
                series.append({"metadatavalues": meta, "data": data})
            value.append({"id": f"{self.workspace_path}/onlineEndpoints/{endpoint}/providers/"
                          f"Microsoft.Insights/metrics/{name}", "type": "Microsoft.Insights/"
                          "metrics", "name": {"value": name}, "unit": "Count" if name ==
                          "RequestsPerMinute" else "Milliseconds", "timeseries": series})
        return self._json(200, {"timespan": query["timespan"], "interval": "PT1M",
                                "value": value})

    # -- Blob storage ----------------------------------------------------------------------------
    def _blob(self, method: str, path: str, query: dict[str, str], headers: Any, raw: bytes,
              ) -> tuple[int, dict[str, str], bytes]:
        def fail(status: int, code: str) -> tuple[int, dict[str, str], bytes]:
            xml = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
                   f"<Message>{code}</Message></Error>").encode()
            return status, {"x-ms-error-code": code, "Content-Type": "application/xml"}, xml
        try:
            self._authorize(headers, STORAGE)
        except Reject as exc:
            return fail(403 if exc.code != "AuthenticationFailed" else 401,
                        "AuthenticationFailed")
        if not headers.get("x-ms-version"):
            return fail(400, "MissingRequiredHeader")
        parts = [*path.split("/", 3), "", ""]
        account, (container, _, name) = parts[2], parts[3].partition("/")
        if account != self.account:
            return fail(404, "ResourceNotFound")
        if container not in self.containers:
            return fail(404, "ContainerNotFound")
        if not name:
            if method == "GET" and query.get("restype") == "container":
                return 200, {"x-ms-version": headers.get("x-ms-version")}, b""
            return fail(400, "InvalidQueryParameterValue")
        with self.lock:
            if method == "HEAD":
                found = (container, name) in self.blobs
                return (200 if found else 404), {}, b""
            if method != "PUT":
                return fail(405, "UnsupportedHttpVerb")
            comp = query.get("comp")
            if comp is None:
                if headers.get("x-ms-blob-type") != "BlockBlob":
                    return fail(400, "MissingRequiredHeader")
                self.blobs[(container, name)] = raw
                return 201, {}, b""
            if comp == "block":
                block = query.get("blockid", "")
                try:
                    base64.b64decode(block, validate=True)
                except ValueError:
                    return fail(400, "InvalidQueryParameterValue")
                self.blocks[(container, name, block)] = raw
                return 201, {}, b""
            if comp == "blocklist":
                try:
                    ids = [e.text or "" for e in ET.fromstring(raw) if e.tag == "Latest"]
                except ET.ParseError:
                    return fail(400, "InvalidXmlDocument")
                if any((container, name, i) not in self.blocks for i in ids):
                    return fail(400, "InvalidBlockList")
                self.blobs[(container, name)] = b"".join(
                    self.blocks.pop((container, name, i)) for i in ids)
                return 201, {}, b""
        return fail(400, "InvalidQueryParameterValue")

    # -- container registry (ACR token exchange, OCI distribution API) -------------------------
    def _registry(self, method: str, path: str, headers: Any, raw: bytes,
                  ) -> tuple[int, dict[str, str], bytes]:
        form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}

        def unauthorized(what: str) -> tuple[int, dict[str, str], bytes]:
            return self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": what}]})
        if method == "POST" and path == "/oauth2/exchange":
            if form.get("grant_type") != "access_token" or self.tokens.get(
                    form.get("access_token", "")) != ARM:
                return unauthorized("the Entra ID token is missing or invalid")
            refresh = secrets.token_urlsafe(16)
            self.tokens[refresh] = f"acr-refresh:{form.get('service')}"
            return self._json(200, {"refresh_token": refresh})
        if method == "POST" and path == "/oauth2/token":
            scope = re.fullmatch(r"repository:([a-z0-9._/-]+):pull", form.get("scope", ""))
            if form.get("grant_type") != "refresh_token" or scope is None or self.tokens.get(
                    form.get("refresh_token", "")) != f"acr-refresh:{form.get('service')}":
                return unauthorized("refresh token or scope is invalid")
            access = secrets.token_urlsafe(16)
            self.tokens[access] = f"acr-pull:{form['service']}/{scope.group(1)}"
            return self._json(200, {"access_token": access})
        m = re.fullmatch(r"/v2/([a-z0-9._/-]+)/manifests/([\w.:@-]+)", path)
        if m and method in ("HEAD", "GET"):
            token = (headers.get("Authorization") or "")[7:]
            scope = self.tokens.get(token, "")
            if not scope.startswith("acr-pull:") or not scope.endswith("/" + m.group(1)):
                return unauthorized("authentication required")
            if "manifest" not in (headers.get("Accept") or ""):
                return self._json(400, {"errors": [{"code": "UNSUPPORTED"}]})
            image = f"{scope[len('acr-pull:'):]}:{m.group(2)}"
            if image in self.images:
                return 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                             "Docker-Content-Digest": "sha256:" + "0" * 64}, b""
            return self._json(404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        return self._json(404, {"errors": [{"code": "NAME_UNKNOWN"}]})

    # -- data plane ------------------------------------------------------------------------------
    def _score(self, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        m = re.fullmatch(r"/inference/([^/]+)/score", path)
        if m is None or m.group(1) not in self.endpoints:
            return self._json(404, {"message": "endpoint not found"})
        endpoint = m.group(1)
        if (headers.get("Authorization") or "")[7:] not in self.keys[endpoint]:
            return self._json(401, {"message": "key auth failed"})
        live = self.live.get(endpoint, {"traffic": {}, "mirror": {}})
        pinned = headers.get("azureml-model-deployment")
        with self.lock:
            if pinned:
                chosen = pinned
            else:
                weights = [(d, w) for d, w in live["traffic"].items() if w]
                chosen = self.random.choices([d for d, _ in weights],
                                             [w for _, w in weights])[0] if weights else None
            mirrored = [d for d, p in live["mirror"].items()
                        if not pinned and p and self.random.random() * 100 < p]
        if chosen is None or (endpoint, chosen) not in self.running:
            return self._json(404 if pinned else 503, {
                "message": f"no deployment '{pinned}'" if pinned else "no deployment has "
                "traffic"})
        for d in mirrored:  # answers of mirrored requests are discarded
            threading.Thread(target=self._forward, args=(endpoint, d, raw, True),
                             daemon=True).start()
        status, body = self._forward(endpoint, chosen, raw, False)
        return status, {"Content-Type": "application/json",
                        "azureml-model-deployment": chosen}, body

    def _forward(self, endpoint: str, deployment: str, raw: bytes, mirrored: bool,
                 ) -> tuple[int, bytes]:
        container = self.running.get((endpoint, deployment))
        started = time.perf_counter()
        try:
            if container is None:
                raise httpx.ConnectError("no container")
            answer = httpx.post(f"http://127.0.0.1:{container.port}/score", content=raw,
                                headers={"Content-Type": "application/json"}, timeout=10)
            status, body = answer.status_code, answer.content
        except httpx.HTTPError:
            status, body = 502, b'{"message": "upstream container is not reachable"}'
        with self.lock:
            self.events.setdefault(endpoint, []).append(Event(
                time.time(), deployment, status, (time.perf_counter() - started) * 1000,
                mirrored))
        return status, body

    def kill(self, endpoint: str, deployment: str) -> None:
        """SIGKILL a deployment's container (its requests then fail with 502)."""
        container = self.running.get((endpoint, deployment))
        if container is not None:
            container.process.kill()
            container.process.wait()


@contextlib.contextmanager
def running_fake(**kw: Any):
    """An :class:`AzureFake` started on loopback, stopped (with its containers) afterwards."""
    fake = AzureFake(**kw).start()
    try:
        yield fake
    finally:
        fake.stop()

"""Azure over plain HTTPS (httpx): an Entra ID token, Resource Manager calls with long-running
operations, and Blob storage uploads. No Azure SDK is needed.

    credential = AzureCredential.from_env(authority_url="https://login.microsoftonline.com")
    arm = ArmClient(credential, "https://management.azure.com", api_version="2024-04-01")
    endpoint = arm.put(path, body)          # polls Azure-AsyncOperation / Location to the end

Credentials come from ``AZURE_ACCESS_TOKEN`` (a token you already hold, e.g. from
``az account get-access-token``) or the client-credentials flow with ``AZURE_TENANT_ID``,
``AZURE_CLIENT_ID`` and ``AZURE_CLIENT_SECRET`` (a service principal, what CI uses).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from headwater.core import ConfigError, HeadwaterError, NotFoundError

ARM_SCOPE = "https://management.azure.com/.default"
STORAGE_SCOPE = "https://storage.azure.com/.default"
#: Blob service REST version sent with every storage request.
BLOB_VERSION = "2021-08-06"
#: Files above this size go up as blocks (Put Block + Put Block List) of this size.
BLOCK_BYTES = 4 * 1024 * 1024
ENV_HINT = ("set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal) "
            "or AZURE_ACCESS_TOKEN in the environment or the CI's secret store")


class AzureError(HeadwaterError):
    """Azure refused a request; the message carries Azure's error code and message."""

    def __init__(self, message: str, *, status: int = 0, code: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status, self.code = status, code


@dataclass
class AzureCredential:
    """An Entra ID bearer token per scope, from a fixed token or the client-credentials flow."""

    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    access_token: str | None = None
    authority_url: str = "https://login.microsoftonline.com"
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, *, authority_url: str, env: Mapping[str, str] | None = None,
                 where: str = "Azure") -> AzureCredential:
        """Read the ``AZURE_*`` variables; none set is one :class:`ConfigError`."""
        env = os.environ if env is None else env
        found = cls(tenant_id=env.get("AZURE_TENANT_ID"), client_id=env.get("AZURE_CLIENT_ID"),
                    client_secret=env.get("AZURE_CLIENT_SECRET"),
                    access_token=env.get("AZURE_ACCESS_TOKEN"), authority_url=authority_url)
        if found.access_token:
            return found
        missing = [n for n, v in (("AZURE_TENANT_ID", found.tenant_id),
                                  ("AZURE_CLIENT_ID", found.client_id),
                                  ("AZURE_CLIENT_SECRET", found.client_secret)) if not v]
        if missing:
            raise ConfigError(f"{where}: no Azure credentials ({', '.join(missing)} not set and "
                              "no AZURE_ACCESS_TOKEN)", hint=ENV_HINT)
        return found

    def token(self, scope: str) -> str:
        """A bearer token for ``scope``, fetched once and reused until shortly before expiry."""
        if self.access_token:
            return self.access_token
        cached = self._tokens.get(scope)
        if cached and cached[1] > time.time() + 60:
            return cached[0]
        url = f"{self.authority_url.rstrip('/')}/{self.tenant_id}/oauth2/v2.0/token"
        try:
            answer = httpx.post(url, data={"grant_type": "client_credentials", "scope": scope,
                                           "client_id": self.client_id,
                                           "client_secret": self.client_secret}, timeout=30)
        except httpx.HTTPError as exc:
            raise AzureError(f"Entra ID at {self.authority_url} is unreachable: {exc}",
                             hint="check the network or deploy.targets.<name>.authority_url"
                             ) from None
        body = _json(answer)
        if answer.status_code != 200 or "access_token" not in body:
            reason = str(body.get("error_description") or body.get("error") or answer.text)
            raise ConfigError(f"Entra ID refused the service principal {self.client_id}: "
                              f"{reason.splitlines()[0][:200]}",
                              hint="check AZURE_TENANT_ID, AZURE_CLIENT_ID and "
                              "AZURE_CLIENT_SECRET")
        self._tokens[scope] = (body["access_token"], time.time() + float(body.get(
            "expires_in", 3600)))
        return body["access_token"]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code < 400:
        return
    error = _json(response).get("error") or {}
    code = error.get("code", "") if isinstance(error, dict) else str(error)
    message = error.get("message", "") if isinstance(error, dict) else response.text[:200]
    text = f"{what}: HTTP {response.status_code} {code}: {message}".rstrip(": ")
    if response.status_code == 404:
        raise NotFoundError(text, hint="check the subscription, resource group and names")
    if response.status_code in (401, 403):
        raise AzureError(text, status=response.status_code, code=code,
                         hint="the principal needs the AzureML Data Scientist role (or "
                         "Contributor) on the workspace; " + ENV_HINT)
    raise AzureError(text, status=response.status_code, code=code)


class ArmClient:
    """Azure Resource Manager requests with one api-version and long-running-operation polling."""

    def __init__(self, credential: AzureCredential, base_url: str, *, api_version: str,
                 wait_s: float = 1800.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.credential, self.base_url = credential, base_url.rstrip("/")
        self.api_version, self.wait_s, self.sleep = api_version, wait_s, sleep
        self.http = httpx.Client(timeout=60)

    def request(self, method: str, path: str, body: Any = None, *,
                api_version: str | None = None, params: Mapping[str, str] | None = None,
                ) -> httpx.Response:
        """One call; an error answer raises :class:`AzureError` or :class:`NotFoundError`."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        query: dict[str, str] | None = {"api-version": api_version or self.api_version,
                                        **(params or {})}
        if path.startswith("http"):  # a polling URL carries its own api-version
            query = dict(params) if params else None  # (an empty dict would drop it)
        headers = {"Authorization": f"Bearer {self.credential.token(ARM_SCOPE)}"}
        try:
            answer = self.http.request(method, url, params=query, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise AzureError(f"{method} {url.split('?')[0]}: {exc}",
                             hint="check the network or deploy.targets.<name>.management_url"
                             ) from None
        _raise_for(answer, f"{method} {path.split('?')[0]}")
        return answer

    def get(self, path: str, **kw: Any) -> dict[str, Any] | None:
        """The resource, or None when it does not exist."""
        try:
            return _json(self.request("GET", path, **kw))
        except NotFoundError:
            return None

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or update and wait for the operation; the resource as it is then."""
        self._finish(self.request("PUT", path, body), path)
        return _json(self.request("GET", path))

    def post(self, path: str, body: Any = None) -> dict[str, Any]:
        """An action (listKeys, ...) answered at once."""
        return _json(self.request("POST", path, body))

    def delete(self, path: str) -> None:
        """Delete and wait; deleting what is gone is fine."""
        try:
            self._finish(self.request("DELETE", path), None)
        except NotFoundError:
            return

    def _finish(self, answer: httpx.Response, path: str | None) -> None:
        """Poll a long-running operation to its end; a failed one raises :class:`AzureError`."""
        status_url = answer.headers.get("Azure-AsyncOperation")
        location = answer.headers.get("Location")
        if answer.status_code not in (201, 202) and not status_url:
            return
        deadline = time.monotonic() + self.wait_s
        while True:
            if status_url:
                state = _json(self.request("GET", status_url))
                status = state.get("status", "")
                if status == "Succeeded":
                    return
                if status in ("Failed", "Canceled"):
                    error = state.get("error") or {}
                    raise AzureError(f"{path or status_url.split('?')[0]}: operation {status}: "
                                     f"{error.get('code', '')}: {error.get('message', '')}",
                                     code=error.get("code", ""),
                                     hint="see the deployment's logs in Azure ML studio")
            elif location:
                polled = self.request("GET", location)
                if polled.status_code != 202:
                    return
            else:
                return
            if time.monotonic() > deadline:
                raise AzureError(f"{path}: still running after {self.wait_s:.0f} s",
                                 hint="see the operation in the Azure portal")
            self.sleep(float(answer.headers.get("Retry-After", "5")))


class BlobStore:
    """Block blobs in one container, uploaded with an Entra ID token (Blob REST API)."""

    def __init__(self, credential: AzureCredential, url: str, container: str, *,
                 block_bytes: int = BLOCK_BYTES) -> None:
        self.credential, self.url, self.container = credential, url.rstrip("/"), container
        self.block_bytes = block_bytes
        self.http = httpx.Client(timeout=120)

    def _call(self, method: str, name: str = "", *, params: dict[str, str] | None = None,
              content: bytes | None = None, headers: dict[str, str] | None = None,
              ) -> httpx.Response:
        url = f"{self.url}/{self.container}" + (f"/{quote(name)}" if name else "")
        sent = {"Authorization": f"Bearer {self.credential.token(STORAGE_SCOPE)}",
                "x-ms-version": BLOB_VERSION, **(headers or {})}
        try:
            return self.http.request(method, url, params=params, content=content, headers=sent)
        except httpx.HTTPError as exc:
            raise AzureError(f"storage {self.url}: {exc}", hint="check deploy.targets.<name>."
                             "storage_account (or storage_url)") from None

    def check(self) -> None:
        """The container exists and the principal may read it."""
        answer = self._call("GET", params={"restype": "container"})
        if answer.status_code == 404:
            raise ConfigError(f"blob container '{self.container}' not found in {self.url}",
                              hint="create it (az storage container create) or fix "
                              "deploy.targets.<name>.container")
        if answer.status_code >= 400:
            raise ConfigError(f"storage {self.url} refused access to '{self.container}': HTTP "
                              f"{answer.status_code} {answer.headers.get('x-ms-error-code', '')}",
                              hint="give the principal Storage Blob Data Contributor")

    def exists(self, name: str) -> bool:
        """Whether blob ``name`` is there (a content-addressed name need not go up twice)."""
        return self._call("HEAD", name).status_code == 200

    def put(self, name: str, data: bytes) -> None:
        """Put Blob, or Put Block for each slice then Put Block List when ``data`` is large."""
        if len(data) <= self.block_bytes:
            self._ok(self._call("PUT", name, content=data,
                                headers={"x-ms-blob-type": "BlockBlob"}), name)
            return
        ids = []
        for n, start in enumerate(range(0, len(data), self.block_bytes)):
            block = base64.b64encode(f"{n:08d}".encode()).decode()
            self._ok(self._call("PUT", name, params={"comp": "block", "blockid": block},
                                content=data[start:start + self.block_bytes]), name)
            ids.append(block)
        listing = "".join(f"<Latest>{i}</Latest>" for i in ids)
        self._ok(self._call("PUT", name, params={"comp": "blocklist"},
                            content=f'<?xml version="1.0" encoding="utf-8"?><BlockList>'
                            f"{listing}</BlockList>".encode()), name)

    def _ok(self, answer: httpx.Response, name: str) -> None:
        if answer.status_code >= 300:
            raise AzureError(f"uploading {name} to {self.container}: HTTP {answer.status_code} "
                             f"{answer.headers.get('x-ms-error-code', '')}",
                             status=answer.status_code)

    def put_folder(self, prefix: str, files: Iterable[Path], root: Path) -> str:
        """Upload ``files`` under ``prefix`` (skipping blobs already there); the folder's URL."""
        for path in files:
            name = f"{prefix}/{path.relative_to(root).as_posix()}"
            if not self.exists(name):
                self.put(name, path.read_bytes())
        return f"{self.url}/{self.container}/{prefix}"


#: Manifest media types a registry may hold an image under (OCI and Docker v2).
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])


def acr_image_exists(credential: AzureCredential, image: str, *, registry_url: str | None = None,
                     ) -> bool:
    """Whether ``image`` (``<name>.azurecr.io/<repo>:<tag>``) is in the registry.

    The Entra ID token is exchanged for an ACR refresh token (``/oauth2/exchange``), then a
    pull token for the repository (``/oauth2/token``), and the manifest is asked for with the
    OCI distribution API (``HEAD /v2/<repo>/manifests/<tag>``).
    """
    host, _, rest = image.partition("/")
    repo, _, tag = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "latest")
    if "@" in rest:
        repo, _, tag = rest.partition("@")
    base = (registry_url or f"https://{host}").rstrip("/")
    try:
        exchange = httpx.post(f"{base}/oauth2/exchange", timeout=30, data={
            "grant_type": "access_token", "service": host,
            "access_token": credential.token(ARM_SCOPE),
            **({"tenant": credential.tenant_id} if credential.tenant_id else {})})
        _raise_for(exchange, f"ACR {host} token exchange")
        pull = httpx.post(f"{base}/oauth2/token", timeout=30, data={
            "grant_type": "refresh_token", "service": host,
            "scope": f"repository:{repo}:pull",
            "refresh_token": _json(exchange).get("refresh_token", "")})
        _raise_for(pull, f"ACR {host} pull token")
        answer = httpx.head(f"{base}/v2/{repo}/manifests/{tag}", timeout=30, headers={
            "Authorization": f"Bearer {_json(pull).get('access_token', '')}",
            "Accept": MANIFEST_TYPES})
    except httpx.HTTPError as exc:
        raise AzureError(f"container registry {host} is unreachable: {exc}",
                         hint="check the image name") from None
    if answer.status_code in (200, 404):
        return answer.status_code == 200
    _raise_for(answer, f"ACR {host} manifest {repo}:{tag}")
    return False

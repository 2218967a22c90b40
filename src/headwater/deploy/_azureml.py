"""Azure ML managed online endpoints as a deploy target (the REST API over httpx).

One endpoint, two deployment slots, ``blue`` and ``green``: a rollout uploads the model's files
to a blob container under a content-addressed prefix, registers them as a model asset, registers
the serving image as an environment (custom container: Azure's liveness, readiness and scoring
routes on port 8080), creates the deployment in the free slot with no traffic, then moves the
endpoint's ``traffic`` (and, for a shadow step, ``mirrorTraffic``), and deletes the old
deployment once the new one serves everything. Every create, update and delete is a long-running
operation polled to its end.

Health during a bake comes from **Azure Monitor metrics** of the endpoint, per deployment:
``RequestsPerMinute`` split by ``statusCodeClass`` (the 5xx share is the error rate) and
``RequestLatency_P99``. Smoke requests go to the scoring URI with the endpoint key and the
``azureml-model-deployment`` header, which reaches one deployment whatever the traffic says.

Before anything is created, :meth:`AzureMLTarget.preflight` checks the credentials, the
workspace, the blob container and (for an ACR image) that the image is in the registry.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from headwater.core import ConfigError, NotFoundError
from headwater.deploy._azure import (
    ARM_SCOPE,
    ArmClient,
    AzureCredential,
    AzureError,
    BlobStore,
    acr_image_exists,
)
from headwater.deploy._rollout import DeployError, Health, Variant
from headwater.deploy._sagemaker import model_archive

if TYPE_CHECKING:
    from headwater.config._deploy import AzureMLTargetSpec, HealthSpec

#: The two deployment slots a rollout alternates between.
SLOTS = ("blue", "green")
#: Where the model is mounted in the container (the bundle's serve script reads it from there).
MODEL_MOUNT = "/opt/ml/model"
#: Azure Monitor metrics API version.
METRICS_API = "2018-01-01"
PORT = 8080


def _percents(weights: dict[str, float]) -> dict[str, int]:
    """Shares (summing to 1) as whole percents summing to 100 (largest remainders)."""
    raw = {n: w * 100 for n, w in weights.items()}
    out = {n: int(v) for n, v in raw.items()}
    short = 100 - sum(out.values()) if any(raw.values()) else 0
    for n in sorted(raw, key=lambda k: raw[k] - out[k], reverse=True)[:max(short, 0)]:
        out[n] += 1
    return out


class AzureMLTarget:
    """An Azure ML managed online endpoint whose deployments (blue, green) are model versions."""

    def __init__(self, name: str, spec: AzureMLTargetSpec, health: HealthSpec, *,
                 credential: AzureCredential | None = None) -> None:
        self.name, self.spec, self.health_spec = name, spec, health
        self.credential = credential
        self._arm: ArmClient | None = None
        self._location: str | None = None
        self._examples: dict[str, bytes] = {}

    # -- resource paths ------------------------------------------------------------------------
    @property
    def workspace_path(self) -> str:
        s = self.spec
        return (f"/subscriptions/{s.subscription_id}/resourceGroups/{s.resource_group}/providers"
                f"/Microsoft.MachineLearningServices/workspaces/{s.workspace}")

    @property
    def endpoint_path(self) -> str:
        return f"{self.workspace_path}/onlineEndpoints/{self.spec.endpoint}"

    def _deployment_path(self, slot: str) -> str:
        return f"{self.endpoint_path}/deployments/{slot}"

    @property
    def arm(self) -> ArmClient:
        if self._arm is None:
            self._arm = ArmClient(self._credential(), self.spec.management_url,
                                  api_version=self.spec.api_version)
        return self._arm

    def _credential(self) -> AzureCredential:
        if self.credential is None:
            self.credential = AzureCredential.from_env(
                authority_url=self.spec.authority_url, where=f"deploy target '{self.name}'")
        return self.credential

    @property
    def blobs(self) -> BlobStore:
        url = self.spec.storage_url or f"https://{self.spec.storage_account}.blob.core.windows.net"
        return BlobStore(self._credential(), url, self.spec.container)

    # -- checks before anything is created ----------------------------------------------------
    def preflight(self) -> None:
        """Credentials, workspace and blob container exist: else one clear error, nothing made."""
        spec = self.spec
        try:
            self._credential().token(ARM_SCOPE)
            workspace = self.arm.get(self.workspace_path)
        except AzureError as exc:
            raise ConfigError(f"deploy target '{self.name}': Azure refused the request: "
                              f"{exc.message}", hint=exc.hint) from None
        if workspace is None:
            raise ConfigError(f"deploy target '{self.name}': Azure ML workspace "
                              f"'{spec.workspace}' not found in resource group "
                              f"'{spec.resource_group}' of subscription {spec.subscription_id}",
                              hint="fix deploy.targets.<name>.workspace / resource_group / "
                              "subscription_id (az ml workspace list)")
        self._location = workspace.get("location")
        self.blobs.check()
        host = spec.image.split("/", 1)[0]
        if host.endswith(".azurecr.io") or spec.registry_url:
            try:
                found = acr_image_exists(self._credential(), spec.image,
                                         registry_url=spec.registry_url)
            except AzureError as exc:
                raise ConfigError(f"deploy target '{self.name}': {exc.message}",
                                  hint="give the principal AcrPull on the registry") from None
            if not found:
                raise ConfigError(f"deploy target '{self.name}': image {spec.image} is not in "
                                  f"the registry {host}", hint="push it first: headwater "
                                  f"package MODEL --push {spec.image}")

    @property
    def location(self) -> str:
        if self._location is None:
            workspace = self.arm.get(self.workspace_path)
            if workspace is None:
                raise NotFoundError(f"Azure ML workspace '{self.spec.workspace}' not found")
            self._location = workspace["location"]
        return self._location

    # -- Target --------------------------------------------------------------------------------
    def _endpoint(self) -> dict[str, Any] | None:
        return self.arm.get(self.endpoint_path)

    def _deployments(self) -> dict[str, dict[str, Any]]:
        found = self.arm.get(f"{self.endpoint_path}/deployments") or {}
        return {d["name"]: d for d in found.get("value", [])}

    def variants(self) -> list[Variant]:
        """The endpoint's deployments (their ``headwater_version`` tag) and traffic shares."""
        endpoint = self._endpoint()
        if endpoint is None:
            return []
        traffic = endpoint["properties"].get("traffic") or {}
        out = []
        for name, dep in self._deployments().items():
            version = (dep.get("tags") or {}).get("headwater_version")
            if version is not None:
                out.append(Variant(name, int(version), traffic.get(name, 0) / 100))
        return out

    def upload(self, version: int, model_dir: Path) -> str:
        """The model's files to blob storage under a content-addressed prefix; its URL."""
        digest = hashlib.sha256(model_archive(model_dir)).hexdigest()[:16]
        prefix = f"{self.spec.prefix.strip('/')}/{self.spec.endpoint}/v{version}-{digest}"
        files = sorted(p for p in model_dir.rglob("*") if p.is_file())
        return self.blobs.put_folder(prefix, files, model_dir)

    def _register_model(self, version: int, uri: str) -> str:
        path = f"{self.workspace_path}/models/{self.spec.endpoint}/versions/{version}"
        found = self.arm.get(path)
        if found is not None:
            if found["properties"].get("modelUri") != uri:
                raise ConfigError(f"model asset {self.spec.endpoint}:{version} exists in "
                                  f"workspace '{self.spec.workspace}' with other files "
                                  f"({found['properties'].get('modelUri')})",
                                  hint="archive or delete that model version in Azure ML "
                                  "studio, then deploy again")
            return found["id"]
        return self.arm.put(path, {"properties": {
            "modelUri": uri, "modelType": "custom_model",
            "description": f"headwater model version {version}",
            "tags": {"headwater_version": str(version)}}})["id"]

    def _register_environment(self) -> str:
        routes = {"livenessRoute": {"path": "/", "port": PORT},
                  "readinessRoute": {"path": "/readyz", "port": PORT},
                  "scoringRoute": {"path": "/score", "port": PORT}}
        version = hashlib.sha256(f"{self.spec.image}|{sorted(routes.items())}".encode()
                                 ).hexdigest()[:12]
        path = f"{self.workspace_path}/environments/{self.spec.endpoint}-serve/versions/{version}"
        found = self.arm.get(path)
        if found is not None:
            return found["id"]
        return self.arm.put(path, {"properties": {
            "image": self.spec.image, "inferenceConfig": routes, "osType": "Linux",
            "description": "headwater model server (bundle image)"}})["id"]

    def _put_endpoint(self, traffic: dict[str, int], mirror: dict[str, int]) -> None:
        self.arm.put(self.endpoint_path, {
            "location": self.location, "tags": {"managed-by": "headwater"},
            "properties": {"authMode": "Key", "description": f"headwater target {self.name}",
                           "traffic": traffic, "mirrorTraffic": mirror}})

    def stage(self, version: int, model_uri: str) -> str:
        """Model asset, environment, and a deployment in the free slot with no traffic."""
        model_dir = Path(model_uri)
        example = model_dir / "input_example.json"
        endpoint = self._endpoint()
        taken = set(self._deployments()) if endpoint is not None else set()
        free = [s for s in SLOTS if s not in taken]
        if not free:
            raise DeployError(f"endpoint {self.spec.endpoint} already has deployments "
                              f"{', '.join(sorted(taken))}", hint="`headwater deploy rollback` "
                              "or delete the one without traffic in Azure ML studio")
        slot = free[0]
        model_id = self._register_model(version, self.upload(version, model_dir))
        environment_id = self._register_environment()
        if endpoint is None:
            self._put_endpoint({}, {})
        try:
            self._put_deployment(slot, version, model_id, environment_id)
        except Exception:  # a deployment that failed to provision must not stay behind
            self.arm.delete(self._deployment_path(slot))
            raise
        if example.exists():  # what smoke tests send
            self._examples[slot] = b'{"dataframe_split": ' + example.read_bytes() + b"}"
        if endpoint is None:  # the first deployment takes all traffic
            self._put_endpoint({slot: 100}, {})
        return slot

    def _put_deployment(self, slot: str, version: int, model_id: str,
                        environment_id: str) -> None:
        self.arm.put(self._deployment_path(slot), {
            "location": self.location, "tags": {"headwater_version": str(version)},
            "sku": {"name": "Default", "capacity": self.spec.instance_count},
            "properties": {
                "endpointComputeType": "Managed", "model": model_id,
                "environmentId": environment_id, "instanceType": self.spec.instance_type,
                "modelMountPath": MODEL_MOUNT, "scaleSettings": {"scaleType": "Default"},
                "environmentVariables": {"HEADWATER_MODEL_DIR": MODEL_MOUNT,
                                         "HEADWATER_MODEL_VERSION": str(version)},
                "requestSettings": {"requestTimeout": "PT5S"}}})

    def shift(self, weights: dict[str, float]) -> None:
        """Set ``traffic``; a deployment that takes live traffic stops being mirrored to."""
        endpoint = self._endpoint() or {"properties": {}}
        current = {n: v / 100 for n, v in (endpoint["properties"].get("traffic") or {}).items()}
        traffic = _percents({**current, **weights})
        mirror = {n: v for n, v in (endpoint["properties"].get("mirrorTraffic") or {}).items()
                  if not traffic.get(n)}
        self._put_endpoint(traffic, mirror)

    def mirror(self, shares: dict[str, float]) -> None:
        """Mirror these shares of live traffic to deployments (their answers are discarded)."""
        endpoint = self._endpoint()
        traffic = (endpoint or {}).get("properties", {}).get("traffic") or {}
        self._put_endpoint(traffic, {n: round(w * 100) for n, w in shares.items() if w})

    def _scoring(self) -> tuple[str, str]:
        endpoint = self._endpoint()
        if endpoint is None:
            raise NotFoundError(f"endpoint {self.spec.endpoint} does not exist")
        keys = self.arm.post(f"{self.endpoint_path}/listKeys")
        return endpoint["properties"]["scoringUri"], keys["primaryKey"]

    def smoke(self, variant: str) -> list[str]:
        """POST the input example to the scoring URI, pinned to ``variant``; problems found."""
        body = self._examples.get(variant)
        if body is None:  # no example logged with the model: nothing to send
            return []
        uri, key = self._scoring()
        try:
            answer = httpx.post(uri, content=body, timeout=30, headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json",
                "azureml-model-deployment": variant})
        except httpx.HTTPError as exc:
            return [f"smoke request to {variant} failed: {exc}"]
        if answer.status_code != 200:
            return [f"smoke request to {variant}: HTTP {answer.status_code} {answer.text[:200]}"]
        return []

    def _metric(self, name: str, aggregation: str, since: datetime, filter_: str,
                ) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        span = f"{since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}/{now:%Y-%m-%dT%H:%M:%SZ}"
        answer = self.arm.request("GET", f"{self.endpoint_path}/providers/Microsoft.Insights/"
                                  "metrics", api_version=METRICS_API, params={
                                      "metricnames": name, "aggregation": aggregation,
                                      "interval": "PT1M", "timespan": span,
                                      "$filter": filter_}).json()
        found = [m for m in answer.get("value", []) if m["name"]["value"] == name]
        return found[0].get("timeseries", []) if found else []

    def health(self, variant: str, since: datetime) -> Health:
        """Requests, 5xx share and p99 latency of ``variant`` since ``since`` (Azure Monitor)."""
        total = errors = 0.0
        for series in self._metric("RequestsPerMinute", "Total", since,
                                   f"deployment eq '{variant}' and statusCodeClass eq '*'"):
            dims = {d["name"]["value"].lower(): d["value"] for d in series.get("metadatavalues",
                                                                                 [])}
            count = sum(p.get("total") or 0 for p in series.get("data", []))
            total += count
            errors += count if dims.get("statuscodeclass") == "5xx" else 0
        p99 = [p["maximum"] for s in self._metric("RequestLatency_P99", "Maximum", since,
                                                  f"deployment eq '{variant}'")
               for p in s.get("data", []) if p.get("maximum") is not None]
        return Health(requests=int(total), error_rate=errors / total if total else None,
                      p99_ms=max(p99) if p99 else None)

    def retire(self, variant: str) -> None:
        """Take ``variant`` out of traffic and mirroring, then delete the deployment."""
        endpoint = self._endpoint()
        if endpoint is not None:
            props = endpoint["properties"]
            traffic, mirror = props.get("traffic") or {}, props.get("mirrorTraffic") or {}
            if variant in traffic or variant in mirror:
                kept = {n: v for n, v in traffic.items() if n != variant}
                self._put_endpoint(_percents({n: v / 100 for n, v in kept.items()})
                                   if sum(kept.values()) else kept,
                                   {n: v for n, v in mirror.items() if n != variant})
        self.arm.delete(self._deployment_path(variant))

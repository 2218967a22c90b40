"""Deploying registered models to Azure ML managed online endpoints, against a local fake of the
REST routes (cases/azureml_fake.py) that checks every request against the published API and
serves scoring through real bundle processes (the data plane is real; the control plane is the
fake's reading of the API reference).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from headwater.config import load_project
from headwater.core import ConfigError
from headwater.deploy import deploy_model, history_for, open_target
from headwater.deploy._azure import AzureCredential, AzureError, BlobStore

from .cases.azureml_fake import ML_API, STORAGE, running_fake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IMAGE = "hwtest.azurecr.io/headwater-serve:1"
BROKEN = "hwtest.azurecr.io/broken:1"
ENV = {"AZURE_TENANT_ID": "hw-tenant", "AZURE_CLIENT_ID": "hw-client",
       "AZURE_CLIENT_SECRET": "hw-secret"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A project with one logged model; its bundle is the image the fake's registry holds."""
    from sklearn.linear_model import LogisticRegression

    from headwater.deploy._bundle import build_bundle
    from headwater.ml import Tracker

    folder = tmp_path_factory.mktemp("azureml")
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"tenure": rng.integers(0, 70, 60).astype("float64"),
                      "charges": rng.uniform(20, 110, 60)})
    model = LogisticRegression().fit(X, (X.tenure < 20).astype(int))
    project = load_project(folder)
    tracker = Tracker.for_project(project)
    with tracker.start_run("churn"):
        uri = tracker.log_model(model, input_example=X.head(3), predict_fn="predict_proba")
    folder.joinpath("model-uri").write_text(uri)
    tracker.register(uri, "image-model")
    bundle = build_bundle(project, "image-model/1", folder / "bundles")
    folder.joinpath("bundle-path").write_text(str(bundle.path))
    return folder


@pytest.fixture(scope="module")
def fake(root):
    with running_fake(images={IMAGE: Path((root / "bundle-path").read_text())}) as azure:
        yield azure


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AZURE_ACCESS_TOKEN", raising=False)


def _project(root: Path, fake, endpoint: str, strategy: str = "{kind: canary, bake: 3s, "
             "poll: 200ms}", **target):
    spec = {"subscription_id": fake.subscription, "resource_group": fake.resource_group,
            "workspace": fake.workspace, "endpoint": endpoint, "image": IMAGE,
            "storage_account": fake.account, "storage_url": f"{fake.url}/blob/{fake.account}",
            "management_url": fake.url, "authority_url": f"{fake.url}/login",
            "registry_url": f"{fake.url}/acr", **target}
    lines = [f"      {k}: {v}" for k, v in spec.items()]
    (root / "headwater.yaml").write_text(
        f"deploy:\n  model: {endpoint}\n  strategy: {strategy}\n"
        "  health: {min_requests: 5, max_p99_ms: 5000, max_error_rate: 0.05}\n"
        f"  targets:\n    {endpoint}:\n      kind: azureml\n" + "\n".join(lines) + "\n")
    return load_project(root)


def _register(project, auc: float) -> int:
    from headwater.ml import Tracker

    uri = (project.root / "model-uri").read_text()
    return Tracker.for_project(project).register(uri, project.deploy.model, alias="challenger",
                                                 tags={"holdout_roc_auc": str(auc)})


class Load:
    """Steady scoring requests on the endpoint's URI with its key, in a thread."""

    def __init__(self, fake, endpoint: str) -> None:
        self.uri = fake.endpoints[endpoint]["properties"]["scoringUri"]
        self.key = fake.keys[endpoint][0]
        self.answers: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(self.uri, json={"rows": [{"tenure": 3.0, "charges": 90.0}]},
                                    headers={"Authorization": f"Bearer {self.key}"})
                    self.answers.append((r.status_code, r.headers.get(
                        "azureml-model-deployment", "")))
                except httpx.HTTPError:
                    self.answers.append((0, ""))
                time.sleep(0.02)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def failed(self) -> int:
        return sum(1 for status, _ in self.answers if status != 200)


def _split(fake, endpoint: str) -> tuple[dict[str, int], list[str]]:
    props = fake.endpoints[endpoint]["properties"]
    deployments = sorted(d for e, d in fake.deployments if e == endpoint)
    return {k: v for k, v in props["traffic"].items() if v}, deployments


def test_blue_green_then_canary_with_mirrored_traffic(root, fake) -> None:
    project = _project(root, fake, "churn-a", strategy="{kind: blue_green, bake: 2s, "
                       "poll: 200ms}")
    _register(project, 0.80)
    first = deploy_model(project, "churn-a")
    assert first.deployment.status == "succeeded"
    assert _split(fake, "churn-a") == ({"blue": 100}, ["blue"])
    uploaded = [n for c, n in fake.blobs if n.startswith("headwater/models/churn-a/v1-")]
    assert any(n.endswith("/MLmodel") for n in uploaded)
    assert ("churn-a", "1") in fake.models

    with Load(fake, "churn-a") as load:
        _register(project, 0.82)
        second = deploy_model(project, "churn-a")
        assert second.deployment.status == "succeeded"
        assert [s["percent"] for s in second.deployment.steps] == [0, 100]
        assert _split(fake, "churn-a") == ({"green": 100}, ["green"])

        _register(project, 0.83)
        project = _project(root, fake, "churn-a", strategy="{kind: canary, canary_percent: 10,"
                           " shadow_percent: 20, bake: 3s, poll: 200ms}")
        mirrored_at: list[int] = []

        def watch(message: str) -> None:
            if "mirrored" in message:
                mirrored_at.append(len(fake.events["churn-a"]))

        third = deploy_model(project, "churn-a", on_step=watch)
        assert third.deployment.status == "succeeded", third.deployment.reason
        assert [s["percent"] for s in third.deployment.steps] == [0, 10, 100]
    assert load.failed() == 0 and len(load.answers) > 50
    assert _split(fake, "churn-a") == ({"blue": 100}, ["blue"])
    shadow = [e for e in fake.events["churn-a"][mirrored_at[0]:] if e.mirrored]
    assert shadow and {e.deployment for e in shadow} == {"blue"}
    bodies = [c["body"]["properties"] for c in fake.calls("PUT", r"/onlineEndpoints/churn-a$")]
    assert any(b.get("mirrorTraffic") == {"blue": 20} and not b["traffic"].get("blue")
               for b in bodies)
    assert all(c["query"]["api-version"] == ML_API for c in fake.calls("PUT", r"/workspaces/"))
    again = deploy_model(project, "churn-a", "churn-a/3", gate=False)
    assert again.deployment.status == "unchanged"


def test_a_canary_whose_container_dies_is_rolled_back_by_the_azure_monitor_gate(root, fake
                                                                                 ) -> None:
    project = _project(root, fake, "churn-b", strategy="{kind: canary, canary_percent: 50, "
                       "bake: 4s, poll: 200ms}")
    _register(project, 0.80)
    deploy_model(project, "churn-b")
    _register(project, 0.85)

    def crash(message: str) -> None:  # the canary's container dies while it bakes
        if message.startswith("green: 50 %"):
            fake.kill("churn-b", "green")

    with Load(fake, "churn-b") as load:
        result = deploy_model(project, "churn-b", on_step=crash)
        time.sleep(0.5)
    assert result.deployment.status == "rolled_back"
    assert "error rate" in result.deployment.reason  # Azure Monitor's 5xx share
    assert [s["percent"] for s in result.deployment.steps] == [50]
    assert _split(fake, "churn-b") == ({"blue": 100}, ["blue"])
    after = [s for s, d in load.answers[-10:]]
    assert after == [200] * 10
    from headwater.ml import Tracker

    assert Tracker.for_project(project).resolve("churn-b@champion")[2] == 1
    assert [r["status"] for r in history_for(project).list(target="churn-b")] == [
        "rolled_back", "succeeded"]


def test_a_failure_half_way_leaves_the_previous_version_serving(root, fake) -> None:
    project = _project(root, fake, "churn-c")
    _register(project, 0.80)
    cli = subprocess.run([sys.executable, "-m", "headwater", "deploy", "run", "churn-c"],
                         cwd=root, capture_output=True, text=True, timeout=600,
                         env={**os.environ, **ENV})  # the command docs/deploy.md shows
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "succeeded: churn-c version 1 on churn-c" in " ".join(cli.stdout.split())
    _register(project, 0.85)
    fake.fail_next("PUT", lambda path, body: path.endswith("/onlineEndpoints/churn-c")
                   and body["properties"].get("traffic", {}).get("green") == 100)
    with Load(fake, "churn-c") as load, pytest.raises(AzureError, match="InternalServerError"):
        deploy_model(project, "churn-c")
    assert load.failed() == 0
    assert _split(fake, "churn-c") == ({"blue": 100}, ["blue"])
    # an image whose container cannot start: the deployment fails to provision and goes away
    fake.images[BROKEN] = root / "no-such-bundle"
    project = _project(root, fake, "churn-c", image=BROKEN)
    with pytest.raises(AzureError, match="User container has crashed"):
        deploy_model(project, "churn-c")
    assert _split(fake, "churn-c") == ({"blue": 100}, ["blue"])
    assert [r["status"] for r in history_for(project).list(target="churn-c")] == [
        "failed", "failed", "succeeded"]


@pytest.mark.parametrize(("change", "unset", "message"), [
    ({}, True, "no Azure credentials .*AZURE_TENANT_ID"),
    ({}, "AZURE_CLIENT_SECRET=wrong", "Entra ID refused the service principal hw-client"),
    ({"workspace": "nope-ws"}, False, "workspace 'nope-ws' not found in resource group"),
    ({"resource_group": "other-rg"}, False, "workspace 'hw-ws' not found in resource group "
     "'other-rg'"),
    ({"container": "missing"}, False, "blob container 'missing' not found"),
    ({"image": "hwtest.azurecr.io/missing:1"}, False, "image hwtest.azurecr.io/missing:1 is "
     "not in the registry"),
])
def test_bad_settings_fail_before_anything_is_created(root, fake, monkeypatch, change, unset,
                                                      message) -> None:
    if unset is True:
        for k in ENV:
            monkeypatch.delenv(k)
    elif unset:
        k, v = unset.split("=")
        monkeypatch.setenv(k, v)
    project = _project(root, fake, "churn-e", **change)
    before = len(fake.log)
    with pytest.raises(ConfigError, match=message):
        open_target(project, "churn-e")
    assert not [r for r in fake.log[before:] if r["method"] in ("PUT", "DELETE")]
    if unset is True:
        assert len(fake.log) == before  # not one request without credentials


def test_the_fake_rejects_what_azure_rejects(fake) -> None:
    credential = AzureCredential(tenant_id="hw-tenant", client_id="hw-client",
                                 client_secret="hw-secret", authority_url=f"{fake.url}/login")
    token = credential.token("https://management.azure.com/.default")
    url = f"{fake.url}{fake.workspace_path}/onlineEndpoints/churn-f"
    auth = {"Authorization": f"Bearer {token}"}
    good = {"location": "westeurope", "properties": {"authMode": "Key"}}
    unknown = httpx.put(url, params={"api-version": ML_API}, headers=auth,
                        json={**good, "properties": {"authMode": "Key", "trafic": {}}})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "UserError"
    assert "Could not find member 'trafic'" in unknown.text
    wrong = httpx.put(url, params={"api-version": "2019-01-01"}, headers=auth, json=good)
    assert wrong.json()["error"]["code"] == "InvalidApiVersionParameter"
    split = httpx.put(url, params={"api-version": ML_API}, headers=auth,
                      json={**good, "properties": {"authMode": "Key", "traffic": {"x": 50}}})
    assert split.status_code == 400 and "does not exist" in split.text
    assert httpx.put(url, params={"api-version": ML_API}, json=good).status_code == 401
    created = httpx.put(url, params={"api-version": ML_API}, headers=auth, json=good)
    assert created.status_code == 201 and "Azure-AsyncOperation" in created.headers
    # storage: a token for the management audience is refused; blocks assemble in order
    store = BlobStore(credential, f"{fake.url}/blob/{fake.account}", "headwater-models",
                      block_bytes=1024)
    data = os.urandom(3000)
    store.put("blocks/test.bin", data)
    assert fake.blobs[("headwater-models", "blocks/test.bin")] == data
    assert len(fake.calls("PUT", r"/blob/.*/blocks/test.bin")) == 4  # 3 blocks + the list
    assert credential.token(STORAGE) != token

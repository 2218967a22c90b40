"""`headwater package`: a content-addressed bundle with no secret in it, that answers the
container routes when run as a plain process."""

from __future__ import annotations

import json
import socket
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from headwater.config import load_project
from headwater.deploy._bundle import build_bundle, run_bundle

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "hw-planted-secret-7f3a9c"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression

    from headwater.ml import Tracker

    root = tmp_path_factory.mktemp("bundle")
    (root / "headwater.yaml").write_text(
        "stores:\n  pg:\n    kind: postgres\n    url: postgresql://u:${BUNDLE_SECRET}@h/db\n")
    (root / ".env").write_text(f"BUNDLE_SECRET={SECRET}\n")
    import os

    os.environ["BUNDLE_SECRET"] = SECRET
    project = load_project(root)
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"tenure": rng.integers(0, 70, 80).astype("float64"),
                      "charges": rng.uniform(20, 110, 80)})
    model = LogisticRegression().fit(X, (X.tenure < 20).astype(int))
    tracker = Tracker.for_project(project)
    with tracker.start_run("churn"):
        uri = tracker.log_model(model, input_example=X.head(3), predict_fn="predict_proba")
    tracker.register(uri, "churn", alias="champion")
    return project


def test_same_inputs_same_digest_and_no_secret(project, tmp_path) -> None:
    a = build_bundle(project, "churn@champion", tmp_path / "a")
    b = build_bundle(project, "churn@champion", tmp_path / "b")
    assert a.digest == b.digest and a.path.name == b.path.name
    manifest = json.loads((a.path / "manifest.json").read_text())
    assert manifest["model"] == "churn" and manifest["version"] == 1
    assert {"Dockerfile", "serve", "requirements.lock", "model/MLmodel"} <= set(manifest["files"])
    assert "EXPOSE 8080" in (a.path / "Dockerfile").read_text()
    for path in a.path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert not list(a.path.rglob(".env")) and not list(a.path.rglob("headwater.yaml"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_bundle_runs_and_answers_the_container_routes(project, tmp_path) -> None:
    bundle = build_bundle(project, "churn@champion", tmp_path)
    port = _free_port()
    proc = run_bundle(bundle.path, port=port, workdir=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "the bundle's server exited"
            try:
                if httpx.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "no /ping within 120 s"
            time.sleep(0.5)
        rows = [{"tenure": 3.0, "charges": 90.0}, {"tenure": 60.0, "charges": 30.0}]
        for route in ("/invocations", "/score"):
            answer = httpx.post(f"{base}{route}", json={"rows": rows}, timeout=10)
            assert answer.status_code == 200, answer.text
        bad = httpx.post(f"{base}/invocations", json={"rows": [{"tenure": "x"}]}, timeout=10)
        assert bad.status_code in (400, 422) and "charges" in bad.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _package(project, tmp_path, path: str, *args: str):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PATH": path, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "headwater", "package", "churn@champion",
                           "--out", str(tmp_path), *args], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_push_without_a_container_builder_says_so_and_fails(project, tmp_path) -> None:
    done = _package(project, tmp_path, str(tmp_path / "empty-bin"), "--push",
                    "myacr.azurecr.io/headwater-serve:1")
    assert done.returncode == 1, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert "nothing was pushed" in out and "no docker, podman or buildah" in out
    assert "az acr build --registry myacr --image headwater-serve:1" in out


def test_push_builds_and_pushes_with_the_builder_found(project, tmp_path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"  # a stand-in builder that records what it was asked to do
    docker.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'docker.log'}\n")
    docker.chmod(0o755)
    done = _package(project, tmp_path / "out", str(bin_dir), "--push",
                    "myacr.azurecr.io/headwater-serve:1")
    assert done.returncode == 0, done.stdout + done.stderr
    calls = (tmp_path / "docker.log").read_text().splitlines()
    assert calls[0].startswith("build -t myacr.azurecr.io/headwater-serve:1 ")
    assert calls[1] == "push myacr.azurecr.io/headwater-serve:1"
    assert "pushed myacr.azurecr.io/headwater-serve:1" in done.stdout

"""`headwater pipeline run` end to end, as a user runs it in a git repository: staging and
production are SageMaker endpoints on moto's server (real HTTP); production's image is built
from the bundle (a stand-in builder, cases/fake_builder.py, writes its OCI archive) and pushed
to moto's ECR; the smoke test sends real requests to the bundle run as a process.

One project goes through four commits: a first run that reaches production, the same run again
(nothing new), a gate that fails, and a smoke test that fails in staging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from headwater.config import load_project

from ..e2e.conftest import headwater
from .cases.aws import moto_server, weights

aws = moto_server()  # one moto server for this module

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

boto3 = pytest.importorskip("boto3")

YAML = """\
ml:
  train:
    churn:
      data: customers.csv
      target: Churn
      algorithms: [logreg]
      time_budget_s: 2
      trials: 2
      folds: 3
      bootstrap: 0
      ensembles: []
deploy:
  gate: {{min_improvement: {gain}}}
  health: {{min_requests: 0}}
  targets:
    staging:
      kind: sagemaker
      region: eu-west-1
      endpoint: churn-staging
      role_arn: {role}
      bucket: hw-models
      image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/headwater-serve:1.0
      endpoint_url: {url}
    production:
      kind: sagemaker
      region: eu-west-1
      endpoint: churn-prod
      role_arn: {role}
      bucket: hw-models
      repository: headwater/churn
      endpoint_url: {url}
  pipelines:
    churn:
      staging: staging
      production: production
      strategy: {{kind: canary, canary_percent: 20, bake: 200ms, poll: 50ms}}
      smoke: {{data: requests.csv, requests: 6, rows: 4}}
"""


def _git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory, aws):
    from headwater.ml.datasets import make_churn

    root = tmp_path_factory.mktemp("pipeline")
    columns = ["customerID", "tenure", "Contract", "InternetService", "MonthlyCharges", "Churn"]
    frame = make_churn(400, seed=3, blanks=False).frame[columns]  # few columns: fast to train
    frame.to_csv(root / "customers.csv", index=False)
    frame.drop(columns=["Churn"]).head(12).to_csv(root / "requests.csv", index=False)
    (root / ".gitignore").write_text(".headwater/\n")
    (root / "headwater.yaml").write_text(YAML.format(gain=0.0, role=aws["role"], url=aws["url"]))
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first")
    bin_dir = tmp_path_factory.mktemp("bin")
    fake = Path(__file__).parent / "cases" / "fake_builder.py"
    (bin_dir / "podman").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake}" "$@"\n')
    (bin_dir / "podman").chmod(0o755)
    env = {**aws["env"], "FAKE_BUILDER_STATE": str(bin_dir / "images.json"),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for variable in ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION",
                     "CODEBUILD_RESOLVED_SOURCE_VERSION"):
        env[variable] = ""  # the commit comes from git here, not from a CI variable
    return root, env


def _run(repo, *args: str):
    root, env = repo
    return headwater("pipeline", *args, cwd=root, env=env, timeout=600)


def _commit(root: Path, message: str, **changes: str) -> str:
    for name, text in changes.items():
        (root / name).write_text(text)
    _git(root, "commit", "-q", "-am", message)
    return _git(root, "rev-parse", "HEAD")


def _state(root: Path, aws: dict) -> dict:
    from headwater.deploy import history_for
    from headwater.ml import Tracker

    project = load_project(root)
    models = {m["name"]: m for m in Tracker.for_project(project).models()}
    return {"production": weights(aws, "churn-prod"), "staging": weights(aws, "churn-staging"),
            "deployments": len(history_for(project).list(limit=100)),
            "latest": models["churn"]["latest"], "aliases": models["churn"]["aliases"]}


def test_pipeline_runs_once_per_commit_and_stops_at_a_failed_gate_or_smoke(repo, aws) -> None:
    root, _ = repo
    sha = _git(root, "rev-parse", "HEAD")

    first = _run(repo, "run", "churn")
    assert first.code == 0, first.out + first.err
    assert "churn version 1 serves production" in first.out
    for stage in ("train", "gate", "package", "staging", "smoke", "production"):
        assert stage in first.out
    state = _state(root, aws)
    assert state["production"] == {"v1": 1.0} and state["staging"] == {"v1": 1.0}
    assert state["aliases"]["champion"] == 1
    from headwater.deploy import history_for

    rows = history_for(load_project(root)).list(limit=10)
    assert {r["commit"] for r in rows} == {sha}
    assert {r["target"] for r in rows} == {"staging", "production"}

    # the image in ECR is the bundle's: its tag carries the bundle's sha256
    from headwater.store import run_store

    report = run_store(load_project(root)).list(kind="pipeline", reports=True)[0]["report"]
    tag = f"v1-{report['bundle']}"
    ecr = boto3.client("ecr", **aws["kw"])
    image = ecr.describe_images(repositoryName="headwater/churn",
                                imageIds=[{"imageTag": tag}])["imageDetails"][0]
    manifest = ecr.batch_get_image(repositoryName="headwater/churn",
                                   imageIds=[{"imageTag": tag}])["images"][0]["imageManifest"]
    import hashlib

    assert image["imageDigest"] == "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    sm = boto3.client("sagemaker", **aws["kw"])
    container = sm.describe_model(ModelName="churn-prod-v1")["PrimaryContainer"]
    assert container["Image"].endswith(f"/headwater/churn:{tag}")
    assert report["image"] == container["Image"]

    again = _run(repo, "run", "churn")
    assert again.code == 0, again.out + again.err
    assert "nothing new" in again.out and "version 1 serves production" in again.out
    assert _state(root, aws) == state

    # the workflow `ci init` writes runs this very command; on CI the commit comes from GITHUB_SHA
    written = headwater("ci", "init", "github", cwd=root, env=repo[1])
    assert written.code == 0, written.err
    workflow = yaml.safe_load((root / ".github/workflows/headwater.yml").read_text())
    step = next(s["run"] for s in workflow["jobs"]["test-train-deploy"]["steps"]
                if "pipeline run" in s.get("run", ""))
    assert step == "headwater pipeline run churn"
    on_ci = headwater(*step.split()[1:], cwd=root, env={**repo[1], "GITHUB_SHA": sha})
    assert on_ci.code == 0 and "nothing new" in on_ci.out, on_ci.out + on_ci.err
    (root / ".github/workflows/headwater.yml").unlink()

    # a new commit whose challenger must beat the champion by 0.5: the gate stops it
    settings = (root / "headwater.yaml").read_text()
    _commit(root, "demand more", **{"headwater.yaml": settings.replace("min_improvement: 0.0",
                                                                   "min_improvement: 0.5")})
    gated = _run(repo, "run", "churn")
    assert gated.code == 1, gated.out + gated.err
    assert "the gate fails" in gated.err and "nothing was deployed" in gated.err
    after = _state(root, aws)
    assert after["latest"] == 2 and after["aliases"]["champion"] == 1
    assert {k: after[k] for k in ("production", "staging", "deployments")} == {
        k: state[k] for k in ("production", "staging", "deployments")}

    # a commit that renames a column the requests still send: staging's smoke test fails
    data = (root / "customers.csv").read_text().replace("MonthlyCharges", "monthly_charges", 1)
    _commit(root, "rename a column", **{"customers.csv": data,
                                        "headwater.yaml": settings.replace("min_improvement: 0.0",
                                                                       "min_improvement: -1.0")})
    smoked = _run(repo, "run", "churn")
    assert smoked.code == 1, smoked.out + smoked.err
    assert "smoke test failed on staging" in smoked.err and "HTTP 422" in smoked.err
    assert "production untouched" in smoked.err
    final = _state(root, aws)
    assert final["staging"] == {"v3": 1.0}
    assert final["production"] == {"v1": 1.0} and final["aliases"]["champion"] == 1

    status = _run(repo, "status", "churn")
    assert status.code == 0, status.err
    runs = run_store(load_project(root)).list(kind="pipeline", reports=True)
    assert [r["status"] for r in runs] == ["failed", "failed", "succeeded", "succeeded",
                                           "succeeded"]
    assert runs[0]["report"]["stages"][4]["status"] == "failed"
    assert json.dumps(runs[0]["report"]).count("production untouched") >= 1


def test_dry_run_and_bad_names(repo) -> None:
    plan = _run(repo, "run", "churn", "--dry-run", "--force")
    assert plan.code == 0 and "would run train, gate, package" in plan.out
    missing = _run(repo, "run", "nope")
    assert missing.code == 1 and "no pipeline 'nope'" in missing.err
    stage = _run(repo, "run", "churn", "--from", "deploy")
    assert stage.code == 1 and "unknown stage 'deploy'" in stage.err

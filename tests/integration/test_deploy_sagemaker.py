"""Deploying registered models to SageMaker through boto3 against moto's server (real HTTP;
see cases/aws.py for what the fixture adds to moto). A firing CloudWatch alarm is simulated
with SetAlarmState."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from headwater.config import load_project
from headwater.core import ConfigError
from headwater.deploy import GateFailed, deploy_model, history_for, open_target, rollback

from .cases.aws import moto_server, weights

aws = moto_server()  # one moto server for this module

pytestmark = [pytest.mark.integration, pytest.mark.slow]

boto3 = pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def root(tmp_path_factory, aws):
    """One project folder (one MLflow registry) for the module; each test has its own model."""
    from sklearn.linear_model import LogisticRegression

    from headwater.ml import Tracker

    folder = tmp_path_factory.mktemp("deploy")
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"tenure": rng.integers(0, 70, 60).astype("float64"),
                      "charges": rng.uniform(20, 110, 60)})
    model = LogisticRegression().fit(X, (X.tenure < 20).astype(int))
    tracker = Tracker.for_project(load_project(folder))
    with tracker.start_run("churn"):
        folder.joinpath("model-uri").write_text(
            tracker.log_model(model, input_example=X.head(3), predict_fn="predict_proba"))
    return folder


def _project(root: Path, aws: dict, endpoint: str, **target) -> object:
    spec = {"region": "eu-west-1", "endpoint": endpoint, "role_arn": aws["role"],
            "bucket": "hw-models", "image": "1.dkr.ecr.eu-west-1.amazonaws.com/hw:1",
            "endpoint_url": aws["url"], **target}
    lines = [f"      {k}: {v}" for k, v in spec.items()]
    (root / "headwater.yaml").write_text(
        f"deploy:\n  model: {endpoint}\n"
        "  strategy: {kind: canary, bake: 300ms, poll: 50ms}\n"
        f"  targets:\n    {endpoint}:\n      kind: sagemaker\n" + "\n".join(lines) + "\n")
    return load_project(root)


def _register(project, auc: float) -> int:
    """A new version of the test's model (named like its endpoint), tagged holdout_roc_auc."""
    from headwater.ml import Tracker

    name = project.deploy.model
    uri = (project.root / "model-uri").read_text()
    return Tracker.for_project(project).register(uri, name, alias="challenger",
                                                 tags={"holdout_roc_auc": str(auc)})


def test_first_deploy_then_canary_then_a_failing_canary_rolls_back(aws, root) -> None:
    project = _project(root, aws, "churn-a")
    _register(project, 0.80)
    first = deploy_model(project, project.deploy.model)
    assert first.deployment.status == "succeeded" and first.gate.passed
    assert weights(aws, "churn-a") == {"v1": 1.0}
    # same version again: nothing new deploys
    again = deploy_model(project, project.deploy.model, "churn-a/1", gate=False)
    assert again.deployment.status == "unchanged"

    _register(project, 0.82)
    steps: list[str] = []
    second = deploy_model(project, project.deploy.model, on_step=steps.append)
    assert second.deployment.status == "succeeded"
    assert [s["percent"] for s in second.deployment.steps] == [10, 100]
    assert weights(aws, "churn-a") == {"v2": 1.0}
    from headwater.ml import Tracker

    assert Tracker.for_project(project).resolve(f"{project.deploy.model}@champion")[2] == 2

    _register(project, 0.83)
    cw = boto3.client("cloudwatch", **aws["kw"])

    def fire(message: str) -> None:  # the canary's error alarm fires while it bakes
        if message.startswith("v3: 10 %"):
            cw.set_alarm_state(AlarmName="churn-a-v3-5xx", StateValue="ALARM",
                               StateReason="5xx errors")

    third = deploy_model(project, project.deploy.model, on_step=fire)
    assert third.deployment.status == "rolled_back"
    assert "churn-a-v3-5xx is firing" in third.deployment.reason
    assert weights(aws, "churn-a") == {"v2": 1.0}
    assert Tracker.for_project(project).resolve(f"{project.deploy.model}@champion")[2] == 2
    statuses = [r["status"] for r in history_for(project).list(target=project.deploy.model)]
    assert statuses == ["rolled_back", "succeeded", "succeeded"]

    back = rollback(project, project.deploy.model)
    assert back.version == 1 and weights(aws, "churn-a") == {"v1": 1.0}


def test_gate_stops_a_worse_challenger_before_anything_is_created(aws, root) -> None:
    project = _project(root, aws, "churn-b")
    _register(project, 0.80)
    deploy_model(project, project.deploy.model)
    _register(project, 0.70)
    sm = boto3.client("sagemaker", **aws["kw"])
    before = {m["ModelName"] for m in sm.list_models()["Models"]}
    with pytest.raises(GateFailed, match=r"challenger v2 0\.7000 vs champion v1 0\.8000"):
        deploy_model(project, project.deploy.model)
    assert {m["ModelName"] for m in sm.list_models()["Models"]} == before


@pytest.mark.parametrize(("change", "message"), [
    ({"bucket": "no-such-bucket"}, "S3 bucket 'no-such-bucket' not found"),
    ({"role_arn": "arn:aws:iam::123456789012:role/missing"}, "IAM role .* not found"),
])
def test_preflight_names_what_is_missing(aws, root, change, message) -> None:
    project = _project(root, aws, "churn-c", **change)
    with pytest.raises(ConfigError, match=message):
        open_target(project, project.deploy.model)


def test_a_killed_deploy_is_put_back_on_the_next_run(aws, root) -> None:
    project = _project(root, aws, "churn-d")
    _register(project, 0.80)
    deploy_model(project, project.deploy.model)
    _register(project, 0.85)
    yaml = (root / "headwater.yaml").read_text().replace("bake: 300ms", "bake: 60s")
    (root / "headwater.yaml").write_text(yaml)
    cmd = [str(Path(sys.executable).with_name("headwater")), "deploy", "run", "churn-d"]
    proc = subprocess.Popen(cmd, cwd=root, env={**os.environ, **aws["env"]},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while weights(aws, "churn-d").get("v2", 0.0) == 0.0:  # the canary is baking
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert weights(aws, "churn-d") == {"v1": 0.9, "v2": 0.1}
    assert history_for(project).unfinished(project.deploy.model) is not None
    # the next run restores v1 first, then deploys again
    (root / "headwater.yaml").write_text(yaml.replace("bake: 60s", "bake: 100ms"))
    project = load_project(root)
    result = deploy_model(project, project.deploy.model)
    assert result.deployment.status == "succeeded"
    assert weights(aws, "churn-d") == {"v2": 1.0}
    rows = history_for(project).list(target=project.deploy.model)
    assert [r["status"] for r in rows][:2] == ["succeeded", "rolled_back"]
    assert "killed" in rows[1]["reason"]

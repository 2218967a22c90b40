"""The local deploy target for real: model versions as processes behind the router, under load.

Blue/green and canary switches must fail no request; a faulty version (trained without two-year
contracts, its server answers 500 on them: a real fault) must be rolled back by its canary's
health gate read from its own /metrics; a deploy command killed with SIGKILL mid-canary must
leave the old version serving and the next run must put things right.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from headwater.config import load_project
from headwater.core import ConfigError
from headwater.deploy import deploy_model, history_for, open_target, rollback
from headwater.deploy._local import _alive
from headwater.quickstart._deploy import MODEL, Load, customers, free_port, register_versions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

YAML = """\
deploy:
  model: {model}
  gate: {{metric: holdout_roc_auc, min_improvement: -0.05}}
  strategy: {{kind: canary, canary_percent: 30, bake: 2s, poll: 200ms}}
  health: {{max_error_rate: 0.02, max_p99_ms: 2000, min_requests: 10}}
  targets:
    switch: {{kind: local, port: {a}}}
    killed: {{kind: local, port: {b}, runtime: bundle}}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    (root / "headwater.yaml").write_text(YAML.format(model=MODEL, a=free_port(), b=free_port()))
    project = load_project(root)
    versions = register_versions(project)
    yield project, versions
    for name in ("switch", "killed"):
        open_target(project, name, check=False).stop()


def _all_at_once(project):
    return project.deploy.strategy.model_copy(update={"kind": "all_at_once", "bake": "0s"})


def test_switches_under_load_fail_nothing_and_a_faulty_canary_rolls_back(setup) -> None:
    project, v = setup
    target = open_target(project, "switch")
    deploy_model(project, "switch", f"{MODEL}/{v['good']}", target=target,
                 strategy=_all_at_once(project), gate=False)
    with Load(target.url, customers(), workers=3, pause=0.01) as load:
        time.sleep(0.5)
        began = time.monotonic()
        green = deploy_model(project, "switch", f"{MODEL}/{v['better']}", target=target,
                             strategy=project.deploy.strategy.model_copy(
                                 update={"kind": "blue_green", "shadow_percent": 50}))
        switch = load.window(began, time.monotonic())
        assert green.deployment.status == "succeeded", green.deployment.reason
        assert switch["failed"] == 0 and switch["sent"] > 20, switch
        assert {"v1", "v2"} <= set(switch["by_variant"]), switch
        assert [s["percent"] for s in green.deployment.steps] == [0, 100]

        began = time.monotonic()
        canary = deploy_model(project, "switch", f"{MODEL}/{v['faulty']}", target=target)
        time.sleep(0.3)
    d = canary.deployment
    assert d.status == "rolled_back" and "error rate" in d.reason, d.reason
    assert d.steps[0]["percent"] == 30 and d.steps[-1]["problems"]
    bad = [r for r in load.records if r[0] >= began and r[1] != 200]
    assert bad and {r[3] for r in bad} == {"v3"}  # only the faulty version failed requests
    assert all(r[3] == "v2" for r in load.records[-10:])
    assert [(x.name, x.weight) for x in target.variants()] == [("v2", 1.0)]
    statuses = [r["status"] for r in history_for(project).list(target="switch")]
    assert statuses == ["rolled_back", "succeeded", "succeeded"]

    back = rollback(project, "switch", target=target)
    assert back.version == v["good"] and back.status == "succeeded"
    answer = httpx.post(f"{target.url}/predict", json=customers(1)[0], timeout=10)
    assert answer.status_code == 200 and answer.headers["x-headwater-variant"] == "v1"


def test_a_killed_deploy_leaves_blue_serving_and_the_next_run_recovers(setup) -> None:
    project, v = setup
    root = project.root
    target = open_target(project, "killed")
    deploy_model(project, "killed", f"{MODEL}/{v['good']}", target=target,
                 strategy=_all_at_once(project), gate=False)
    target._lock.close()  # the deploy command below takes the target's lock
    cmd = [str(Path(sys.executable).with_name("headwater")), "deploy", "run", "killed",
           f"{MODEL}/{v['better']}", "--strategy", "canary", "--bake", "60s", "--no-gate"]
    proc = subprocess.Popen(cmd, cwd=root, env=os.environ.copy(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    with Load(target.url, customers(), workers=2, pause=0.02) as load:
        while target.routes()["variants"].get("v2", {}).get("weight", 0.0) == 0.0:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = time.monotonic()
        time.sleep(1.0)
        weights = {n: r["weight"] for n, r in target.routes()["variants"].items()}
        assert weights == {"v1": 0.7, "v2": 0.3}  # the canary step, still serving
        assert history_for(project).unfinished("killed") is not None
        pids = {n: p["pid"] for n, p in target._processes().items()}
        assert all(_alive(pid) for pid in pids.values())

        with pytest.raises(ConfigError, match="is taken"):
            other = load_project(root).deploy.targets["killed"].model_copy(
                update={"port": target.spec.port})
            from headwater.deploy._local import LocalTarget

            LocalTarget("other", other, project.deploy.health, root=root,
                        state=root / ".headwater" / "deploy" / "other").preflight()

        result = deploy_model(load_project(root), "killed", f"{MODEL}/{v['better']}",
                              gate=False, strategy=project.deploy.strategy.model_copy(
                                  update={"bake": "1s"}))
        assert result.deployment.status == "succeeded", result.deployment.reason
    assert load.window(killed)["failed"] == 0
    assert {n: r["weight"] for n, r in target.routes()["variants"].items()} == {"v2": 1.0}
    assert not _alive(pids["v1"])  # the old version's process is gone, not left behind
    rows = history_for(project).list(target="killed")
    assert [r["status"] for r in rows][:2] == ["succeeded", "rolled_back"]
    assert "killed" in rows[1]["reason"]

    stop = subprocess.run([str(Path(sys.executable).with_name("headwater")), "deploy", "stop",
                           "killed"], cwd=root, capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert not any(_alive(pid) for pid in (*pids.values(),
                                           target._read("router.json", {})["pid"]))


def test_a_router_on_the_network_needs_an_api_key(setup) -> None:
    project, _ = setup
    spec = project.deploy.targets["switch"].model_copy(update={"host": "0.0.0.0"})
    from headwater.deploy._local import LocalTarget

    with pytest.raises(ConfigError, match="no API key"):
        LocalTarget("open", spec, project.deploy.health, root=project.root,
                    state=project.root / "open").preflight()

"""``headwater serve`` as a user starts it: uvicorn on a port, the API key from the
environment, churn rows scored over real HTTP, a clean stop on Ctrl+C."""

from __future__ import annotations

import json

import httpx

from .conftest import serving


def test_serve_churn_over_http(churn_registry) -> None:
    project, _, customers, _ = churn_registry
    rows = json.loads(customers.head(3).to_json(orient="records"))
    with serving(project.root, "churn@challenger", "--sagemaker", "--reload-every", "0",
                 env={"HEADWATER_API_KEY": "k-123456"}) as (url, proc):
        key = {"X-API-Key": "k-123456"}
        r = httpx.post(f"{url}/predict", json={"rows": rows}, headers=key)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 3
        assert httpx.post(f"{url}/predict", json=rows[0]).status_code == 401
        assert httpx.post(f"{url}/invocations", json=rows[0], headers=key).status_code == 200
        assert httpx.get(f"{url}/ping").status_code == 200
        assert httpx.get(f"{url}/docs").status_code == 200
    out = proc.stdout.read()
    assert proc.returncode == 0, out
    assert "serving a=churn/1 (predict)" in out and "API key required" in out


def test_serve_without_a_key_says_how_to_set_one(churn_registry, tmp_path) -> None:
    import os
    import subprocess

    from .conftest import HEADWATER

    project, *_ = churn_registry
    env = {k: v for k, v in os.environ.items() if k != "HEADWATER_API_KEY"}
    done = subprocess.run([HEADWATER, "-p", str(project.root), "serve", "churn@challenger"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "HEADWATER_API_KEY" in done.stderr and "--no-auth" in done.stderr
    assert "Traceback" not in done.stderr

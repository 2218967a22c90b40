"""`pip install headwater` without extras gives a working headwater: the wheel, built from this
tree and installed into a fresh venv with only its declared dependencies, runs `headwater init`
and `headwater ingest file` on a CSV, and says which extra `headwater train` needs.

It catches an import of a package that pyproject.toml does not declare (numpy, pandas, ...).
Dependencies come from the machine's package index; uv (when installed) and pip keep them in
their caches, so a second run takes seconds to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(args: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                          timeout=600, **kwargs)


def _uv() -> str | None:
    return shutil.which("uv") or next(
        (str(p) for p in [Path(sys.executable).parent / "uv"] if p.exists()), None)


def test_the_wheel_without_extras_ingests_a_csv(tmp_path: Path) -> None:
    uv = _uv()
    wheels = tmp_path / "dist"
    build = ([uv, "build", "--wheel", "--out-dir", wheels, ROOT] if uv else
             [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheels, ROOT])
    done = _run(build)
    assert done.returncode == 0, done.stderr
    (wheel,) = wheels.glob("headwater-*.whl")

    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    if uv:
        assert _run([sys.executable, "-m", "venv", "--without-pip", venv]).returncode == 0
        done = _run([uv, "pip", "install", "--quiet", "--python", python, wheel])
    else:
        assert _run([sys.executable, "-m", "venv", venv]).returncode == 0
        done = _run([python, "-m", "pip", "install", "--quiet", wheel])
    assert done.returncode == 0, done.stderr
    missing = _run([python, "-c", "import importlib.util as u; print([m for m in "
                    "('sklearn', 'pandas', 'mlflow', 'fastapi') if u.find_spec(m)])"])
    assert missing.stdout.strip() == "[]", "an extra's package came with the core install"

    headwater = venv / "bin" / "headwater"
    project = tmp_path / "shop"
    done = _run([headwater, "init", project])
    assert done.returncode == 0, done.stdout + done.stderr
    done = _run([headwater, "ingest", "file", "orders/orders.csv", "--table", "orders"],
                cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    counted = _run([headwater, "sql", "SELECT count(*) AS n FROM orders"], cwd=project)
    assert counted.returncode == 0 and " n " in counted.stdout, counted.stdout + counted.stderr

    done = _run([headwater, "train", "churn", "--data", "orders/orders.csv"], cwd=project)
    assert done.returncode == 1
    assert "pip install 'headwater[ml]'" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr

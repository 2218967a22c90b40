"""Run the ``headwater`` command the way a user does: a subprocess in a project folder."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HEADWATER = str(Path(sys.executable).with_name("headwater"))


@dataclass
class Result:
    code: int
    out: str
    err: str


def headwater(*args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 300) -> Result:
    """Run ``headwater ARGS`` in ``cwd``; return exit code, stdout and stderr."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    done = subprocess.run([HEADWATER, *args], cwd=cwd, capture_output=True, text=True,
                          env=full_env, timeout=timeout)
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def hw(tmp_path: Path):
    """``hw("ingest", "file", ...)`` runs headwater in a fresh folder."""

    def run(*args: str, **kwargs) -> Result:
        return headwater(*args, cwd=kwargs.pop("cwd", tmp_path), **kwargs)

    run.cwd = tmp_path  # type: ignore[attr-defined]
    return run

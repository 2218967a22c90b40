"""Every shell example in README.md runs, in order, the way a reader would type it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README = Path(__file__).parents[2] / "README.md"
#: Blocks that set up the machine itself (run by `make`), not examples to replay here.
SETUP = re.compile(r"^\s*(make |source )", re.MULTILINE)


def readme_blocks() -> list[str]:
    """The ```bash blocks of README.md, minus the set-up ones."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    return [b for b in blocks if not SETUP.search(b)]


def test_readme_has_examples() -> None:
    assert len(readme_blocks()) >= 3


def test_readme_examples_run_in_order(tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + "\n".join(readme_blocks())
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "COLUMNS": "160",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, (
        f"README example failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )

"""docs/deploy-recommendations.md: its ``bash`` commands run; every option of its ``text``
commands (servers that keep running) exists in ``headwater serve --help``."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "deploy-recommendations.md"
BIN = Path(sys.executable).parent


def blocks(kind: str) -> list[str]:
    return [line for block in re.findall(rf"```{kind}\n(.*?)```", GUIDE.read_text(), re.S)
            for line in block.strip().splitlines()]


def test_bash_commands_run() -> None:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "COLUMNS": "200"}
    commands = blocks("bash")
    assert len(commands) >= 2
    for command in commands:
        words = shlex.split(command)
        if words[0] == "python":
            words[0] = sys.executable
        done = subprocess.run(words, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, (command, done.stderr)


def test_server_commands_use_real_options() -> None:
    env = {**os.environ, "COLUMNS": "300", "NO_COLOR": "1"}
    helped = subprocess.run([str(BIN / "headwater"), "serve", "--help"], capture_output=True,
                            text=True, env=env, check=True).stdout
    commands = [c for c in blocks("text") if "headwater serve" in c]
    assert len(commands) >= 7
    for command in commands:
        for option in re.findall(r"\s(--[a-z][a-z-]+)", command):
            assert option in helped, (option, command)

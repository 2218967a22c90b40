"""The examples in docs/streams.md run: the Python session and the `brokers:` block."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from headwater.config import parse_project

DOC = (Path(__file__).parents[3] / "docs" / "streams.md").read_text(encoding="utf-8")


def test_the_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", DOC, re.S)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "docs/streams.md", "exec"), scope)
    assert scope["batch"].num_rows == 2
    assert scope["consumer"].committed() == {0: 41, 3: 17}
    assert os.path.exists(tmp_path / ".headwater" / "streams" / "events" / "topic.json")
    scope["broker"].close()


def test_the_brokers_block_validates() -> None:
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", DOC, re.S)
                 if b.startswith("brokers:"))
    spec = parse_project(block).broker("embedded")
    assert (spec.fsync, spec.retention_ms, spec.partitions) == ("batch", 7 * 86_400_000, 4)

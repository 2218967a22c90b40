"""``headwater ci init``: a CI workflow that tests, then runs ``headwater pipeline run`` on a
push to main (train, gate, package, staging, smoke test, production).

    path = write_workflow(Path("."), "github", pipeline="churn")

Cloud credentials come from the CI's secret store (GitHub secrets, GitLab masked variables, an
Azure variable group, the CodeBuild role); the files hold none.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

from headwater.core import ConfigError

#: Where each CI system looks for its workflow, relative to the repository root.
PATHS = {"github": ".github/workflows/headwater.yml", "gitlab": ".gitlab-ci.yml",
         "azure": "azure-pipelines.yml", "codepipeline": "buildspec.yml"}


def render_workflow(kind: str, *, pipeline: str) -> str:
    """The workflow text for ``kind`` (github, gitlab, azure, codepipeline)."""
    if kind not in PATHS:
        raise ConfigError(f"unknown CI system '{kind}'", hint=f"use one of {', '.join(PATHS)}")
    text = resources.files("headwater.deploy").joinpath(f"ci/{kind}.yml").read_text("utf-8")
    return Template(text).substitute(pipeline=pipeline)


def write_workflow(root: Path, kind: str, *, pipeline: str, force: bool = False) -> Path:
    """Write the workflow where ``kind`` expects it; refuses to overwrite unless ``force``."""
    path = root / PATHS.get(kind, kind)
    text = render_workflow(kind, pipeline=pipeline)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists", hint="pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path

"""`headwater ci init` writes workflows that the CI systems' published schemas accept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from headwater.core import ConfigError
from headwater.deploy._ci import PATHS, render_workflow, write_workflow

SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci",
           "azure": "vendor.azure-pipelines"}


@pytest.mark.parametrize("kind", sorted(PATHS))
def test_workflow_parses_and_deploys_on_main(kind, tmp_path) -> None:
    path = write_workflow(tmp_path, kind, pipeline="churn")
    assert path == tmp_path / PATHS[kind]
    text = path.read_text()
    assert "headwater pipeline run churn" in text
    assert "main" in text and "AKIA" not in text and "$pipeline" not in text
    assert yaml.safe_load(text)
    if kind in SCHEMAS:
        checker = Path(sys.executable).with_name("check-jsonschema")
        # python regexes: the Azure schema's patterns use escapes ECMA's parser rejects
        done = subprocess.run([str(checker), "--regex-variant", "python", "--builtin-schema",
                               SCHEMAS[kind], str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    else:  # CodeBuild buildspec: no published schema; check its required shape
        spec = yaml.safe_load(text)
        assert spec["version"] == 0.2 and {"install", "build"} <= set(spec["phases"])


def test_github_reads_credentials_from_secrets() -> None:
    text = render_workflow("github", pipeline="churn")
    assert "${{ secrets.AWS_ACCESS_KEY_ID }}" in text


def test_unknown_kind_and_existing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown CI system 'jenkins'"):
        render_workflow("jenkins", pipeline="p")
    write_workflow(tmp_path, "gitlab", pipeline="p")
    with pytest.raises(ConfigError, match="exists"):
        write_workflow(tmp_path, "gitlab", pipeline="p")

"""Without the ml extra, headwater.ml says what to install; bad training options fail cleanly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from headwater.config import parse_project
from headwater.core import ConfigError

HIDE_SKLEARN = (
    "import importlib.util as u; real = u.find_spec; "
    "u.find_spec = lambda name, *a: None if name == 'sklearn' else real(name, *a); "
)


def test_ml_without_the_extra_names_the_install_command() -> None:
    code = HIDE_SKLEARN + (
        "from headwater.core import MissingExtraError\n"
        "try:\n    import headwater.ml._project\n"
        "except MissingExtraError as exc:\n    print(exc.hint)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "pip install 'headwater[ml]'"


def test_the_cli_prints_one_line_for_a_missing_extra(tmp_path) -> None:
    code = HIDE_SKLEARN + "import sys; from headwater.cli import main; sys.argv = " + repr(
        ["headwater", "-p", str(tmp_path), "train", "churn", "--data", "x.csv"]) + "; main()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1
    assert "pip install 'headwater[ml]'" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr + out.stdout
    assert "bug in headwater" not in out.stderr + out.stdout


@pytest.mark.parametrize(("options", "key"), [({"folds": 1}, "folds"),
                                              ({"threshold": "best"}, "threshold.strategy")])
def test_bad_training_options_are_config_errors(options: dict, key: str) -> None:
    from headwater.ml._project import task_spec

    project = parse_project("ml:\n  train:\n    churn: {data: customers.csv}\n")
    with pytest.raises(ConfigError, match=f"{key}: "):
        task_spec(project, "churn", **options)


def test_threshold_options_keep_the_rest_of_the_task_settings() -> None:
    from headwater.ml._project import task_spec

    project = parse_project("ml:\n  train:\n    churn:\n      threshold: {strategy: cost, "
                            "cost: {false_positive: 2, false_negative: 9}}\n")
    spec = task_spec(project, "churn", threshold="target_recall", target_recall=0.7)
    assert (spec.threshold.strategy, spec.threshold.target_recall) == ("target_recall", 0.7)
    assert spec.threshold.cost.false_negative == 9

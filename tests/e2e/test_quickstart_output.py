"""What a new user sees in the terminal when they run the quickstart as README says: readable
lines only. No raw dict of a structlog event, no MLflow INFO lines, no Python warnings, no
``[error    ] event [module]`` renderings; headwater's own warnings and errors are one plain
sentence each. The files and churn steps run (churn trains with MLflow, where most of the
third-party noise came from); the other steps print through the same console."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NOISE = {
    "a raw dict of a log event": re.compile(r"\{'\w+': "),
    "a third-party INFO/DEBUG line": re.compile(r"\b(INFO|DEBUG)\b"),
    "a Python warning": re.compile(r"\w+Warning\b|warnings\.warn"),
    "structlog's console rendering": re.compile(r"\[\s*(error|warning|info|debug)\s*\]"),
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
}
SENTENCE = re.compile(r"^(warning|error): [a-z][^{}\n]*$")


def check_terminal(text: str) -> None:
    """Fail on each kind of noise, naming the line."""
    for what, pattern in NOISE.items():
        bad = [line for line in text.splitlines() if pattern.search(line)]
        assert not bad, f"{what} in the terminal output: {bad[:3]}"
    for line in text.splitlines():
        if line.startswith(("warning", "error")):
            assert SENTENCE.match(line), f"not one plain sentence: {line!r}"


def test_check_terminal_catches_the_noise_seen_before() -> None:
    """The renderings the issue reported, each caught."""
    for seen in ("{'column': 'customerID', 'reason': 'an identifier'}",
                 "2026/11/30 10:00:01 INFO mlflow.tracking.fluent: Experiment set",
                 "/x/sklearn/utils.py:12: UserWarning: X does not have valid feature names",
                 "2026-11-30 10:00 [error    ] extract_failed [headwater.ingest._pipeline]",
                 "warning: {'event': 'x'}"):
        with pytest.raises(AssertionError):
            check_terminal(seen)
    check_terminal("warning: column dropped (column customerID): an identifier\nloaded 5 rows")


def test_quickstart_prints_readable_lines_only(hw) -> None:
    result = hw("quickstart", "demo", "--only", "files", "--only", "churn", timeout=600)
    assert result.code == 0, result.out + result.err
    assert "loaded exactly once" in result.out and "ROC-AUC" in result.out
    check_terminal(result.out + "\n" + result.err)
    # what the terminal leaves out is in the log file
    log = (hw.cwd / "demo" / ".headwater" / "logs" / "headwater.jsonl").read_text()
    assert '"event": "run_finished"' in log

"""The recommendation scenario as a user runs it: generate, evaluate, train, from file and table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def ok(result):
    """The output of a command that succeeded, with Rich's line wrapping undone."""
    assert result.code == 0, result.out + result.err
    return " ".join(result.out.split())


def test_generate_evaluate_train_from_udata(hw):
    ok(hw("init", "p"))
    root = hw.cwd / "p"
    assert "synthetic ratings" in ok(hw("recommend", "generate", "u.data", "--users", "150",
                                        "--items", "200", "--size", "5000", cwd=root))
    out = ok(hw("recommend", "evaluate", "--data", "u.data", "--models", "item_knn,ease",
                "--split", "time", cwd=root))
    assert re.search(r"│ ease\s*│", out) and "popularity" in out and "per-user time split" in out
    assert "best by validation" in out
    out = ok(hw("recommend", "train", "--data", "u.data", "--models", "item_knn,ease",
                "--trials", "2", "--budget", "20", cwd=root))
    assert "registered recommend version 1 as @challenger" in out
    report = Path(re.search(r"report: (\S+\.html)", out).group(1))
    assert "Leaderboard" in (report if report.is_absolute() else root / report).read_text()
    assert "recommend" in ok(hw("models", cwd=root))


def test_train_from_a_warehouse_table(hw):
    ok(hw("init", "p"))
    root = hw.cwd / "p"
    ok(hw("recommend", "generate", "events.csv", "--kind", "events", "--users", "120",
          "--items", "80", "--size", "2500", cwd=root))
    ok(hw("ingest", "file", "events.csv", "--table", "shop_events", cwd=root))
    out = ok(hw("recommend", "train", "--data", "shop_events", "--models", "item_knn",
                "--trials", "1", "--weight", "purchase=10,view=0.5", "--no-register", cwd=root))
    assert "120 users" in out and "registered" not in out
    result = hw("recommend", "train", "--data", "events.csv", "--models", "magic", cwd=root)
    assert result.code == 1 and "unknown recommendation model 'magic'" in result.err
    assert "Traceback" not in result.err

"""HTML reports open in a real browser (headless Chromium) with every plot rendered."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from headwater.ml.datasets import make_housing

pytestmark = [pytest.mark.e2e]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `scripts/browser.sh` (`make test` does)")
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_cv_report_renders_with_its_plots(hw, tmp_path: Path) -> None:
    pacsv.write_csv(make_housing(600, seed=3), hw.cwd / "housing.csv")
    result = hw("cv", "--data", "housing.csv", "--target", "median_house_value", "--models",
                "ols,ridge", "--folds", "3", "--no-curve", "--no-track", "--report", "report.html")
    assert result.code == 0, result.out + result.err
    page = f"file://{hw.cwd / 'report.html'}"
    dom = chromium("--dump-dom", page, profile=tmp_path / "p1").stdout
    assert "Cross-validation" in dom and "ridge" in dom
    assert dom.count("<img") >= 3 and "data:image/png;base64," in dom
    shot = tmp_path / "report.png"
    chromium("--window-size=1200,1600", f"--screenshot={shot}", page, profile=tmp_path / "p2")
    assert shot.exists() and shot.stat().st_size > 50_000  # a rendered page, not a blank one

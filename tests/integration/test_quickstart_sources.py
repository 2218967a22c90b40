"""The quickstart's sources step: SQLite and a local API it starts, loaded twice."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from headwater.config import load_project
from headwater.quickstart._init import init_project
from headwater.quickstart._sources import step
from headwater.store import open_store, run_store

pytestmark = pytest.mark.integration


def test_second_run_reads_only_the_changes(tmp_path):
    root = init_project(tmp_path / "demo", sample_data=False)
    out = io.StringIO()
    step(root, Console(file=out, width=120))
    project = load_project(root)
    runs = {(r["pipeline"], r["rows_read"]) for r in run_store(project).list(limit=10)}
    assert {("shop_customers", 200), ("support_tickets", 500)} <= runs
    assert ("support_tickets", 6) in runs  # 4 new + 2 updated tickets
    second_customers = [n for p, n in runs if p == "shop_customers" and n != 200]
    assert second_customers and second_customers[0] <= 10  # 5 changes + the 1h lookback
    store = open_store(project, read_only=True)
    try:
        counts = store.query("SELECT (SELECT count(*) FROM shop_customers) AS c, "
                             "(SELECT count(DISTINCT id) FROM shop_customers) AS dc, "
                             "(SELECT count(*) FROM support_tickets) AS t").to_pylist()[0]
    finally:
        store.close()
    assert counts == {"c": 202, "dc": 202, "t": 504}
    assert "shop_customers" in (root / "headwater.yaml").read_text()

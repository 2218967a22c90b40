"""The library behind `headwater ingest status` and `headwater quarantine list/show`."""

from __future__ import annotations

from pathlib import Path

from headwater.config import load_project
from headwater.ingest import (
    PipelineStatus,
    pipeline_status,
    quarantine_counts,
    quarantine_sample,
    run_pipeline,
)

PROJECT = """\
project: shop
pipelines:
  orders:
    source: {kind: files, path: data/*.csv}
    table: orders
    contract:
      columns:
        id: {type: integer, nullable: false}
        amount: {type: float, min: 0}
  refunds:
    source: {kind: files, path: refunds/*.csv}
    table: refunds
"""


def make_project(tmp_path: Path):
    (tmp_path / "headwater.yaml").write_text(PROJECT)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("id,amount\n1,9.5\n2,-3\n3,x'y\n")
    (tmp_path / "data" / "b.csv").write_text("id,amount\n4,1\n")
    return load_project(tmp_path)


def test_status_before_and_after_a_run(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert pipeline_status(project) == [
        PipelineStatus("orders", "files", "orders", positions=0),
        PipelineStatus("refunds", "files", "refunds", positions=0),
    ]
    run = run_pipeline(project, "orders")
    orders, refunds = pipeline_status(project)
    assert (orders.last_run, orders.status, orders.positions) == (run.id, "succeeded", 2)
    assert (orders.rows_loaded, orders.rows_quarantined) == (2, 2)
    assert orders.started_at is not None and orders.started_at.tzinfo is not None
    assert refunds.last_run is None and refunds.started_at is None


def test_quarantine_filters_are_bound_values(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    run_pipeline(project, "orders")
    counts = {r["rule"]: r["n_rows"] for r in quarantine_counts(project).to_pylist()}
    assert sum(counts.values()) == 2, counts
    assert quarantine_counts(project, table="orders' OR '1'='1").num_rows == 0
    assert quarantine_sample(project, table="orders' OR '1'='1").num_rows == 0
    rule = next(r for r in counts if "amount" in r and "type" not in r)
    shown = quarantine_sample(project, table="orders", rule=rule).to_pylist()
    assert [r["raw"] for r in shown] and all("-3" in r["raw"] for r in shown)
    assert quarantine_sample(project, rule="no such rule").num_rows == 0

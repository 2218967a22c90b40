"""open_store builds each kind of store from headwater.yaml."""

from __future__ import annotations

from pathlib import Path

from headwater.config import parse_project
from headwater.store import DeltaStore, DuckDBStore, PostgresStore, open_store

YAML = """
project: demo
stores:
  pg:
    kind: postgres
    url: ${PG_URL}
    schema: analytics
  lake:
    kind: delta
    uri: lake
  s3lake:
    kind: delta
    uri: s3://bucket/prefix
    storage_options:
      AWS_REGION: eu-west-1
      AWS_SECRET_ACCESS_KEY: ${KEY}
"""


def test_open_store_builds_every_kind(tmp_path: Path) -> None:
    project = parse_project(YAML, root=tmp_path,
                            env={"PG_URL": "postgresql://app:pw1234@db/x", "KEY": "k3y-value"})
    assert isinstance(open_store(project), DuckDBStore)
    pg = open_store(project, "pg")
    assert isinstance(pg, PostgresStore) and pg.schema == "analytics"
    lake = open_store(project, "lake")
    assert isinstance(lake, DeltaStore) and lake.local_path == tmp_path / "lake"
    s3 = open_store(project, "s3lake")
    assert isinstance(s3, DeltaStore) and s3.local_path is None
    assert s3.storage_options == {"AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "k3y-value"}

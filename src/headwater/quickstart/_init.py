"""``headwater init``: a working project with headwater.yaml, sample data and contracts."""

from __future__ import annotations

from pathlib import Path

from headwater.config import PROJECT_FILE
from headwater.core import ConfigError

_YAML = """\
# headwater project file. `headwater config check` validates it; `headwater config schema`
# prints its JSON Schema for editors. ${{ENV_VAR}} and ${{ENV_VAR:-default}} are replaced from
# the environment: keep passwords and tokens there, never in this file.
project: {name}

stores:
  warehouse:                      # the default store: an embedded DuckDB file
    kind: duckdb
    path: .headwater/warehouse.duckdb
  # warehouse:                    # or PostgreSQL:
  #   kind: postgres
  #   url: postgresql://app:${{PGPASSWORD}}@db.internal:5432/analytics
  # lake:                         # a Delta Lake on disk or S3
  #   kind: delta
  #   uri: s3://my-bucket/lake

# metadata:                       # run records: SQLite under .headwater/ by default
#   url: postgresql://app:${{PGPASSWORD}}@db.internal:5432/headwater

pipelines:
{pipelines}"""

_PIPELINES = """\
  orders:
    source:
      kind: files
      path: orders                 # a folder: every file in it, whatever its format
    table: orders
    mode: merge                    # upsert on the primary key: re-deliveries update rows
    primary_key: [order_id]
    contract: contracts/orders.yaml
  customers:
    source:
      kind: files
      path: customers
    table: customers
    mode: merge
    primary_key: [customer_id]
    contract: contracts/customers.yaml
"""


def init_project(folder: str | Path, *, sample_data: bool = True, exist_ok: bool = False) -> Path:
    """Create a project in ``folder``: headwater.yaml and, with ``sample_data``, messy sample
    files under ``orders/`` and ``customers/`` with their contracts under ``contracts/``.

    Returns the project's resolved folder. An existing headwater.yaml is kept when
    ``exist_ok``; otherwise a non-empty folder is an error.
    """
    root = Path(folder).resolve()
    if root.exists() and any(root.iterdir()) and not exist_ok:
        raise ConfigError(f"{root} is not empty",
                          hint="choose a new folder, or pass --force to write into it")
    root.mkdir(parents=True, exist_ok=True)
    project_file = root / PROJECT_FILE
    if sample_data:
        from headwater.ingest import make_messy_samples

        make_messy_samples(root)
    if not project_file.exists():
        pipelines = _PIPELINES if sample_data else "  {}\n"
        project_file.write_text(_YAML.format(name=root.name, pipelines=pipelines),
                                encoding="utf-8")
    (root / ".gitignore").write_text(".headwater/\n", encoding="utf-8")
    return root

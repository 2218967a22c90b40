"""Where data lands: the embedded DuckDB warehouse, PostgreSQL, or a Delta Lake."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DuckDBStoreSpec(_Spec):
    """The embedded warehouse: one DuckDB file."""

    kind: Literal["duckdb"] = "duckdb"
    path: str = Field(".headwater/warehouse.duckdb",
                      description="DuckDB file, relative to the project")


class PostgresStoreSpec(_Spec):
    """A PostgreSQL database used as the warehouse."""

    kind: Literal["postgres"]
    url: SecretStr = Field(
        description="postgresql://user:password@host:5432/db (use ${ENV} for secrets)")
    db_schema: str = Field("public", alias="schema", description="schema the tables live in")


class DeltaStoreSpec(_Spec):
    """A lake of Delta tables on local disk or S3."""

    kind: Literal["delta"]
    uri: str = Field(description="folder or s3://bucket/prefix that holds one Delta table per name")
    storage_options: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="deltalake storage options, e.g. AWS_ENDPOINT_URL, AWS_REGION, "
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; on S3 either AWS_S3_ALLOW_UNSAFE_RENAME: 'true' "
        "(one writer per table) or AWS_S3_LOCKING_PROVIDER: dynamodb",
    )


StoreSpec = Annotated[DuckDBStoreSpec | PostgresStoreSpec | DeltaStoreSpec,
                      Field(discriminator="kind")]

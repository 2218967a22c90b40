"""Source specifications: what a pipeline reads. One class per kind, joined in ``SourceSpec``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FilesSpec(_Spec):
    """Files: a path, a glob or a folder, in any supported format (detected from content)."""

    kind: Literal["files"] = "files"
    path: str | list[str] = Field(
        description="a file, a glob (data/*.csv) or a folder, relative to the project"
    )
    format: Literal["auto", "csv", "tsv", "json", "jsonl", "parquet", "xlsx", "xml"] = Field(
        "auto",
        description="file format; auto detects it from the content (magic bytes, first "
        "character, delimiter), gzip/zstd/bz2/xz compression included",
    )
    encoding: str | None = Field(None, description="text encoding; detected when omitted")
    delimiter: str | None = Field(None, description="CSV field separator; detected when omitted")
    header: bool | None = Field(
        None, description="CSV/TSV/xlsx: the first row names the columns; detected when omitted"
    )
    sheet: str | int | None = Field(None, description="xlsx: sheet name or index (default: first)")
    record_path: str | None = Field(
        None,
        description="XML: element path of one record (e.g. orders/order); "
        "JSON: key of the record list",
    )
    nested: Literal["flatten", "json", "child_tables"] = Field(
        "flatten",
        description="nested JSON objects: flatten to a_b columns, keep as JSON text, "
        "or lists to child tables",
    )
    batch_rows: int = Field(250_000, gt=0, description="rows per batch; bounds memory")


# --- databases, APIs and NoSQL (issue 3) -------------------------------------------------------


class CursorSpec(_Spec):
    """Incremental loading by a column that grows: ``updated_at`` or an increasing id."""

    column: str = Field(description="the cursor column, e.g. updated_at or id")
    lookback: str | int | None = Field(
        None,
        description="re-read this far back from the last cursor so late commits are not lost: "
        "'10m', '2h', '1d' for time cursors, a number for numeric ones (needs mode: merge)",
    )
    initial: str | int | None = Field(
        None, description="load only rows at or after this value on the first run"
    )


class SoftDeleteSpec(_Spec):
    """Rows the source marks as deleted (``deleted_at`` set, ``is_deleted`` true)."""

    column: str = Field(description="the column that marks a deleted row")
    deleted_when: Literal["not_null", "true"] = Field(
        "not_null",
        description="not_null: any value means deleted (deleted_at); true: a boolean flag",
    )


class SqlSpec(_Spec):
    """Tables or a query of a relational database: PostgreSQL, MariaDB/MySQL or SQLite."""

    kind: Literal["sql"] = "sql"
    url: SecretStr = Field(
        description="SQLAlchemy URL, e.g. postgresql://user:${PGPASSWORD}@host/db, "
        "mysql+pymysql://user@host/db, sqlite:///data/app.db (relative to the project)"
    )
    tables: list[str] = Field(
        default_factory=list,
        description="tables to load; empty with no query: every table of `schema`",
    )
    db_schema: str | None = Field(
        None, alias="schema", description="schema (PostgreSQL) or database (MySQL) of the tables"
    )
    query: str | None = Field(
        None, description="a SELECT to load instead of tables; values must be bound, not pasted"
    )
    params: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="named parameters of `query` (:name in the query)"
    )
    cursor: CursorSpec | None = Field(None, description="incremental loading; absent: full loads")
    soft_delete: SoftDeleteSpec | None = Field(
        None, description="a column marking deleted rows; adds hw_deleted to every row"
    )
    cdc: bool = Field(
        False,
        description="PostgreSQL: change data capture through logical decoding (a replication "
        "slot): inserts, updates and deletes all arrive; needs wal_level=logical",
    )
    slot: str | None = Field(None, description="cdc: replication slot name (default: derived)")
    parallel: int = Field(
        1, ge=1, le=32, description="read one large table in this many key ranges at once"
    )
    split_by: str | None = Field(
        None, description="integer column to split parallel reads by (default: the primary key)"
    )
    batch_rows: int = Field(100_000, gt=0, description="rows per batch; bounds memory")

    @model_validator(mode="after")
    def _one_shape(self) -> SqlSpec:
        if self.query and self.tables:
            raise ValueError("give `tables` or `query`, not both")
        if self.cdc and self.query:
            raise ValueError("cdc reads tables, not a query: list them under `tables`")
        if self.cdc and self.cursor:
            raise ValueError("cdc replaces `cursor`: remove one of them")
        return self


class BearerAuthSpec(_Spec):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token: SecretStr = Field(description="the token; use ${ENV}")


class BasicAuthSpec(_Spec):
    """HTTP basic authentication."""

    type: Literal["basic"]
    username: str = Field(description="user name")
    password: SecretStr = Field(description="password; use ${ENV}")


class ApiKeyAuthSpec(_Spec):
    """An API key in a header or a query parameter."""

    type: Literal["api_key"]
    name: str = Field("X-API-Key", description="header or query parameter name")
    value: SecretStr = Field(description="the key; use ${ENV}")
    location: Literal["header", "query"] = Field(
        "header", alias="in", description="header or query"
    )


class OAuth2AuthSpec(_Spec):
    """OAuth2 client credentials; the token is fetched, cached and refreshed before it expires."""

    type: Literal["oauth2"]
    token_url: str = Field(description="the token endpoint")
    client_id: str = Field(description="client id")
    client_secret: SecretStr = Field(description="client secret; use ${ENV}")
    scope: str | None = Field(None, description="space-separated scopes")


AuthSpec = Annotated[BearerAuthSpec | BasicAuthSpec | ApiKeyAuthSpec | OAuth2AuthSpec,
                     Field(discriminator="type")]


class PaginationSpec(_Spec):
    """How to get the next page."""

    type: Literal["none", "page", "offset", "cursor", "link_header", "next_url"] = Field(
        "none",
        description="page: ?page=N; offset: ?offset=N&limit=M; cursor: a token from the body; "
        "link_header: RFC 8288 Link rel=next; next_url: a URL in the body",
    )
    param: str | None = Field(
        None,
        description="query parameter for the page number, offset or cursor "
        "(defaults: page, offset, cursor)",
    )
    start: int = Field(1, description="page: first page number")
    size_param: str | None = Field(None, description="query parameter for the page size (limit)")
    size: int = Field(100, gt=0, description="records per page, sent in size_param")
    path: str | None = Field(
        None,
        description="cursor / next_url: dotted path in the body (meta.next_cursor, links.next)",
    )
    total_path: str | None = Field(
        None, description="dotted path of the total record count; a shortfall is an error"
    )


class IncrementalSpec(_Spec):
    """Ask only for what changed since the last run."""

    param: str = Field(description="query parameter that takes the since value, e.g. updated_since")
    field: str = Field(description="record field whose maximum becomes the next since value")
    initial: str | None = Field(None, description="since value of the first run")
    until_param: str | None = Field(
        None,
        description="query parameter for the end of a window, for `headwater schedule backfill`",
    )


class RateLimitSpec(_Spec):
    """Be a polite client."""

    requests_per_second: float | None = Field(
        None, gt=0, description="a cap on requests per second"
    )
    max_retries: int = Field(
        6, ge=0, description="retries of 429, 5xx, timeouts and dropped connections"
    )
    backoff: float = Field(0.5, ge=0, description="first backoff in seconds; doubles, with jitter")
    max_backoff: float = Field(30.0, gt=0, description="longest single wait in seconds")


class RestSpec(_Spec):
    """A JSON REST API read with httpx: auth, pagination, incremental, retries, rate limits."""

    kind: Literal["rest"] = "rest"
    url: str = Field(description="the endpoint, e.g. https://api.example.com/v1/orders")
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="query parameters"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    body: dict[str, object] | None = Field(None, description="POST: JSON body")
    auth: AuthSpec | None = Field(None, description="bearer, basic, api_key or oauth2")
    records: str | None = Field(
        None,
        description="dotted path of the record list in the body (data.items); "
        "absent: the body itself, or its first list",
    )
    pagination: PaginationSpec = Field(default_factory=PaginationSpec)
    incremental: IncrementalSpec | None = Field(None, description="since-parameter loading")
    rate_limit: RateLimitSpec = Field(default_factory=RateLimitSpec)
    timeout: float = Field(30.0, gt=0, description="seconds per request")
    pages_per_commit: int = Field(
        50, gt=0, description="pages loaded per transaction; a failure resumes from the last one"
    )


class SoapSpec(_Spec):
    """A SOAP operation read with zeep from its WSDL; paged if the service pages."""

    kind: Literal["soap"] = "soap"
    wsdl: str = Field(description="WSDL URL or file (relative to the project)")
    operation: str = Field(description="operation to call, e.g. GetOrders")
    service: str | None = Field(None, description="service name when the WSDL has several")
    port: str | None = Field(None, description="port name when the service has several")
    address: str | None = Field(None, description="endpoint URL overriding the WSDL's")
    args: dict[str, object] = Field(default_factory=dict, description="operation arguments")
    records: str | None = Field(
        None, description="dotted path of the record list in the response (Orders.Order)"
    )
    page_arg: str | None = Field(
        None, description="argument that takes the page number, if it pages"
    )
    page_start: int = Field(1, description="first page number")
    username: str | None = Field(None, description="HTTP basic user")
    password: SecretStr | None = Field(None, description="HTTP basic password; use ${ENV}")
    rate_limit: RateLimitSpec = Field(default_factory=RateLimitSpec)
    timeout: float = Field(30.0, gt=0, description="seconds per request")


class RedisSpec(_Spec):
    """Redis: hashes or JSON string values by key pattern, or a stream read incrementally."""

    kind: Literal["redis"] = "redis"
    url: SecretStr = Field(
        description="redis://[:password@]host:6379/0; use ${ENV} for the password"
    )
    type: Literal["hash", "json", "stream"] = Field(
        description="hash: HGETALL per key; json: JSON text per key; stream: XRANGE entries"
    )
    pattern: str | None = Field(None, description="hash / json: key pattern, e.g. user:*")
    stream: str | None = Field(None, description="stream: the stream key")
    batch_rows: int = Field(10_000, gt=0, description="keys or entries per batch and commit")

    @model_validator(mode="after")
    def _needs_target(self) -> RedisSpec:
        if self.type == "stream" and not self.stream:
            raise ValueError("type stream needs `stream: KEY`")
        if self.type != "stream" and not self.pattern:
            raise ValueError(f"type {self.type} needs `pattern: KEY_PATTERN` (e.g. user:*)")
        return self


class AvroSpec(_Spec):
    """How a stream's Avro payloads are written: the writer schema and the framing."""

    schema_file: str = Field(alias="schema", description="the writer schema (.avsc, JSON), "
                             "relative to the project")
    framing: Literal["confluent", "plain"] = Field(
        "confluent", description="confluent: the Confluent wire format (magic byte 0, a "
        "4-byte schema id, the datum); plain: the datum alone")
    schema_id: int | None = Field(None, ge=0, description="confluent: the registry id of the "
                                  "schema; payloads with another id go to the quarantine")


class StreamSpec(_Spec):
    """A topic of a streaming platform (``brokers:``): each record one JSON object, JSON
    Lines, a CSV row or an Avro datum; loaded in micro-batches, positions committed with the
    rows."""

    kind: Literal["stream"] = "stream"
    broker: str = Field("embedded", description="name of an entry under `brokers:` (the "
                        "embedded log by default)")
    topic: str = Field(description="the topic to read")
    format: Literal["json", "jsonl", "csv", "avro"] = Field(
        "json", description="what a record's value holds: json (one object), jsonl (objects, "
        "one a line), csv (one row, no header) or avro (one datum, see `avro`)")
    avro: AvroSpec | None = Field(None, description="avro: the writer schema and framing")
    group: str | None = Field(None, description="consumer group that is acknowledged after "
                              "each commit (default: headwater-<pipeline>)")
    start: Literal["earliest", "latest"] = Field(
        "earliest", description="where the first run starts; later runs resume after the "
        "positions committed with the rows")
    max_rows: int = Field(200_000, gt=0, description="records per micro-batch (one commit)")
    max_latency: str = Field("1s", description="with --follow: a micro-batch commits after "
                             "this long even if max_rows was not reached (e.g. 500ms, 2s)")
    window: str = Field("1m", description="with --follow: one run record (counts, quality "
                        "report, metrics) per window of this length")
    max_payload_bytes: int = Field(1 << 20, gt=0, description="a larger record goes to the "
                                   "quarantine")
    encoding: str = Field("utf-8", description="text encoding of the payloads: utf-8, or a "
                          "single-byte one (latin-1, cp1252)")
    columns: list[str] = Field(default_factory=list, description="csv: the column names, in "
                               "order (default: the contract's columns)")
    nested: Literal["flatten", "json"] = Field(
        "flatten", description="json/jsonl: nested objects to a_b columns, or kept as JSON text")

    @field_validator("max_latency", "window")
    @classmethod
    def _duration(cls, value: str) -> str:
        from headwater.core import duration_ms

        duration_ms(value)
        return value

    @model_validator(mode="after")
    def _avro_schema(self) -> StreamSpec:
        if self.format == "avro" and self.avro is None:
            raise ValueError("format avro needs `avro: {schema: FILE.avsc}` (the writer schema)")
        return self


SourceSpec = Annotated[
    FilesSpec | SqlSpec | RestSpec | SoapSpec | RedisSpec | StreamSpec,
    Field(discriminator="kind"),
]

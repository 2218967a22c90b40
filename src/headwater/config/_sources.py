"""Source specifications: what a pipeline reads. One class per kind, joined in ``SourceSpec``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FilesSource(_Spec):
    """Files: a path, a glob or a folder, in any supported format (detected from content)."""

    kind: Literal["files"] = "files"
    path: str | list[str] = Field(description="a file, a glob (data/*.csv) or a folder, relative to the project")
    format: Literal["auto", "csv", "tsv", "json", "jsonl", "parquet", "xlsx", "xml"] = "auto"
    encoding: str | None = Field(None, description="text encoding; detected when omitted")
    delimiter: str | None = Field(None, description="CSV field separator; detected when omitted")
    header: bool = True
    sheet: str | int | None = Field(None, description="xlsx: sheet name or index (default: first)")
    record_path: str | None = Field(
        None, description="XML: element path of one record (e.g. orders/order); JSON: key of the record list"
    )
    nested: Literal["flatten", "json", "child_tables"] = Field(
        "flatten", description="nested JSON objects: flatten to a_b columns, keep as JSON text, or lists to child tables"
    )
    batch_rows: int = Field(250_000, gt=0, description="rows per batch; bounds memory")


SourceSpec = Annotated[FilesSource, Field(discriminator="kind")]

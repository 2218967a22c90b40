"""Parquet: record batches as they are stored (natural types), ``_hw_pos`` the record number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from headwater.core import POSITION, Batch, FileFormatError


def read_parquet(path: Path, *, batch_rows: int = 250_000) -> Iterator[Batch]:
    """Yield batches of a Parquet file, ``batch_rows`` rows at most, streamed by row group."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileFormatError(f"{path}: not a readable Parquet file ({exc})",
                              hint="the file may be cut off or still being written: fetch it "
                                   "again") from exc
    try:
        first = 1
        for batch in parquet.iter_batches(batch_size=batch_rows):
            n = batch.num_rows
            positions = pa.array(np.arange(first, first + n, dtype=np.int64))
            table = pa.Table.from_batches([batch]).append_column(POSITION, positions)
            first += n
            yield Batch(table)
        if first == 1:
            schema = parquet.schema_arrow.append(pa.field(POSITION, pa.int64()))
            yield Batch(schema.empty_table())
    finally:
        parquet.close()

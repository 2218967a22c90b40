"""Excel workbooks (.xlsx) through fastexcel (calamine): one sheet, natural types."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from headwater.core import POSITION, Batch, FileFormatError


def read_xlsx(path: Path, *, sheet: str | int | None = None, header: bool | None = None,
              batch_rows: int = 250_000) -> Iterator[Batch]:
    """Yield batches of one sheet (default: the first); ``_hw_pos`` is the 1-based data row.

    Raises ``FileFormatError`` for a corrupt workbook, a missing sheet or an empty sheet.
    """
    import fastexcel

    try:
        workbook = fastexcel.read_excel(path)
    except Exception as exc:  # fastexcel raises its own error types for corrupt files
        raise FileFormatError(f"{path}: not a readable xlsx workbook ({exc})",
                              hint="open it in Excel and save it as .xlsx again") from exc
    names = workbook.sheet_names
    which: str | int = 0 if sheet is None else sheet
    if (isinstance(which, int) and not 0 <= which < len(names)) or \
            (isinstance(which, str) and which not in names):
        raise FileFormatError(f"{path}: no sheet {which!r}; sheets: {', '.join(names)}",
                              hint="set sheet: to one of these names or a 0-based index")
    try:
        loaded = workbook.load_sheet(which, header_row=None if header is False else 0,
                                     schema_sample_rows=None, eager=True)
    except Exception as exc:
        raise FileFormatError(f"{path}: sheet {which!r} cannot be read ({exc})",
                              hint="check the sheet for merged headers or broken cells") from exc
    table = pa.Table.from_batches([loaded]) if isinstance(loaded, pa.RecordBatch) else \
        pa.table(loaded)
    if table.num_columns == 0:
        raise FileFormatError(f"{path}: sheet {which!r} is empty",
                              hint="point sheet: at the sheet that holds the data")
    table = table.rename_columns([_name(n, i) for i, n in enumerate(table.column_names)])
    table = table.append_column(
        POSITION, pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
    if table.num_rows == 0:
        yield Batch(table)
        return
    for lo in range(0, table.num_rows, batch_rows):
        yield Batch(table.slice(lo, batch_rows))


def _name(name: str, index: int) -> str:
    name = str(name).strip()
    return name if name and not name.startswith("__UNNAMED__") else f"column_{index + 1}"

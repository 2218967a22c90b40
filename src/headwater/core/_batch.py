"""The vocabulary every source, sink and pipeline shares.

A **Source** yields **Extracts**. An Extract is one unit that commits atomically at the sink
(a file, a slice of a table, a range of API pages) and carries the **position** to record in
the sink's state once it is loaded. An Extract yields **Batches**: Arrow tables of rows, each row
tagged with where it came from (column ``_hw_pos``), plus the records the source could not even
parse (``rejects``), which go straight to the quarantine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

#: Column that every batch carries: the row's position in its extract (line, record or offset).
POSITION = "_hw_pos"

#: Schema of the rows a source could not parse (wrong number of fields, invalid JSON, ...).
REJECTS_SCHEMA = pa.schema(
    [(POSITION, pa.int64()), ("raw", pa.string()), ("reason", pa.string())]
)

WriteMode = Literal["append", "replace", "merge"]


def rejects_table(positions: Any, raw: Any, reasons: Any) -> pa.Table:
    """Rows a source could not parse, in :data:`REJECTS_SCHEMA`: where each one was, its raw
    text and why (three sequences or arrays of the same length).

    >>> rejects_table([3], ["a,b,"], ["expected 2 fields, found 3"]).num_rows
    1
    """
    return pa.table({POSITION: pa.array(positions, pa.int64()), "raw": pa.array(raw, pa.string()),
                     "reason": pa.array(reasons, pa.string())}, schema=REJECTS_SCHEMA)


@dataclass
class Batch:
    """Rows read from a source, with ``_hw_pos`` on every row, and the rows it could not parse."""

    data: pa.Table
    rejects: pa.Table | None = None
    #: Nested lists split off as child tables: ``suffix -> rows`` (loaded as ``table__suffix``),
    #: each row carrying its parent's ``_hw_pos``.
    children: dict[str, pa.Table] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        """Rows in this batch, parsed or not."""
        return self.data.num_rows + (self.rejects.num_rows if self.rejects is not None else 0)


@dataclass
class Extract:
    """One unit of work that commits atomically at the sink.

    Parameters
    ----------
    source:
        Where the rows come from, for people: a path, a URL, ``schema.table``.
    key:
        The state key, stable across runs (a resolved path, a table name, an endpoint).
    position:
        What to record in the sink's state once this extract is loaded (content hash, cursor
        value, offsets). The next run receives it back through ``State``.
    batches:
        The rows, batch by batch. Iterated once.
    unit:
        What ``_hw_pos`` counts, for messages: ``line``, ``record``, ``row`` or ``offset``.
    nbytes:
        Bytes read from the source, for metrics (0 if unknown).
    acknowledge:
        Called once this extract's rows, quarantine and position have committed at the sink
        (a stream source acknowledges its broker here); never called if the load failed.
    ordered:
        Later extracts of the source start where this one ends (a stream's micro-batches):
        if it fails, the run stops here instead of loading the ones after it, which would
        move the position past its rows.
    """

    source: str
    key: str
    position: dict[str, Any]
    batches: Iterable[Batch]
    unit: str = "record"
    nbytes: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    acknowledge: Callable[[], None] | None = None
    ordered: bool = False


class State(Mapping[str, dict[str, Any]]):
    """Read-only view of the positions a pipeline has committed: ``key -> position``."""

    def __init__(self, positions: Mapping[str, dict[str, Any]] | None = None) -> None:
        self._positions = dict(positions or {})

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self._positions[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)


class Source(ABC):
    """Something rows can be extracted from: files, a database, an API, a stream."""

    #: A short name for logs, metrics and run records (e.g. ``files``, ``postgres``).
    kind: str = "source"

    @abstractmethod
    def extracts(self, state: State) -> Iterator[Extract]:
        """Yield the units still to load, given what the sink already committed."""

    def describe(self) -> str:
        """One line for people: what this source reads."""
        return self.kind

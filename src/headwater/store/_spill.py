"""A bounded buffer of Arrow chunks: in memory up to a limit, spilled to Arrow IPC files beyond.

A lake transaction gathers its writes here and commits them once, at the end, as one stream.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

#: Bytes a transaction keeps in memory before it writes further chunks to local disk.
DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024


class SpillBuffer:
    """Arrow tables appended in order, read back in order as record batches.

    Parameters
    ----------
    memory_limit:
        Bytes held in memory, shared by every buffer of one ``SpillPool``; beyond it, chunks go
        to Arrow IPC files in a temporary folder.

    >>> pool = SpillPool(memory_limit=0)
    >>> buf = pool.buffer()
    >>> buf.append(pa.table({"a": [1, 2]})); buf.append(pa.table({"a": [3]}))
    >>> [b.num_rows for b in buf.batches()]
    [2, 1]
    >>> pool.close()
    """

    def __init__(self, pool: SpillPool) -> None:
        self._pool = pool
        self._chunks: list[pa.Table | Path] = []
        self.schemas: list[pa.Schema] = []
        self.num_rows = 0

    def append(self, data: pa.Table) -> None:
        """Keep ``data`` (in memory, or on disk once the pool's memory is used up)."""
        self.schemas.append(data.schema)
        self.num_rows += data.num_rows
        self._chunks.append(self._pool.keep(data))

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every chunk's batches, in the order they were appended."""
        for chunk in self._chunks:
            if isinstance(chunk, Path):
                with pa.memory_map(str(chunk)) as source:
                    reader = pa.ipc.open_file(source)
                    for i in range(reader.num_record_batches):
                        yield reader.get_batch(i)
            else:
                yield from chunk.to_batches()

    def tables(self) -> Iterator[pa.Table]:
        """Every chunk as a table, in order (one chunk in memory at a time)."""
        for chunk in self._chunks:
            if isinstance(chunk, Path):
                with pa.memory_map(str(chunk)) as source:
                    yield pa.ipc.open_file(source).read_all()
            else:
                yield chunk

    def read_all(self) -> pa.Table:
        """Everything, concatenated (schemas unified by name)."""
        tables = list(self.tables())
        if not tables:
            return pa.table({})
        return pa.concat_tables(tables, promote_options="permissive")


class SpillPool:
    """The memory budget and spill folder shared by one transaction's buffers."""

    def __init__(self, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        self.memory_limit = memory_limit
        self.in_memory = 0
        self._dir: Path | None = None
        self._files = 0

    def buffer(self) -> SpillBuffer:
        """A new, empty buffer drawing on this pool."""
        return SpillBuffer(self)

    def keep(self, data: pa.Table) -> pa.Table | Path:
        """Hold ``data`` in memory if it fits the budget, else write it to an IPC file."""
        if self.in_memory + data.nbytes <= self.memory_limit:
            self.in_memory += data.nbytes
            return data
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="headwater-spill-"))
        self._files += 1
        path = self._dir / f"chunk-{self._files:06d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, data.schema) as writer:
            writer.write_table(data)
        return path

    def close(self) -> None:
        """Delete the spill files."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self.in_memory = 0

"""The bounded transaction buffer."""

from __future__ import annotations

import pyarrow as pa

from headwater.store._spill import SpillPool


def test_chunks_beyond_the_budget_go_to_disk_and_come_back_in_order() -> None:
    pool = SpillPool(memory_limit=pa.table({"a": [1, 2]}).nbytes)
    first, second = pool.buffer(), pool.buffer()
    first.append(pa.table({"a": [1, 2]}))
    second.append(pa.table({"b": ["x"]}))
    first.append(pa.table({"a": [3], "c": [True]}))
    assert pool._dir is not None and len(list(pool._dir.iterdir())) == 2
    assert [b.num_rows for b in first.batches()] == [2, 1]
    assert first.read_all().to_pylist() == [
        {"a": 1, "c": None}, {"a": 2, "c": None}, {"a": 3, "c": True}]
    assert first.num_rows == 3 and len(first.schemas) == 2
    assert second.read_all().to_pylist() == [{"b": "x"}]
    spill_dir = pool._dir
    pool.close()
    assert not spill_dir.exists()


def test_an_empty_buffer_reads_as_an_empty_table() -> None:
    pool = SpillPool()
    assert pool.buffer().read_all().num_rows == 0
    pool.close()

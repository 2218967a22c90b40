"""The Redis source: hashes, JSON values and streams, against the local Redis."""

from __future__ import annotations

import json

import pytest

from headwater.core import SourceError, State
from headwater.ingest._pipeline import ingest
from headwater.ingest.sources import RedisSource
from headwater.store import DuckDBStore

pytestmark = pytest.mark.integration


@pytest.fixture
def r(redis_url, unique_name):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client, unique_name
    for key in client.scan_iter(match=f"{unique_name}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def store(tmp_path):
    s = DuckDBStore(tmp_path / "w.duckdb")
    yield s
    s.close()


def test_hashes_by_pattern(redis_url, r, store):
    client, name = r
    for i in range(25):
        client.hset(f"{name}:user:{i}", mapping={"id": i, "name": f"u{i}", "city": "Oslo"})
    client.set(f"{name}:other", "x")  # not matched
    src = RedisSource(redis_url, type="hash", pattern=f"{name}:user:*", batch_rows=10)
    run = ingest(src, store, table="users", pipeline="p", mode="replace")
    assert run.status == "succeeded", run.error
    assert run.rows_loaded == 25
    rows = store.query("SELECT id, name FROM users ORDER BY id").to_pylist()
    assert rows[3] == {"id": 3, "name": "u3"}


def test_json_values_and_bad_ones_go_to_quarantine(redis_url, r, store):
    client, name = r
    for i in range(5):
        client.set(f"{name}:doc:{i}", json.dumps({"id": i, "tags": ["a"], "geo": {"lat": i}}))
    client.set(f"{name}:doc:bad", "{not json")
    client.set(f"{name}:doc:list", "[1, 2]")
    src = RedisSource(redis_url, type="json", pattern=f"{name}:doc:*")
    run = ingest(src, store, table="docs", pipeline="p", mode="replace")
    assert (run.rows_read, run.rows_loaded, run.rows_quarantined) == (7, 5, 2)
    assert store.query("SELECT geo_lat FROM docs WHERE id = 4").to_pylist() == [{"geo_lat": 4}]
    reasons = store.query("SELECT reasons FROM _hw_quarantine").to_pylist()
    assert any("not JSON" in " ".join(x["reasons"]) for x in reasons)


def test_stream_is_read_incrementally_and_resumes(redis_url, r, store):
    client, name = r
    stream = f"{name}:events"
    for i in range(30):
        client.xadd(stream, {"device": f"d{i % 3}", "value": str(i)})
    src = RedisSource(redis_url, type="stream", stream=stream, batch_rows=8)
    first = ingest(src, store, table="events", pipeline="p")
    assert first.rows_loaded == 30
    assert len(first.report["extracts"]) == 4  # 8 + 8 + 8 + 6, each committed on its own
    for i in range(30, 35):
        client.xadd(stream, {"device": "d9", "value": str(i)})
    second = ingest(src, store, table="events", pipeline="p")
    assert second.rows_loaded == 5
    values = store.query("SELECT value FROM events").to_pylist()
    assert sorted(int(v["value"]) for v in values) == list(range(35))  # each once


def test_a_key_that_is_not_a_stream(redis_url, r):
    client, name = r
    client.set(f"{name}:plain", "x")
    with pytest.raises(SourceError, match="not a stream"):
        list(RedisSource(redis_url, type="stream", stream=f"{name}:plain").extracts(State()))


def test_unreachable_redis_says_so_without_the_password():
    src = RedisSource("redis://:hunter2secret@127.0.0.1:1/0", type="hash", pattern="x*")
    with pytest.raises(SourceError) as err:
        list(src.extracts(State()))
    assert "hunter2secret" not in str(err.value)

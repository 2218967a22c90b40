"""The REST source against a local API that misbehaves on purpose."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from headwater.core import SourceError, State
from headwater.ingest._pipeline import ingest
from headwater.ingest.sources import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    OAuth2Auth,
    Paginator,
    RestSource,
)
from headwater.ingest.sources._http import RetryPolicy
from headwater.store import DuckDBStore

from .cases.flaky_api import FlakyApi, make_records

pytestmark = pytest.mark.integration

FAST = dict(max_retries=6, backoff=0.02, max_backoff=0.2)


@pytest.fixture
def api():
    server = FlakyApi().start()
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path: Path):
    s = DuckDBStore(tmp_path / "w.duckdb")
    yield s
    s.close()


def _source(api: FlakyApi, route: str = "items", **kw) -> RestSource:
    defaults = dict(records="data", pagination=Paginator("page", size_param="per_page", size=10),
                    timeout=0.5, pages_per_commit=3, policy=RetryPolicy(**FAST))
    defaults.update(kw)
    return RestSource(f"{api.url}/{route}", **defaults)


def _ids(store: DuckDBStore, table: str = "items") -> list[int]:
    return [r["id"] for r in store.query(f"SELECT id FROM {table} ORDER BY id").to_pylist()]


def test_every_fault_is_survived_and_every_record_loaded_once(api, store):
    api.fault("page:2", "429", "500", "drop", "malformed")
    api.fault("page:3", "slow")
    api.fault("page:5", "500", "500")
    run = ingest(_source(api), store, table="items", pipeline="p")
    assert run.status == "succeeded", run.error
    assert _ids(store) == list(range(1, 96))
    assert run.rows_quarantined == 0
    retried = [p for p in api.log if "page=2" in p]
    assert len(retried) == 5  # 429, 500, dropped, malformed, then the good one


def test_429_waits_for_retry_after(api, store):
    api.retry_after = 0.6
    api.fault("page:1", "429")
    start = time.perf_counter()
    run = ingest(_source(api, pagination=Paginator("none")), store, table="items", pipeline="p")
    assert run.status == "succeeded"
    assert time.perf_counter() - start >= 0.6


@pytest.mark.parametrize(("route", "records", "pager"), [
    ("offset", "items", Paginator("offset", param="offset", size_param="limit", size=10)),
    ("cursor", "results", Paginator("cursor", param="cursor", path="next_cursor",
                                    size_param="limit", size=10)),
    ("link", None, Paginator("link_header", size_param="per_page", size=10)),
    ("next", "records", Paginator("next_url", path="links.next", size_param="per_page",
                                  size=10)),
])
def test_each_pagination_style(api, store, route, records, pager):
    api.fault(f"{route}:{ {'offset': 20, 'cursor': 20, 'link': 3, 'next': 3}[route] }", "500",
              "drop")
    run = ingest(_source(api, route, records=records, pagination=pager), store, table="items",
                 pipeline="p")
    assert run.status == "succeeded", run.error
    assert _ids(store) == list(range(1, 96))


def test_duplicate_page_is_retried_not_loaded_twice(api, store):
    api.fault("page:3", "duplicate")
    run = ingest(_source(api), store, table="items", pipeline="p")
    assert run.status == "succeeded"
    assert _ids(store) == list(range(1, 96))


def test_page_malformed_every_time_goes_to_quarantine(api, store):
    api.fault("page:4", *["malformed"] * 10)
    src = _source(api, policy=RetryPolicy(max_retries=2, backoff=0.01, max_backoff=0.05))
    run = ingest(src, store, table="items", pipeline="p")
    assert run.rows_quarantined == 1  # the page's body, kept whole
    assert _ids(store) == [i for i in range(1, 96) if not 31 <= i <= 40]
    raw = store.query("SELECT raw FROM _hw_quarantine").to_pylist()[0]["raw"]
    assert "item 31" in raw


def test_missing_page_fails_the_run_and_the_next_run_completes(api, store):
    api.fault("page:6", "empty")  # an empty page mid-way: looks like the end
    src = _source(api, total_path="meta.total", since_param="since", since_field="updated_at",
                  pages_per_commit=2)
    with pytest.raises(SourceError, match="went missing"):
        ingest(src, store, table="items", pipeline="p")
    assert _ids(store) == list(range(1, 41))  # pages 1-4 committed
    second = ingest(src, store, table="items", pipeline="p")
    assert second.status == "succeeded", second.error
    assert _ids(store) == list(range(1, 96))
    assert any("page=5" in p for p in api.log[-7:])  # resumed at page 5, not page 1


def test_404_mid_way_resumes_from_last_commit(api, store):
    api.fault("page:7", "404")
    src = _source(api, pages_per_commit=2)
    with pytest.raises(SourceError, match="HTTP 404"):
        ingest(src, store, table="items", pipeline="p")
    assert _ids(store) == list(range(1, 61))  # pages 1-6 committed
    second = ingest(src, store, table="items", pipeline="p")
    assert second.status == "succeeded"
    assert _ids(store) == list(range(1, 96))


def test_cursor_pages_unreadable_stop_with_a_clear_error(api, store):
    api.fault("cursor:30", *["malformed"] * 10)
    src = _source(api, "cursor", records="results",
                  pagination=Paginator("cursor", param="cursor", path="next_cursor",
                                       size_param="limit", size=10),
                  policy=RetryPolicy(max_retries=1, backoff=0.01), pages_per_commit=1)
    with pytest.raises(SourceError, match="next page cannot be found"):
        ingest(src, store, table="items", pipeline="p")
    assert _ids(store) == list(range(1, 31))
    api.faults.clear()  # the API is fixed
    again = ingest(src, store, table="items", pipeline="p")
    assert again.status == "succeeded"
    assert _ids(store) == list(range(1, 96))


def test_incremental_since_loads_only_changes(api, store):
    src = _source(api, since_param="since", since_field="updated_at")
    assert ingest(src, store, table="items", pipeline="p").rows_loaded == 95
    api.records = api.records + make_records(5, start=96)
    second = ingest(src, store, table="items", pipeline="p")
    assert second.rows_loaded == 5
    assert any("since=2026-01-01T01%3A35%3A00Z" in p for p in api.log)
    assert _ids(store) == list(range(1, 101))


def test_auth_bearer_basic_api_key(api, store):
    api.tokens["static-token-1"] = time.time() + 3600
    for route, auth in [("secure", BearerAuth("static-token-1")),
                        ("basic", BasicAuth("ann", "pw-basic-123")),
                        ("apikey", ApiKeyAuth("api_key", "key-abc-123", "query")),
                        ("apikey", ApiKeyAuth("X-API-Key", "key-abc-123", "header"))]:
        src = _source(api, route, auth=auth)
        [extract, *_] = list(src.extracts(State()))
        assert extract.batches[0].data.num_rows == 30, route


def test_bad_credentials_fail_at_once_with_a_hint(api):
    src = _source(api, "basic", auth=BasicAuth("ann", "wrong"))
    with pytest.raises(SourceError) as err:
        list(src.extracts(State()))
    assert "HTTP 401" in err.value.message
    assert "credentials" in (err.value.hint or "")


def test_oauth2_token_is_fetched_and_refreshed(api, store):
    api.token_ttl = 0.3  # expires quickly: the source must fetch a new one
    auth = OAuth2Auth(f"{api.url}/token", "client", "s3cret-client")
    src = _source(api, "secure", auth=auth, pages_per_commit=1)
    api.fault("page:5", "slow")
    api.slow_s = 0.4
    run = ingest(src, store, table="items", pipeline="p")
    assert run.status == "succeeded", run.error
    assert _ids(store) == list(range(1, 96))
    assert api.log.count("token") >= 2


def test_requests_per_second_cap(api):
    src = _source(api, policy=RetryPolicy(requests_per_second=20, **FAST))
    start = time.perf_counter()
    rows = sum(b.data.num_rows for e in src.extracts(State()) for b in e.batches)
    assert rows == 95
    assert time.perf_counter() - start >= 0.45  # 10 requests at 20/s


def test_records_that_are_not_objects_are_rejected_with_a_reason(api, store):
    src = _source(api, "mixed", records=None, pagination=Paginator("none"))
    run = ingest(src, store, table="mixed", pipeline="p")
    assert run.rows_read == 4
    assert run.rows_quarantined >= 1
    reasons = store.query("SELECT reasons FROM _hw_quarantine").to_pylist()
    assert any("not a JSON object" in " ".join(r["reasons"]) for r in reasons)


def test_kill_9_mid_run_then_resume_loads_everything_once(api, tmp_path):
    api.records = make_records(200)
    for page in range(1, 21):
        api.fault(f"page:{page}", "slow")
    api.slow_s = 0.15
    warehouse = tmp_path / "w.duckdb"
    script = textwrap.dedent(f"""
        import sys
        from headwater.ingest._pipeline import ingest
        from headwater.ingest.sources import Paginator, RestSource
        from headwater.store import DuckDBStore
        src = RestSource("{api.url}/items", records="data", timeout=5, pages_per_commit=2,
                         pagination=Paginator("page", size_param="per_page", size=10))
        ingest(src, DuckDBStore(sys.argv[1]), table="items", pipeline="p")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(warehouse)],
                            env={**os.environ, "PYTHONPATH": "src"})
    deadline = time.time() + 30
    while time.time() < deadline and sum("page=" in p for p in api.log) < 9:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    served_before = sum("page=" in p for p in api.log)
    assert served_before < 21, "the process finished before it was killed"
    store = DuckDBStore(warehouse)
    try:
        loaded_before = len(_ids(store)) if "items" in store.tables() else 0
        assert loaded_before % 20 == 0 and loaded_before < 200  # whole commits only
        run = ingest(RestSource(f"{api.url}/items", records="data", timeout=5,
                                pages_per_commit=2, pagination=Paginator(
                                    "page", size_param="per_page", size=10)),
                     store, table="items", pipeline="p")
        assert run.status == "succeeded"
        assert _ids(store) == list(range(1, 201))  # nothing lost, nothing twice
        assert run.rows_loaded == 200 - loaded_before
    finally:
        store.close()


def test_the_next_pages_are_fetched_while_the_last_ones_load(api):
    source = _source(api, pages_per_commit=2)
    groups = source.extracts(State())
    first = next(groups)  # the pipeline now loads this group of pages 1-2 ...
    deadline = time.monotonic() + 5
    while len(api.log) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(api.log) >= 4  # ... while pages 3-4 have already been asked for
    assert first.batches[0].data.num_rows == 20
    assert sum(g.batches[0].data.num_rows for g in groups) == 75

"""The SOAP source (zeep) against a local service that misbehaves on purpose."""

from __future__ import annotations

from decimal import Decimal

import pytest

from headwater.core import SourceError, State
from headwater.ingest._pipeline import ingest
from headwater.ingest.sources import SoapSource
from headwater.ingest.sources._http import RetryPolicy
from headwater.store import DuckDBStore

from .cases.soap_server import SoapServer

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_retries=5, backoff=0.02, max_backoff=0.2)


@pytest.fixture
def service():
    s = SoapServer().start()
    yield s
    s.stop()


@pytest.fixture
def store(tmp_path):
    s = DuckDBStore(tmp_path / "w.duckdb")
    yield s
    s.close()


def _source(service: SoapServer, **kw) -> SoapSource:
    return SoapSource(f"{service.url}?wsdl", "GetOrders", args={"pageSize": 10},
                      records="Orders.Order", page_arg="page", policy=kw.pop("policy", FAST),
                      timeout=kw.pop("timeout", 0.8), **kw)


def test_pages_flattened_despite_faults(service, store):
    service.fault(2, "500", "429", "drop", "malformed")
    service.fault(3, "slow")
    run = ingest(_source(service), store, table="orders", pipeline="p")
    assert run.status == "succeeded", run.error
    assert run.rows_loaded == 45
    row = store.query("SELECT * FROM orders WHERE id = 7").to_pylist()[0]
    assert row["customer"] == "c&3" and row["address_city"] == "City 1"
    assert Decimal(str(row["total"])) == Decimal("7.50")
    ids = store.query("SELECT count(DISTINCT id) AS d, count(*) AS n FROM orders").to_pylist()
    assert ids == [{"d": 45, "n": 45}]


def test_wsdl_from_a_file_and_a_missing_operation(service, tmp_path):
    wsdl = tmp_path / "orders.wsdl"
    wsdl.write_text(service.wsdl())
    src = SoapSource(str(wsdl), "GetOrders", args={"pageSize": 50, "page": 1},
                     records="Orders.Order", policy=FAST)
    [extract] = list(src.extracts(State()))
    assert sum(b.data.num_rows for b in extract.batches) == 45
    with pytest.raises(SourceError) as err:
        list(SoapSource(str(wsdl), "GetOrderz", policy=FAST).extracts(State()))
    assert "GetOrders" in (err.value.hint or "")


def test_malformed_every_time_goes_to_quarantine(service, store):
    service.fault(3, *["malformed"] * 10)
    src = _source(service, policy=RetryPolicy(max_retries=1, backoff=0.01))
    run = ingest(src, store, table="orders", pipeline="p")
    assert run.rows_quarantined == 1
    assert run.rows_loaded == 35
    raw = store.query("SELECT raw FROM _hw_quarantine").to_pylist()[0]["raw"]
    assert "<Id>21</Id>" in raw


def test_soap_fault_is_a_clear_error_and_the_run_resumes(service, store):
    service.fault(4, "fault")
    with pytest.raises(SourceError, match="page out of range"):
        ingest(_source(service), store, table="orders", pipeline="p")
    assert store.query("SELECT count(*) AS n FROM orders").to_pylist() == [{"n": 30}]
    again = ingest(_source(service), store, table="orders", pipeline="p")
    assert again.rows_loaded == 15
    assert service.calls[-3:] == [4, 5, 6]  # resumed at page 4; page 6 is empty: the end

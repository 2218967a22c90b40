"""POST /predict on a registered churn model: single and batch rows, the signature check as a
4xx naming the column, API key, metrics, SageMaker and Azure ML routes, hot reload, A/B."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient

from headwater.serve import ServeSettings, build

KEY = "test-key-0123456789"


@pytest.fixture(scope="module")
def client(churn_registry):
    _, tracker, _, _ = churn_registry
    settings = ServeSettings("churn@challenger", api_key=KEY, sagemaker=True, azureml=True,
                             reload_s=0)
    server, app = build(settings, tracker=tracker)
    with TestClient(app, headers={"X-API-Key": KEY}) as c:
        c.server = server
        yield c


def rows(customers, n):
    return json.loads(customers.head(n).to_json(orient="records"))


def test_single_row_and_batch(client, churn_registry) -> None:
    _, _, customers, _ = churn_registry
    one = client.post("/predict", json=rows(customers, 1)[0])
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model"] == "churn" and body["version"] == 1 and body["variant"] == "a"
    [p] = body["predictions"]
    assert 0 <= p["probability"] <= 1 and p["prediction"] == (p["probability"] >= 0.5)
    assert p["label"] in {"Yes", "not Yes"} and p["customerID"] == customers.iloc[0]["customerID"]
    many = client.post("/predict", json={"rows": rows(customers, 7)})
    assert many.status_code == 200 and len(many.json()["predictions"]) == 7
    split = client.post("/predict", json={"dataframe_split": {
        "columns": list(customers.columns), "data": customers.head(2).values.tolist()}})
    assert split.status_code == 200 and len(split.json()["predictions"]) == 2


def test_concurrent_requests_are_batched_and_answered_each(client, churn_registry) -> None:
    _, _, customers, _ = churn_registry
    server = client.server
    batch = rows(customers, 12)

    async def many():
        return await asyncio.gather(*(server.predict([r]) for r in batch))

    out = client.portal.call(many)
    alone = client.post("/predict", json={"rows": batch}).json()["predictions"]
    assert [o[1]["predictions"][0]["probability"] for o in out] == pytest.approx(
        [a["probability"] for a in alone])


def test_signature_errors_name_the_column(client, churn_registry) -> None:
    _, _, customers, _ = churn_registry
    row = rows(customers, 1)[0]
    missing = {k: v for k, v in row.items() if k != "tenure"}
    r = client.post("/predict", json=missing)
    assert r.status_code == 422 and "missing column(s): tenure" in r.json()["error"]
    wrong = {**row, "MonthlyCharges": "cheap"}
    r = client.post("/predict", json={"rows": [row, wrong]})
    assert r.status_code == 422 and "MonthlyCharges" in r.json()["error"]
    assert client.post("/predict", content=b"{nope").status_code == 422
    assert client.post("/predict", json=[]).status_code == 422
    assert client.post("/predict", json=[1, 2]).json()["error"].startswith("body[0]")


def test_a_bad_request_does_not_fail_its_batch_neighbours(client, churn_registry) -> None:
    _, _, customers, _ = churn_registry
    server = client.server
    good, bad = rows(customers, 2)
    bad = {**bad, "tenure": "long"}

    async def both():
        return await asyncio.gather(server.predict([good]), server.predict([bad]),
                                    return_exceptions=True)

    ok, failed = client.portal.call(both)
    assert ok[1]["predictions"][0]["probability"] >= 0
    assert "tenure" in str(failed)


def test_api_key_is_required(client, churn_registry) -> None:
    _, _, customers, _ = churn_registry
    anon = TestClient(client.app)
    r = anon.post("/predict", json=rows(customers, 1)[0])
    assert r.status_code == 401 and "X-API-Key" in r.json()["hint"]
    assert anon.post("/predict", json=rows(customers, 1)[0],
                     headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert anon.get("/healthz").status_code == 200 and anon.get("/readyz").json()["ready"]
    assert anon.get("/ping").status_code == 200
    assert anon.get("/metrics").status_code == 401


def test_sagemaker_and_azure_routes(client, churn_registry) -> None:
    _, _, customers, _ = churn_registry
    r = client.post("/invocations", json={"instances": rows(customers, 3)})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 3
    r = client.post("/score", json=rows(customers, 2))
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2
    assert client.get("/").json()["variants"]["a"]["kind"] == "classifier"
    assert "/predict" in client.get("/openapi.json").json()["paths"]


def test_metrics_per_version_and_variant(client) -> None:
    text = client.get("/metrics").text
    assert 'headwater_serve_requests_total{model="churn",route="/predict",status="200",' \
           'variant="a",version="1"}' in text
    assert 'headwater_serve_errors_total{kind="client",model="",route="/predict"' in text
    assert "headwater_serve_request_seconds_bucket" in text
    # the one /metrics of every headwater process: the process itself, headwater's registry
    assert "process_resident_memory_bytes" in text and "headwater_errors" in text
    open_metrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.endswith("# EOF\n")
    only = client.get("/metrics", params={"name[]": "headwater_serve_requests_total"}).text
    assert "headwater_serve_requests_total{" in only and "process_" not in only


def test_missing_key_is_a_config_error(churn_registry) -> None:
    from headwater.core import ConfigError

    with pytest.raises(ConfigError, match="HEADWATER_API_KEY"):
        ServeSettings("churn@challenger").check()


def test_hot_reload_and_ab_split(churn_registry, tmp_path) -> None:
    _, tracker, customers, uri = churn_registry
    tracker.register(uri, "churn", alias="champion")  # churn/2 @champion
    settings = ServeSettings("churn@champion", candidate="churn/1", split=0.5, auth=False,
                             reload_s=0, shadow="churn/1")
    server, app = build(settings, tracker=tracker)
    batch = rows(customers, 20)
    with TestClient(app) as c:
        seen = {}
        for row in batch:
            body = c.post("/predict", json=row).json()
            seen[row["customerID"]] = (body["variant"], body["version"])
            again = c.post("/predict", json=row).json()
            assert again["variant"] == body["variant"]  # sticky
        assert {v for v, _ in seen.values()} == {"a", "b"}
        assert {ver for v, ver in seen.values() if v == "b"} == {1}
        v3 = tracker.register(uri, "churn", alias="champion")
        assert c.portal.call(server.reload) == [f"a: churn/2 -> churn/{v3}"]
        a_rows = [r for r in batch if seen[r["customerID"]][0] == "a"]
        assert c.post("/predict", json=a_rows[0]).json()["version"] == v3
        text = c.get("/metrics").text
        assert "headwater_serve_shadow_agreement_count" in text
        assert f'headwater_serve_model_version{{model="churn",variant="a"}} {v3}.0' in text

"""The recommendation routes in one process: read-your-writes, unknown users and items,
filters, clear 4xx, click-through per variant, refresh with new items, the durable log."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from headwater.serve import ServeSettings, build, read_log, topic_for


@pytest.fixture(scope="module")
def client(recommend_registry, tmp_path_factory):
    _, tracker, rec, _ = recommend_registry
    log_dir = tmp_path_factory.mktemp("serve-log")
    settings = ServeSettings("recommend@champion", auth=False, reload_s=0, refresh_s=0,
                             log_dir=log_dir, replica="t")
    server, app = build(settings, tracker=tracker)
    with TestClient(app) as c:
        c.server, c.rec, c.log_dir = server, rec, log_dir
        yield c


def items(body):
    return [i["item_id"] for i in body["items"]]


def test_known_user_gets_unseen_items(client) -> None:
    user = client.rec.users[0]
    body = client.get(f"/recommendations/{user}", params={"k": 5}).json()
    assert len(body["items"]) == 5 and body["personalised"] and body["variant"] == "a"
    assert not set(items(body)) & set(client.rec.history(user))
    assert body["model"] == "recommend" and body["version"] == 1


def test_unknown_user_gets_popular_items(client) -> None:
    body = client.get("/recommendations/nobody-knows-me?k=4").json()
    assert items(body) == [i for i, _ in client.rec.popular(4)]
    assert body["personalised"] is False


def test_an_interaction_changes_the_very_next_answer(client) -> None:
    user = "fresh-user-1"
    before = items(client.get(f"/recommendations/{user}?k=10").json())
    liked = before[0]
    r = client.post("/interactions", json={"user_id": user, "item_id": liked,
                                           "event": "purchase"})
    assert r.status_code == 200 and r.json()["accepted"] == 1
    after = client.get(f"/recommendations/{user}?k=10").json()
    assert liked not in items(after) and after["personalised"]
    assert items(after) != before[1:]  # personalised, not just the popular list minus one
    # similar items rise: the model's neighbours of the liked item lead the list
    neighbours = [i for i, _ in client.rec.recommend({liked: 8.0}, k=3)]
    assert items(after)[:3] == neighbours


def test_batches_and_filters(client) -> None:
    user = "fresh-user-2"
    batch = [{"user_id": user, "item_id": i, "event": "view"} for i in client.rec.items[:3]]
    r = client.post("/interactions", json={"interactions": batch})
    assert r.json()["accepted"] == 3
    assert client.post("/interactions", json=batch[:2]).json()["accepted"] == 2
    skip = f"{client.rec.items[5]},{client.rec.items[6]}"
    body = client.get(f"/recommendations/{user}", params={"k": 5, "exclude": skip}).json()
    got = set(items(body))
    assert not got & set(client.rec.items[:3]) and not got & set(client.rec.items[5:7])
    category = client.rec.category(client.rec.items[10])
    body = client.get(f"/recommendations/{user}", params={"k": 3, "category": category}).json()
    assert body["items"] and {client.rec.category(i) for i in items(body)} == {category}


def test_bad_requests_name_the_field(client) -> None:
    r = client.post("/interactions", json={"user_id": "u1"})
    assert r.status_code == 422 and "item_id" in r.json()["error"]
    r = client.post("/interactions", json={"user_id": "u1", "item_id": "i1", "event": "zap"})
    assert r.status_code == 422 and "event 'zap'" in r.json()["error"]
    r = client.get("/recommendations/u1?k=0")
    assert r.status_code == 422 and r.json()["fields"] == ["query.k"]


def test_similar_items_known_and_unknown(client) -> None:
    item = client.rec.items[0]
    body = client.get(f"/similar/{item}?k=4").json()
    assert body["known"] and len(body["items"]) == 4 and item not in items(body)
    body = client.get("/similar/never-seen?k=3").json()
    assert body["known"] is False and len(body["items"]) == 3


def test_click_through_is_counted_per_variant(client) -> None:
    user = client.rec.users[1]
    shown = items(client.get(f"/recommendations/{user}?k=5").json())
    r = client.post("/interactions", json={"user_id": user, "item_id": shown[2],
                                           "event": "click"})
    assert r.json()["followed_recommendations"] == 1
    text = client.get("/metrics").text
    assert 'headwater_serve_recommendations_followed_total{event="click",model="recommend",' \
           'variant="a",version="1"} 1.0' in text
    assert 'headwater_serve_recommendations_shown_total{model="recommend",variant="a",' \
           'version="1"}' in text


def test_refresh_brings_new_items_in(client) -> None:
    new = "brand-new-item"
    known = client.rec.items[:2]
    for n in range(4):
        client.post("/interactions", json=[
            {"user_id": f"refresh-{n}", "item_id": new, "event": "click"},
            {"user_id": f"refresh-{n}", "item_id": known[n % 2], "event": "click"}])
    assert client.get(f"/similar/{new}").json()["known"] is False
    counts = client.portal.call(client.server.refresh)
    assert counts["a"] > 0
    assert client.get(f"/similar/{new}").json()["known"] is True
    # after the refresh a user's interactions are not counted twice
    served = client.server.variants["a"].served
    history = client.portal.call(client.server.state.fresh, "refresh-0", served.cursor)
    assert history == {}


def test_every_accepted_interaction_is_in_the_log(client) -> None:
    logged = read_log(client.log_dir, topic_for("t"))
    assert logged.num_rows >= 1 + 5 + 1 + 8
    assert "brand-new-item" in logged.column("item").to_pylist()


def test_the_hot_path_answers_as_the_fastapi_routes_do(client) -> None:
    """The Gate's hot path and the FastAPI routes behind it give the same answers, the same
    errors and the same metrics labels (one server, two edges)."""
    from headwater.serve._app import Gate

    gate = client.app
    plain = Gate(gate.app, server=client.server, api_key=None, hot=False)
    assert gate.hot and not plain.hot
    user, items_ = client.rec.users[2], client.rec.items
    slow = TestClient(plain)  # no lifespan: the server is started and stopped by `client`
    for path in (f"/recommendations/{user}?k=7",
                 f"/recommendations/{user}?k=5&exclude={items_[0]},{items_[1]}"
                 f"&exclude={items_[2]}",
                 f"/recommendations/{user}?k=3&category={client.rec.category(items_[4])}",
                 "/recommendations/nobody?k=2",
                 "/recommendations/u1?k=0", "/recommendations/u1?k=x",
                 f"/recommendations/{'u' * 201}", "/recommendations/a/b"):
        fast_r, slow_r = client.get(path), slow.get(path)
        assert (fast_r.status_code, fast_r.json()) == (slow_r.status_code, slow_r.json()), \
            path
    for body in ({"user_id": "u1"}, {"user_id": "u1", "item_id": "i1", "event": "zap"},
                 {"interactions": []}, [], b"{nope"):
        kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
        fast_r = client.post("/interactions", **kwargs)
        slow_r = slow.post("/interactions", **kwargs)
        assert (fast_r.status_code, fast_r.json()) == (slow_r.status_code, slow_r.json()), \
            body
    ok = {"user_id": "hot-path-user", "item_id": items_[3], "event": "click"}
    assert client.post("/interactions", json=ok).json() == \
        slow.post("/interactions", json=ok).json()
    text = client.get("/metrics").text
    assert 'route="/recommendations/{user_id}"' in text and 'route="/interactions"' in text


def test_the_next_training_reads_what_was_served(client, tmp_path) -> None:
    """``load_interactions`` (``recommend train --data``) takes the server's log folder, alone
    or with the training data, decoding every replica's topic."""
    from headwater.ml.recommend import load_interactions, log_topics

    client.post("/interactions", json={"user_id": "log-reader", "item_id": "log-item",
                                       "event": "purchase", "value": 2.5})
    assert log_topics(client.log_dir) == [topic_for("t")]
    served = load_interactions(client.log_dir)
    frame = served.frame
    assert served.source == str(client.log_dir)
    assert len(frame) == read_log(client.log_dir, topic_for("t")).num_rows
    row = frame[frame["user"] == "log-reader"].iloc[0]
    assert (row["item"], row["event"], row["value"]) == ("log-item", "purchase", 2.5)
    training = tmp_path / "events.csv"
    training.write_text("user_id,item_id,event,timestamp\nu-x,i-1,view,1\nu-y,i-2,click,2\n")
    both = load_interactions([training, client.log_dir])
    assert len(both) == len(frame) + 2 and both.source == f"{training} + {client.log_dir}"
    assert {"u-x", "log-reader"} <= set(both.frame["user"])

"""Two ``headwater serve`` processes sharing Redis: each sees the other's interactions at once;
a replica killed with SIGKILL has every interaction it acknowledged in its durable log."""

from __future__ import annotations

import signal
import uuid

import httpx
import pytest

from headwater.serve import read_log, topic_for

from .conftest import serving


@pytest.mark.slow
def test_two_replicas_share_interactions_and_lose_none(recommend_registry, redis_url) -> None:
    project, _, rec, _ = recommend_registry
    prefix = f"hw-test-{uuid.uuid4().hex[:8]}"
    common = ("recommend@champion", "--no-auth", "--redis", redis_url,
              "--key-prefix", prefix, "--reload-every", "0", "--refresh-every", "0")
    with serving(project.root, *common, "--replica", "a") as (a, proc_a), \
            serving(project.root, *common, "--replica", "b") as (b, _):
        user = f"user-{uuid.uuid4().hex[:6]}"
        first = [i["item_id"] for i in httpx.get(f"{b}/recommendations/{user}").json()["items"]]
        r = httpx.post(f"{a}/interactions", json={"user_id": user, "item_id": first[0],
                                                 "event": "purchase"})
        assert r.status_code == 200
        seen_by_b = httpx.get(f"{b}/recommendations/{user}").json()
        assert seen_by_b["personalised"] and first[0] not in [i["item_id"]
                                                             for i in seen_by_b["items"]]
        r = httpx.post(f"{b}/interactions", json=[{"user_id": user, "item_id": i,
                                                   "event": "view"} for i in first[1:3]])
        seen_by_a = [i["item_id"] for i in httpx.get(f"{a}/recommendations/{user}?k=20")
                     .json()["items"]]
        assert not set(first[:3]) & set(seen_by_a)
        assert httpx.get(f"{a}/readyz").json()["state"] == "ok"
        acknowledged = []
        for n in range(30):
            item = rec.items[n % len(rec.items)]
            r = httpx.post(f"{a}/interactions", json={"user_id": f"crash-{n}", "item_id": item})
            assert r.status_code == 200
            acknowledged.append(f"crash-{n}")
        proc_a.send_signal(signal.SIGKILL)
        proc_a.wait(timeout=10)
    logged = read_log(project.state_dir / "serve", topic_for("a")).column("user").to_pylist()
    assert set(acknowledged) <= set(logged) and user in logged

"""Quickstart step: the model server — recommendations that react to a user's clicks at once,
and customers scored through the churn model's endpoint."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from headwater.config import load_project


def _recommender(tracker: object, console: Console) -> str:
    """``recommend@champion``, trained here on synthetic events if the registry has none."""
    from headwater.core import NotFoundError

    try:
        tracker.resolve("recommend@champion")  # type: ignore[attr-defined]
        return "recommend@champion"
    except NotFoundError:
        pass
    from headwater.ml.datasets import make_events
    from headwater.ml.recommend import Interactions, train_recommender

    with console.status("training a recommender (EASE) on 12,000 synthetic shop events"):
        events = make_events(600, 200, 12_000, seed=5)
        train_recommender(Interactions.from_frame(events), models=["ease"], trials=1,
                          time_budget_s=5, tracker=tracker, alias="champion")
    return "recommend@champion"


def _items(body: dict) -> str:
    return ", ".join(i["item_id"] for i in body["items"])


def step(root: Path, console: Console) -> None:
    """Serve the recommender, post interactions for a user, show the list change; score
    customers through the churn model's endpoint."""
    import httpx

    from headwater.ml import Tracker
    from headwater.serve import ServeSettings, serving

    project = load_project(root)
    tracker = Tracker.for_project(project)
    ref = _recommender(tracker, console)
    settings = ServeSettings(ref, auth=False, reload_s=0, refresh_s=0,
                             log_dir=project.state_dir / "serve", replica="quickstart")
    with serving(settings, tracker=tracker) as (url, _), httpx.Client(base_url=url) as http:
        user = "visitor-42"
        before = http.get(f"/recommendations/{user}?k=5").json()
        console.print(f"model server on {url} (docs {url}/docs). A new visitor gets the popular "
                      f"items: {_items(before)}")
        liked = before["items"][0]["item_id"]
        http.post("/interactions", json=[
            {"user_id": user, "item_id": liked, "event": "view"},
            {"user_id": user, "item_id": liked, "event": "add_to_cart"}])
        after = http.get(f"/recommendations/{user}?k=5").json()
        console.print(f"after a view and an add-to-cart of {liked}, the very next answer: "
                      f"{_items(after)} (personalised: {after['personalised']})")
        similar = http.get(f"/similar/{liked}?k=3").json()
        console.print(f"items like {liked}: {_items(similar)}")
    try:
        tracker.resolve("churn@challenger")
    except Exception:
        console.print("no churn model registered: run the churn step to score customers")
        return
    import pandas as pd

    customers = pd.read_csv(root / "churn" / "new_customers.csv", dtype=str).head(5)
    churn = ServeSettings("churn@challenger", auth=False, reload_s=0)
    with serving(churn, tracker=tracker) as (url, _), httpx.Client(base_url=url) as http:
        rows = customers.to_dict(orient="records")
        scored = http.post("/predict", json={"rows": rows}).json()
    table = Table(title=f"POST {url}/predict with 5 customers ({scored['model']} "
                  f"v{scored['version']})")
    for column in ("customerID", "probability", "label"):
        table.add_column(column)
    for p in scored["predictions"]:
        table.add_row(str(p.get("customerID", "")), f"{p['probability']:.3f}", p["label"])
    console.print(table)
    console.print(f"try: HEADWATER_API_KEY=<key> headwater -p {root} serve {ref} "
                  f"(then curl -H 'X-API-Key: <key>' localhost:8000/recommendations/42)")

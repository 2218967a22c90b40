"""Quickstart step: the local deploy target under load — a blue/green switch between two versions
of a churn model that fails no request, then a canary of a faulty third version that its
health gate catches and rolls back.

The faulty version is a real fault: trained on customers without two-year contracts, its
one-hot encoder rejects them, so its server answers 500 for a share of the traffic (its offline
holdout looks fine: it never saw such customers). :func:`register_versions` and :class:`Load`
also serve the integration tests and ``benchmarks/deploy_local.py``.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from headwater.config import load_project

#: The model name the step registers (its own, next to the churn step's).
MODEL = "churn-local"
CONTRACTS = ("month-to-month", "one-year", "two-year")


def _customers(n: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"tenure": rng.integers(0, 72, n).astype("float64"),
                          "charges": rng.uniform(20, 110, n).round(2),
                          "contract": rng.choice(CONTRACTS, n, p=[0.5, 0.3, 0.2])})
    score = (-0.05 * frame.tenure + 0.02 * frame.charges
             - 1.5 * (frame.contract == "two-year") + rng.normal(0, 0.7, n))
    return frame, (score > score.median()).astype(int)


def _fit(frame: Any, y: Any, columns: list[str], unknown: str) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = [c for c in columns if c != "contract"]
    steps = [("numbers", "passthrough", numeric)]
    if "contract" in columns:
        steps.append(("contract", OneHotEncoder(handle_unknown=unknown), ["contract"]))
    return make_pipeline(ColumnTransformer(steps), LogisticRegression(max_iter=500)).fit(
        frame, y)


def register_versions(project: Any, name: str = MODEL) -> dict[str, int]:
    """Register three versions of ``name``: ``good`` (tenure and charges), ``better`` (and the
    contract), and ``faulty`` (trained without two-year contracts; it fails on them). Each is
    tagged with its holdout ROC-AUC; the last one is ``@challenger``."""
    from importlib import metadata

    from sklearn.metrics import roc_auc_score

    from headwater.ml import Tracker

    tracker = Tracker.for_project(project)
    frame, y = _customers(1500, seed=11)
    seen = (frame.contract != "two-year").to_numpy()
    plans = {"good": (["tenure", "charges"], "ignore", None),
             "better": (["tenure", "charges", "contract"], "ignore", None),
             "faulty": (["tenure", "charges", "contract"], "error", seen)}
    pins = [f"{dist}=={metadata.version(dist)}" for dist in
            ("scikit-learn", "numpy", "pandas", "scipy", "cloudpickle")]
    versions = {}
    for label, (columns, unknown, rows) in plans.items():
        keep = rows if rows is not None else slice(None)
        X, target = frame[keep], y[keep]
        n = len(X) * 2 // 3
        model = _fit(X.iloc[:n], target.iloc[:n], columns, unknown)
        auc = roc_auc_score(target.iloc[n:], model.predict_proba(X.iloc[n:])[:, 1])
        with tracker.start_run(name, run_name=f"{name}-{label}"):
            uri = tracker.log_model(model, input_example=X.head(3), predict_fn="predict_proba",
                                    requirements=pins)
        versions[label] = tracker.register(uri, name, alias="challenger",
                                           tags={"holdout_roc_auc": f"{auc:.4f}"})
    return versions


def customers(n: int = 400, seed: int = 12) -> list[dict[str, Any]]:
    """Customers to score (a fifth have two-year contracts)."""
    frame, _ = _customers(n, seed)
    return frame.to_dict(orient="records")


@dataclass
class Load:
    """Steady traffic against ``url`` from a background thread: ``workers`` concurrent
    clients, each sending one customer per request (``POST path``; ``GET path`` sends none),
    every ``pause`` seconds; every answer is
    recorded as (time, status or -1 for a failed connection, seconds, variant)."""

    url: str
    rows: list[dict[str, Any]]
    workers: int = 4
    pause: float = 0.01
    path: str = "/predict"
    method: str = "POST"
    records: list[tuple[float, int, float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    async def _run(self) -> None:
        import httpx

        limits = httpx.Limits(max_connections=self.workers, max_keepalive_connections=self.workers)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=10.0) as http:
            await asyncio.gather(*(self._worker(http, i) for i in range(self.workers)))

    async def _worker(self, http: Any, seed: int) -> None:
        import httpx

        pick = random.Random(seed)
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                answer = await http.request(self.method, self.path, json=pick.choice(
                    self.rows) if self.method == "POST" else None)
                status, variant = answer.status_code, answer.headers.get("x-headwater-variant", "")
            except httpx.HTTPError:
                status, variant = -1, ""
            self.records.append((began, status, time.monotonic() - began, variant))
            await asyncio.sleep(self.pause)

    def window(self, start: float = 0.0, end: float = float("inf")) -> dict[str, Any]:
        """Requests sent in [start, end): how many, how many failed (not 200), the p99 (ms)."""
        import numpy as np

        taken = [r for r in list(self.records) if start <= r[0] < end]
        latencies = [r[2] for r in taken]
        return {"sent": len(taken), "failed": sum(r[1] != 200 for r in taken),
                "p99_ms": float(np.percentile(latencies, 99)) * 1000 if latencies else 0.0,
                "by_variant": {v: sum(r[3] == v for r in taken) for v in {r[3] for r in taken}}}

    def first(self, predicate: Any) -> float | None:
        """When the first answer matching ``predicate(record)`` was sent, or None."""
        return next((r[0] for r in list(self.records) if predicate(r)), None)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_SECTION = """
deploy:                           # added by the quickstart's deploy step
  model: {model}
  gate: {{metric: holdout_roc_auc, min_improvement: -0.05}}
  strategy: {{kind: blue_green, bake: 2s, poll: 200ms}}
  health: {{max_error_rate: 0.02, max_p99_ms: 500, min_requests: 10}}
  targets:
    local:
      kind: local                 # versions as processes behind a router on this machine
      port: {port}
"""


def step(root: Path, console: Console) -> None:
    """Blue/green between two versions under load, then a faulty canary that rolls back."""
    from headwater.deploy import deploy_model, open_target

    path = root / "headwater.yaml"
    text = path.read_text(encoding="utf-8")
    if "\ndeploy:" not in text:
        path.write_text(text + _SECTION.format(model=MODEL, port=free_port()), encoding="utf-8")
    project = load_project(root)
    with console.status("training three versions of a small churn model"):
        versions = register_versions(project)
    target = open_target(project, "local")
    table = Table(title=f"deploying {MODEL} to the local target ({target.url}) under load",
                  header_style="bold cyan")
    for column in ("step", "strategy", "result", "requests", "failed", "p99 ms", "served by"):
        table.add_column(column, no_wrap=column != "served by")
    reasons = []
    try:
        with console.status(f"version {versions['good']} first (all at once)"):
            deploy_model(project, "local", f"{MODEL}/{versions['good']}", target=target,
                         strategy=project.deploy.strategy.model_copy(
                             update={"kind": "all_at_once", "bake": "0s"}))
        with Load(target.url, customers(), workers=3, pause=0.02) as load:
            for label, kind in (("better", "blue_green"), ("faulty", "canary")):
                began = time.monotonic()
                # blue/green: green first gets a copy of half the requests (its /metrics judge
                # it before it serves); the canary: 30 % of live traffic
                strategy = project.deploy.strategy.model_copy(update={
                    "kind": kind, "canary_percent": 30,
                    "shadow_percent": 50 if kind == "blue_green" else 0})
                with console.status(f"{kind}: version {versions[label]} ({label})"):
                    result = deploy_model(project, "local", f"{MODEL}/{versions[label]}",
                                          target=target, strategy=strategy)
                d, w = result.deployment, load.window(began, time.monotonic())
                served = ", ".join(f"{v} {n}" for v, n in sorted(w["by_variant"].items()))
                table.add_row(f"v{d.previous_version}→v{d.version} {label}", kind,
                              d.status.replace("_", " "), str(w["sent"]), str(w["failed"]),
                              f"{w['p99_ms']:.0f}", served)
                if d.reason:
                    reasons.append(f"v{d.version} {d.status.replace('_', ' ')}: {d.reason}")
        console.print(table)
        for reason in reasons:
            console.print(reason)
        serving = max(target.variants(), key=lambda v: v.weight)
        console.print(f"v{serving.version} serves all traffic on {target.url}; the faulty "
                      "version's 500s were caught by its canary's health gate")
    finally:
        target.stop()
    hw = f"headwater -p {root}"
    console.print(f"try: {hw} deploy history --target local | {hw} deploy run local "
                  f"{MODEL}/{versions['better']} --strategy canary (then {hw} deploy stop local)")

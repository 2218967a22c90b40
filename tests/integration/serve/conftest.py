"""The model server's tests: one registry for the session (a tiny churn model), and a helper
that starts ``headwater serve`` as a user does and stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from headwater.config import load_project
from headwater.ml import Setting, Tracker, get_algorithm, make_dataset
from headwater.ml.datasets import make_churn

HEADWATER = str(Path(sys.executable).with_name("headwater"))


def log_churn(tracker: Tracker, *, rows: int = 400, seed: int = 9) -> str:
    """Fit a logistic regression on synthetic churn data and log it; returns the model URI
    (register it as often as a test needs versions: logging is the slow part)."""
    ds = make_dataset(make_churn(rows, seed=seed).frame, "Churn")
    model = get_algorithm("logreg").pipeline({"C": 1.0}, Setting()).fit(ds.X, ds.y)
    with tracker.start_run("churn", run_name="serve-test"):
        return tracker.log_model(model, input_example=ds.X.head(5), predict_fn="predict_proba",
                                 metadata={"threshold": 0.5, "target": "Churn",
                                           "positive": "Yes",
                                           "columns": dict(model.named_steps["audit"].kinds_)})


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """(project, tracker): one MLflow registry for every serve test."""
    root = tmp_path_factory.mktemp("serve")
    project = load_project(root)
    return project, Tracker.for_project(project)


@pytest.fixture(scope="session")
def churn_registry(registry):
    """(project, tracker, customers frame without the target, model URI) with churn/1
    @challenger."""
    project, tracker = registry
    uri = log_churn(tracker)
    tracker.register(uri, "churn", alias="challenger")
    customers = make_churn(20, seed=3).frame.drop(columns=["Churn"])
    return project, tracker, customers, uri


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(root: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``headwater -p ROOT serve ARGS --port P`` until ``/healthz`` answers; yield the base
    URL and the process; stop it with SIGINT (and kill it if it lingers)."""
    port = free_port()
    full = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.Popen([HEADWATER, "-p", str(root), "serve", *args, "--port", str(port)],
                            env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"headwater serve exited {proc.returncode}: "
                                     f"{proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"headwater serve did not answer within {timeout} s")
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def log_recommender(tracker: Tracker, *, users: int = 80, items: int = 50, views: int = 2000,
                    seed: int = 4) -> tuple[str, object]:
    """Fit EASE on a small synthetic event log and log it; returns (model URI, recommender)."""
    import pandas as pd

    from headwater.ml.datasets import make_events
    from headwater.ml.recommend import Interactions, Recommender
    from headwater.ml.recommend._pyfunc import RecommenderModel

    rec = Recommender.fit(Interactions.from_frame(make_events(users, items, views, seed=seed)),
                          model="ease", params={"l2": 50.0})
    example = pd.DataFrame({"user_id": rec.users[:2], "k": [5, 5]})
    with tracker.start_run("recommend", run_name="serve-test"):
        uri = tracker.log_python_model(RecommenderModel(rec), input_example=example,
                                       metadata={"headwater_kind": "recommender"},
                                       requirements=["headwater"])
    return uri, rec


@pytest.fixture(scope="session")
def recommend_registry(registry):
    """(project, tracker, recommender, URI) with recommend/1 @champion in the registry."""
    project, tracker = registry
    uri, rec = log_recommender(tracker)
    tracker.register(uri, "recommend", alias="champion")
    return project, tracker, rec, uri

"""Classifiers and regressors behind ``POST /predict``: the model's signature check, and
micro-batching so that concurrent requests share one call into the pipeline."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError

if TYPE_CHECKING:
    from headwater.ml import LoadedModel

Rows = list[dict[str, Any]]

#: JSON bodies ``POST /predict`` and ``/invocations`` take: a row, a list of rows, or one of
#: these keys holding rows (MLflow's and SageMaker's conventions included).
ROW_KEYS = ("rows", "instances", "inputs", "dataframe_records")


def parse_rows(body: Any) -> Rows:
    """Rows from a request body; ConfigError naming what is wrong with its shape."""
    if isinstance(body, Mapping):
        for key in ROW_KEYS:
            if key in body:
                return parse_rows(list(body[key]) if isinstance(body[key], Sequence)
                                  and not isinstance(body[key], str) else body[key])
        if "dataframe_split" in body:
            split = body["dataframe_split"]
            if not isinstance(split, Mapping) or "columns" not in split or "data" not in split:
                raise ConfigError("body.dataframe_split needs 'columns' and 'data'",
                                  hint='{"dataframe_split": {"columns": [...], "data": [[...]]}}')
            return [dict(zip(split["columns"], row, strict=False)) for row in split["data"]]
        return [dict(body)]
    if isinstance(body, list) and body:
        bad = [i for i, row in enumerate(body) if not isinstance(row, Mapping)]
        if bad:
            raise ConfigError(f"body[{bad[0]}] is not an object of column: value",
                              hint='send {"rows": [{"column": value, ...}, ...]}')
        return [dict(row) for row in body]
    raise ConfigError("the body holds no rows",
                      hint='send one row {"column": value, ...} or {"rows": [...]}')


class Predictor:
    """A registered classifier or regressor, scoring rows after the signature check.

    ``predict`` is a coroutine: rows of requests that arrive while the model is busy are
    scored together in one call (up to ``batch_max`` rows), in a worker thread.
    """

    kind = "predict"

    def __init__(self, loaded: LoadedModel, *, batch_max: int = 256) -> None:
        self.loaded = loaded
        self.batch_max = batch_max
        self.name = loaded.name or loaded.uri
        self.version = loaded.version
        meta = loaded.metadata
        self.threshold = float(meta.get("threshold", 0.5))
        self.positive = str(meta.get("positive", "1"))
        self.ids = [c for c, k in meta.get("columns", {}).items() if k == "id"]
        self.classifier = hasattr(loaded.model, "predict_proba")
        self._queue: deque[tuple[Rows, asyncio.Future[Rows]]] = deque()
        self._draining = False
        self._task: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        """``name/version``."""
        return self.loaded.label

    def describe(self) -> dict[str, Any]:
        """What ``GET /`` and ``/readyz`` say about this model."""
        return {"name": self.name, "version": self.version, "kind": "classifier"
                if self.classifier else "regressor", "inputs": self.loaded.input_columns}

    def score(self, rows: Rows, *, where: str = "body") -> Rows:
        """Score rows now (signature check first): one result object per row."""
        import numpy as np
        import pandas as pd

        frame = pd.DataFrame.from_records(rows)
        checked = self.loaded.check_input(frame, where=where)
        ids = {c: frame[c].tolist() for c in self.ids if c in frame.columns}
        if self.classifier:
            proba = np.asarray(self.loaded.model.predict_proba(checked))[:, 1].tolist()
            out = [{"probability": p, "prediction": p >= self.threshold,
                    "label": self.positive if p >= self.threshold else f"not {self.positive}"}
                   for p in proba]
        else:
            out = [{"prediction": float(v)}
                   for v in np.asarray(self.loaded.model.predict(checked)).ravel().tolist()]
        for column, values in ids.items():
            for row, value in zip(out, values, strict=True):
                row[column] = value
        return out

    def _score_many(self, requests: list[Rows]) -> list[Rows | Exception]:
        """Score several requests in one call; on a signature error, find whose it is."""
        flat = [row for rows in requests for row in rows]
        try:
            scored = self.score(flat)
        except ConfigError:
            if len(requests) == 1:
                raise
            return [_try(self.score, rows) for rows in requests]
        out: list[Rows | Exception] = []
        start = 0
        for rows in requests:
            out.append(scored[start:start + len(rows)])
            start += len(rows)
        return out

    async def predict(self, rows: Rows) -> Rows:
        """Score ``rows`` together with any other requests waiting; ConfigError on a mismatch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Rows] = loop.create_future()
        self._queue.append((rows, future))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                taken: list[tuple[Rows, asyncio.Future[Rows]]] = []
                count = 0
                while self._queue and (not taken or
                                       count + len(self._queue[0][0]) <= self.batch_max):
                    rows, future = self._queue.popleft()
                    taken.append((rows, future))
                    count += len(rows)
                try:
                    results = await asyncio.to_thread(self._score_many, [r for r, _ in taken])
                except Exception as exc:  # one request alone: its own error
                    results = [exc] * len(taken)
                for (_, future), result in zip(taken, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = False


def _try(fn: Callable[[Rows], Rows], rows: Rows) -> Rows | Exception:
    try:
        return fn(rows)
    except Exception as exc:
        return exc


def load_predictor(ref: str, *, tracker: Any, batch_max: int = 256) -> Predictor:
    """Load ``ref`` from the tracker's registry as a :class:`Predictor`."""
    return Predictor(tracker.load(ref), batch_max=batch_max)

"""The model server's runtime, apart from HTTP: the variants it serves (A/B, shadow), their
hot reload when a registry alias moves, the online state, the interaction log, and the
periodic refresh that brings new items and users into a recommender.

    server = Server(ServeSettings("recommend@champion", auth=False), tracker=tracker)
    server.load()                      # models from the registry (blocking)
    app = create_app(server)           # the FastAPI app (headwater.serve.create_app)
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from headwater.core import ConfigError
from headwater.monitor import get_logger
from headwater.serve._log import InteractionLog, topic_for
from headwater.serve._metrics import ServerMetrics
from headwater.serve._predictor import Predictor, Rows, load_predictor
from headwater.serve._settings import ServeSettings
from headwater.serve._state import START, Cursor, Interaction, State, open_state

log = get_logger(__name__)

#: ``headwater_kind`` of registered recommenders (headwater.ml.recommend).
RECOMMENDER = "recommender"
#: Answers kept for repeated requests (the cache is emptied when full and on every swap).
ANSWERS = 100_000


@dataclass(frozen=True)
class Recommending:
    """A recommender and the log cursor it has been refreshed up to (swapped as a whole)."""

    recommender: Any
    cursor: Cursor
    name: str
    version: int | None

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"

    def describe(self) -> dict[str, Any]:
        rec = self.recommender
        return {"name": self.name, "version": self.version, "kind": "recommender",
                "algorithm": getattr(rec, "name", None), "items": len(rec.items),
                "users": len(rec.users)}


Served = Predictor | Recommending


@dataclass
class Variant:
    """One model the server answers with: ``a`` (the model), ``b`` (the A/B candidate) or
    ``shadow`` (scored, never served)."""

    name: str
    ref: str
    served: Served
    labels: tuple[str, str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.relabel()

    def relabel(self) -> None:
        self.labels = (self.served.name, str(self.served.version), self.name)


def model_kind(ref: str, tracker: Any) -> str:
    """``recommender`` or ``predict`` for a registry reference (from its metadata)."""
    from headwater.ml import model_info

    tracker._mlflow()
    uri, _, _ = tracker.resolve(ref)
    kind = dict(model_info(uri).metadata or {}).get("headwater_kind")
    return RECOMMENDER if kind == RECOMMENDER else "predict"


def load_served(ref: str, kind: str, tracker: Any, *, batch_max: int = 256) -> Served:
    """Load ``ref`` as the server answers with it."""
    if kind == RECOMMENDER:
        from headwater.ml.recommend import load_recommender

        rec = load_recommender(ref, tracker=tracker)
        meta = rec.metadata
        return Recommending(rec, START, str(meta.get("registered_name") or ref),
                            meta.get("version"))
    return load_predictor(ref, tracker=tracker, batch_max=batch_max)


def bucket(user: str, salt: str = "headwater-ab") -> float:
    """A user's stable place in [0, 1): the same on every replica and every restart."""
    return zlib.crc32(f"{salt}:{user}".encode()) / 2**32


def _merge(base: dict[str, float], fresh: dict[str, float]) -> dict[str, float]:
    if not fresh:
        return base
    out = dict(base)
    for item, weight in fresh.items():
        out[item] = out.get(item, 0.0) + weight
    return out


def _refreshed(recommender: Any, rows: list[dict[str, Any]]) -> Any:
    """A copy of ``recommender`` with ``rows`` folded in (the served one stays untouched)."""
    import pyarrow as pa

    fresh = copy.deepcopy(recommender)
    fresh.refresh(pa.Table.from_pylist(rows))
    return fresh


class Server:
    """Everything a model server does, callable without HTTP (the app is a thin edge).

    ``tracker`` is a :class:`headwater.ml.Tracker` on the registry to load from.
    """

    def __init__(self, settings: ServeSettings, *, tracker: Any) -> None:
        self.settings = settings
        self.tracker = tracker
        self.metrics = ServerMetrics()
        self.kind = ""
        self.variants: dict[str, Variant] = {}
        self.state: State | None = None
        self.log: InteractionLog | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        # (model, user, fresh interactions, k, exclude, category) -> (items, personalised):
        # an interaction changes the key, so the next answer for that user is computed anew
        self._answers: dict[tuple[Any, ...], tuple[list[tuple[str, float]], bool]] = {}
        self.ready = False

    # -- lifecycle -----------------------------------------------------------------------------
    def load(self) -> Server:
        """Load the model, the A/B candidate and the shadow model (blocking)."""
        s = self.settings.check()
        self.kind = model_kind(s.model, self.tracker)
        refs = {"a": s.model, "b": s.candidate, "shadow": s.shadow}
        for name, ref in refs.items():
            if ref is None:
                continue
            kind = self.kind if name == "a" else model_kind(ref, self.tracker)
            if kind != self.kind:
                raise ConfigError(f"{ref} is a {kind} model but {s.model} is a {self.kind} "
                                  "model", hint="A/B and shadow need two models of one kind")
            self.variants[name] = Variant(name, ref, load_served(ref, kind, self.tracker,
                                                                 batch_max=s.batch_max))
            self.metrics.version.labels(self.variants[name].served.name, name).set(
                self.variants[name].served.version or 0)
        log.info("serve_loaded", kind=self.kind,
                 variants={n: v.served.label for n, v in self.variants.items()})
        return self

    async def start(self) -> None:
        """Open the online state and the interaction log; start reload and refresh loops."""
        s = self.settings
        if self.kind == RECOMMENDER:
            self.state = open_state(s.redis_url, prefix=s.key_prefix)
            if s.log_dir is not None:
                self.log = InteractionLog(s.log_dir, topic=topic_for(s.replica),
                                          fsync=s.fsync)
                await asyncio.to_thread(self.log.open)
            if s.refresh_s > 0:
                self._tasks.append(asyncio.create_task(self._every(s.refresh_s, self.refresh)))
        if s.reload_s > 0:
            self._tasks.append(asyncio.create_task(self._every(s.reload_s, self.reload)))
        self.ready = True

    async def stop(self) -> None:
        """Stop the loops, flush the log, close the state."""
        self.ready = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._background, return_exceptions=True)
        if self.log is not None:
            await asyncio.to_thread(self.log.close)
        if self.state is not None:
            await self.state.close()

    async def _every(self, seconds: float, job: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception as exc:  # a failed round is retried next time, never fatal
                log.error("serve_background_failed", job=job.__name__, error=str(exc))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def readiness(self) -> dict[str, Any]:
        """Whether every model is loaded and the online state answers."""
        state_ok = self.state is None or await self.state.ping()
        return {"ready": self.ready and bool(self.variants) and state_ok,
                "state": "ok" if state_ok else "unreachable",
                "variants": {n: v.served.describe() for n, v in self.variants.items()}}

    # -- hot reload and refresh ----------------------------------------------------------------
    async def reload(self) -> list[str]:
        """Load the new version of every variant whose alias (or latest) moved; the old one
        answers until the new one is ready. Returns what changed (``a: churn/1 -> churn/2``)."""
        changed = []
        for variant in list(self.variants.values()):
            if "/" in variant.ref and not variant.ref.endswith("/latest"):
                continue  # a pinned version never moves
            _, _, version = await asyncio.to_thread(self.tracker.resolve, variant.ref)
            if version == variant.served.version:
                continue
            old = variant.served
            new = await asyncio.to_thread(load_served, variant.ref, self.kind, self.tracker,
                                          batch_max=self.settings.batch_max)
            if isinstance(new, Recommending) and isinstance(old, Recommending):
                new = replace(new, cursor=START)  # fold the whole log in at the next refresh
            variant.served = new
            variant.relabel()
            self._answers.clear()
            self.metrics.reloads.labels(new.name, variant.name).inc()
            self.metrics.version.labels(new.name, variant.name).set(new.version or 0)
            changed.append(f"{variant.name}: {old.label} -> {new.label}")
            log.info("serve_reloaded", variant=variant.name, old=old.label, new=new.label)
        return changed

    async def refresh(self) -> dict[str, int]:
        """Fold interactions logged since each recommender's cursor into a copy of it, then
        swap: new items become recommendable, new users get their history."""
        counts: dict[str, int] = {}
        if self.state is None:
            return counts
        for variant in list(self.variants.values()):
            served = variant.served
            if not isinstance(served, Recommending):
                continue
            rows, cursor = await self.state.since(served.cursor)
            if not rows:
                continue
            fresh = await asyncio.to_thread(_refreshed, served.recommender, rows)
            if variant.served is served:  # not reloaded meanwhile
                variant.served = replace(served, recommender=fresh, cursor=cursor)
                self._answers.clear()
                self.metrics.refreshes.labels(served.name, variant.name).inc()
            counts[variant.name] = len(rows)
        return counts

    # -- routing ----------------------------------------------------------------------------------
    def variant_for(self, key: str | None) -> Variant:
        """The variant a user (or request key) is served by: sticky by ``key``."""
        b = self.variants.get("b")
        if b is None:
            return self.variants["a"]
        place = bucket(key) if key is not None else random.random()
        return b if place < self.settings.split else self.variants["a"]

    # -- recommendations ----------------------------------------------------------------------
    async def recommend(self, user: str, *, k: int = 10, exclude: Collection[str] = (),
                        category: str | None = None) -> tuple[Variant, dict[str, Any]]:
        """The ``k`` best items for ``user`` from their training history plus every
        interaction accepted so far (read-your-writes); popular items for a new user."""
        variant = self.variant_for(user)
        served = variant.served
        assert isinstance(served, Recommending)
        assert self.state is not None
        fresh = await self.state.fresh(user, served.cursor)
        key = (id(served), user, tuple(fresh.items()), k, tuple(exclude), category)
        hit = self._answers.get(key)
        if hit is None:
            history = _merge(served.recommender.history(user), fresh)
            items = served.recommender.recommend(history, k=k, exclude=exclude,
                                                 category=category)
            if len(self._answers) >= ANSWERS:
                self._answers.clear()
            hit = self._answers[key] = (items, bool(history))
        else:
            history = None
        items, personalised = hit
        shown = [item for item, _ in items]
        self._spawn(self.state.shown(user, variant.name, shown))
        self.metrics.shown.labels(*variant.labels).inc()
        shadow = self.variants.get("shadow")
        if shadow is not None and random.random() < self.settings.shadow_sample:
            if history is None:
                history = _merge(served.recommender.history(user), fresh)
            self._spawn(self._shadow_recommend(shadow, history, k, exclude, category, shown))
        return variant, {"user_id": user, "items": [{"item_id": i, "score": s}
                                                    for i, s in items],
                         "personalised": personalised, "model": served.name,
                         "version": served.version, "variant": variant.name}

    async def _shadow_recommend(self, shadow: Variant, history: dict[str, float], k: int,
                                exclude: Collection[str], category: str | None,
                                shown: list[str]) -> None:
        served = shadow.served
        assert isinstance(served, Recommending)
        start = time.perf_counter()
        items = served.recommender.recommend(history, k=k, exclude=exclude, category=category)
        labels = (served.name, str(served.version))
        self.metrics.shadow_latency.labels(*labels).observe(time.perf_counter() - start)
        same = len({i for i, _ in items} & set(shown)) / max(len(shown), 1)
        self.metrics.shadow.labels(*labels).observe(same)

    async def similar(self, item: str, *, k: int = 10) -> tuple[Variant, dict[str, Any]]:
        """Items like ``item``; an item the model does not know yet gets the popular items."""
        from headwater.core import NotFoundError

        variant = self.variants["a"]
        served = variant.served
        assert isinstance(served, Recommending)
        try:
            items, known = served.recommender.similar(item, k=k), True
        except NotFoundError:
            items, known = served.recommender.popular(k=k, exclude=(item,)), False
        return variant, {"item_id": item, "known": known,
                         "items": [{"item_id": i, "score": s} for i, s in items],
                         "model": served.name, "version": served.version}

    def weight(self, row: Interaction) -> float:
        """How much an interaction counts, by the model's event weights."""
        rec = self.variants["a"].served.recommender  # type: ignore[union-attr]
        weights = getattr(rec, "weights", {})
        if weights and row.event not in weights:
            raise ConfigError(f"event '{row.event}' is not one of {', '.join(sorted(weights))}",
                              hint="send one of the event types the model was trained with")
        base = float(weights.get(row.event, 1.0))
        return base * row.value if getattr(rec, "use_values", False) else base

    async def interact(self, rows: list[Interaction]) -> dict[str, Any]:
        """Accept interactions: in the durable log first, then in the online state (the next
        recommendation for the user reflects them); counts click-through per variant."""
        assert self.state is not None
        weights = [self.weight(row) for row in rows]
        records = [row.record() for row in rows]
        if self.log is not None:
            await self.log.append(records)
        await self.state.add(rows, weights)
        users = list({row.user for row in rows})
        last = dict(zip(users, await self.state.last_shown(users), strict=True))
        followed = 0
        for row in rows:
            self.metrics.interactions.labels(row.event).inc()
            seen = last.get(row.user)
            if seen is not None and row.item in seen[1] and seen[0] in self.variants:
                labels = self.variants[seen[0]].labels
                self.metrics.followed.labels(*labels, row.event).inc()
                followed += 1
        return {"accepted": len(rows), "followed_recommendations": followed}

    # -- predictions ----------------------------------------------------------------------------
    async def predict(self, rows: Rows, *, key: str | None = None) -> tuple[Variant,
                                                                          dict[str, Any]]:
        """Score rows with the variant for ``key`` (the first row's id when absent)."""
        first = self.variants["a"].served
        assert isinstance(first, Predictor)
        if key is None and first.ids and first.ids[0] in rows[0]:
            key = str(rows[0][first.ids[0]])
        variant = self.variant_for(key)
        served = variant.served
        assert isinstance(served, Predictor)
        out = await served.predict(rows)
        shadow = self.variants.get("shadow")
        if shadow is not None and random.random() < self.settings.shadow_sample:
            self._spawn(self._shadow_predict(shadow, rows, out))
        return variant, {"model": served.name, "version": served.version,
                         "variant": variant.name, "predictions": out}

    async def _shadow_predict(self, shadow: Variant, rows: Rows, served: Rows) -> None:
        model = shadow.served
        assert isinstance(model, Predictor)
        start = time.perf_counter()
        try:
            out = await model.predict(rows)
        except Exception as exc:
            log.warning("shadow_failed", model=model.label, error=str(exc))
            return
        labels = (model.name, str(model.version))
        self.metrics.shadow_latency.labels(*labels).observe(time.perf_counter() - start)
        same = sum(a["prediction"] == b["prediction"] for a, b in zip(out, served, strict=True))
        self.metrics.shadow.labels(*labels).observe(same / max(len(out), 1))

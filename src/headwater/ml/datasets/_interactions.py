"""Synthetic user-item interactions with latent tastes, popularity skew, sessions and drift.

Each user has a taste vector that drifts over time; each item has a vector, a category (its
strongest latent dimension) and a popularity bias drawn from a heavy-tailed law. A user's
interactions come in phases (the taste moves from phase to phase, so old behaviour predicts
recent behaviour less well) and each phase is cut into sessions of consecutive, similar items a
few minutes apart. Items are drawn without replacement with probability proportional to
``exp(taste · item / temperature + popularity)`` (the Gumbel top-k trick, vectorised over users).

Two shapes:

* :func:`make_ratings` looks like MovieLens-100K's ``u.data`` (943 users, 1,682 items, 100,000
  ratings, at least 20 per user, ratings 1-5 skewed to 4, timestamps over seven months);
  :func:`write_udata` writes it tab-separated without a header, as the real file is.
* :func:`make_events` is an e-commerce event log: every chosen item is viewed, and a funnel of
  click, add-to-cart and purchase follows with a probability that grows with the user's affinity.

This is a stand-in, not the real data: scores measured on it depend on the generator's settings
and are not comparable with published MovieLens figures.

>>> frame = make_ratings(users=50, items=80, ratings=1500, seed=1)
>>> list(frame.columns), len(frame), int(frame.groupby("user").size().min()) >= 10
(['user', 'item', 'rating', 'timestamp'], 1500, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: 1997-09-20 and 1998-04-23, the span of MovieLens-100K's timestamps.
_START, _END = 874_724_710, 893_286_638


@dataclass(frozen=True)
class _World:
    tastes: np.ndarray  # (users, phases, d)
    items: np.ndarray  # (items, d)
    bias: np.ndarray  # (items,)
    category: np.ndarray  # (items,) int


def _world(users: int, items: int, *, dims: int, phases: int, drift: float, skew: float,
           rng: np.random.Generator) -> _World:
    item_vec = rng.normal(size=(items, dims))
    item_vec /= np.linalg.norm(item_vec, axis=1, keepdims=True)
    # each user leans to a few latent dimensions (genres), with a personal mix
    base = rng.normal(size=(users, dims)) * rng.gamma(0.6, 1.0, size=(users, dims))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    steps = rng.normal(size=(users, phases, dims)) * drift
    tastes = base[:, None, :] + np.cumsum(steps, axis=1) - steps[:, :1, :]
    tastes /= np.linalg.norm(tastes, axis=2, keepdims=True)
    bias = rng.normal(size=items) * skew
    return _World(tastes=tastes, items=item_vec, bias=bias - bias.max(),
                  category=np.argmax(item_vec, axis=1))


def _counts(users: int, total: int, minimum: int, cap: int,
            rng: np.random.Generator) -> np.ndarray:
    """Per-user interaction counts: ``minimum`` to ``cap``, heavy-tailed, summing to ``total``."""
    extra = total - users * minimum
    if extra < 0 or total > users * cap:
        raise ValueError(f"{total} interactions cannot give {users} users between {minimum} "
                         f"and {cap} each")
    share = rng.lognormal(0.0, 1.0, size=users)
    counts = minimum + np.floor(extra * share / share.sum()).astype(np.int64)
    np.add.at(counts, rng.choice(users, size=total - counts.sum(), replace=True), 1)
    while (counts > cap).any():  # a user cannot rate more items than there are
        excess = int((counts - cap).clip(0).sum())
        counts = np.minimum(counts, cap)
        room = np.flatnonzero(counts < cap)
        np.add.at(counts, rng.choice(room, size=excess, replace=True), 1)
    return counts


def _draw(world: _World, counts: np.ndarray, *, temperature: float,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, phase, affinity) of every draw, without repeats per user."""
    users, phases, _ = world.tastes.shape
    n_items = len(world.bias)
    per_phase = np.diff(np.floor(np.outer(counts, np.arange(phases + 1) / phases)).astype(
        np.int64), axis=1)  # (users, phases), rows sum to counts
    taken = np.zeros((users, n_items), dtype=bool)
    out_u, out_i, out_p, out_a = [], [], [], []
    for p in range(phases):
        affinity = world.tastes[:, p, :] @ world.items.T  # (users, items)
        logits = affinity / temperature + world.bias + rng.gumbel(size=affinity.shape)
        logits[taken] = -np.inf
        want = per_phase[:, p]
        top = int(want.max())
        if top == 0:
            continue
        best = np.argpartition(-logits, top - 1, axis=1)[:, :top]
        order = np.argsort(-np.take_along_axis(logits, best, axis=1), axis=1)
        best = np.take_along_axis(best, order, axis=1)
        keep = np.arange(top)[None, :] < want[:, None]
        rows = np.broadcast_to(np.arange(users)[:, None], best.shape)[keep]
        cols = best[keep]
        taken[rows, cols] = True
        out_u.append(rows)
        out_i.append(cols)
        out_p.append(np.full(len(rows), p))
        out_a.append(affinity[rows, cols])
    return (np.concatenate(out_u), np.concatenate(out_i), np.concatenate(out_p),
            np.concatenate(out_a))


def _times(user: np.ndarray, item: np.ndarray, phase: np.ndarray, world: _World, *,
           phases: int, session: float, rng: np.random.Generator) -> np.ndarray:
    """Timestamps: phases in order, sessions of similar items inside a phase, minutes apart."""
    users = world.tastes.shape[0]
    # order each user's phase by projection on a random direction: neighbours are similar items
    direction = rng.normal(size=(users, world.items.shape[1]))
    key = np.einsum("nd,nd->n", world.items[item], direction[user])
    order = np.lexsort((key, phase, user))
    user, phase = user[order], phase[order]
    group = user * phases + phase
    first = np.r_[True, group[1:] != group[:-1]]
    position = np.arange(len(user)) - np.maximum.accumulate(np.where(first, np.arange(len(user)),
                                                                     0))
    new_session = first | (rng.random(len(user)) < 1.0 / session)
    session_id = np.cumsum(new_session) - 1
    # user u is active over a random window; phase p covers its p-th slice
    span = _END - _START
    start = _START + rng.random(users) * span * 0.7
    length = (_END - start) * rng.uniform(0.05, 1.0, size=users)
    slot = length / phases
    session_start = (start[user] + slot[user] * (phase + rng.random(len(user))))
    session_start = session_start[np.flatnonzero(new_session)][session_id]
    times = np.minimum(session_start + 90.0 * position + rng.integers(0, 60, len(user)), _END)
    out = np.empty(len(user), dtype=np.int64)
    out[order] = times.astype(np.int64)
    return out


def _generate(users: int, items: int, total: int, *, minimum: int, dims: int, phases: int,
              drift: float, skew: float, temperature: float, session: float,
              seed: int) -> tuple[_World, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    world = _world(users, items, dims=dims, phases=phases, drift=drift, skew=skew, rng=rng)
    counts = _counts(users, total, minimum, items, rng)
    user, item, phase, affinity = _draw(world, counts, temperature=temperature, rng=rng)
    times = _times(user, item, phase, world, phases=phases, session=session, rng=rng)
    return world, user, item, affinity, times


def make_ratings(users: int = 943, items: int = 1682, ratings: int = 100_000, *,
                 minimum: int = 20, dims: int = 30, phases: int = 3, drift: float = 0.25,
                 skew: float = 3.0, temperature: float = 0.05, session: float = 8.0,
                 seed: int = 0) -> pd.DataFrame:
    """MovieLens-100K-shaped ratings: columns user, item (1-based ints), rating (1-5), timestamp.

    The default ``skew`` and ``temperature`` were chosen so that, under the MovieLens-100K
    protocol (per-user random 75/25, top 10), untuned popularity, item kNN and EASE land near
    their published figures on the real file (about 0.25, 0.33 and 0.48 NDCG@10 here against
    0.25, 0.38 and 0.48): the generator is calibrated to be as hard as the real data, so a
    score on it is a plausibility check, not a measurement on MovieLens.

    Parameters
    ----------
    users, items, ratings:
        Sizes (defaults: MovieLens-100K's).
    minimum:
        Fewest ratings per user (MovieLens keeps users with at least 20), capped for tiny sets.
    dims:
        Latent dimensions (genres); an item's category is its strongest one.
    phases, drift:
        Taste drift: a user's history comes in ``phases`` whose tastes move by ``drift``.
    skew:
        Spread of the items' log popularity (larger: a longer tail).
    temperature:
        How strongly taste decides over chance (smaller: more predictable).
    session:
        Mean session length in items.
    seed:
        Everything is fixed by the seed.
    """
    minimum = min(minimum, max(1, ratings // max(users, 1)), items)
    _, user, item, affinity, times = _generate(
        users, items, ratings, minimum=minimum, dims=dims, phases=phases, drift=drift, skew=skew,
        temperature=temperature, session=session, seed=seed)
    rng = np.random.default_rng(seed + 1)
    z = (affinity - affinity.mean()) / (affinity.std() or 1.0)
    stars = np.clip(np.round(3.6 + 0.9 * z + rng.normal(0, 0.7, len(z))), 1, 5).astype(np.int64)
    frame = pd.DataFrame({"user": user + 1, "item": item + 1, "rating": stars,
                          "timestamp": times})
    return frame.sort_values(["timestamp", "user"], kind="stable").reset_index(drop=True)


def write_udata(path: str | Path, **kwargs: object) -> Path:
    """Write :func:`make_ratings` as MovieLens ``u.data``: tab-separated, no header."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    make_ratings(**kwargs).to_csv(target, sep="\t", header=False, index=False)  # type: ignore[arg-type]
    return target


def make_events(users: int = 2000, items: int = 800, views: int = 60_000, *, minimum: int = 5,
                dims: int = 12, phases: int = 3, drift: float = 0.3, skew: float = 1.2,
                temperature: float = 0.2, session: float = 6.0, seed: int = 0) -> pd.DataFrame:
    """An e-commerce event log: user_id, item_id, category, event, value, timestamp.

    Every chosen item is viewed; a click, an add-to-cart and a purchase follow in turn with a
    probability that rises with the user's affinity for the item (a purchase's value is the
    item's price). Parameters as :func:`make_ratings`; ``views`` is the number of view events.
    """
    minimum = min(minimum, max(1, views // max(users, 1)), items)
    world, user, item, affinity, times = _generate(
        users, items, views, minimum=minimum, dims=dims, phases=phases, drift=drift, skew=skew,
        temperature=temperature, session=session, seed=seed)
    rng = np.random.default_rng(seed + 1)
    z = (affinity - affinity.mean()) / (affinity.std() or 1.0)
    p = 1.0 / (1.0 + np.exp(-(1.4 * z - 0.6)))
    click = rng.random(len(z)) < p
    cart = click & (rng.random(len(z)) < p * 0.7)
    buy = cart & (rng.random(len(z)) < 0.6)
    price = np.round(rng.lognormal(3.0, 0.8, size=items), 2)
    parts = []
    for name, mask, delay in (("view", np.ones(len(z), bool), 0), ("click", click, 5),
                              ("add_to_cart", cart, 40), ("purchase", buy, 200)):
        idx = np.flatnonzero(mask)
        parts.append(pd.DataFrame({
            "user_id": "u" + pd.Series(user[idx] + 1).astype(str),
            "item_id": "i" + pd.Series(item[idx] + 1).astype(str),
            "category": "c" + pd.Series(world.category[item[idx]] + 1).astype(str),
            "event": name,
            "value": price[item[idx]] if name == "purchase" else 1.0,
            "timestamp": pd.to_datetime(times[idx] + delay, unit="s", utc=True)}))
    frame = pd.concat(parts, ignore_index=True)
    return frame.sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)

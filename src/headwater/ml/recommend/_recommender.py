"""A fitted recommender: a model plus its catalogue, each training user's history and a fallback.

    rec = Recommender.fit(load_interactions("u.data"), model="ease", params={"l2": 400})
    rec.recommend(rec.history("42"), k=10)            # [(item, score), ...], seen items excluded
    rec.recommend({"50": 1.0, "172": 4.0}, k=5)       # any history, e.g. training + fresh clicks
    rec.recommend({}, k=5)                            # a new user: the popular/trending items
    rec.similar("50", k=5)
    rec.refresh(new_interactions_table)               # new users and items, no re-tuning

The server merges a user's training history (:meth:`history`) with interactions that arrived
since, and asks :meth:`recommend`: seen items drop out and items like them rise at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from headwater.core import ConfigError, NotFoundError, require
from headwater.ml.recommend._data import EVENT_WEIGHTS, Encoded, Interactions
from headwater.ml.recommend._metrics import top_k
from headwater.ml.recommend._models import Model, Popularity, get_model

if TYPE_CHECKING:
    import pyarrow as pa
    from scipy import sparse

#: Version of the pickled layout; bumped on incompatible changes.
RECOMMENDER_FORMAT = 1


@dataclass
class Recommender:
    """A fitted recommendation model that knows its catalogue and training histories.

    Build one with :meth:`fit` (or :func:`headwater.ml.recommend.train_recommender`); it pickles.
    ``fallback`` (popularity or trending) answers users with no usable history and fills lists
    the model cannot fill.
    """

    model: Model
    fallback: Popularity
    encoded: Encoded
    weights: dict[str, float] = field(default_factory=lambda: dict(EVENT_WEIGHTS))
    use_values: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    format: int = RECOMMENDER_FORMAT

    def __post_init__(self) -> None:
        self._index()

    _CACHES = ("_user_row", "_position", "_category_code", "_categories")

    def _index(self) -> None:
        """Look-ups built from the catalogue (plain dicts: a request does no pandas work)."""
        self._user_row = {str(user): i for i, user in enumerate(self.encoded.users)}
        self._position = {str(item): i for i, item in enumerate(self.encoded.items)}
        cats = self.encoded.categories
        if cats is None:
            self._category_code = None
            self._categories: dict[str, int] = {}
        else:
            codes, uniques = pd.factorize(pd.Series(cats, dtype="string"))
            self._category_code = codes.astype(np.int32)  # -1: no category
            self._categories = {str(c): i for i, c in enumerate(uniques)}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self._CACHES:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._index()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def fit(cls, interactions: Interactions, *, model: str | Model = "ease",
            params: Mapping[str, Any] | None = None, fallback: str | Model = "popularity",
            fallback_params: Mapping[str, Any] | None = None, seed: int = 0,
            metadata: Mapping[str, Any] | None = None) -> Recommender:
        """Fit ``model`` (a name from :data:`MODELS` or an unfitted instance) on every interaction.

        Parameters
        ----------
        interactions:
            From :func:`load_interactions`; its event weights are kept for refreshes.
        model, params:
            The model and its parameters (defaults where not given).
        fallback, fallback_params:
            ``popularity`` or ``trending``: the answer for users without history.
        """
        encoded = interactions.encode()
        chosen = model if isinstance(model, Model) else get_model(model)(seed=seed,
                                                                          **(params or {}))
        backup = fallback if isinstance(fallback, Model) else get_model(fallback)(
            seed=seed, **(fallback_params or {}))
        if not isinstance(backup, Popularity):
            raise ConfigError(f"the fallback must be popularity or trending, not '{backup.name}'",
                              hint="fallback='popularity' or fallback='trending'")
        chosen.fit(encoded.weights, encoded.times)
        backup.fit(encoded.weights, encoded.times)
        return cls(model=chosen, fallback=backup, encoded=encoded,
                   weights=dict(interactions.weights), use_values=interactions.use_values,
                   metadata=dict(metadata or {}))

    # -- what it knows --------------------------------------------------------------------------
    @property
    def items(self) -> list[str]:
        """The catalogue: every item id the model can recommend."""
        return list(self.encoded.items)

    @property
    def users(self) -> list[str]:
        """Every user id with a training history."""
        return list(self.encoded.users)

    @property
    def name(self) -> str:
        """The model's name (``ease``, ``als``, ...)."""
        return self.model.name

    def history(self, user_id: str) -> dict[str, float]:
        """A training user's item -> weight history; empty for an unknown user."""
        row = self._user_row.get(str(user_id))
        if row is None:
            return {}
        X = self.encoded.weights
        start, end = X.indptr[row], X.indptr[row + 1]
        items = self.encoded.items[X.indices[start:end]]
        return dict(zip(items.tolist(), X.data[start:end].astype(float).tolist(), strict=True))

    def category(self, item_id: str) -> str | None:
        """The item's category, if the data had one."""
        cats = self.encoded.categories
        i = self._position.get(str(item_id))
        if cats is None or i is None or pd.isna(cats[i]):
            return None
        return str(cats[i])

    # -- answers --------------------------------------------------------------------------------
    def _row(self, history: Mapping[str, float]) -> sparse.csr_matrix:
        sparse_ = require("scipy.sparse", "recommend")
        n_items = len(self.encoded.items)
        if not history:
            return sparse_.csr_matrix((1, n_items), dtype=np.float32)
        position = self._position
        idx = np.fromiter((position.get(str(i), -1) for i in history), dtype=np.int64,
                          count=len(history))
        values = np.fromiter((float(v) for v in history.values()), dtype=np.float32,
                             count=len(history))
        known = (idx >= 0) & (values > 0)
        cols, order = np.unique(idx[known], return_inverse=True)
        data = np.bincount(order, weights=values[known]).astype(np.float32)
        return sparse_.csr_matrix((data, cols, [0, len(cols)]), shape=(1, n_items))

    def _allowed(self, exclude: Collection[str], category: str | None) -> np.ndarray:
        allowed = np.ones(len(self.encoded.items), dtype=bool)
        if len(exclude):
            position = self._position
            idx = np.fromiter((position.get(str(e), -1) for e in exclude), dtype=np.int64,
                              count=len(exclude))
            allowed[idx[idx >= 0]] = False
        if category is not None:
            code = self._categories.get(str(category))
            if code is None or self._category_code is None:
                allowed[:] = False
            else:
                allowed &= self._category_code == code
        return allowed

    def recommend(self, history: Mapping[str, float], k: int = 10,
                  exclude: Collection[str] = (), category: str | None = None,
                  ) -> list[tuple[str, float]]:
        """The ``k`` best items for a user with this item -> weight history, best first.

        Items in ``history`` and ``exclude`` are never returned; ``category`` keeps only items
        of that category. Items the model cannot score (no signal) are filled from the fallback
        (popular or trending) with score 0; an empty or unknown history gets the fallback's
        list with its scores.
        """
        row = self._row(history)
        allowed = self._allowed(exclude, category)
        allowed[row.indices] = False
        if row.nnz == 0:
            return self._fallback_top(allowed, k)
        scores = np.asarray(self.model.score(row), dtype=np.float32).ravel()
        scores = np.where(allowed & (scores != 0), scores, -np.inf)
        best = [int(i) for i in top_k(scores[None, :], k)[0] if np.isfinite(scores[i])]
        out = [(str(self.encoded.items[i]), float(scores[i])) for i in best]
        if len(out) < k:
            allowed[best] = False
            out += [(item, 0.0) for item, _ in self._fallback_top(allowed, k - len(out))]
        return out

    def popular(self, k: int = 10, exclude: Collection[str] = (),
                category: str | None = None) -> list[tuple[str, float]]:
        """The fallback's top ``k`` items (popularity or trending share), minus ``exclude``."""
        return self._fallback_top(self._allowed(exclude, category), k)

    def _fallback_top(self, allowed: np.ndarray, k: int) -> list[tuple[str, float]]:
        scores = np.where(allowed, self.fallback.scores_, -np.inf)
        best = [int(i) for i in top_k(scores[None, :], k)[0] if np.isfinite(scores[i])]
        return [(str(self.encoded.items[i]), float(scores[i])) for i in best]

    def similar(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items most similar to ``item_id`` (by the model, else by co-occurrence).

        Raises :class:`~headwater.core.NotFoundError` for an item not in the catalogue.
        """
        i = self._position.get(str(item_id))
        if i is None:
            raise NotFoundError(f"item '{item_id}' is not in the catalogue of "
                                f"{len(self.encoded.items):,} items",
                                hint="new items reach the model through refresh()")
        scores = self.model.similar(i)
        if scores is None:
            scores = _cooccurrence(self.encoded.weights, i)
        scores = np.array(scores, dtype=np.float32)
        scores[i] = -np.inf
        scores[scores <= 0] = -np.inf
        best = [int(j) for j in top_k(scores[None, :], k)[0] if np.isfinite(scores[j])]
        return [(str(self.encoded.items[j]), float(scores[j])) for j in best]

    # -- periodic refresh ----------------------------------------------------------------------
    def refresh(self, interactions: pa.Table | pd.DataFrame | Interactions) -> dict[str, int]:
        """Add new interactions: new users and items join, every part is brought up to date.

        The model keeps its hyperparameters (no tuning); see :mod:`~headwater.ml.recommend._models`
        for what each model recomputes. Returns counts of new users, items and interactions.
        """
        fresh = interactions if isinstance(interactions, Interactions) else (
            Interactions.from_frame(interactions, source="refresh", weights=self.weights,
                                    use_values=self.use_values)
            if isinstance(interactions, pd.DataFrame) else
            Interactions.from_arrow(interactions, source="refresh", weights=self.weights,
                                    use_values=self.use_values))
        before_users, before_items = self.encoded.shape
        add = fresh.encode(users=self.encoded.users, items=self.encoded.items)
        self.encoded = _merge(self.encoded, add)
        self._index()
        self.model.refresh(self.encoded.weights, self.encoded.times)
        self.fallback.fit(self.encoded.weights, self.encoded.times)
        users, items = self.encoded.shape
        return {"users": users - before_users, "items": items - before_items,
                "interactions": len(fresh)}


def _cooccurrence(weights: sparse.csr_matrix, item: int) -> np.ndarray:
    """Cosine of item ``item``'s column with every column (binary co-occurrence)."""
    X = weights.copy()
    X.data = np.ones_like(X.data)
    column = X[:, [item]]
    counts = np.asarray((X.T @ column).todense()).ravel()
    norms = np.sqrt(np.bincount(X.indices, minlength=X.shape[1]))
    return counts / (norms * max(norms[item], 1e-9) + 1e-9)


def _merge(old: Encoded, add: Encoded) -> Encoded:
    """``old`` grown to ``add``'s shape, with weights summed and last timestamps kept."""
    sparse_ = require("scipy.sparse", "recommend")
    shape = add.shape

    def grow(m: sparse.csr_matrix) -> sparse.csr_matrix:
        m = m.copy()
        m.resize(shape)
        return m

    weights = (grow(old.weights) + add.weights).tocsr()
    weights.sort_indices()
    times = grow(old.times).maximum(add.times).tocsr()
    times.sort_indices()
    # both are unions of the same two sparsity patterns; align times on weights' structure
    times = sparse_.csr_matrix((np.asarray(times[weights.nonzero()]).ravel(),
                                weights.indices.copy(), weights.indptr.copy()), shape=shape)
    categories = add.categories
    if old.categories is not None:
        merged = np.empty(shape[1], dtype=object)
        merged[:] = None
        merged[: len(old.categories)] = old.categories
        if categories is not None:
            new = pd.notna(categories)
            merged[new] = categories[new]
        categories = merged
    return Encoded(users=add.users, items=add.items, weights=weights.astype(np.float32),
                   times=times, categories=categories)

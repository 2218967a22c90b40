"""Recommendation models over a users x items CSR matrix of interaction weights.

Every model fits on the matrix (and the pair timestamps), scores a block of history rows at
once (``score(rows) -> dense (n, items)``), and can ``refresh`` on a grown matrix: new users and
items come in without tuning again. What each one does on refresh:

=============  ======================================================================
popularity     recounts (cheap)
trending       recounts with the time decay, from the newest timestamp
item_knn       recomputes the item-item similarity with the same neighbours/shrink
ease           re-solves the closed form with the same regularisation (items³; fine to
               ~20,000 items)
als            keeps the existing factors; folds in factors for new items and users (one
               least-squares half-step each, the way ALS itself updates)
=============  ======================================================================

Each model also states its Optuna search space (``space(trial)``) and defaults.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from headwater.core import ConfigError, require

if TYPE_CHECKING:
    from scipy import sparse

#: EASE inverts an items x items matrix; beyond this many items it is skipped.
EASE_MAX_ITEMS = 20_000
_DAY = 86_400.0


class Model(ABC):
    """Base class: ``fit``, ``score`` (batch of history rows), ``similar``, ``refresh``.

    Parameters are keyword arguments over :meth:`defaults`; ``seed`` fixes any randomness.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: True when the scores are the same for every user (no personalisation).
    global_ranking: ClassVar[bool] = False

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        self.seed = seed
        self.params = {**self.defaults(), **params}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Parameters used when none are tuned."""
        return {}

    @classmethod
    def space(cls, trial: Any) -> dict[str, Any]:
        """Parameters for one Optuna trial (empty: nothing to tune)."""
        return {}

    @abstractmethod
    def fit(self, weights: sparse.csr_matrix, times: sparse.csr_matrix) -> Model:
        """Fit on the users x items weights (and last timestamps, same structure)."""

    @abstractmethod
    def score(self, rows: sparse.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """Scores (n, items) for history rows; ``users``: their training indices, if known."""

    def similar(self, item: int) -> np.ndarray | None:
        """Similarity of every item to ``item``, or None if the model has no notion of it."""
        return None

    def refresh(self, weights: sparse.csr_matrix, times: sparse.csr_matrix) -> None:
        """Bring the model up to a grown matrix (new rows/columns at the end)."""
        self.fit(weights, times)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"


class Popularity(Model):
    """Items ranked by how many users interacted with them: the cold-start fallback."""

    name, title, global_ranking = "popularity", "Most popular", True

    def fit(self, weights: sparse.csr_matrix, times: sparse.csr_matrix) -> Popularity:
        self.scores_ = np.bincount(weights.indices, minlength=weights.shape[1]).astype(
            np.float32) / max(weights.shape[0], 1)
        return self

    def score(self, rows: sparse.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        return np.broadcast_to(self.scores_, (rows.shape[0], len(self.scores_))).copy()


class Trending(Popularity):
    """Popularity with exponential time decay: recent interactions count more."""

    name, title = "trending", "Trending (time-decayed popularity)"

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"half_life_days": 14.0}

    @classmethod
    def space(cls, trial: Any) -> dict[str, Any]:
        return {"half_life_days": trial.suggest_float("half_life_days", 0.5, 365.0, log=True)}

    def fit(self, weights: sparse.csr_matrix, times: sparse.csr_matrix) -> Trending:
        newest = float(times.data.max()) if times.nnz else 0.0
        age_days = (newest - times.data) / _DAY
        decay = np.power(0.5, age_days / float(self.params["half_life_days"]))
        self.scores_ = (np.bincount(times.indices, weights=decay, minlength=times.shape[1])
                        / max(times.shape[0], 1)).astype(np.float32)
        self.newest_ = newest
        return self


def _cosine(weights: sparse.csr_matrix, *, shrink: float) -> sparse.csr_matrix:
    """Item-item cosine similarity (items x items, sparse), shrunk towards 0 for rare pairs."""
    sparse_ = require("scipy.sparse", "recommend")
    columns = weights.T.tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=1)).ravel())
    dots = (columns @ columns.T).tocsr()
    rows = np.repeat(np.arange(dots.shape[0]), np.diff(dots.indptr))
    dots.data = dots.data / (norms[rows] * norms[dots.indices] + shrink + 1e-9)
    dots.setdiag(0.0)
    dots.eliminate_zeros()
    return sparse_.csr_matrix(dots, dtype=np.float32)


def _top_per_row(matrix: sparse.csr_matrix, k: int, chunk: int = 2048) -> sparse.csr_matrix:
    """Keep the ``k`` largest entries of each row (vectorised over blocks of rows)."""
    sparse_ = require("scipy.sparse", "recommend")
    n, m = matrix.shape
    if k >= m:
        return matrix
    blocks = []
    for start in range(0, n, chunk):
        block = matrix[start:start + chunk].toarray()
        keep = np.argpartition(-block, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(block, keep, axis=1)
        rows = np.repeat(np.arange(block.shape[0]), k)
        out = sparse_.csr_matrix((values.ravel(), (rows, keep.ravel())), shape=block.shape)
        out.eliminate_zeros()
        blocks.append(out)
    return sparse_.vstack(blocks).tocsr()


class ItemKNN(Model):
    """Item-item neighbourhood: score = history x (cosine similarity, top neighbours per item)."""

    name, title = "item_knn", "Item-item similarity (cosine kNN)"

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"neighbours": 100, "shrink": 10.0}

    @classmethod
    def space(cls, trial: Any) -> dict[str, Any]:
        return {"neighbours": trial.suggest_int("neighbours", 10, 800, log=True),
                "shrink": trial.suggest_float("shrink", 0.0, 200.0)}

    def fit(self, weights: sparse.csr_matrix, times: sparse.csr_matrix) -> ItemKNN:
        similarity = _cosine(weights, shrink=float(self.params["shrink"]))
        self.similarity_ = _top_per_row(similarity, int(self.params["neighbours"]))
        return self

    def score(self, rows: sparse.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        # neighbour lists are per source item: row i of the matrix holds i's neighbours
        return np.asarray((rows.astype(np.float32) @ self.similarity_).todense())

    def similar(self, item: int) -> np.ndarray:
        return self.similarity_[item].toarray().ravel()


class EASE(Model):
    """EASE (Steck 2019): a closed-form item-item linear model, B = I - P / diag(P)."""

    name, title = "ease", "EASE (embarrassingly shallow autoencoder)"

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"l2": 300.0, "binary": True}

    @classmethod
    def space(cls, trial: Any) -> dict[str, Any]:
        return {"l2": trial.suggest_float("l2", 1.0, 5000.0, log=True),
                "binary": trial.suggest_categorical("binary", [True, False])}

    def _input(self, rows: sparse.csr_matrix) -> sparse.csr_matrix:
        rows = rows.astype(np.float32)  # a copy: the caller's rows stay as they are
        if self.params["binary"]:
            rows.data = np.ones_like(rows.data)
        return rows

    def fit(self, weights: sparse.csr_matrix, times: sparse.csr_matrix) -> EASE:
        items = weights.shape[1]
        if items > EASE_MAX_ITEMS:
            raise ConfigError(f"EASE needs an items x items inverse; {items:,} items is more "
                              f"than {EASE_MAX_ITEMS:,}",
                              hint="leave ease out (--models popularity,item_knn,als) or "
                              "keep the most frequent items")
        X = self._input(weights)
        gram = (X.T @ X).toarray().astype(np.float64)
        gram[np.diag_indices(items)] += float(self.params["l2"])
        inverse = np.linalg.inv(gram)
        B = inverse / (-np.diag(inverse))
        B[np.diag_indices(items)] = 0.0
        self.B_ = B.astype(np.float32)
        return self

    def score(self, rows: sparse.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(self._input(rows) @ self.B_)

    def similar(self, item: int) -> np.ndarray:
        return self.B_[item].copy()


class ALS(Model):
    """Implicit-feedback matrix factorisation (Hu, Koren, Volinsky) with ``implicit``'s ALS."""

    name, title = "als", "Implicit ALS (matrix factorisation)"

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"factors": 32, "regularization": 10.0, "alpha": 5.0, "iterations": 15,
                "log_weights": True}

    @classmethod
    def space(cls, trial: Any) -> dict[str, Any]:
        return {"factors": trial.suggest_int("factors", 16, 256, log=True),
                "regularization": trial.suggest_float("regularization", 1e-3, 50.0, log=True),
                "alpha": trial.suggest_float("alpha", 0.5, 80.0, log=True),
                "iterations": trial.suggest_int("iterations", 8, 30),
                "log_weights": trial.suggest_categorical("log_weights", [True, False])}

    def _confidence(self, rows: sparse.csr_matrix) -> sparse.csr_matrix:
        rows = rows.astype(np.float32, copy=True)
        if self.params["log_weights"]:
            rows.data = np.log1p(rows.data)
        return rows

    def fit(self, weights: sparse.csr_matrix, times: sparse.csr_matrix) -> ALS:
        als = require("implicit.cpu.als", "recommend")
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            model = als.AlternatingLeastSquares(
                factors=int(self.params["factors"]),
                regularization=float(self.params["regularization"]),
                alpha=float(self.params["alpha"]), iterations=int(self.params["iterations"]),
                random_state=self.seed, num_threads=0)
            model.fit(self._confidence(weights), show_progress=False)
        self.model_ = model
        return self

    def score(self, rows: sparse.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        items = self.model_.item_factors
        factors = self.model_.user_factors[users] if users is not None else self.fold_in(rows)
        return factors @ items.T

    def fold_in(self, rows: sparse.csr_matrix) -> np.ndarray:
        """User factors for new histories, by one least-squares step against the item factors."""
        conf = self._confidence(rows)
        return np.asarray(self.model_.recalculate_user(np.arange(conf.shape[0]), conf))

    def similar(self, item: int) -> np.ndarray:
        items = self.model_.item_factors
        norms = np.linalg.norm(items, axis=1) + 1e-9
        return (items @ items[item]) / (norms * norms[item])

    def refresh(self, weights: sparse.csr_matrix, times: sparse.csr_matrix) -> None:
        model = self.model_
        old_users, old_items = model.user_factors.shape[0], model.item_factors.shape[0]
        conf = self._confidence(weights)
        n_users, n_items = conf.shape
        new_users, new_items = np.arange(old_users, n_users), np.arange(old_items, n_items)
        if len(new_users):  # first from the items that have factors, so new items can use them
            model.partial_fit_users(new_users, conf[new_users][:, :old_items])
        if len(new_items):
            model.partial_fit_items(new_items, conf.T.tocsr()[new_items])
        if len(new_users) and len(new_items):
            model.partial_fit_users(new_users, conf[new_users])


MODELS: dict[str, type[Model]] = {m.name: m for m in (Popularity, Trending, ItemKNN, EASE, ALS)}
#: What ``train`` compares unless told otherwise.
DEFAULT_MODELS = ("popularity", "trending", "item_knn", "als", "ease")


def get_model(name: str) -> type[Model]:
    """The model class called ``name``; ConfigError listing the known ones otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown recommendation model '{name}'",
                          hint=f"use one of {', '.join(MODELS)}") from None

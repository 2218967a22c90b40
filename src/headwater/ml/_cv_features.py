"""Feature engineering declared in headwater.yaml, fitted inside every fold.

:class:`FeatureSteps` sits in the pipeline after column conversion (so it sees numbers as
float columns) and before imputation and encoding. It adds

- ratios ``a/b`` (named ``a_per_b``) and interactions ``a*b`` (``a_x_b``);
- with ``auto``: ratios of strongly rank-correlated non-negative size columns (e.g. rooms,
  bedrooms, people and households per district), decided on the training fold only;
- coordinate features for two coordinate columns (named like longitude/latitude under
  ``auto``): rotated axes, and the mean target of the k nearest training rows. On the training
  fold each row's own target is left out of its mean (leave-one-out), so the feature carries no
  leak; the test fold uses its nearest training rows.

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"rooms": [4.0, 6, 8, 10], "homes": [2.0, 2, 4, 5]})
>>> steps = FeatureSteps(auto=False, ratios=(("rooms", "homes"),))
>>> steps.fit_transform(X)["rooms_per_homes"].tolist()
[2.0, 3.0, 2.0, 2.0]
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from headwater.core import ConfigError

#: Rank correlation from which ``auto`` adds the ratio of two size columns.
AUTO_RATIO_CORRELATION = 0.8
#: Most ratios ``auto`` adds.
AUTO_RATIO_MAX = 8
_LON = re.compile(r"^(lon|lng|long|longitude)$|(^|_)(lon|lng|longitude)$", re.IGNORECASE)
_LAT = re.compile(r"^(lat|latitude)$|(^|_)(lat|latitude)$", re.IGNORECASE)


def find_coordinates(columns: list[str]) -> tuple[str, str] | None:
    """(longitude, latitude) column names when exactly one pair is named like them.

    >>> find_coordinates(["id", "Latitude", "Longitude"])
    ('Longitude', 'Latitude')
    """
    lons = [c for c in columns if _LON.search(str(c))]
    lats = [c for c in columns if _LAT.search(str(c))]
    if len(lons) == 1 and len(lats) == 1:
        return lons[0], lats[0]
    return None


class FeatureSteps(TransformerMixin, BaseEstimator):
    """Add ratio, interaction and coordinate features (see the module docstring).

    Parameters
    ----------
    auto:
        Add ratios of correlated size columns and coordinate features found by name.
    ratios, interactions:
        Pairs of column names.
    coordinates:
        ``(x, y)`` columns, or None (``auto`` looks for longitude/latitude).
    rotations:
        Angles (degrees) of rotated coordinate axes.
    neighbours:
        The k of each nearest-neighbour target mean.
    """

    def __init__(self, *, auto: bool = True, ratios: tuple[tuple[str, str], ...] = (),
                 interactions: tuple[tuple[str, str], ...] = (),
                 coordinates: tuple[str, str] | None = None,
                 rotations: tuple[float, ...] = (15.0, 30.0, 45.0, 60.0, 75.0),
                 neighbours: tuple[int, ...] = (8, 32)) -> None:
        self.auto = auto
        self.ratios = ratios
        self.interactions = interactions
        self.coordinates = coordinates
        self.rotations = rotations
        self.neighbours = neighbours

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureSteps:
        """Decide the features on the training fold (and index its coordinates for neighbours)."""
        self._fit(X, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **_: Any) -> pd.DataFrame:
        """Fit, then transform the training fold with leave-one-out neighbour means."""
        self._fit(X, y)
        return self._transform(X, training=True)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Add the features decided on fit to ``X``."""
        return self._transform(X, training=False)

    def _fit(self, X: pd.DataFrame, y: Any) -> None:
        if not isinstance(X, pd.DataFrame):
            raise ConfigError(f"feature steps need a DataFrame with named columns, got "
                              f"{type(X).__name__}", hint="put FeatureSteps after ColumnAuditor")
        numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])
                   and not pd.api.types.is_bool_dtype(X[c])]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        for a, b in (*self.ratios, *self.interactions):
            for name in (a, b):
                if name not in X.columns:
                    raise ConfigError(
                        f"feature step {a}{'/' if (a, b) in self.ratios else '*'}{b} names "
                        f"column '{name}', which is not among the feature columns "
                        f"({', '.join(map(str, X.columns[:30]))})",
                        hint="check the spelling in ml.cv.<task>.features; ID, constant, empty "
                        "and leaky columns are dropped before feature steps run")
                if name not in numeric:
                    raise ConfigError(f"feature step column '{name}' is not numeric",
                                      hint="ratios and interactions take number columns")
        coords = self.coordinates
        if coords is None and self.auto:
            coords = find_coordinates(numeric)
        if coords is not None:
            for name in coords:
                if name not in numeric:
                    raise ConfigError(f"coordinate column '{name}' is not a numeric feature "
                                      f"column (numeric: {', '.join(map(str, numeric[:30]))})",
                                      hint="check features.coordinates.columns")
        self.coordinates_ = coords
        ratios = list(self.ratios)
        if self.auto:
            ratios += [p for p in _correlated_pairs(X[numeric], exclude=coords or ())
                       if p not in ratios and p[::-1] not in ratios]
        self.ratios_ = ratios
        self.neighbours_: list[int] = []
        if coords is not None and self.neighbours and y is not None:
            xy = self._xy(X, fit=True)
            from sklearn.neighbors import NearestNeighbors

            k_max = min(max(self.neighbours) + 1, len(xy))
            self._index = NearestNeighbors(n_neighbors=k_max).fit(xy)
            self._y = np.asarray(y, dtype="float64")
            self.neighbours_ = sorted({min(k, len(xy) - 1) for k in self.neighbours if k >= 1})
            self.neighbours_ = [k for k in self.neighbours_ if k >= 1]

    # -- transforming ----------------------------------------------------------------------------
    def _transform(self, X: pd.DataFrame, *, training: bool) -> pd.DataFrame:
        out = X.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            for a, b in self.ratios_:
                value = X[a].to_numpy(dtype="float64") / X[b].to_numpy(dtype="float64")
                out[f"{a}_per_{b}"] = np.where(np.isfinite(value), value, np.nan)
            for a, b in self.interactions:
                out[f"{a}_x_{b}"] = (X[a].to_numpy(dtype="float64")
                                     * X[b].to_numpy(dtype="float64"))
        if self.coordinates_ is not None:
            x, y = (X[c].to_numpy(dtype="float64") for c in self.coordinates_)
            for angle in self.rotations:
                for turn in (0.0, 90.0):
                    t = np.deg2rad(angle + turn)
                    out[f"rot{angle + turn:g}"] = x * np.cos(t) + y * np.sin(t)
            if self.neighbours_:
                out = out.assign(**self._neighbour_means(X, training=training))
        return out

    def _xy(self, X: pd.DataFrame, *, fit: bool = False) -> np.ndarray:
        xy = X[list(self.coordinates_)].to_numpy(dtype="float64")
        if fit:
            self._fill = np.nanmedian(xy, axis=0)
            lon, lat = self.coordinates_
            geographic = bool(_LON.search(str(lon)) and _LAT.search(str(lat)))
            # degrees of longitude shrink with latitude: scale them to be comparable
            self._xscale = float(np.cos(np.deg2rad(self._fill[1]))) if geographic else 1.0
        xy = np.where(np.isnan(xy), self._fill, xy)
        return xy * np.array([self._xscale, 1.0])

    def _neighbour_means(self, X: pd.DataFrame, *, training: bool) -> dict[str, np.ndarray]:
        xy = self._xy(X)
        k_max = max(self.neighbours_)
        if training:
            _, idx = self._index.kneighbors(xy, n_neighbors=min(k_max + 1, len(self._y)))
            # leave each row out of its own mean (duplicated coordinates can put it anywhere)
            own = idx == np.arange(len(xy))[:, None]
            no_own = ~own.any(axis=1)
            own[no_own, -1] = True
            idx = idx[~own].reshape(len(xy), -1)
        else:
            _, idx = self._index.kneighbors(xy, n_neighbors=k_max)
        cumulative = np.cumsum(self._y[idx], axis=1)
        return {f"near{k}_target": cumulative[:, k - 1] / k for k in self.neighbours_
                if k <= idx.shape[1]}

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Input columns followed by the added ones."""
        names = [*map(str, self.feature_names_in_)]
        names += [f"{a}_per_{b}" for a, b in self.ratios_]
        names += [f"{a}_x_{b}" for a, b in self.interactions]
        if self.coordinates_ is not None:
            names += [f"rot{a + t:g}" for a in self.rotations for t in (0.0, 90.0)]
            names += [f"near{k}_target" for k in self.neighbours_]
        return np.asarray(names, dtype=object)

    def describe(self) -> list[str]:
        """What was added on fit, for reports: ``['rooms_per_homes (ratio)', ...]``."""
        out = [f"{a}_per_{b} (ratio)" for a, b in self.ratios_]
        out += [f"{a}_x_{b} (interaction)" for a, b in self.interactions]
        if self.coordinates_ is not None:
            if self.rotations:
                out.append(f"{2 * len(self.rotations)} rotated axes of "
                           f"{'/'.join(self.coordinates_)}")
            out += [f"near{k}_target (mean target of {k} nearest rows)"
                    for k in self.neighbours_]
        return out


def _correlated_pairs(X: pd.DataFrame, *, exclude: tuple[str, ...]) -> list[tuple[str, str]]:
    """Pairs of non-negative size-like columns whose rank correlation is at least 0.8."""
    cols = [c for c in X.columns if c not in exclude]
    if len(cols) < 2:
        return []
    values = X[cols]
    keep = [c for c in cols if values[c].min() >= 0 and values[c].nunique() > 20]
    if len(keep) < 2:
        return []
    ranks = values[keep].rank().fillna(values[keep].rank().mean()).to_numpy()
    corr = np.corrcoef(ranks, rowvar=False)
    medians = values[keep].median().to_numpy()
    pairs = []
    for i in range(len(keep)):
        for j in range(i + 1, len(keep)):
            if corr[i, j] >= AUTO_RATIO_CORRELATION:
                a, b = (i, j) if medians[i] >= medians[j] else (j, i)
                pairs.append((float(corr[i, j]), keep[a], keep[b]))
    pairs.sort(key=lambda p: -p[0])
    return [(a, b) for _, a, b in pairs[:AUTO_RATIO_MAX]]

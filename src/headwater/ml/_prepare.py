"""Preparation that lives inside scikit-learn pipelines, so nothing leaks across folds.

Raw frames go in as they were read (numbers stored as text with blanks, Yes/No columns, IDs).
:class:`ColumnAuditor` decides once per fit what each column is, drops ID / constant / empty /
leaky columns with a report of what was done, and converts the rest; :func:`build_preprocessor`
adds imputation, one-hot or target encoding, and scaling where the model needs it;
:class:`FeatureSelector` optionally keeps the informative encoded features.

>>> import pandas as pd
>>> X = pd.DataFrame({"id": ["a1", "a2", "a3", "a4"], "paid": [" 1.5", "", "2", "3"],
...                   "partner": ["Yes", "No", "No", "Yes"]})
>>> auditor = ColumnAuditor().fit(X, pd.Series([0, 1, 0, 1]))
>>> auditor.kinds_
{'id': 'id', 'paid': 'numeric', 'partner': 'boolean'}
>>> auditor.transform(X)["paid"].tolist()
[1.5, nan, 2.0, 3.0]
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from headwater.core import ConfigError
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

log = get_logger(__name__)

ColumnKind = Literal["numeric", "boolean", "datetime", "categorical", "id", "constant", "empty",
                     "leaky"]
DROPPED_KINDS = frozenset({"id", "constant", "empty", "leaky"})

_TRUE = frozenset({"yes", "y", "true", "t"})
_FALSE = frozenset({"no", "n", "false", "f"})
_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key)$|^id[_\W]|[a-z]ID$|[a-z]Id$", re.IGNORECASE)
#: Share of non-blank values that must parse for a text column to become numbers or dates.
PARSE_SHARE = 0.99
#: Numeric columns with more distinct values than this get spline features when asked.
CONTINUOUS_LEVELS = 10
#: Share of distinct values above which a text column (or an integer named like an ID) is an ID.
ID_SHARE = 0.95


@dataclass
class ColumnDecision:
    """What was found in one column and what was done with it."""

    column: str
    kind: ColumnKind
    action: Literal["kept", "converted", "dropped"]
    note: str = ""
    score: float | None = None  # single-column ROC-AUC or |correlation|, for leak checks


@dataclass
class PrepareReport:
    """Per-column decisions of a :class:`ColumnAuditor`; ``str()`` is a readable summary."""

    rows: int
    decisions: list[ColumnDecision] = field(default_factory=list)

    @property
    def dropped(self) -> dict[str, str]:
        """Dropped columns -> why."""
        return {d.column: f"{d.kind}: {d.note}" for d in self.decisions if d.action == "dropped"}

    @property
    def kept(self) -> list[str]:
        """Columns used as features."""
        return [d.column for d in self.decisions if d.action != "dropped"]

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per column (for tables, JSON and run reports)."""
        return [asdict(d) for d in self.decisions]

    def __str__(self) -> str:
        lines = [f"{len(self.kept)} of {len(self.decisions)} columns used ({self.rows} rows)"]
        lines += [f"  {d.action:9} {d.column} ({d.kind}){': ' + d.note if d.note else ''}"
                  for d in self.decisions if d.action != "kept"]
        return "\n".join(lines)


def _text(col: pd.Series) -> pd.Series:
    """Stripped text with blanks as missing."""
    out = col.astype("string").str.strip()
    return out.mask(out == "")


def _by_level(col: pd.Series, convert: Any) -> pd.Series:
    """Apply a vectorised text conversion to the distinct values only, then map back."""
    codes, levels = pd.factorize(col, use_na_sentinel=True)
    converted = np.asarray(convert(pd.Series(levels, dtype=object)), dtype="float64")
    out = np.full(len(col), np.nan)
    known = codes >= 0
    out[known] = converted[codes[known]]
    return pd.Series(out, index=col.index, dtype="float64")


def _parse_numbers(levels: pd.Series) -> pd.Series:
    return pd.to_numeric(_text(levels), errors="coerce")


def _parse_booleans(levels: pd.Series) -> pd.Series:
    low = _text(levels).str.lower()
    return pd.Series(np.where(low.isin(_TRUE).fillna(False).to_numpy(dtype=bool), 1.0,
                              np.where(low.isin(_FALSE).fillna(False).to_numpy(dtype=bool),
                                       0.0, np.nan)))


def _number(col: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return col.astype("float64")
    return _by_level(col, _parse_numbers)


def _boolean(col: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return col.astype("float64")
    return _by_level(col, _parse_booleans)


def _datetime_days(col: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        parsed = pd.to_datetime(_text(col), errors="coerce", format="ISO8601", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return (parsed - pd.Timestamp("1970-01-01")).dt.total_seconds().astype("float64") / 86400.0


def _category(col: pd.Series) -> pd.Series:
    return _text(col).astype(object).where(lambda s: s.notna(), np.nan)


_CONVERT = {"numeric": _number, "boolean": _boolean, "datetime": _datetime_days,
            "categorical": _category}


def infer_kind(col: pd.Series) -> tuple[ColumnKind, str]:
    """The kind of a raw column and a note on any conversion it needs."""
    name = str(col.name)
    n = len(col)
    if pd.api.types.is_bool_dtype(col):
        return "boolean", ""
    if pd.api.types.is_datetime64_any_dtype(col):
        return "datetime", "dates as days since 1970"
    if pd.api.types.is_numeric_dtype(col):
        values = col.dropna()
        if values.empty:
            return "empty", "all values missing"
        if values.nunique() <= 1:
            return "constant", f"one value ({values.iloc[0]!r})"
        integral = pd.api.types.is_integer_dtype(col) or bool((values == values.round()).all())
        if integral and values.is_unique and len(values) >= ID_SHARE * n and (
                _ID_NAME.search(name) or values.sort_values().diff().dropna().eq(1).all()):
            return "id", "a unique integer per row"
        return "numeric", ""
    codes, raw_levels = pd.factorize(col, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(raw_levels))
    levels = _text(pd.Series(raw_levels, dtype=object))
    present = levels.notna().to_numpy()
    n_values = int(counts[present].sum())
    if n_values == 0:
        return "empty", "all values missing or blank"
    values = levels[present].drop_duplicates()
    distinct = len(values)
    if distinct <= 1:
        return "constant", f"one value ({values.iloc[0]!r})"
    blanks = int(counts[~present].sum())
    blank_note = f"; {blanks} blank(s) read as missing" if blanks else ""
    parsed_levels = pd.to_numeric(levels, errors="coerce").notna().to_numpy()
    parsed = int(counts[parsed_levels & present].sum())
    if parsed >= PARSE_SHARE * n_values:
        bad = n_values - parsed
        extra = f"; {bad} unparseable value(s) read as missing" if bad else ""
        if distinct == n_values and n_values >= ID_SHARE * n and _ID_NAME.search(name):
            return "id", "a unique value per row"
        return "numeric", f"numbers stored as text{blank_note}{extra}"
    low = set(values.str.lower())
    if low <= (_TRUE | _FALSE):
        if len({v in _TRUE for v in low}) == 1:
            return "constant", f"one value ({values.iloc[0]!r}, in {distinct} spellings)"
        return "boolean", f"{'/'.join(sorted(values))} read as 1/0{blank_note}"
    if distinct >= ID_SHARE * n or (distinct >= ID_SHARE * n_values and _ID_NAME.search(name)):
        return "id", f"{distinct} distinct values in {n} rows (an identifier or free text)"
    iso = values.str.contains(r"^\d{4}-\d{2}-\d{2}", regex=True)
    if iso.mean() >= PARSE_SHARE:
        dates = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
        if dates.notna().mean() >= PARSE_SHARE:
            return "datetime", f"dates stored as text, as days since 1970{blank_note}"
    return "categorical", f"{distinct} levels{blank_note}"


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC by the rank-sum formula (ties averaged)."""
    from scipy.stats import rankdata

    pos = y == 1
    n1 = int(pos.sum())
    n0 = len(y) - n1
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def _oof_level_means(x: pd.Series, y: np.ndarray) -> np.ndarray:
    """Each row's category mapped to the target mean of its category in the *other* half."""
    codes, levels = pd.factorize(x)
    half = np.arange(len(codes)) % 2 == 0
    out = np.empty(len(codes))
    prior = float(y.mean())
    for part in (half, ~half):
        other = ~part
        total = np.bincount(codes[other], weights=y[other], minlength=len(levels))
        count = np.bincount(codes[other], minlength=len(levels))
        means = (total + prior * 5) / (count + 5)  # shrunk towards the overall mean
        out[part] = means[codes[part]]
    return out


def single_column_score(x: pd.Series, y: pd.Series, task: str) -> float | None:
    """How well one converted column predicts the target alone (out-of-sample for categoricals).

    Classification: ROC-AUC folded to >= 0.5; regression: |Spearman correlation|. None when the
    column has too few values to judge.
    """
    mask = x.notna().to_numpy()
    if mask.sum() < 20:
        return None
    yv = np.asarray(y, dtype="float64")[mask]
    if np.unique(yv).size < 2:
        return None
    if x.dtype == object:
        values = _oof_level_means(x[mask], yv)
    else:
        values = x.to_numpy(dtype="float64")[mask]
    if np.unique(values).size < 2:
        return None
    if task == "classification":
        auc = _auc((yv == yv.max()).astype(int), values)
        return max(auc, 1.0 - auc)
    ranks = pd.Series(values).rank().to_numpy(), pd.Series(yv).rank().to_numpy()
    return float(abs(np.corrcoef(*ranks)[0, 1]))


def audit_columns(X: pd.DataFrame, y: pd.Series | None = None, *,
                  task: str = "classification", leak_score: float = 0.98) -> PrepareReport:
    """Decide every column's kind; flag leaky ones when ``y`` is given.

    A column is *leaky* when it alone predicts the target almost perfectly (ROC-AUC or
    |correlation| at least ``leak_score``): usually it was recorded after the outcome (e.g. a
    cancellation date for churn).
    """
    report = PrepareReport(rows=len(X))
    for name in X.columns:
        kind, note = infer_kind(X[name])
        decision = ColumnDecision(column=str(name), kind=kind, note=note,
                                  action="dropped" if kind in DROPPED_KINDS else
                                  ("converted" if note and kind != "categorical" else "kept"))
        if y is not None and kind not in {"id", "empty"}:
            measure = "ROC-AUC" if task == "classification" else "|correlation|"
            converted = _CONVERT.get(kind, _category)(X[name])
            score = None if kind == "constant" else single_column_score(converted, y, task)
            decision.score = None if score is None else round(score, 4)
            filled = None
            if converted.isna().any():
                filled = single_column_score(converted.notna().astype("float64"), y, task)
            if score is not None and score >= leak_score:
                decision.kind, decision.action = "leaky", "dropped"
                decision.note = (f"predicts the target alone ({measure} {score:.3f}); probably "
                                 "known only after the outcome")
            elif filled is not None and filled >= leak_score:
                decision.kind, decision.action = "leaky", "dropped"
                decision.score = round(filled, 4)
                decision.note = (f"whether it is filled in predicts the target ({measure} "
                                 f"{filled:.3f}); probably recorded only after the outcome")
        report.decisions.append(decision)
    return report


class ColumnAuditor(TransformerMixin, BaseEstimator):
    """Infer column kinds on fit, drop ID / constant / empty / leaky columns, convert the rest.

    Output: a DataFrame of float64 columns (numbers, 0/1 booleans, dates as days) and object
    columns (categoricals with NaN for missing), in input order.

    Parameters
    ----------
    task:
        ``classification`` or ``regression`` (for the leak check).
    leak_score:
        Single-column ROC-AUC (or |correlation|) from which a column counts as leaky.
    drop:
        Columns always dropped.
    """

    def __init__(self, *, task: str = "classification", leak_score: float = 0.98,
                 drop: tuple[str, ...] = ()) -> None:
        self.task = task
        self.leak_score = leak_score
        self.drop = drop

    def fit(self, X: pd.DataFrame, y: Any = None) -> ColumnAuditor:
        """Decide each column's kind on ``X`` (and the leak check on ``y``)."""
        X = _as_frame(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        ys = None if y is None else pd.Series(np.asarray(y), index=X.index)
        self.report_ = audit_columns(X.drop(columns=[c for c in self.drop if c in X.columns]),
                                     ys, task=self.task, leak_score=self.leak_score)
        self.kinds_ = {d.column: d.kind for d in self.report_.decisions}
        self.kept_ = [c for c in self.report_.kept]
        if not self.kept_:
            raise ConfigError(
                "no usable feature column: " + "; ".join(
                    f"{c} ({why})" for c, why in list(self.report_.dropped.items())[:10]),
                hint="every column was an ID, constant, empty or leaky; check the data source")
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Convert the kept columns as decided on fit."""
        X = _as_frame(X)
        missing = [c for c in self.kept_ if c not in X.columns]
        if missing:
            raise ConfigError(f"input lacks column(s) the model was trained on: {missing}",
                              hint="score data with the same columns as the training data")
        return pd.DataFrame({c: _CONVERT[self.kinds_[c]](X[c]) for c in self.kept_},
                            index=X.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the kept columns."""
        return np.asarray(self.kept_, dtype=object)


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    raise ConfigError(f"expected a pandas DataFrame with named columns, got {type(X).__name__}",
                      hint="pass the raw table as a DataFrame")


class _Columns:
    """Picklable column selector over the auditor's output."""

    def __init__(self, kind: Literal["numeric", "continuous", "discrete", "low", "high"],
                 max_onehot: int) -> None:
        self.kind = kind
        self.max_onehot = max_onehot

    def __call__(self, X: pd.DataFrame) -> list[str]:
        numeric = [c for c in X.columns if X[c].dtype != object]
        if self.kind == "numeric":
            return numeric
        if self.kind in {"continuous", "discrete"}:
            many = [c for c in numeric if X[c].nunique() > CONTINUOUS_LEVELS]
            return many if self.kind == "continuous" else [c for c in numeric if c not in many]
        cats = [c for c in X.columns if X[c].dtype == object]
        if self.kind == "low":
            return [c for c in cats if X[c].nunique() <= self.max_onehot]
        return [c for c in cats if X[c].nunique() > self.max_onehot]


def build_preprocessor(*, task: str = "classification", scale: bool = True,
                       encoding: Literal["auto", "onehot", "target"] = "auto",
                       max_onehot: int = 20, leak_score: float = 0.98,
                       drop: tuple[str, ...] = (), splines: int = 0) -> Pipeline:
    """The preparation pipeline: audit -> impute -> encode (-> scale).

    Parameters
    ----------
    task:
        ``classification`` or ``regression``.
    scale:
        Standardise numbers (and target-encoded columns): for linear models, SVMs and MLPs.
    encoding:
        ``onehot``, ``target``, or ``auto`` (one-hot up to ``max_onehot`` levels).
    max_onehot:
        The level count above which ``auto`` uses target encoding.
    leak_score, drop:
        Passed to :class:`ColumnAuditor`.
    splines:
        Knots of cubic B-spline features for continuous numbers (0: none). Lets linear models
        follow non-linear effects (e.g. churn falling steeply over the first months of tenure).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        OneHotEncoder,
        SplineTransformer,
        StandardScaler,
        TargetEncoder,
    )

    limit = {"auto": max_onehot, "onehot": 1_000_000, "target": 0}[encoding]
    scaler = StandardScaler() if scale else "passthrough"
    numeric = Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)),
                        ("scale", scaler)])
    onehot = Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
                       ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False))])
    target = Pipeline([
        ("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
        ("encode", TargetEncoder(target_type="binary" if task == "classification"
                                 else "continuous")),
        ("scale", StandardScaler() if scale else "passthrough")])
    if splines:
        curved = Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)),
                           ("spline", SplineTransformer(n_knots=splines, degree=3,
                                                        extrapolation="linear")),
                           ("scale", StandardScaler() if scale else "passthrough")])
        numbers = [("num", numeric, _Columns("discrete", limit)),
                   ("spline", curved, _Columns("continuous", limit))]
    else:
        numbers = [("num", numeric, _Columns("numeric", limit))]
    encode = ColumnTransformer(
        [*numbers,
         ("onehot", onehot, _Columns("low", limit)),
         ("target", target, _Columns("high", limit))],
        remainder="drop", verbose_feature_names_out=False, sparse_threshold=0.0)
    return Pipeline([("audit", ColumnAuditor(task=task, leak_score=leak_score, drop=drop)),
                     ("encode", encode)])


class FeatureSelector(TransformerMixin, BaseEstimator):
    """Keep the informative encoded features: mutual information, L1, or permutation importance.

    Fitted inside the pipeline (so inside every fold). ``support_`` marks the kept columns and
    ``scores_`` holds each column's score.

    Parameters
    ----------
    method:
        ``mutual_info`` (keep scores >= 1 % of the best), ``l1`` (non-zero L1 coefficients), or
        ``permutation`` (positive importance of a quick gradient boosting model on a 25 %
        validation split).
    task:
        ``classification`` or ``regression``.
    seed:
        Random seed.
    """

    def __init__(self, *, method: Literal["none", "mutual_info", "l1", "permutation"] = "none",
                 task: str = "classification", seed: int = 0) -> None:
        self.method = method
        self.task = task
        self.seed = seed

    def fit(self, X: Any, y: Any) -> FeatureSelector:
        """Score the features on ``X, y`` and choose which to keep."""
        X = np.asarray(X, dtype="float64")
        y = np.asarray(y)
        self.n_features_in_ = X.shape[1]
        classify = self.task == "classification"
        if self.method == "none":
            scores = np.ones(X.shape[1])
            keep = scores > 0
        elif self.method == "mutual_info":
            from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

            mi = mutual_info_classif if classify else mutual_info_regression
            scores = mi(X, y, random_state=self.seed)
            keep = (scores > 0) & (scores >= 0.01 * scores.max())
        elif self.method == "l1":
            from sklearn.linear_model import LassoCV, LogisticRegression
            from sklearn.preprocessing import StandardScaler

            Xs = StandardScaler().fit_transform(X)
            if classify:
                model = LogisticRegression(C=0.05, l1_ratio=1.0, solver="liblinear",
                                           class_weight="balanced").fit(Xs, y)
                scores = np.abs(model.coef_[0])
            else:
                scores = np.abs(LassoCV(cv=3, random_state=self.seed).fit(Xs, y).coef_)
            keep = scores > 1e-8
        elif self.method == "permutation":
            from sklearn.ensemble import HistGradientBoostingClassifier as HGBC
            from sklearn.ensemble import HistGradientBoostingRegressor as HGBR
            from sklearn.inspection import permutation_importance
            from sklearn.model_selection import train_test_split

            strat = y if classify else None
            Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.25, random_state=self.seed,
                                              stratify=strat)
            model = (HGBC if classify else HGBR)(
                max_iter=100, random_state=self.seed).fit(Xa, ya)
            scores = permutation_importance(model, Xb, yb, n_repeats=5, random_state=self.seed,
                                            scoring="roc_auc" if classify else "r2"
                                            ).importances_mean
            keep = scores > 0
        else:
            raise ConfigError(f"unknown feature_selection '{self.method}'",
                              hint="use none, mutual_info, l1 or permutation")
        if not keep.any():
            keep = scores == scores.max()
        self.scores_ = scores
        self.support_ = keep
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The kept columns."""
        return np.asarray(X, dtype="float64")[:, self.support_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Kept names (from ``input_features`` or ``x0, x1, ...``)."""
        names = np.asarray(input_features if input_features is not None else
                           [f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        return names[self.support_]


def selection_report(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Which encoded features a fitted pipeline's ``select`` step kept, with their scores."""
    if "select" not in pipeline.named_steps:
        return []
    selector: FeatureSelector = pipeline.named_steps["select"]
    names = pipeline[: list(pipeline.named_steps).index("select")].get_feature_names_out()
    order = np.argsort(-selector.scores_)
    return [{"feature": str(names[i]), "score": round(float(selector.scores_[i]), 5),
             "kept": bool(selector.support_[i])} for i in order]

"""Regression metrics, their aggregation over folds, and a fair paired comparison of models.

Cross-validation folds share training rows, so fold scores are not independent and the naive
standard error of their mean is too small. Intervals and tests here use the correction of
Nadeau & Bengio (2003): the variance of the mean is ``(1/J + n_test/n_train) * s²`` for J
folds, instead of ``s²/J`` (the *corrected resampled t-test*; Bouckaert & Frank 2004 for
repeated k-fold).

>>> import numpy as np
>>> m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
>>> round(m["rmse"], 4), round(m["mae"], 4)
(0.5774, 0.3333)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

#: Metrics computed for every fold, and whether lower is better.
METRICS: dict[str, bool] = {"rmse": True, "mae": True, "r2": False, "mape": True,
                            "medae": True}
#: Titles for tables and reports.
METRIC_TITLES = {"rmse": "RMSE", "mae": "MAE", "r2": "R²", "mape": "MAPE", "medae": "MedAE"}


def regression_metrics(y: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R², MAPE (a share; rows whose actual value is 0 are left out) and median
    absolute error of one set of predictions."""
    y = np.asarray(y, dtype="float64")
    p = np.asarray(prediction, dtype="float64")
    err = p - y
    abs_err = np.abs(err)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    nonzero = y != 0
    return {
        "rmse": float(np.sqrt(np.mean(err * err))),
        "mae": float(abs_err.mean()),
        "r2": float(1 - (err * err).sum() / ss_tot) if ss_tot > 0 else float("nan"),
        "mape": float(np.mean(abs_err[nonzero] / np.abs(y[nonzero]))) if nonzero.any()
        else float("nan"),
        "medae": float(np.median(abs_err)),
    }


@dataclass(frozen=True)
class Summary:
    """A metric over folds: mean, standard deviation and a corrected confidence interval."""

    mean: float
    std: float
    low: float
    high: float
    folds: int

    def as_dict(self) -> dict[str, float]:
        """Plain dict for JSON."""
        return asdict(self)


def summarize(values: np.ndarray, *, test_train_ratio: float, confidence: float = 0.95) -> Summary:
    """Mean ± std of fold scores with a t-interval on the corrected variance of the mean.

    ``test_train_ratio`` is ``n_test / n_train`` of a fold (1/(k-1) for k-fold); 0 gives the
    naive interval of independent samples.

    >>> s = summarize(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), test_train_ratio=0.25)
    >>> round(s.mean, 2), round(s.std, 3), s.low < 1.5 < 4.5 < s.high
    (3.0, 1.581, True)
    """
    from scipy import stats

    values = np.asarray(values, dtype="float64")
    values = values[np.isfinite(values)]
    j = len(values)
    if j == 0:
        nan = float("nan")
        return Summary(nan, nan, nan, nan, 0)
    mean = float(values.mean())
    if j == 1:
        return Summary(mean, 0.0, mean, mean, 1)
    std = float(values.std(ddof=1))
    se = math.sqrt((1 / j + test_train_ratio) * std * std)
    half = float(stats.t.ppf(0.5 + confidence / 2, j - 1)) * se
    return Summary(mean, std, mean - half, mean + half, j)


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of model ``a`` against model ``b`` on the same folds."""

    a: str
    b: str
    metric: str
    mean_difference: float  # a - b
    t: float
    p_value: float
    significant: bool
    verdict: str

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON."""
        return asdict(self)


def corrected_t_test(a: np.ndarray, b: np.ndarray, *, test_train_ratio: float
                     ) -> tuple[float, float, float]:
    """Corrected resampled paired t-test of fold scores ``a`` vs ``b`` (same folds, same order).

    Returns (mean difference a - b, t statistic, two-sided p-value). Identical scores give
    t = 0 and p = 1.

    >>> d, t, p = corrected_t_test(np.array([10., 11, 12, 10, 11]), np.array([12., 13, 13, 12, 14]),
    ...                            test_train_ratio=0.25)
    >>> round(d, 2), p < 0.05
    (-2.0, True)
    """
    from scipy import stats

    a = np.asarray(a, dtype="float64")
    b = np.asarray(b, dtype="float64")
    d = a - b
    j = len(d)
    mean = float(d.mean())
    var = float(d.var(ddof=1)) if j > 1 else 0.0
    if j < 2 or var == 0.0:
        if mean == 0.0:
            return mean, 0.0, 1.0
        return mean, math.copysign(math.inf, mean), 0.0
    t = mean / math.sqrt((1 / j + test_train_ratio) * var)
    p = float(2 * stats.t.sf(abs(t), j - 1))
    return mean, float(t), p


def compare(name_a: str, scores_a: np.ndarray, name_b: str, scores_b: np.ndarray, *,
            metric: str = "rmse", test_train_ratio: float, alpha: float = 0.05) -> Comparison:
    """Is model ``a`` really different from model ``b`` on ``metric``? A sentence says which
    is better, or that the difference could be chance."""
    diff, t, p = corrected_t_test(scores_a, scores_b, test_train_ratio=test_train_ratio)
    significant = p < alpha
    lower_better = METRICS.get(metric, True)
    title = METRIC_TITLES.get(metric, metric)
    if not significant:
        verdict = (f"no real difference in {title} (p = {p:.3g} ≥ {alpha}): "
                   f"{diff:+,.4g} could be chance")
    else:
        better = name_a if (diff < 0) == lower_better else name_b
        verdict = f"{better} is better in {title} by {abs(diff):,.4g} (p = {p:.3g})"
    return Comparison(name_a, name_b, metric, diff, t, p, significant, verdict)

"""Evaluation of a binary classifier: metrics with bootstrap confidence intervals, threshold
choice (max F1, a target recall, a cost matrix), calibration, and a lift / gains table.

Everything works on arrays of true labels (0/1) and scores (probability of class 1), vectorised.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1]); p = np.array([0.1, 0.6, 0.4, 0.9])
>>> choose_threshold(y, p, strategy="max_f1").value
0.4
>>> binary_metrics(y, p, 0.5)["roc_auc"]
0.75
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from headwater.core import ConfigError

Strategy = Literal["max_f1", "target_recall", "cost", "fixed"]

#: Metrics that need no threshold, and those computed at the chosen threshold.
RANKING = ("roc_auc", "pr_auc", "log_loss", "brier")
AT_THRESHOLD = ("accuracy", "precision", "recall", "f1")


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from scipy.stats import rankdata

    pos = y == 1
    n1 = int(pos.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((rankdata(p)[pos].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def _average_precision(y: np.ndarray, p: np.ndarray) -> float:
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    tp = np.cumsum(ys)
    # evaluate at the last index of each distinct score (ties count together)
    last = np.r_[np.nonzero(np.diff(ps))[0], len(ps) - 1]
    tp_at, n_at = tp[last], last + 1
    positives = tp[-1]
    if positives == 0:
        return float("nan")
    precision = tp_at / n_at
    recall = tp_at / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _counts(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    pred = p >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    return tp, fp, fn, tn


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 (at ``threshold``), ROC-AUC, PR-AUC, log loss, Brier,
    and the confusion matrix counts."""
    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(p, dtype="float64"), 0.0, 1.0)
    tp, fp, fn, tn = _counts(y, p, threshold)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    eps = 1e-15
    pc = np.clip(p, eps, 1 - eps)
    return {
        "accuracy": _ratio(tp + tn, len(y)),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "roc_auc": _auc(y, p),
        "pr_auc": _average_precision(y, p),
        "log_loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
        "brier": float(np.mean((p - y) ** 2)),
        "threshold": float(threshold),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }


def bootstrap_intervals(y: np.ndarray, p: np.ndarray, threshold: float, *, resamples: int = 500,
                        level: float = 0.95, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence intervals of every metric in :func:`binary_metrics`.

    Resamples are stratified (the class balance of each resample matches the sample), so every
    resample has both classes.
    """
    if resamples <= 0:
        return {}
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype="float64")
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    names = (*RANKING, *AT_THRESHOLD)
    values = np.empty((resamples, len(names)))
    for b in range(resamples):  # one vectorised metric pass per resample
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        m = binary_metrics(y[idx], p[idx], threshold)
        values[b] = [m[n] for n in names]
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(values, [alpha, 1 - alpha], axis=0)
    return {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(names)}


@dataclass
class ThresholdChoice:
    """A decision threshold and what it gives on the data it was chosen on."""

    value: float
    strategy: str
    precision: float
    recall: float
    f1: float
    flagged_share: float
    expected_cost: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict."""
        return asdict(self)


def threshold_curve(y: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Counts at every distinct score used as threshold (predict 1 when score >= threshold)."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype="float64")
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    last = np.r_[np.nonzero(np.diff(ps))[0], len(ps) - 1]
    tp = np.cumsum(ys)[last].astype("float64")
    fp = (last + 1 - tp).astype("float64")
    positives, negatives = float(ys.sum()), float(len(ys) - ys.sum())
    fn, tn = positives - tp, negatives - fp
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, positives, out=np.zeros_like(tp), where=positives > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                   where=(precision + recall) > 0)
    return {"threshold": ps[last], "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": precision, "recall": recall, "f1": f1,
            "flagged": (tp + fp) / len(ys)}


def choose_threshold(y: np.ndarray, p: np.ndarray, *, strategy: Strategy = "max_f1",
                     target_recall: float = 0.8, costs: dict[str, float] | None = None,
                     value: float = 0.5) -> ThresholdChoice:
    """Choose the decision threshold on scores ``p`` for labels ``y``.

    Parameters
    ----------
    strategy:
        ``max_f1``; ``target_recall`` (the highest threshold whose recall reaches
        ``target_recall``, i.e. the fewest customers flagged); ``cost`` (the lowest mean cost per
        customer under ``costs`` with keys true_positive, false_positive, false_negative,
        true_negative); ``fixed`` (``value``).

    Choose on out-of-fold scores of the training part, then report the holdout at that value.
    """
    curve = threshold_curve(y, p)
    n = len(y)
    note = ""
    expected = None
    if strategy == "max_f1":
        i = int(np.argmax(curve["f1"]))
    elif strategy == "target_recall":
        if not 0 < target_recall <= 1:
            raise ConfigError(f"target_recall must be in (0, 1], got {target_recall}",
                              hint="set ml.train.<task>.threshold.target_recall, e.g. 0.8")
        ok = np.flatnonzero(curve["recall"] >= target_recall - 1e-12)
        i = int(ok[0]) if len(ok) else len(curve["threshold"]) - 1
    elif strategy == "cost":
        c = {"true_positive": 0.0, "false_positive": 1.0, "false_negative": 5.0,
             "true_negative": 0.0, **(costs or {})}
        total = (c["true_positive"] * curve["tp"] + c["false_positive"] * curve["fp"]
                 + c["false_negative"] * curve["fn"] + c["true_negative"] * curve["tn"]) / n
        i = int(np.argmin(total))
        expected = float(total[i])
        nobody = (c["false_negative"] * y.sum() + c["true_negative"] * (n - y.sum())) / n
        if nobody <= expected:
            note = "acting on nobody costs no more: check the cost matrix"
    elif strategy == "fixed":
        m = binary_metrics(y, p, value)
        return ThresholdChoice(value=float(value), strategy=strategy, precision=m["precision"],
                               recall=m["recall"], f1=m["f1"],
                               flagged_share=(m["tp"] + m["fp"]) / n)
    else:
        raise ConfigError(f"unknown threshold strategy '{strategy}'",
                          hint="use max_f1, target_recall, cost or fixed")
    return ThresholdChoice(value=float(curve["threshold"][i]), strategy=strategy,
                           precision=float(curve["precision"][i]),
                           recall=float(curve["recall"][i]), f1=float(curve["f1"][i]),
                           flagged_share=float(curve["flagged"][i]), expected_cost=expected,
                           note=note)


def gains_table(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> list[dict[str, Any]]:
    """Lift / gains by score decile (highest scores first), for the retention team.

    Each row: the decile, its customers and churners, churn rate, the share of all churners
    caught so far (cumulative gain), and lift (rate / overall rate), per bin and cumulative.
    """
    y = np.asarray(y).astype(int)
    order = np.argsort(-np.asarray(p, dtype="float64"), kind="stable")
    groups = np.array_split(order, bins)
    overall = y.mean() if len(y) else 0.0
    total = y.sum()
    rows, caught, seen = [], 0, 0
    for k, idx in enumerate(groups, start=1):
        churners = int(y[idx].sum())
        caught += churners
        seen += len(idx)
        rate = churners / len(idx) if len(idx) else 0.0
        rows.append({"decile": k, "customers": len(idx), "churners": churners,
                     "churn_rate": rate, "min_score": float(np.asarray(p)[idx].min()),
                     "cumulative_gain": caught / total if total else 0.0,
                     "lift": rate / overall if overall else 0.0,
                     "cumulative_lift": (caught / seen) / overall if overall else 0.0})
    return rows


def calibration_table(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> list[dict[str, Any]]:
    """Mean predicted vs observed churn rate in quantile bins of the score."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype="float64")
    order = np.argsort(p, kind="stable")
    return [{"bin": k, "customers": len(idx), "mean_predicted": float(p[idx].mean()),
             "observed_rate": float(y[idx].mean())}
            for k, idx in enumerate(np.array_split(order, bins), start=1) if len(idx)]

"""Matplotlib figures for a binary classifier (Agg backend; nothing opens a window)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _figure(width: float = 5.2, height: float = 4.0) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.grid(alpha=0.3)
    return fig, ax


def roc_figure(y: np.ndarray, scores: dict[str, np.ndarray]) -> Any:
    """ROC curves of one or more models on the same labels."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = _figure()
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def pr_figure(y: np.ndarray, scores: dict[str, np.ndarray]) -> Any:
    """Precision-recall curves; the dotted line is the base rate."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig, ax = _figure()
    for name, p in scores.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(y, p):.3f})")
    ax.axhline(float(np.mean(y)), color="k", ls=":", lw=1)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    ax.legend(loc="upper right", fontsize=8)
    return fig


def confusion_figure(tp: int, fp: int, fn: int, tn: int, *, labels: Sequence[str] = ("stays",
                     "leaves"), threshold: float = 0.5) -> Any:
    """The confusion matrix at the chosen threshold."""
    fig, ax = _figure(4.2, 3.8)
    ax.grid(False)
    matrix = np.array([[tn, fp], [fn, tp]])
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:,}", ha="center", va="center",
                color="white" if v > matrix.max() / 2 else "black", fontsize=12)
    ax.set_xticks([0, 1], [f"predicted {labels[0]}", f"predicted {labels[1]}"])
    ax.set_yticks([0, 1], [f"actually {labels[0]}", f"actually {labels[1]}"])
    ax.set_title(f"Confusion matrix (threshold {threshold:.3f})")
    return fig


def calibration_figure(rows: list[dict[str, Any]]) -> Any:
    """Observed rate vs mean predicted probability per bin (the diagonal is perfect)."""
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.plot([r["mean_predicted"] for r in rows], [r["observed_rate"] for r in rows], "o-")
    ax.set(xlabel="mean predicted probability", ylabel="observed churn rate",
           title="Calibration", xlim=(0, 1), ylim=(0, 1))
    return fig


def gains_figure(rows: list[dict[str, Any]]) -> Any:
    """Cumulative gains: share of churners caught when acting on the top k deciles."""
    fig, ax = _figure()
    x = [0] + [r["decile"] * 10 for r in rows]
    ax.plot(x, [0] + [100 * r["cumulative_gain"] for r in rows], "o-", label="model")
    ax.plot([0, 100], [0, 100], "k:", lw=1, label="random")
    ax.set(xlabel="% of customers contacted (highest scores first)",
           ylabel="% of churners reached", title="Cumulative gains")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def threshold_figure(curve: dict[str, np.ndarray], chosen: float) -> Any:
    """Precision, recall and F1 against the threshold, with the chosen value marked."""
    fig, ax = _figure()
    for key in ("precision", "recall", "f1"):
        ax.plot(curve["threshold"], curve[key], label=key)
    ax.axvline(chosen, color="k", ls="--", lw=1, label=f"chosen {chosen:.3f}")
    ax.set(xlabel="threshold", ylabel="value", title="Threshold choice", xlim=(0, 1))
    ax.legend(fontsize=8)
    return fig


def importance_figure(rows: list[dict[str, Any]], *, top: int = 15) -> Any:
    """Permutation importance (drop in ROC-AUC when a column is shuffled), with spread."""
    rows = rows[:top][::-1]
    fig, ax = _figure(5.6, max(2.5, 0.3 * len(rows) + 1))
    ax.barh([r["column"] for r in rows], [r["importance"] for r in rows],
            xerr=[r["std"] for r in rows], color="#0b6e99")
    ax.set(xlabel="drop in ROC-AUC when shuffled", title="Feature importance (holdout)")
    ax.tick_params(axis="y", labelsize=8)
    return fig


def leaderboard_figure(rows: list[dict[str, Any]], metric: str = "roc_auc") -> Any:
    """CV mean ± std and holdout score of every algorithm."""
    fig, ax = _figure(5.6, 3.6)
    names = [r["algorithm"] for r in rows]
    x = np.arange(len(names))
    ax.errorbar(x - 0.1, [r["cv_mean"] for r in rows], yerr=[r["cv_std"] for r in rows],
                fmt="o", label="CV mean ± std")
    ax.plot(x + 0.1, [r[f"holdout_{metric}"] for r in rows], "s", label="holdout")
    ax.set_xticks(x, names, rotation=20)
    ax.set(ylabel=metric, title="Leaderboard")
    ax.legend(fontsize=8)
    return fig

"""The recommendation report: every model against popularity on one split, with plots.

Built with the same :class:`~headwater.ml._report.Report` as the churn and CV reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from headwater.ml.recommend._results import Evaluation

_METRICS = ("ndcg", "precision", "recall", "map", "hit_rate")


def metrics_figure(ev: Evaluation) -> Any:
    """Grouped bars: NDCG, precision, recall, MAP and hit rate at k per model."""
    from headwater.ml._plots import _figure

    fig, ax = _figure(6.4, 3.8)
    width = 0.8 / len(ev.results)
    x = np.arange(len(_METRICS))
    for j, r in enumerate(ev.results):  # the order (and colours) of the curves
        ax.bar(x + j * width - 0.4 + width / 2, [r.metrics[f"{m}@{ev.k}"] for m in _METRICS],
               width, label=r.name)
    ax.set_xticks(x, [f"{m}@{ev.k}" for m in _METRICS])
    ax.set(ylabel="test value", title=f"Models on the {ev.split} split (higher is better)")
    ax.legend(fontsize=8)
    return fig


def curve_figure(ev: Evaluation, metric: str) -> Any:
    """``metric`` at each cut-off k, one line per model."""
    from headwater.ml._plots import _figure

    fig, ax = _figure()
    for r in ev.results:
        ax.plot([p["k"] for p in r.by_k], [p[metric] for p in r.by_k], "o-", label=r.name)
    ax.set(xlabel="k (list length)", ylabel=f"{metric}@k", title=f"{metric} by list length")
    ax.legend(fontsize=8)
    return fig


def diversity_figure(ev: Evaluation) -> Any:
    """Catalogue coverage against novelty: which models recommend beyond the head."""
    from headwater.ml._plots import _figure

    fig, ax = _figure()
    for r in ev.results:
        ax.scatter(r.metrics["coverage"], r.metrics.get("novelty", 0.0), s=60)
        ax.annotate(r.name, (r.metrics["coverage"], r.metrics.get("novelty", 0.0)),
                    textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set(xlabel=f"catalogue coverage of the top {ev.k}", ylabel="novelty (bits)",
           title="Beyond the most popular items")
    return fig


def figures(ev: Evaluation) -> dict[str, Any]:
    """Every figure of the report by file name."""
    return {"metrics.png": metrics_figure(ev), "ndcg_by_k.png": curve_figure(ev, "ndcg"),
            "recall_by_k.png": curve_figure(ev, "recall"),
            "diversity.png": diversity_figure(ev)}


def write_report(ev: Evaluation, path: str | Path) -> Path:
    """The HTML report: data, protocol, leaderboard, plots, chosen parameters, model card."""
    from headwater.ml._report import Report

    best = ev.result(ev.best)
    base = ev.baseline
    report = Report("Recommendation models", subtitle=f"{ev.source} · best: {ev.best}")
    report.add_heading("Model card")
    ratio = (f"{best.metrics[f'ndcg@{ev.k}'] / base.metrics[f'ndcg@{ev.k}']:.2f}x popularity"
             if base is not None and base.metrics[f"ndcg@{ev.k}"] > 0 else "no baseline")
    report.add_model_card({
        "Model": f"{best.name} ({best.title}); cold-start fallback: {ev.fallback}",
        "Intended use": "rank items a user has not seen yet; fresh interactions are merged "
                        "into the history at request time",
        "Data": f"{ev.source}: {ev.interactions:,} interactions, {ev.users:,} users, "
                f"{ev.items:,} items, {ev.pairs:,} user-item pairs",
        f"Test NDCG@{ev.k}": f"{best.metrics[f'ndcg@{ev.k}']:.4f} ({ratio})",
        "Limitations": "offline metrics on held-out history, not online click-through; items "
                       "with no interactions reach the model only through refresh",
        "Parameters": best.params or "none"})
    report.add_heading("Protocol")
    report.add_list([
        f"split: per-user {ev.split}, {ev.fraction:.0%} of each user's items held out "
        f"({ev.test_pairs:,} test pairs)",
        "tuning: Optuna on a second split of the training part (same kind), objective "
        f"NDCG@{ev.k}; the best model is chosen by that validation score, never by the test",
        f"scoring: top {ev.k} over items the user has not seen in training; averages over "
        f"users with at least one test item",
        "coverage: share of the catalogue recommended to anyone; novelty: mean -log2 of the "
        "share of users who know a recommended item"])
    report.add_heading("Leaderboard")
    report.add_table(ev.leaderboard())
    for name, fig in figures(ev).items():
        report.add_figure(fig, caption=name.removesuffix(".png"))
    report.add_heading("Chosen parameters")
    report.add_table([{"model": r.name, "parameters": ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.params.items())
        or "none", "trials": r.trials} for r in ev.results])
    return report.write(path)

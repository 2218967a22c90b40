"""The HTML report of a cross-validation run: leaderboard, comparisons, per-fold bars,
predicted vs actual, residuals and the learning curve (PNG plots embedded in one file)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from headwater.ml._report import Report
from headwater.ml._stats import METRIC_TITLES, METRICS

if TYPE_CHECKING:
    from headwater.ml._cv import CVResult

#: Most points drawn in scatter plots (a random, seeded sample above that).
MAX_POINTS = 6000


def leaderboard_rows(result: CVResult) -> list[dict[str, Any]]:
    """One row per model, best first: mean ± std and the confidence interval of each metric."""
    level = f"{result.spec.confidence:.0%}"
    rows = []
    for r in result.summary:
        row: dict[str, Any] = {"rank": r["rank"], "model": r["model"]}
        for m in METRICS:
            if m == "mape":
                row[METRIC_TITLES[m]] = f"{r[m]:.1%} ± {r[m + '_std']:.1%}"
            else:
                row[METRIC_TITLES[m]] = f"{_fmt(r[m])} ± {_fmt(r[m + '_std'])}"
        row[f"RMSE {level} CI"] = f"{_fmt(r['rmse_low'])} – {_fmt(r['rmse_high'])}"
        row["vs best"] = (r["vs_best"] if r["vs_best"] == "best"
                          else f"{r['vs_best']} (p={r['p_value']:.2g})")
        row["fit s"] = f"{r['fit_s']:.1f}"
        rows.append(row)
    return rows


def _fmt(value: float) -> str:
    if value != value:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def write_cv_report(result: CVResult, path: str | Path) -> Path:
    """Write the report of ``result`` to ``path`` (one self-contained HTML file)."""
    import matplotlib

    matplotlib.use("Agg")
    spec = result.spec
    split = {"kfold": "shuffled k-fold", "repeated": "repeated k-fold",
             "stratified": "stratified k-fold on target bins", "group": "group k-fold",
             "time": "time-series splits"}[spec.splitter]
    report = Report(f"Cross-validation: {result.target}",
                    subtitle=f"{result.source} · {result.rows:,} rows · {split}, k={spec.folds}"
                    f"{f' × {spec.n_repeats} repeats' if spec.n_repeats > 1 else ''} · run "
                    f"{result.run_id or '-'}")
    report.add_heading("Leaderboard")
    report.add_text(f"Best: {result.best} (lowest mean RMSE). Intervals use the corrected "
                    "variance of Nadeau & Bengio, since folds share training rows; 'tie' means "
                    "the paired corrected t-test on the same folds finds no real difference "
                    f"from the best at α = {spec.alpha}.")
    report.add_table(leaderboard_rows(result))
    report.add_list([c["verdict"] if c["a"] == c["b"] else f"{c['a']} vs {c['b']}: {c['verdict']}"
                     for c in result.comparisons])
    report.add_heading("Folds")
    report.add_figure(_fold_bars(result), caption="RMSE of each model on each fold")
    report.add_figure(_intervals(result), caption=f"mean RMSE with {spec.confidence:.0%} "
                      "confidence interval")
    report.add_heading(f"Best model: {result.best}")
    best = result.predictions[result.predictions.model == result.best]
    report.add_figure(_predicted_vs_actual(best), caption="out-of-fold predictions vs actual")
    report.add_figure(_residuals(best), caption="residuals (actual − predicted)")
    if len(result.learning_curve):
        report.add_figure(_learning_curve(result), caption="learning curve (mean over folds)")
    report.add_heading("Settings")
    notes = [f"target: {result.target}"
             + (" (fitted on log(target), predictions exp()-ed back)" if result.log_target
                else ""),
             "features added inside each fold: " + (", ".join(result.features) or "none"),
             f"models: {', '.join(spec.models)}", f"seed: {spec.seed}"]
    if spec.nested.enabled:
        notes.append(f"nested CV: {spec.nested.trials} Optuna trials on an inner "
                     f"{spec.nested.inner_folds}-fold per outer fold")
    report.add_list(notes)
    if result.tuned:
        report.add_table([{"model": m, **p} for m, ps in result.tuned.items() for p in ps],
                         title="Parameters chosen inside each outer fold")
    report.add_table(result.scores.round(4), title="Every fold")
    return report.write(path)


def _figure(width: float = 6.4, height: float = 4.0) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _fold_bars(result: CVResult) -> Any:
    fig, ax = _figure(7.5, 4.0)
    models = [r["model"] for r in result.summary]
    scores = result.scores
    labels = (scores[scores.model == models[0]].apply(
        lambda r: f"r{r['repeat']}f{r['fold']}", axis=1).tolist())
    width = 0.8 / len(models)
    x = np.arange(len(labels))
    for i, model in enumerate(models):
        ax.bar(x + i * width, scores[scores.model == model].rmse.to_numpy(), width, label=model)
    ax.set_xticks(x + 0.4 - width / 2, labels, rotation=90 if len(labels) > 10 else 0)
    ax.set_ylabel("RMSE")
    ax.legend(fontsize=7, ncols=min(4, len(models)), loc="upper center",
              bbox_to_anchor=(0.5, -0.12 if len(labels) <= 10 else -0.25))
    return fig


def _intervals(result: CVResult) -> Any:
    fig, ax = _figure(6.0, 0.5 + 0.45 * len(result.summary))
    rows = result.summary[::-1]
    y = np.arange(len(rows))
    mean = np.array([r["rmse"] for r in rows])
    low = np.array([r["rmse_low"] for r in rows])
    high = np.array([r["rmse_high"] for r in rows])
    ax.errorbar(mean, y, xerr=[mean - low, high - mean], fmt="o", capsize=4)
    ax.set_yticks(y, [r["model"] for r in rows])
    ax.set_xlabel("RMSE")
    return fig


def _sample(frame: Any) -> Any:
    return frame.sample(MAX_POINTS, random_state=0) if len(frame) > MAX_POINTS else frame


def _predicted_vs_actual(best: Any) -> Any:
    fig, ax = _figure(5.0, 5.0)
    s = _sample(best)
    ax.scatter(s.actual, s.predicted, s=4, alpha=0.3)
    lo = float(min(s.actual.min(), s.predicted.min()))
    hi = float(max(s.actual.max(), s.predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted (out of fold)")
    return fig


def _residuals(best: Any) -> Any:
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.6))
    s = _sample(best)
    residual = s.actual - s.predicted
    left.scatter(s.predicted, residual, s=4, alpha=0.3)
    left.axhline(0, color="black", linewidth=1)
    left.set_xlabel("predicted")
    left.set_ylabel("actual − predicted")
    right.hist(best.actual - best.predicted, bins=60)
    right.set_xlabel("residual")
    return fig


def _learning_curve(result: CVResult) -> Any:
    fig, ax = _figure(5.5, 3.8)
    curve = result.learning_curve.groupby("share").agg(
        n=("n_train", "mean"), train=("train_rmse", "mean"), test=("test_rmse", "mean"),
        test_sd=("test_rmse", "std")).reset_index()
    ax.plot(curve.n, curve.train, "o-", label="training rows")
    ax.plot(curve.n, curve.test, "o-", label="test fold")
    ax.fill_between(curve.n, curve.test - curve.test_sd.fillna(0),
                    curve.test + curve.test_sd.fillna(0), alpha=0.2)
    ax.set_xlabel("training rows")
    ax.set_ylabel("RMSE")
    ax.set_title(result.best)
    ax.legend()
    return fig

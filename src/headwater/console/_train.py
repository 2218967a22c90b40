"""A churn training result on a terminal: leaderboard, holdout metrics, where things went."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from headwater.ml._train import TrainResult


def train_leaderboard(result: TrainResult) -> Table:
    """The leaderboard as a Rich table, best (by CV) first."""
    table = Table(title=f"{result.name}: {result.train_rows:,} rows tuned with CV, "
                  f"{result.holdout_rows:,} held out", header_style="bold cyan")
    for col in ("algorithm", "CV AUC", "± std", "holdout AUC", "PR-AUC", "log loss", "Brier",
                "trials", "tune s"):
        table.add_column(col, justify="left" if col == "algorithm" else "right")
    for i, r in enumerate(result.leaderboard):
        style = "bold green" if i == 0 else ""
        table.add_row(Text(r["algorithm"], style=style), f"{r['cv_mean']:.4f}",
                      f"{r['cv_std']:.4f}", f"{r['holdout_roc_auc']:.4f}",
                      f"{r['holdout_pr_auc']:.4f}", f"{r['holdout_log_loss']:.3f}",
                      f"{r['holdout_brier']:.3f}",
                      f"{r['trials']}/{r['pruned']}p" if r["trials"] else "blend",
                      f"{r['tune_s']:.0f}")
    return table


def train_metrics(result: TrainResult) -> Table:
    """Holdout metrics of the best model with 95 % bootstrap intervals."""
    table = Table(title=f"holdout: {result.best} at threshold {result.threshold.value:.3f} "
                  f"({result.threshold.strategy})", header_style="bold cyan")
    for col in ("metric", "value", "95% CI"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for key in ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "precision", "recall",
                "f1"):
        lo_hi = result.intervals.get(key)
        table.add_row(key, f"{result.metrics[key]:.4f}",
                      f"{lo_hi[0]:.3f} – {lo_hi[1]:.3f}" if lo_hi else "")
    m = result.metrics
    table.caption = (f"confusion: TP {m['tp']:,}  FP {m['fp']:,}  FN {m['fn']:,}  TN {m['tn']:,}"
                     + (f" · mean cost {m['mean_cost']:.3f}" if "mean_cost" in m else ""))
    return table


def print_train_result(console: Console, result: TrainResult) -> None:
    """Leaderboard, holdout metrics, what preparation dropped, where things went."""
    if result.prepare.dropped:
        console.print("[yellow]preparation dropped:[/] " + "; ".join(
            f"{c} ({why})" for c, why in result.prepare.dropped.items()))
    converted = [d for d in result.prepare.decisions if d.action == "converted"]
    if converted:
        console.print("[cyan]converted:[/] " + "; ".join(f"{d.column}: {d.note}"
                                                         for d in converted))
    console.print(train_leaderboard(result))
    console.print(train_metrics(result))
    top = result.gains[:3]
    if top:
        console.print(f"contacting the top 30 % of customers reaches "
                      f"[bold]{100 * top[-1]['cumulative_gain']:.0f} %[/] of churners "
                      f"(lift {top[0]['lift']:.1f} in the top decile)")
    if result.registered:
        r = result.registered
        console.print(f"registered [bold]{r['name']}[/] version {r['version']} as "
                      f"@{r['alias']} · predict with: headwater predict {r['name']}@{r['alias']} "
                      "--data TABLE|FILE")
    if result.report_path:
        console.print(f"report: {result.report_path}")

"""Quickstart step: synthetic telecom churn → six algorithms compared → best registered → scored."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from headwater.config import load_project

#: Small and quick: the full default (`headwater train churn`) tunes for a minute on 7,043 rows.
ROWS = 2500
FAST = {"time_budget_s": 12.0, "folds": 3, "trials": 10, "bootstrap": 100}


def step(root: Path, console: Console) -> None:
    """Generate churn data with a known ceiling, train every algorithm, register and predict."""
    from headwater.console import print_train_result
    from headwater.ml import predict, train
    from headwater.ml.datasets import make_churn

    project = load_project(root)
    folder = root / "churn"
    data = make_churn(ROWS, seed=7)
    data.to_csv(folder / "customers.csv")
    fresh = make_churn(200, seed=8).frame.drop(columns=["Churn"])
    fresh.to_csv(folder / "new_customers.csv", index=False)
    console.print(f"{ROWS:,} synthetic telecom customers in churn/customers.csv "
                  f"({data.y.mean():.0%} churn; numbers stored as text with blanks, Yes/No "
                  f"columns, an ID column)")
    with console.status("training logreg, tree, forest, svm, mlp, lightgbm (quick budget)"):
        result = train(project, "churn", data="churn/customers.csv", target="Churn", **FAST)
    print_train_result(console, result)
    ceiling = data.ceiling(result.holdout_index)
    console.print(f"the generator knows every customer's true churn probability: best "
                  f"achievable holdout ROC-AUC {ceiling:.4f}; the model reached "
                  f"{result.metrics['roc_auc']:.4f}")
    if result.registered:
        ref = f"{result.registered['name']}@{result.registered['alias']}"
        scored = predict(project, ref, "churn/new_customers.csv")
        console.print(f"scored {scored.rows} new customers with {ref}: {scored.flagged} flagged "
                      f"for the retention team, in table {scored.table}")
    hw = f"headwater -p {root}"
    console.print(f"try: {hw} train churn --data churn/customers.csv --target Churn | "
                  f"{hw} models | {hw} predict churn@challenger --data churn/new_customers.csv")

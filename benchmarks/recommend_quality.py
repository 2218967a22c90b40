"""Offline recommendation quality: every model against popularity on MovieLens-100K's protocol.

    .venv/bin/python benchmarks/recommend_quality.py ml-100k/u.data     # the real file
    .venv/bin/python benchmarks/recommend_quality.py                    # synthetic stand-in
    .venv/bin/python benchmarks/recommend_quality.py --write-udata /tmp/u.data   # write it, exit

Protocol (Microsoft Recommenders' MovieLens-100K table): every rating is a positive interaction;
a per-user random 75/25 split; each model ranks the items the user did not rate in training and
the top 10 are scored against the held-out 25 %. Hyperparameters are tuned with Optuna on a
validation split carved from the training part (never the test); the default best is the model
with the highest validation NDCG@10, exactly what ``headwater recommend train`` registers.

Prints NDCG@10, Precision@10, Recall@10, MAP@10 for each model, the ratio to popularity (the
baseline, same split, same run) and the default best. Target (issue 13): NDCG@10 >= 0.48. For
reference under this protocol on the real file: popularity about 0.25, item kNN about 0.38,
BPR 0.442, BiVAE 0.475, EASE about 0.48.

Without a path the script writes a MovieLens-100K-shaped synthetic ``u.data`` (943 users, 1,682
items, 100,000 ratings) and says so: its figures depend on the generator's settings and are NOT
comparable with the published ones; only the real file answers the target.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

REFERENCE = {"popularity": 0.25, "item kNN": 0.38, "BPR": 0.442, "BiVAE": 0.475, "EASE": 0.48}
TARGET = 0.48


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="a MovieLens u.data file (default: synthetic)")
    parser.add_argument("--trials", type=int, default=15, help="Optuna trials per model")
    parser.add_argument("--budget", type=float, default=300.0, help="tuning seconds in all")
    parser.add_argument("--models", default="item_knn,als,ease",
                        help="comma-separated models besides popularity")
    parser.add_argument("--seed", type=int, default=0, help="split and synthetic data seed")
    parser.add_argument("--write-udata", help="write the synthetic u.data here and exit")
    args = parser.parse_args()

    from headwater.ml.datasets import write_udata
    from headwater.ml.recommend import evaluate_recommender, load_interactions

    if args.write_udata:
        print(f"wrote {write_udata(args.write_udata, seed=args.seed)} (synthetic)")
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} (shared machine: timings are noisy)")
    with tempfile.TemporaryDirectory() as tmp:
        if args.path:
            path = Path(args.path).resolve()
            print(f"data: {path}")
        else:
            path = write_udata(Path(tmp) / "u.data", seed=args.seed)
            print("data: SYNTHETIC MovieLens-100K-shaped u.data (seed "
                  f"{args.seed}); not the real file, figures are not comparable with the "
                  "published ones")
        data = load_interactions(path)
        started = time.perf_counter()
        ev = evaluate_recommender(
            data, models=[m.strip() for m in args.models.split(",") if m.strip()],
            split="random", fraction=0.25, k=10, trials=args.trials,
            time_budget_s=args.budget, seed=args.seed,
            on_progress=lambda message, done, total: print(f"  [{done}/{total}] {message}",
                                                           flush=True))
        seconds = time.perf_counter() - started
    print(f"{ev.users:,} users, {ev.items:,} items, {ev.pairs:,} pairs; per-user random "
          f"75/25 split, {ev.test_pairs:,} test pairs; top 10 over unseen items")
    head = f"{'model':<12}{'valid':>8}{'NDCG@10':>9}{'P@10':>8}{'R@10':>8}{'MAP@10':>8}" \
           f"{'HR@10':>7}{'cover':>7}{'vs pop':>8}{'trials':>7}{'tune s':>8}"
    print(head)
    print("-" * len(head))
    for row in ev.leaderboard():
        print(f"{row['model']:<12}{row['validation_ndcg']:>8.4f}{row['ndcg']:>9.4f}"
              f"{row['precision']:>8.4f}{row['recall']:>8.4f}{row['map']:>8.4f}"
              f"{row['hit_rate']:>7.3f}{row['coverage']:>7.3f}{row['vs_popularity']:>7.2f}x"
              f"{row['trials']:>7}{row['tune_s']:>8.0f}")
    best = ev.result(ev.best)
    ndcg = best.metrics["ndcg@10"]
    base = ev.baseline.metrics["ndcg@10"] if ev.baseline else float("nan")
    print(f"default best (by validation NDCG@10): {ev.best} {best.params}")
    print(f"headwater NDCG@10 {ndcg:.4f} vs popularity {base:.4f} (same split): "
          f"{ndcg / base:.2f}x; target >= {TARGET} {'met' if ndcg >= TARGET else 'NOT met'}"
          f"{'' if args.path else ' (on synthetic data: not evidence either way)'}")
    print("reference NDCG@10 on the real file: "
          + ", ".join(f"{k} {v}" for k, v in REFERENCE.items()))
    print(f"wall time {seconds:.0f} s (tuning, fitting and scoring every model)")


if __name__ == "__main__":
    main()

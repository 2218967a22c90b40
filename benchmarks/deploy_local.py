"""Deploys under steady load on the local target: a blue/green switch and a canary rollout must
fail no request; a forced bad canary must roll back by itself; the router must add little.

    python benchmarks/deploy_local.py [--workers 4] [--pause 0.005] [--bake 3s]

Three versions of a small churn model are registered (the quickstart's: good, better, and a
faulty one trained without two-year contracts, whose server answers 500 on them: a real fault).
Under a closed-loop load of ``--workers`` clients (each waits ``--pause`` between requests):

1. v1 serves; then a blue/green switch to v2 and a canary of v2's twin (the same model as v3 —
   a good canary) both must succeed with zero failed requests; printed: requests sent, failed,
   p99 during the switch against p99 in the seconds before it.
2. the faulty version as a canary: printed, the time from its first 500 to the router's last
   answer from it (traffic back on the good version).
3. the router's overhead, same run: p99 of the same load sent straight to a version's process
   against through the router, for ``POST /predict`` and for ``GET /healthz`` (where the
   server does almost nothing, so the router's own cost shows).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pause", type=float, default=0.005)
    parser.add_argument("--bake", default="3s")
    parser.add_argument("--seconds", type=float, default=5.0, help="load before each switch "
                        "and for each overhead run")
    args = parser.parse_args()

    import numpy as np

    from headwater.config import load_project
    from headwater.deploy import deploy_model, open_target
    from headwater.quickstart._deploy import MODEL, Load, customers, free_port, register_versions

    root = Path(tempfile.mkdtemp(prefix="hw-deploy-bench-"))
    (root / "headwater.yaml").write_text(
        f"deploy:\n  model: {MODEL}\n"
        f"  strategy: {{kind: canary, canary_percent: 20, bake: {args.bake}, poll: 100ms}}\n"
        "  health: {max_error_rate: 0.02, max_p99_ms: 2000, min_requests: 20}\n"
        f"  targets:\n    bench: {{kind: local, port: {free_port()}}}\n")
    project = load_project(root)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at start; Python {platform.python_version()}")
    versions = register_versions(project)
    # a good canary: the "better" model registered again as its own version
    from headwater.ml import Tracker

    tracker = Tracker.for_project(project)
    mv = tracker.client.get_model_version(MODEL, str(versions["better"]))
    versions["twin"] = tracker.register(mv.source, MODEL,
                                        tags={"holdout_roc_auc": mv.tags["holdout_roc_auc"]})
    target = open_target(project, "bench")
    rows = customers()
    strategy = project.deploy.strategy

    def deploy(label: str, kind: str, bake: str | None = None) -> object:
        update = {"kind": kind, **({"bake": bake} if bake else {})}
        return deploy_model(project, "bench", f"{MODEL}/{versions[label]}", target=target,
                            strategy=strategy.model_copy(update=update), gate=False).deployment

    try:
        deploy("good", "all_at_once", "0s")
        print(f"\n{'switch':<28} {'result':<12} {'sent':>6} {'failed':>6} {'p99 before':>11} "
              f"{'p99 during':>11} {'took':>7}")
        with Load(target.url, rows, workers=args.workers, pause=args.pause) as load:
            for label, kind, title in (("better", "blue_green", "blue/green v1 -> v2"),
                                       ("twin", "canary", "canary v2 -> v4 (good)")):
                time.sleep(args.seconds)
                began = time.monotonic()
                d = deploy(label, kind)
                ended = time.monotonic()
                before, during = load.window(began - args.seconds, began), load.window(began,
                                                                                       ended)
                print(f"{title:<28} {d.status:<12} {during['sent']:>6} {during['failed']:>6} "
                      f"{before['p99_ms']:>9.1f}ms {during['p99_ms']:>9.1f}ms "
                      f"{ended - began:>6.1f}s")
            time.sleep(args.seconds)
            began = time.monotonic()
            bad_name = f"v{versions['faulty']}"
            d = deploy("faulty", "canary")
            time.sleep(0.5)
        first_bad = load.first(lambda r: r[0] >= began and r[1] != 200)
        last_bad = max((r[0] + r[2] for r in load.records if r[3] == bad_name), default=None)
        during = load.window(began, time.monotonic())
        print(f"{'canary of the faulty v3':<28} {d.status:<12} {during['sent']:>6} "
              f"{during['failed']:>6}   (all from {bad_name}: "
              f"{all(r[3] == bad_name for r in load.records if r[0] >= began and r[1] != 200)})")
        print(f"  reason: {d.reason}")
        if first_bad is not None and last_bad is not None:
            print(f"  first bad answer -> last answer from {bad_name}: "
                  f"{last_bad - first_bad:.2f} s (bake poll 100 ms, min_requests 20)")

        serving = next(v for v in target.variants() if v.weight == 1.0)
        port = target._processes()[serving.name]["port"]
        print(f"\nrouter overhead, {args.workers} clients, {args.seconds:.0f} s each, "
              "alternating, 2 rounds (p99 / median ms):")
        for method, path in (("POST", "/predict"), ("GET", "/healthz")):
            figures: dict[str, list[str]] = {"direct": [], "router": []}
            for _ in range(2):
                for name, url in (("direct", f"http://127.0.0.1:{port}"),
                                  ("router", target.url)):
                    with Load(url, rows, workers=args.workers, pause=args.pause, path=path,
                              method=method) as run:
                        time.sleep(args.seconds)
                    w = run.window()
                    median = float(np.median([r[2] for r in run.records])) * 1000
                    figures[name].append(f"{w['p99_ms']:.1f} / {median:.1f} ({w['sent']} req, "
                                         f"{w['failed']} failed)")
            for name, values in figures.items():
                print(f"  {method} {path:<9} {name:<7} " + " | ".join(values))
    finally:
        target.stop()
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

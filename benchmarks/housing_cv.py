"""Benchmark: headwater's default CV run on housing prices against the usual baselines.

Claim (issue 5): on California-housing-shaped data, the default best model's shuffled 5-fold CV
RMSE is at most 43,000 USD and the whole default run (every default model, learning curve,
report) takes under 2 minutes on 2 cores. Reference figures with the same protocol: linear
regression ~68,900; random forest (100 trees) ~48,500; HistGradientBoosting and LightGBM
defaults ~47,500-47,900; LightGBM with 1,000 trees and three ratio features ~43,800.

The baselines run in this same process, on exactly the same folds as headwater.

    .venv/bin/python benchmarks/housing_cv.py                        # synthetic, 20,640 rows
    .venv/bin/python benchmarks/housing_cv.py --csv housing.csv --target median_house_value
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import pandas as pd

RATIOS = (("total_rooms", "households"), ("total_bedrooms", "total_rooms"),
          ("population", "households"))


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {cpu}; load average {load}"


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the joblib workers, which are
    shut down first so that their time is counted)."""
    import resource

    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _baselines(frame: pd.DataFrame, target: str, folds: list, jobs: int) -> list[tuple]:
    import lightgbm as lgb
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = frame.drop(columns=[target])
    y = frame[target].to_numpy(dtype="float64")
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    text = [c for c in X.columns if c not in numeric]

    def prep() -> object:
        return make_column_transformer(
            (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (OneHotEncoder(handle_unknown="ignore"), text))

    Xc = X.copy()
    for c in text:
        Xc[c] = Xc[c].astype("category")
    splits = [(f.train, f.test) for f in folds]
    models = [
        ("linear regression", make_pipeline(prep(), LinearRegression()), X),
        ("random forest (100 trees)",
         make_pipeline(prep(), RandomForestRegressor(100, random_state=0, n_jobs=1)), X),
        ("HistGradientBoosting defaults",
         make_pipeline(prep(), HistGradientBoostingRegressor(random_state=0)), X),
        ("LightGBM defaults", lgb.LGBMRegressor(verbose=-1, n_jobs=1, random_state=0), Xc),
    ]
    if all(a in X.columns and b in X.columns for a, b in RATIOS):
        Xr = Xc.copy()
        for a, b in RATIOS:
            Xr[f"{a}_per_{b}"] = Xr[a] / Xr[b]
        models.append(("LightGBM 1,000 trees + 3 ratios",
                       lgb.LGBMRegressor(n_estimators=1000, verbose=-1, n_jobs=1,
                                         random_state=0), Xr))
    out = []
    for name, model, data in models:
        started = time.perf_counter()
        rmse = -cross_val_score(model, data, y, cv=splits, n_jobs=jobs,
                                scoring="neg_root_mean_squared_error")
        out.append((name, rmse.mean(), rmse.std(ddof=1), time.perf_counter() - started))
        print(f"  baseline {name}: {rmse.mean():,.0f} ± {rmse.std(ddof=1):,.0f} "
              f"({out[-1][3]:.1f} s)", flush=True)
    return out


def main() -> None:
    """Run headwater's default CV and the baselines on the same folds; print both."""
    from headwater.config import CVSpec
    from headwater.ml._cv import cross_validate
    from headwater.ml._cv_split import split_folds
    from headwater.ml._data import read_frame
    from headwater.ml.datasets import HOUSING_TARGET, make_housing

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, help="a CSV (or Parquet) file; default: synthetic")
    parser.add_argument("--target", default=HOUSING_TARGET, help="the column to predict")
    parser.add_argument("--rows", type=int, default=20_640, help="synthetic rows")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    parser.add_argument("--jobs", type=int, default=-1, help="parallel fits (-1: all cores)")
    args = parser.parse_args()

    if args.csv:
        frame, source = read_frame(args.csv)
    else:
        frame, source = make_housing(args.rows, seed=args.seed).to_pandas(), "synthetic housing"
    print(f"data: {source}, {len(frame):,} rows; target {args.target}")
    print(f"machine: {_machine()}")

    spec = CVSpec(jobs=args.jobs, track=False)
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    result = cross_validate(frame, args.target, spec, source=source)
    headwater_s = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    print(f"headwater default run: {headwater_s:.1f} s wall for {len(spec.models)} models × "
          f"{spec.folds} folds + learning curve; {cpu:.0f} CPU-seconds in all, i.e. "
          f"~{cpu / (os.cpu_count() or 1):.0f} s on {os.cpu_count()} idle cores")
    for row in result.summary:
        print(f"  {row['model']:<14} RMSE {row['rmse']:>10,.0f} ± {row['rmse_std']:>7,.0f}  "
              f"{row['vs_best']}")

    folds = split_folds(frame, frame[args.target].to_numpy(dtype="float64"),
                        splitter="kfold", folds=spec.folds, seed=spec.seed)
    started = time.perf_counter()
    baselines = _baselines(frame, args.target, folds, args.jobs)
    baseline_s = time.perf_counter() - started

    best = result.summary[0]
    strongest = min(baselines, key=lambda b: b[1])
    print()
    print(f"{'':42}{'RMSE':>10}{'± std':>9}{'seconds':>9}")
    print(f"{'headwater default best: ' + best['model']:42}{best['rmse']:>10,.0f}"
          f"{best['rmse_std']:>9,.0f}{headwater_s:>9.1f}  (whole run)")
    for name, rmse, sd, seconds in baselines:
        print(f"{'baseline: ' + name:42}{rmse:>10,.0f}{sd:>9,.0f}{seconds:>9.1f}")
    print(f"ratio headwater / strongest baseline ({strongest[0]}): "
          f"{best['rmse'] / strongest[1]:.3f}")
    print(f"targets: best RMSE <= 43,000 -> {'met' if best['rmse'] <= 43_000 else 'NOT met'}; "
          f"whole run < 120 s -> {'met' if headwater_s < 120 else 'NOT met'} at this load "
          f"({headwater_s:.0f} s wall; {cpu / (os.cpu_count() or 1):.0f} s of CPU per core), "
          f"baselines took {baseline_s:.1f} s")
    print(f"machine at the end: {_machine()}")


if __name__ == "__main__":
    main()

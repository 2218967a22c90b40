"""Two tuning worker processes share one Optuna study on the local PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

WORKER = """
import json, sys
from headwater.ml import Setting, get_algorithm, make_dataset, tune
from headwater.ml.datasets import make_churn

url, study, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
ds = make_dataset(make_churn(500, seed=1).frame, "Churn")
result = tune(get_algorithm("tree"), ds.X, ds.y.to_numpy(), Setting(rows=500, seed=0),
              folds=3, trials=12, storage=url, study_name=study, seed=seed)
print(json.dumps({"trials": result.trials, "cv_mean": result.cv_mean}))
"""


def test_two_workers_share_one_study(postgres_url: str, unique_name: str) -> None:
    import optuna

    from headwater.ml._tune import storage_url

    workers = [subprocess.Popen([sys.executable, "-c", WORKER, postgres_url, unique_name,
                                 str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for seed in (1, 2)]
    results = []
    for w in workers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    study = optuna.load_study(study_name=unique_name, storage=storage_url(postgres_url))
    try:
        done = [t for t in study.trials if t.state.name in {"COMPLETE", "PRUNED"}]
        # the study-wide cap holds across both workers (each may finish one trial past it)
        assert 12 <= len(done) <= 14
        assert len({t.user_attrs["worker"] for t in study.trials}) == 2
        # the workers report the best of the shared study
        assert max(r["cv_mean"] for r in results) == pytest.approx(study.best_value)
    finally:
        optuna.delete_study(study_name=unique_name, storage=storage_url(postgres_url))

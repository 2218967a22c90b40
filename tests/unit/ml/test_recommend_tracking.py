"""A trained recommender in MLflow: logged, registered with an alias, loaded back by reference."""

from __future__ import annotations

import pandas as pd
import pytest

from headwater.config import load_project
from headwater.core import ConfigError, NotFoundError
from headwater.ml import Tracker
from headwater.ml.datasets import make_events
from headwater.ml.recommend import load_interactions, load_recommender, train_recommender


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("recommend")
    project = load_project(root)
    data = load_interactions(make_events(users=150, items=90, views=2500, seed=7))
    result = train_recommender(data, models=["item_knn", "ease"], trials=2, time_budget_s=20,
                               tracker=Tracker.for_project(project), alias="challenger",
                               report_path=root / "report.html")
    return project, result


def test_registered_and_loaded_by_alias_and_version(trained) -> None:
    project, result = trained
    assert result.registered == {"name": "recommend", "version": 1, "alias": "challenger"}
    loaded = load_recommender("recommend@challenger", project=project)
    again = load_recommender("recommend/1", project=project)
    assert loaded.metadata["version"] == again.metadata["version"] == 1
    assert loaded.name == result.evaluation.best
    user = loaded.users[0]
    assert loaded.history(user) == result.recommender.history(user)
    assert loaded.recommend(loaded.history(user), k=5) == result.recommender.recommend(
        result.recommender.history(user), k=5)


def test_run_holds_metrics_plots_and_report(trained) -> None:
    project, result = trained
    client = Tracker.for_project(project).client
    run = client.get_run(result.mlflow_run_id)
    assert run.data.params["best_algorithm"] == result.evaluation.best
    assert "test_ndcg_at_10" in run.data.metrics and "popularity_ndcg_at_10" in run.data.metrics
    names = {a.path for a in client.list_artifacts(result.mlflow_run_id, "plots")}
    assert "plots/ndcg_by_k.png" in names
    html = result.report_path.read_text()
    assert "Leaderboard" in html and "data:image/png;base64" in html


def test_pyfunc_scores_a_frame_of_users(trained) -> None:
    project, result = trained
    import mlflow.pyfunc

    mlflow.set_tracking_uri(Tracker.for_project(project).tracking_uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    users = result.recommender.users[:2]
    out = model.predict(pd.DataFrame({"user_id": users, "k": [3, 3]}))
    assert list(out.columns) == ["user_id", "rank", "item_id", "score"]
    assert len(out) == 6 and out["rank"].tolist() == [1, 2, 3, 1, 2, 3]


def test_clear_errors_for_wrong_references(trained, tmp_path) -> None:
    project, _ = trained
    with pytest.raises(NotFoundError, match="no registered model 'nope@x'"):
        load_recommender("nope@x", project=project)
    from headwater.ml import Setting, get_algorithm, make_dataset
    from headwater.ml.datasets import make_churn

    ds = make_dataset(make_churn(200, seed=1).frame, "Churn")
    model = get_algorithm("logreg").pipeline({"C": 1.0}, Setting()).fit(ds.X, ds.y)
    tracker = Tracker.for_project(project)
    with tracker.start_run("churn"):
        uri = tracker.log_model(model, input_example=ds.X.head(3), predict_fn="predict_proba")
    tracker.register(uri, "churn", alias="challenger")
    with pytest.raises(ConfigError, match="is not a recommender"):
        load_recommender("churn@challenger", project=project)

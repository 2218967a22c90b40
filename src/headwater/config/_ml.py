"""The ``ml:`` section of headwater.yaml: tracking, registry and per-task training settings.

Example::

    ml:
      tracking_uri: null              # embedded: sqlite:///.headwater/mlflow.db
      registry: {alias: challenger}
      train:
        churn:
          data: customers             # a warehouse table, a SELECT query, or a CSV/Parquet file
          target: Churn
          time_budget_s: 90
          threshold:
            strategy: cost
            cost: {false_positive: 1, false_negative: 5}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from headwater.config._cv import CVSpec

#: Algorithms ``headwater train`` knows, in the order they are trained.
ALGORITHMS = ("logreg", "tree", "forest", "svm", "mlp", "lightgbm")

Algorithm = Literal["logreg", "tree", "forest", "svm", "mlp", "lightgbm"]
Metric = Literal["roc_auc", "average_precision", "neg_log_loss", "rmse", "mae", "r2"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CostMatrixSpec(_Spec):
    """What each outcome of a decision costs (or, negative, earns) for one customer."""

    true_positive: float = Field(0.0, description="cost of acting on a customer who would "
                                 "leave (the offer minus the value saved: may be negative)")
    false_positive: float = Field(1.0, description="cost of acting on a customer who would stay")
    false_negative: float = Field(5.0, description="cost of missing a customer who leaves")
    true_negative: float = Field(0.0, description="cost of leaving alone a customer who stays")


class ThresholdSpec(_Spec):
    """How the decision threshold on the churn probability is chosen (on out-of-fold scores)."""

    strategy: Literal["max_f1", "target_recall", "cost", "fixed"] = Field(
        "max_f1", description="max_f1, target_recall (the highest threshold reaching "
        "`target_recall`), cost (the lowest expected cost under `cost`), or fixed (`value`)")
    target_recall: float = Field(0.8, gt=0, le=1, description="recall to reach for target_recall")
    cost: CostMatrixSpec = Field(default_factory=CostMatrixSpec,
                             description="cost matrix for strategy cost")
    value: float = Field(0.5, ge=0, le=1, description="the threshold for strategy fixed")


class TrainSpec(_Spec):
    """Settings of one training task, e.g. ``ml.train.churn``."""

    data: str | None = Field(None, description="a warehouse table, a SELECT query, or a "
                             "CSV/Parquet file (relative to the project)")
    target: str | None = Field(None, description="the column to predict")
    task: Literal["auto", "classification", "regression"] = Field(
        "auto", description="auto: classification for a target with few distinct values")
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(ALGORITHMS),
                                        description=f"which to train and compare: {ALGORITHMS}")
    drop: list[str] = Field(default_factory=list, description="columns never used as features")
    holdout: float = Field(0.2, gt=0, lt=0.9, description="share of rows held out from tuning")
    folds: int = Field(5, ge=2, le=20, description="stratified k-fold CV inside tuning")
    trials: int = Field(40, ge=1, description="Optuna trials per algorithm at most")
    time_budget_s: float = Field(60.0, gt=0, description="tuning time for all algorithms "
                                 "together, in seconds (shared: more to those still improving)")
    seed: int = Field(42, description="seed for splits, samplers and models")
    metric: Metric | None = Field(
        None, description="what tuning maximises; default roc_auc (classification) or rmse")
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", description="weigh classes inversely to their frequency")
    encoding: Literal["auto", "onehot", "target"] = Field(
        "auto", description="categoricals: one-hot, target encoding, or auto (one-hot up to "
        "`max_onehot` levels, target encoding above)")
    max_onehot: int = Field(20, ge=2, description="most levels one-hot encoded under auto")
    feature_selection: Literal["none", "mutual_info", "l1", "permutation"] = Field(
        "none", description="select features inside the pipeline (fitted within folds)")
    leak_auc: float = Field(0.98, gt=0.5, le=1.0, description="a single column scoring this "
                            "ROC-AUC (or |correlation| for regression) alone is called leaky")
    ensembles: list[Literal["vote", "stack"]] = Field(
        default_factory=lambda: ["vote", "stack"],
        description="ensembles of the tuned models that compete on the leaderboard: a weighted "
        "soft vote (greedy selection) and a stacked logistic regression; [] for none")
    threshold: ThresholdSpec = Field(default_factory=ThresholdSpec)
    bootstrap: int = Field(500, ge=0, description="bootstrap resamples for confidence intervals")
    storage: SecretStr | None = Field(None, description="Optuna RDB storage URL shared by "
                                      "tuning workers, e.g. postgresql://user@host/db")
    register_best: bool = Field(True, description="register the best model in the registry")

    @model_validator(mode="after")
    def _some_algorithm(self) -> TrainSpec:
        if not self.algorithms:
            raise ValueError(f"algorithms is empty; pick from {list(ALGORITHMS)}")
        return self


class RegistrySpec(_Spec):
    """The MLflow Model Registry: model names and the alias a fresh best model gets."""

    alias: str = Field("challenger", description="alias given to a newly registered best model")
    prefix: str = Field("", description="prefix of registered model names (name = prefix + task)")


class MLSpec(_Spec):
    """Machine learning: MLflow tracking and registry, and training tasks."""

    tracking_uri: SecretStr | None = Field(
        None, description="MLflow tracking URI; default sqlite:///<project>/.headwater/mlflow.db "
        "with artifacts under .headwater/mlartifacts")
    registry_uri: SecretStr | None = Field(None, description="MLflow registry URI; default: "
                                           "the tracking URI")
    artifacts: str = Field(".headwater/mlartifacts", description="artifact folder for new "
                           "experiments with the embedded tracking store")
    experiment_prefix: str = Field("headwater", description="experiment name = prefix/task")
    registry: RegistrySpec = Field(default_factory=RegistrySpec)
    train: dict[str, TrainSpec] = Field(default_factory=dict,
                                        description="training tasks by name, e.g. churn")
    cv: dict[str, CVSpec] = Field(default_factory=dict, description="cross-validation tasks "
                                  "by name, e.g. housing (`headwater cv housing`)")

    def task(self, name: str) -> TrainSpec:
        """The settings of task ``name`` (defaults when headwater.yaml has none)."""
        return self.train.get(name) or TrainSpec()

"""The ``ml.cv`` section of headwater.yaml: cross-validation of regression models.

Example::

    ml:
      cv:
        housing:
          data: housing                  # a warehouse table, a SELECT query, or a CSV/Parquet file
          target: median_house_value
          splitter: kfold                # kfold | repeated | stratified | group | time
          folds: 5
          models: [ols, ridge, random_forest, lightgbm]
          log_target: auto
          features:
            ratios: [total_rooms/households, total_bedrooms/total_rooms]
            interactions: [median_income*housing_median_age]
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Regression models ``headwater cv`` knows, in the order they are reported.
CV_MODELS = ("ols", "ridge", "lasso", "elastic_net", "knn", "random_forest", "lightgbm")
#: The models run when none are named: every one (each takes seconds on 20,000 rows).
DEFAULT_CV_MODELS = CV_MODELS

CVModel = Literal["ols", "ridge", "lasso", "elastic_net", "knn", "random_forest", "lightgbm"]
Splitter = Literal["kfold", "repeated", "stratified", "group", "time"]

_NAME = r"[A-Za-z_][\w.]*"
_RATIO = re.compile(rf"^\s*(?P<a>{_NAME})\s*/\s*(?P<b>{_NAME})\s*$")
_PRODUCT = re.compile(rf"^\s*(?P<a>{_NAME})\s*\*\s*(?P<b>{_NAME})\s*$")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def parse_pair(text: str, op: Literal["/", "*"]) -> tuple[str, str]:
    """Split ``"a/b"`` (or ``"a*b"``) into its two column names; ValueError if malformed.

    >>> parse_pair("total_rooms / households", "/")
    ('total_rooms', 'households')
    """
    pattern = _RATIO if op == "/" else _PRODUCT
    match = pattern.match(text) if isinstance(text, str) else None
    if match is None:
        kind = "a ratio" if op == "/" else "an interaction"
        raise ValueError(f"{text!r} is not {kind}: write COLUMN{op}COLUMN, e.g. "
                         f"{'total_rooms/households' if op == '/' else 'income*age'}")
    return match.group("a"), match.group("b")


class CoordinatesSpec(_Spec):
    """Two coordinate columns (e.g. longitude and latitude) and what to derive from them."""

    columns: list[str] = Field(min_length=2, max_length=2,
                               description="the two coordinate columns: [x, y], e.g. "
                               "[longitude, latitude]")
    rotations: list[float] = Field(default_factory=lambda: [15.0, 30.0, 45.0, 60.0, 75.0],
                                   description="angles (degrees) of rotated coordinate axes; "
                                   "trees split along them (empty: none)")
    neighbours: list[int] = Field(default_factory=lambda: [8, 32],
                                  description="for each k, the mean (log) target of the k "
                                  "nearest training rows; fitted inside each fold, leaving each "
                                  "training row out of its own mean (empty: none)")

    @field_validator("neighbours")
    @classmethod
    def _positive_k(cls, value: list[int]) -> list[int]:
        bad = [k for k in value if k < 1]
        if bad:
            raise ValueError(f"neighbour counts must be at least 1 (got {bad})")
        return value


class FeatureSpec(_Spec):
    """Feature engineering that runs inside every fold, after column conversion."""

    auto: bool = Field(True, description="add ratios of strongly correlated size columns "
                       "(rank correlation >= 0.8, at most 8) and coordinate features when two "
                       "columns are named like longitude/latitude; decided on each training fold")
    ratios: list[str] = Field(default_factory=list,
                              description="ratio features as 'numerator/denominator', e.g. "
                              "total_rooms/households")
    interactions: list[str] = Field(default_factory=list,
                                    description="product features as 'a*b', e.g. "
                                    "median_income*housing_median_age")
    coordinates: CoordinatesSpec | None = Field(None, description="coordinate features "
                                                "(rotations, neighbour target means)")

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_pair(item, "/")
        return value

    @field_validator("interactions")
    @classmethod
    def _interactions(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_pair(item, "*")
        return value


class NestedSpec(_Spec):
    """Nested CV: tune each model inside every outer training fold (honest score of tuning)."""

    enabled: bool = Field(False, description="tune inside each outer fold")
    inner_folds: int = Field(3, ge=2, le=10, description="k of the inner k-fold used to tune")
    trials: int = Field(12, ge=1, description="Optuna trials per model and outer fold")
    timeout_s: float | None = Field(None, gt=0, description="tuning time per model and outer "
                                    "fold (None: trials only)")


class CVSpec(_Spec):
    """One cross-validation task, e.g. ``ml.cv.housing``."""

    data: str | None = Field(None, description="a warehouse table, a SELECT query, or a "
                             "CSV/Parquet file (relative to the project)")
    target: str | None = Field(None, description="the numeric column to predict")
    drop: list[str] = Field(default_factory=list, description="columns never used as features")
    splitter: Splitter = Field("kfold", description="kfold (shuffled), repeated (repeated "
                               "k-fold), stratified (on target bins), group (no group in two "
                               "folds), time (train on the past, test on the future)")
    folds: int = Field(5, ge=2, le=50, description="k: number of folds (time: number of splits)")
    repeats: int = Field(1, ge=1, le=50, description="repetitions with a new shuffle "
                         "(splitter repeated defaults to 3)")
    shuffle: bool = Field(True, description="shuffle before splitting (kfold, stratified, group)")
    bins: int = Field(10, ge=2, le=100, description="quantile bins of the target for stratified")
    group: str | None = Field(None, description="group column for splitter group (e.g. zip code)")
    time: str | None = Field(None, description="time column for splitter time (sortable)")
    gap: int = Field(0, ge=0, description="rows left out between train and test (time)")
    seed: int = Field(42, description="seed of the shuffles and the models")
    models: list[CVModel] = Field(default_factory=lambda: list(DEFAULT_CV_MODELS),
                                  description=f"models to compare: {', '.join(CV_MODELS)}")
    log_target: Literal["auto", "on", "off"] = Field(
        "auto", description="fit on log(target) and predict exp(): auto = when the target is "
        "positive and right-skewed (skewness > 0.75)")
    features: FeatureSpec = Field(default_factory=FeatureSpec)
    nested: NestedSpec = Field(default_factory=NestedSpec)
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="level of confidence intervals")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="significance level of the paired "
                         "model comparison")
    learning_curve: bool = Field(True, description="score the best model on growing shares of "
                                 "the training folds (for the report)")
    jobs: int = Field(-1, description="parallel fold fits: -1 = every core")
    track: bool = Field(True, description="log the run to MLflow (one child run per model)")

    @model_validator(mode="after")
    def _columns_for_splitter(self) -> CVSpec:
        if self.splitter == "group" and not self.group:
            raise ValueError("splitter 'group' needs `group: COLUMN` (e.g. a zip code column)")
        if self.splitter == "time" and not self.time:
            raise ValueError("splitter 'time' needs `time: COLUMN` (a date or a number)")
        if not self.models:
            raise ValueError(f"models is empty; pick from {list(CV_MODELS)}")
        return self

    @property
    def n_repeats(self) -> int:
        """Repetitions actually run (``repeated`` means at least 3 unless set above 1)."""
        if self.splitter == "repeated" and self.repeats == 1:
            return 3
        return 1 if self.splitter == "time" else self.repeats

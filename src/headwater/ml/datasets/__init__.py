"""Synthetic data sets with a known ground truth, for tests, benchmarks and the quickstart."""

from headwater.ml.datasets._churn import SyntheticChurn, make_churn, write_churn_csv
from headwater.ml.datasets._housing import HOUSING_COLUMNS, HOUSING_TARGET, make_housing
from headwater.ml.datasets._interactions import make_events, make_ratings, write_udata

__all__ = ["HOUSING_COLUMNS", "HOUSING_TARGET", "SyntheticChurn", "make_churn", "make_events",
           "make_housing", "make_ratings", "write_churn_csv", "write_udata"]

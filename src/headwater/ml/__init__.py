"""Machine learning: datasets, preparation inside pipelines, training, tuning, evaluation,
MLflow tracking and registry, HTML reports.

Heavy libraries (scikit-learn, LightGBM, Optuna, MLflow) load on first use of a name below, so
``import headwater.ml`` stays cheap.
"""

from __future__ import annotations

from importlib.util import find_spec

from headwater.core import MissingExtraError, lazy_exports

#: What the modules of this package import at their top: without them, any import from
#: headwater.ml names the extra to install instead of failing deep inside.
_NEEDS = ("sklearn", "pandas", "scipy", "matplotlib")
_missing = [name for name in _NEEDS if find_spec(name) is None]
if _missing:
    raise MissingExtraError(f"headwater.ml needs {', '.join(_missing)}, which is not installed",
                            hint="pip install 'headwater[ml]'")

_NAMES = {
    # datasets
    "Dataset": "._data", "load_dataset": "._data", "make_dataset": "._data", "read_frame": "._data",
    "check_training_data": "._data", "infer_task": "._data",
    # preparation
    "ColumnAuditor": "._prepare", "ColumnDecision": "._prepare", "FeatureSelector": "._prepare",
    "PrepareReport": "._prepare", "audit_columns": "._prepare", "build_preprocessor": "._prepare",
    "infer_kind": "._prepare", "selection_report": "._prepare",
    # tracking and reports
    "LoadedModel": "._tracking", "Tracker": "._tracking", "check_signature": "._tracking",
    "load_model": "._tracking", "model_info": "._tracking", "tracking_uris": "._tracking",
    "Report": "._report", "figure_png": "._report",
    # churn: algorithms, tuning, evaluation, training, scoring
    "ALGORITHMS": "._algorithms", "Algorithm": "._algorithms", "Setting": "._algorithms",
    "get_algorithm": "._algorithms",
    "TuneResult": "._tune", "tune": "._tune",
    "ThresholdChoice": "._evaluate", "binary_metrics": "._evaluate",
    "bootstrap_intervals": "._evaluate", "calibration_table": "._evaluate",
    "choose_threshold": "._evaluate", "gains_table": "._evaluate",
    "TrainResult": "._train", "train_classifier": "._train", "holdout_split": "._train",
    "Prediction": "._project", "predict": "._project", "score": "._project", "train": "._project",
    "tune_worker": "._project",
    # cross-validation (regression)
    "CVResult": "._cv", "cross_validate": "._cv",
    "run_cv": "._cv_project", "cv_spec": "._cv_project",
    "FeatureSteps": "._cv_features",
    "TargetTransform": "._regressors", "split_folds": "._cv_split",
    "corrected_t_test": "._stats", "regression_metrics": "._stats",
}

__all__ = sorted(_NAMES)

__getattr__, __dir__ = lazy_exports(__name__, _NAMES)

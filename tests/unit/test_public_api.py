"""The public surface changes only on purpose; `import headwater` stays cheap."""

from __future__ import annotations

import subprocess
import sys

import headwater
import headwater.config
import headwater.contract
import headwater.core
import headwater.monitor
import headwater.store


def test_top_level() -> None:
    assert headwater.__all__ == ["HeadwaterError", "__version__"]


def test_core_surface() -> None:
    assert set(headwater.core.__all__) == {
        "POSITION", "REJECTS_SCHEMA", "Batch", "ConfigError", "ContractError", "Extract",
        "FileFormatError", "HeadwaterError", "MissingExtraError", "NotFoundError",
        "SchemaChangeError", "SinkError", "Source", "SourceError", "State", "WriteMode", "redact",
        "register_secret", "require", "stop_on_signals",
    }


def test_contract_surface() -> None:
    assert headwater.contract.__all__ == [
        "Checked", "Checker", "Contract", "ExprError", "Finding", "INVALID_SCHEMA", "KeySet",
        "LatestMap", "QualityReport", "Typed", "clean_text", "clock_text", "compile_rule",
        "dump_contract", "infer_contract",
    ]


def test_every_exported_name_exists() -> None:
    for module in (headwater.core, headwater.config, headwater.contract, headwater.store,
                   headwater.monitor):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_import_headwater_does_not_load_heavy_libraries() -> None:
    code = ("import sys, headwater, headwater.ingest, headwater.contract; "
            "heavy = [m for m in ('duckdb', 'polars', 'sklearn', 'mlflow', 'lightgbm', 'fastapi') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_recommend_surface() -> None:
    import headwater.ml.recommend as rec

    assert rec.__all__ == [
        "DEFAULT_MODELS", "EVENT_WEIGHTS", "Encoded", "Evaluation", "Interactions", "MODELS",
        "Model", "ModelResult", "Recommender", "TrainedRecommender", "evaluate_recommender",
        "get_model", "load_interactions", "load_recommender", "rank", "ranking_metrics",
        "read_udata", "split", "top_k", "train_recommender", "tune_model", "write_report"]
    for name in rec.__all__:
        assert hasattr(rec, name), name


def test_deploy_surface() -> None:
    import headwater.deploy

    assert set(headwater.deploy.__all__) == {
        "DeployError", "DeployResult", "Deployment", "DeploymentHistory", "GateFailed",
        "GateResult", "Health", "RolloutFailed", "Target", "Variant", "deploy_model",
        "history_for", "open_target", "promote", "quality_gate", "rollback", "rollout",
    }
    for name in headwater.deploy.__all__:
        assert hasattr(headwater.deploy, name), name

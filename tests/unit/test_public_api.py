"""The public surface changes only on purpose; `import headwater` stays cheap.

Every package's ``__all__`` is pinned here: adding or removing a public name means editing its
line below, in the same commit, on purpose. Packages that do not exist yet (serve, deploy,
ml.recommend, monitor.alerts, monitor.dashboard) get their line when they land.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

SURFACES = {
    "headwater": [
        "HeadwaterError", "__version__",
    ],
    "headwater.core": [
        "Batch", "ConfigError", "ContractError", "Extract", "FileFormatError",
        "HeadwaterError", "MissingExtraError", "NotFoundError", "POSITION", "Progress",
        "REJECTS_SCHEMA", "SchemaChangeError", "SinkError", "Source", "SourceError",
        "State", "WriteMode", "check_duration", "duration_ms", "lazy_exports",
        "parse_duration", "redact", "register_secret", "rejects_table", "require",
        "stop_on_signals",
    ],
    "headwater.config": [
        "ALGORITHMS", "AlertsSpec", "BrokerSpec", "CVSpec", "CV_MODELS",
        "CostMatrixSpec", "DEFAULT_BROKER", "DeltaStoreSpec", "DetectorSpec",
        "DuckDBStoreSpec", "EmbeddedBrokerSpec", "FilesSpec", "InhibitSpec",
        "KafkaBrokerSpec", "KinesisBrokerSpec", "LoggingSpec", "MLSpec", "MetadataSpec",
        "MetricsSpec", "NatsBrokerSpec", "PROJECT_FILE", "PipelineSpec",
        "PostgresStoreSpec", "ProcessorSpec", "Project", "RegistrySpec", "RouteSpec",
        "RuleSpec", "SEVERITIES", "SinkSpec", "SourceSpec", "StoreSpec",
        "StreamInputSpec", "StreamOutputsSpec", "ThresholdSpec", "TrainSpec",
        "WindowSpec", "load_project", "load_yaml", "parse_project",
    ],
    "headwater.contract": [
        "Checked", "Checker", "Contract", "ExprError", "Finding", "INVALID_SCHEMA",
        "KeySet", "LatestMap", "QualityReport", "Typed", "clean_text", "clock_text",
        "compile_rule", "dump_contract", "infer_contract",
    ],
    "headwater.store": [
        "DeltaStore", "DuckDBStore", "Evolution", "PostgresStore", "QUARANTINE_SCHEMA",
        "QUARANTINE_TABLE", "RunStore", "STATE_TABLE", "Store", "Transaction",
        "metadata_engine", "metadata_url", "open_store", "plan_evolution", "quote",
        "recorded_run", "run_store",
    ],
    "headwater.monitor": [
        "MetricsServer", "Run", "configure_logging", "format_line", "get_logger",
        "metrics", "metrics_response", "new_run_id", "process_registry", "publish_metrics",
        "push_metrics", "read_logs", "run", "serve_metrics", "write_metrics",
    ],
    "headwater.brokers": [
        "Broker", "BrokerError", "Consumer", "EmbeddedBroker", "Offset",
        "PRODUCE_SCHEMA", "PartitionPosition", "Positions", "RECORD_SCHEMA", "StartAt",
        "TopicInfo", "encode_rows", "follow", "group_positions", "lag", "last_positions",
        "offset_lag", "open_broker", "parse_start", "partition_for", "publish", "reached",
        "record_origins", "reset_positions", "split_partitions", "tail",
    ],
    "headwater.ingest": [
        "ConservationError", "ExtractResult", "FileSource", "PipelineBusy", "PipelineStatus",
        "QuarantineSource", "Schedule", "Scheduler", "backfill", "build_source",
        "infer_for_pipeline", "infer_from_file", "infer_from_source", "ingest",
        "ingest_files", "make_messy_samples", "pipeline_lock", "pipeline_status",
        "quarantine_counts", "quarantine_sample", "replay_quarantine", "replay_table",
        "run_pipeline",
    ],
    "headwater.ingest.sources": [
        "ApiKeyAuth", "BasicAuth", "BearerAuth", "Detected", "FORMATS", "FileSource",
        "OAuth2Auth", "Paginator", "PostgresCdcSource", "RedisSource", "RestSource",
        "SoapSource", "SqlSource", "build_source", "detect", "file_sha256",
    ],
    "headwater.stream": [
        "ANOMALY_COLUMNS", "AlertTracker", "Committed", "DETECTORS", "Deduplicator",
        "Detector", "Ewma", "Hopping", "Jump", "MedianDeviation", "Processor",
        "ProcessorResult", "ProcessorStatus", "RESULT_COLUMNS", "RateOfChange",
        "Session", "Silence", "Stuck", "Threshold", "Tumbling", "Window",
        "WindowOperator", "WindowOutput", "ZScore", "decode_json", "member_partitions",
        "processor_status", "run_processor",
    ],
    "headwater.stream.iot": [
        "FAULTS", "FINDS", "GatewayResult", "INFLIGHT", "METRICS", "MqttBatch",
        "MqttEndpoint", "MqttError", "MqttSubscription", "Normalised", "READING_SCHEMA",
        "SESSION_EXPIRY_S", "Simulation", "TOPIC_PREFIX", "UNITS", "device_topics",
        "is_mqtt_url", "normalise", "parse_mqtt_url", "publish_mqtt",
        "publish_simulation", "run_gateway", "run_mqtt_gateway", "score", "simulate",
    ],
    "headwater.ml": [
        "ALGORITHMS", "Algorithm", "CVResult", "ColumnAuditor", "ColumnDecision",
        "Dataset", "FeatureSelector", "FeatureSteps", "LoadedModel", "Prediction",
        "PrepareReport", "Report", "Setting", "TargetTransform", "ThresholdChoice",
        "Tracker", "TrainResult", "TuneResult", "audit_columns", "binary_metrics",
        "bootstrap_intervals", "build_preprocessor", "calibration_table",
        "check_signature", "check_training_data", "choose_threshold",
        "corrected_t_test", "cross_validate", "cv_spec", "figure_png", "gains_table",
        "get_algorithm", "holdout_split", "infer_kind", "infer_task", "load_dataset",
        "load_model", "make_dataset", "model_info", "predict", "read_frame", "regression_metrics",
        "run_cv", "score", "selection_report", "split_folds", "tracking_uris", "train",
        "train_classifier", "tune", "tune_worker",
    ],
    "headwater.ml.datasets": [
        "HOUSING_COLUMNS", "HOUSING_TARGET", "SyntheticChurn", "make_churn",
        "make_events", "make_housing", "make_ratings", "write_churn_csv", "write_udata",
    ],
    "headwater.serve": [
        "API_KEY_ENV", "Interaction", "InteractionLog", "MemoryState", "Predictor",
        "RedisState", "ServeSettings", "Server", "ServerMetrics", "Variant",
        "api_key_from_env", "bucket", "build", "create_app", "open_state", "parse_rows",
        "read_log", "run_server", "serving", "topic_for",
    ],
    "headwater.ml.recommend": [
        "DEFAULT_MODELS", "EVENT_WEIGHTS", "Encoded", "Evaluation", "Interactions",
        "LOG_TOPIC_PREFIX", "MODELS", "Model", "ModelResult", "Recommender",
        "TrainedRecommender", "evaluate_recommender", "get_model", "load_interactions",
        "load_recommender", "log_topics", "rank", "ranking_metrics", "read_interaction_log",
        "read_udata", "split", "top_k", "train_recommender",
        "tune_model", "write_report",
    ],
    "headwater.console": [
        "arrow_table", "cv_leaderboard", "print_train_result", "quality_report",
        "run_summary", "train_leaderboard", "train_metrics",
    ],
    "headwater.quickstart": [
        "STEPS", "init_project", "run_quickstart",
    ],
    "headwater.cli": [
        "app", "main",
    ],
    "headwater.monitor.alerts": [
        "AlertHandOff", "AlertStore", "DeliveryError", "Dispatcher", "Evaluation",
        "Hit", "Observation", "Sample", "Silence", "Watcher", "active_alerts",
        "alert_history", "alert_store", "alerting_rules", "alertmanager_config",
        "backoff", "check_rules", "deliver_due", "deliver_pending", "evaluate",
        "export", "fingerprint", "hits", "monitoring", "observe", "promql", "quantiles",
        "record_alerts", "registry_samples", "send_test", "silence", "textfile_samples",
        "unsilence",
    ],
    "headwater.monitor.dashboard": [
        "API_KEY_ENV", "Snapshot", "collect", "create_app", "ingestion_series", "page",
        "pipeline_views", "quality_series", "serve",
    ],
    "headwater.deploy": [
        "DeployError", "DeployResult", "Deployment", "DeploymentHistory", "GateFailed",
        "GateResult", "Health", "PipelineFailed", "PipelineResult", "RolloutFailed", "Target",
        "Variant", "deploy_model", "history_for", "open_target", "promote", "quality_gate",
        "rollback", "rollout", "run_pipeline",
    ],
}


@pytest.mark.parametrize("package", sorted(SURFACES))
def test_surface_is_pinned(package: str) -> None:
    assert sorted(importlib.import_module(package).__all__) == SURFACES[package]


@pytest.mark.parametrize("package", sorted(SURFACES))
def test_every_exported_name_exists(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_every_package_is_pinned() -> None:
    """A new package (with an __init__.py) gets its surface pinned here when it lands."""
    from pathlib import Path

    root = Path(importlib.import_module("headwater").__file__).parent
    packages = {"headwater." + ".".join(p.parent.relative_to(root).parts)
                for p in root.rglob("__init__.py") if p.parent != root} | {"headwater"}
    assert sorted(packages - set(SURFACES)) == []


def test_import_headwater_does_not_load_heavy_libraries() -> None:
    code = ("import sys, headwater, headwater.ingest, headwater.contract, headwater.console; "
            "heavy = [m for m in ('duckdb', 'polars', 'sklearn', 'mlflow', 'lightgbm', 'fastapi') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_help_does_not_load_the_engines() -> None:
    """`headwater --help` stays fast: no Arrow, numpy, DuckDB, Polars, pandas or ML at start."""
    code = ("import sys\nsys.argv = ['headwater', '--help']\nfrom headwater.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('pyarrow', 'numpy', 'duckdb', 'polars', 'deltalake', "
            "'sqlalchemy', 'pandas', 'sklearn', 'mlflow', 'fastapi') if m in sys.modules]\n"
            "print(heavy, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]"

"""Deployment: quality gates, rollout strategies with health checks and rollback, deploy
targets (AWS SageMaker, images in ECR), deployment history, the pipeline from training to
production, and CI workflows that run it on a commit.

    from headwater.deploy import deploy_model
    result = deploy_model(project, "production", "churn@challenger")
"""

from headwater.deploy._deploy import DeployResult, deploy_model, history_for, open_target, rollback
from headwater.deploy._gate import GateFailed, GateResult, promote, quality_gate
from headwater.deploy._history import Deployment, DeploymentHistory
from headwater.deploy._pipeline import PipelineFailed, PipelineResult, run_pipeline
from headwater.deploy._rollout import DeployError, Health, RolloutFailed, Target, Variant, rollout

__all__ = [
    "DeployError", "DeployResult", "Deployment", "DeploymentHistory", "GateFailed", "GateResult",
    "Health", "PipelineFailed", "PipelineResult", "RolloutFailed", "Target", "Variant",
    "deploy_model", "history_for", "open_target", "promote", "quality_gate", "rollback",
    "rollout", "run_pipeline",
]

"""``headwater deploy``: gate, stage, roll out, record; and roll back to the previous version.

    result = deploy_model(project, "production", "churn@challenger")
    result.deployment.status, result.gate.message
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError, NotFoundError
from headwater.deploy._gate import GateFailed, GateResult, promote, quality_gate
from headwater.deploy._history import Deployment, DeploymentHistory
from headwater.deploy._rollout import Target, rollout

if TYPE_CHECKING:
    from headwater.config import Project
    from headwater.config._deploy import StrategySpec
    from headwater.deploy._bundle import Bundle


@dataclass
class DeployResult:
    """What a deploy did: the gate's verdict (None when skipped) and the rollout."""

    gate: GateResult | None
    deployment: Deployment


def history_for(project: Project) -> DeploymentHistory:
    """Deployment history in the project's metadata store."""
    from headwater.store import run_store

    return DeploymentHistory(run_store(project).url)


def open_target(project: Project, name: str, *, check: bool = True) -> Target:
    """The deploy target called ``name`` in headwater.yaml; ``check`` runs its preflight
    (credentials, resources; a local target's router) before anything is created."""
    targets = project.deploy.targets
    if name not in targets:
        raise NotFoundError(f"no deploy target '{name}' in headwater.yaml "
                            f"(targets: {', '.join(targets) or 'none'})",
                            hint="add it under deploy.targets (see docs/deploy.md)")
    spec = targets[name]
    target: Target
    if spec.kind == "azureml":
        from headwater.deploy._azureml import AzureMLTarget

        target = AzureMLTarget(name, spec, project.deploy.health)
    elif spec.kind == "local":
        from headwater.deploy._local import LocalTarget

        target = LocalTarget(name, spec, project.deploy.health, root=project.root,
                             state=project.state_dir / "deploy" / name)
    else:
        from headwater.deploy._sagemaker import SageMakerTarget

        target = SageMakerTarget(name, spec, project.deploy.health)
    if check:
        target.preflight()  # type: ignore[attr-defined]
    return target


#: Where CI systems put the commit they build (GitHub, GitLab, Azure Pipelines, CodeBuild).
CI_COMMIT_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION",
                       "CODEBUILD_RESOLVED_SOURCE_VERSION")


def current_commit(root: Path) -> str | None:
    """The commit being deployed: the CI's commit variable, else the project folder's git HEAD."""
    for variable in CI_COMMIT_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _model_dir(tracker: Any, uri: str) -> Path:
    import mlflow.artifacts

    tracker._mlflow()
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))


def deploy_model(project: Project, target_name: str, ref: str | None = None, *,
                 strategy: StrategySpec | None = None, gate: bool = True,
                 on_step: Callable[[str], None] | None = None,
                 target: Target | None = None, bundle: Bundle | None = None) -> DeployResult:
    """Gate ``ref`` (default ``deploy.model@challenger``), roll it out on a target, record it.

    A failed gate raises :class:`GateFailed` before anything is created. A target that runs
    the bundle's image (SageMaker with ``repository``) gets it pushed first: ``bundle``, or the
    bundle built now. A failed rollout leaves the previous version serving (``rolled_back``).
    """
    from headwater.ml import Tracker

    spec = project.deploy
    tracker = Tracker.for_project(project)
    ref = ref or (f"{spec.model}@{spec.gate.challenger}" if spec.model else None)
    if ref is None:
        raise ConfigError("which model? give MODEL[@alias|/version] or set deploy.model",
                          hint="e.g. headwater deploy run production churn@challenger")
    uri, name, version = tracker.resolve(ref)
    if name is None or version is None:
        raise ConfigError(f"'{ref}' is not a registered model version",
                          hint="deploy registered models: NAME@ALIAS or NAME/VERSION")
    verdict = None
    if gate:
        verdict = quality_gate(tracker, name, spec.gate, version=version)
        if not verdict.passed:
            raise GateFailed(verdict.message, hint="train a better model, or lower "
                             "deploy.gate.min_improvement; --no-gate skips the gate")
    target = target or open_target(project, target_name)
    if getattr(target, "needs_bundle", False):
        from headwater.deploy._bundle import build_bundle

        bundle = bundle or build_bundle(project, f"{name}/{version}",
                                        project.state_dir / "bundles")
        image = target.publish(bundle)  # type: ignore[attr-defined]
        if on_step:
            on_step(f"image {image}")
    deployment = rollout(target, model=name, version=version,
                         model_uri=str(_model_dir(tracker, uri)),
                         strategy=strategy or spec.strategy, health=spec.health,
                         history=history_for(project), commit=current_commit(project.root),
                         on_step=on_step)
    if verdict is not None and deployment.status == "succeeded":
        promote(tracker, verdict, spec.gate)
    return DeployResult(verdict, deployment)


def rollback(project: Project, target_name: str, *, on_step: Callable[[str], None] | None = None,
             target: Target | None = None) -> Deployment:
    """Put the version that served before the current one back, all at once."""
    from headwater.config._deploy import StrategySpec

    history = history_for(project)
    target = target or open_target(project, target_name)
    serving = max(target.variants(), key=lambda v: v.weight, default=None)
    previous = history.last_succeeded(target_name, before=serving.version if serving else None)
    if previous is None:
        raise NotFoundError(f"no earlier successful deployment on '{target_name}' to go back to",
                            hint="`headwater deploy history` lists what was deployed")
    ref = f"{previous['model']}/{previous['version']}"
    result = deploy_model(project, target_name, ref, gate=False, on_step=on_step, target=target,
                          strategy=StrategySpec(kind="all_at_once", bake="0s"))
    return result.deployment

"""``headwater pipeline run``: train → gate → package → staging → smoke → production, as
``deploy.pipelines.<name>`` in headwater.yaml declares it.

    result = run_pipeline(project, "churn")
    result.status, [(s.name, s.status) for s in result.stages]

Each run is a run record (kind ``pipeline``) holding its stages, the commit (the CI's commit
variable or git HEAD), the model version, the bundle's sha256 and the image; each deployment is
in the deployment history with that commit. A run is keyed by the commit, the pipeline's and the
task's settings, both targets' settings and the training file's sha256: when the last successful
run had the same key and production still serves its version, nothing is trained or deployed
(status ``unchanged``). A failed gate stops before anything is deployed; a failed staging
rollout or smoke test stops before production, which is left as it was. Production's alias
``champion`` moves to the new version only once it serves there.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError, NotFoundError
from headwater.deploy._deploy import current_commit, deploy_model, open_target
from headwater.deploy._gate import quality_gate
from headwater.deploy._rollout import DeployError

if TYPE_CHECKING:
    from headwater.config import Project
    from headwater.config._deploy import PipelineSpec
    from headwater.deploy._bundle import Bundle
    from headwater.deploy._rollout import Target

#: The stages in order; ``--from`` starts at one of them.
STAGES = ("train", "gate", "package", "staging", "smoke", "production")


@dataclass
class Stage:
    """One stage of a run: ``pending``, ``running``, ``done``, ``skipped`` or ``failed``."""

    name: str
    status: str = "pending"
    detail: str = ""
    seconds: float = 0.0


@dataclass
class PipelineResult:
    """What a run did, stage by stage."""

    name: str
    key: str
    commit: str | None
    status: str = "running"  # succeeded | unchanged | failed | planned
    model: str | None = None
    version: int | None = None
    bundle: str | None = None
    image: str | None = None
    message: str = ""
    run_id: str | None = None
    stages: list[Stage] = field(default_factory=lambda: [Stage(s) for s in STAGES])

    def stage(self, name: str) -> Stage:
        """The stage called ``name``."""
        return next(s for s in self.stages if s.name == name)

    def report(self) -> dict[str, Any]:
        """The run record's report."""
        out = asdict(self)
        out.pop("run_id")
        return out


class PipelineFailed(DeployError):
    """A stage failed; the stages after it did not run (``result`` has them all)."""

    def __init__(self, message: str, *, hint: str | None = None,
                 result: PipelineResult | None = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


def pipeline_spec(project: Project, name: str | None = None) -> tuple[str, PipelineSpec]:
    """``deploy.pipelines.<name>`` (``name`` may be omitted when there is one pipeline)."""
    pipelines = project.deploy.pipelines
    if name is None and len(pipelines) == 1:
        name = next(iter(pipelines))
    if name is None or name not in pipelines:
        what = f"no pipeline '{name}'" if name else "which pipeline?"
        raise NotFoundError(f"{what} in headwater.yaml (pipelines: "
                            f"{', '.join(pipelines) or 'none'})",
                            hint="declare it under deploy.pipelines (see docs/deploy.md)")
    spec = pipelines[name]
    for role in ("staging", "production"):
        if getattr(spec, role) not in project.deploy.targets:
            raise ConfigError(f"deploy.pipelines.{name}.{role}: no deploy target "
                              f"'{getattr(spec, role)}' (targets: "
                              f"{', '.join(project.deploy.targets) or 'none'})",
                              hint="name a target under deploy.targets")
    return name, spec


def _file_digest(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pipeline_key(project: Project, name: str, spec: PipelineSpec, commit: str | None) -> str:
    """What makes two runs the same: commit, settings, targets and the training file's bytes.

    A training table or query is not fingerprinted: a new commit (or ``--force``) retrains.
    """
    from headwater.ml._project import task_spec

    task = task_spec(project, spec.task or name) if spec.train else None
    parts = {"commit": commit, "pipeline": spec.model_dump(mode="json"),
             "task": task.model_dump(mode="json") if task else None,
             "data": _file_digest(project.path(task.data)) if task and task.data else None,
             "targets": {r: project.deploy.targets[getattr(spec, r)].model_dump(mode="json")
                         for r in ("staging", "production")}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _serving(target: Target) -> int | None:
    variants = target.variants()
    best = max(variants, key=lambda v: v.weight, default=None)
    return best.version if best is not None and best.weight >= 1.0 else None


def _last_success(project: Project, name: str, key: str) -> dict[str, Any] | None:
    from headwater.store import run_store

    for run in run_store(project).list(kind="pipeline", pipeline=name, reports=True, limit=50):
        report = run["report"]
        if run["status"] == "succeeded" and report.get("key") == key and report.get("version"):
            return run
    return None


@contextmanager
def _smoke_url(target: Target, bundle: Bundle) -> Iterator[str]:
    """The staging target's own URL when it serves on this machine, else the bundle run here."""
    from headwater.deploy._bundle import serving

    url = getattr(target, "url", None)
    if url:
        yield url
        return
    with serving(bundle.path) as local:
        yield local


def _smoke_rows(project: Project, spec: PipelineSpec, bundle: Bundle) -> list[dict[str, Any]]:
    if spec.smoke.data:
        from headwater.ml._data import read_frame

        frame, _ = read_frame(spec.smoke.data, project=project)
    else:
        from mlflow.models import Model

        model_dir = bundle.path / "model"
        frame = Model.load(str(model_dir)).load_input_example(str(model_dir))
        if frame is None:
            raise ConfigError(f"{bundle.model} version {bundle.version} has no input example "
                              "to smoke-test staging with",
                              hint="set deploy.pipelines.<name>.smoke.data to a CSV of requests")
    rows = json.loads(frame.to_json(orient="records"))
    if not rows:
        raise ConfigError(f"smoke data '{spec.smoke.data}' has no rows",
                          hint="give it a few typical requests")
    return rows


def _unchanged(result: PipelineResult, previous: dict[str, Any], production: str) -> None:
    report = previous["report"]
    result.status, result.version = "unchanged", report["version"]
    result.bundle, result.image = report.get("bundle"), report.get("image")
    for stage in result.stages:
        stage.status, stage.detail = "skipped", "unchanged"
    result.message = (f"nothing new: commit {(result.commit or '?')[:10]} with these settings "
                      f"already ran (run {previous['id'][:8]}); {result.model} version "
                      f"{result.version} serves {production}")


def run_pipeline(project: Project, name: str | None = None, *, start: str = "train",
                 dry_run: bool = False, force: bool = False,
                 on_stage: Callable[[Stage], None] | None = None,
                 on_step: Callable[[str], None] | None = None) -> PipelineResult:
    """Run pipeline ``name`` from stage ``start``; see the module docstring.

    Parameters
    ----------
    start:
        The first stage to run; from ``gate`` on, the model is ``MODEL@challenger``; from
        ``package`` on, the quality gate is skipped.
    dry_run:
        Say what would run (and whether it is unchanged) without doing anything.
    force:
        Run even when the last successful run had the same commit and settings.
    on_stage:
        Called with each stage when it starts and when it ends.
    on_step:
        Called with the rollouts' step messages.

    Raises
    ------
    PipelineFailed
        A gate, rollout or smoke test failed; ``.result`` holds every stage.
    """
    from headwater.ml import Tracker
    from headwater.store import recorded_run

    if start not in STAGES:
        raise ConfigError(f"unknown stage '{start}'", hint=f"use one of {', '.join(STAGES)}")
    name, spec = pipeline_spec(project, name)
    task = spec.task or name
    model = project.ml.registry.prefix + task
    gate = spec.gate or project.deploy.gate
    commit = current_commit(project.root)
    result = PipelineResult(name, pipeline_key(project, name, spec, commit), commit, model=model)
    first = STAGES.index(start)
    say = on_stage or (lambda stage: None)
    previous = _last_success(project, name, result.key) if first == 0 and not force else None
    if dry_run:
        result.status = "planned"
        for stage in result.stages:
            stage.status = "skipped" if STAGES.index(stage.name) < first or (
                stage.name == "train" and not spec.train) else "pending"
        todo = ", ".join(s.name for s in result.stages if s.status == "pending")
        result.message = (f"nothing new: run {previous['id'][:8]} already ran commit "
                          f"{(commit or '?')[:10]} with these settings" if previous else
                          f"would run {todo}")
        return result
    targets = {role: open_target(project, getattr(spec, role))  # preflight: fail before work
               for role in ("staging", "production")}
    tracker = Tracker.for_project(project)

    @contextmanager
    def stage(label: str) -> Iterator[Stage]:
        current = result.stage(label)
        current.status, began = "running", time.perf_counter()
        say(current)
        try:
            yield current
            current.status = "done"
        except BaseException as exc:
            current.status = "failed"
            current.detail = current.detail or str(getattr(exc, "message", exc))
            result.status, result.message = "failed", current.detail
            raise
        finally:
            current.seconds = time.perf_counter() - began
            say(current)

    def fail(current: Stage, message: str, hint: str) -> PipelineFailed:
        current.detail = message
        return PipelineFailed(message, hint=hint, result=result)

    def skip(label: str, detail: str) -> None:
        current = result.stage(label)
        current.status, current.detail = "skipped", detail
        say(current)

    bundle: Bundle | None = None
    with recorded_run(project, "pipeline", name) as run:
        result.run_id = run.id
        try:
            if previous is not None and _serving(targets["production"]) == previous["report"][
                    "version"]:
                _unchanged(result, previous, spec.production)
                return result
            if first == 0 and spec.train:
                from headwater.ml._project import train

                with stage("train") as current:
                    trained = train(project, task)
                    if not trained.registered:
                        raise fail(current, f"training {task} registered no model",
                                   f"set ml.train.{task}.register_best: true")
                    result.version = int(trained.registered["version"])
                    current.detail = (f"{model} v{result.version} ({trained.best}, holdout "
                                      f"roc_auc {trained.metrics['roc_auc']:.4f})")
            else:
                result.version = tracker.resolve(f"{model}@{gate.challenger}")[2]
                skip("train", f"took {model}@{gate.challenger} (v{result.version})")
            if first <= STAGES.index("gate"):
                with stage("gate") as current:
                    verdict = quality_gate(tracker, model, gate, version=result.version)
                    current.detail = verdict.message
                    if not verdict.passed:
                        raise fail(current, verdict.message + "; nothing was deployed",
                                   "train a better model, or lower the gate's min_improvement")
            else:
                skip("gate", f"skipped (--from {start})")
            from headwater.deploy._bundle import build_bundle

            ref = f"{model}/{result.version}"
            with stage("package") as current:
                bundle = build_bundle(project, ref, project.state_dir / "bundles")
                result.bundle = bundle.digest
                current.detail = f"{bundle.path.name} (sha256 {bundle.digest[:16]}…)"
            if first <= STAGES.index("staging"):
                with stage("staging") as current:
                    staged = deploy_model(project, spec.staging, ref, gate=False,
                                          strategy=spec.staging_strategy, on_step=on_step,
                                          target=targets["staging"], bundle=bundle).deployment
                    current.detail = f"{staged.status} on {spec.staging}"
                    if staged.status not in ("succeeded", "unchanged"):
                        raise fail(current, f"staging rollout {staged.status}: {staged.reason}; "
                                   "production untouched", "fix the cause and run again")
                with stage("smoke") as current:
                    from headwater.deploy._smoke import smoke_test

                    rows = _smoke_rows(project, spec, bundle)
                    with _smoke_url(targets["staging"], bundle) as url:
                        smoke = smoke_test(url, rows, spec.smoke)
                    current.detail = smoke.summary
                    if smoke.problems:
                        raise fail(current, f"smoke test failed on {spec.staging}: "
                                   + "; ".join(smoke.problems) + "; production untouched",
                                   "fix the model or its input contract and run again")
            else:
                skip("staging", f"skipped (--from {start})")
                skip("smoke", f"skipped (--from {start})")
            with stage("production") as current:
                strategy = spec.strategy or project.deploy.strategy
                done = deploy_model(project, spec.production, ref, gate=False, strategy=strategy,
                                    on_step=on_step, target=targets["production"],
                                    bundle=bundle).deployment
                result.image = getattr(targets["production"], "image", None)
                current.detail = f"{done.status} on {spec.production} ({strategy.kind})"
                if done.status not in ("succeeded", "unchanged"):
                    raise fail(current, f"production rollout {done.status}: {done.reason}",
                               "the previous version serves again; fix the cause and run again")
                tracker.set_alias(model, gate.champion, result.version)
            result.status = "succeeded"
            result.message = (f"{model} version {result.version} serves {spec.production} "
                              f"(@{gate.champion})")
        finally:
            run.report = result.report()
    return result

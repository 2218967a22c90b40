"""Rollouts: move traffic from the version serving now (blue) to a new one (green), step by step,
checking health at every step, and put blue back the moment a check fails.

    deployment = rollout(target, model="churn", version=4, model_uri="models:/churn/4",
                         strategy=spec.strategy, health=spec.health, history=history)

A target is anything with variants that can take a share of traffic (a SageMaker endpoint's
production variants, Azure ML deployments, local processes behind a router); see
:class:`Target`. The strategies are the same on all of them:

* ``all_at_once``: green takes 100 % at once, then bakes;
* ``blue_green``: green is smoke-tested with no traffic, then takes 100 %, then bakes;
* ``canary``: green takes ``canary_percent`` for a bake, then 100 %;
* ``linear``: green takes each of ``steps`` in turn, baking after each;
* ``shadow_percent`` (any kind): first a bake with no live traffic while that share of live
  traffic is mirrored to green, on targets that implement ``mirror(shares)`` (Azure ML).

Health during a bake is the target's own (CloudWatch alarms on SageMaker); a failed smoke test
or an unhealthy bake rolls back: blue gets all traffic again and green is removed. A killed
rollout leaves its history row ``in_progress``; the next rollout on that target first restores
the previous version, so two half-configured versions never stay behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from headwater.core import HeadwaterError, duration_ms
from headwater.deploy._history import Deployment, DeploymentHistory
from headwater.monitor import get_logger

if TYPE_CHECKING:
    from headwater.config._deploy import HealthSpec, StrategySpec

log = get_logger(__name__)


class DeployError(HeadwaterError):
    """A deployment could not be done; nothing was left half-configured."""


@dataclass
class Variant:
    """One version on a target and its share of the traffic (0 to 1)."""

    name: str
    version: int
    weight: float


@dataclass
class Health:
    """What a target says about a variant since a moment."""

    alarms: list[str] = field(default_factory=list)
    requests: int | None = None
    error_rate: float | None = None
    p99_ms: float | None = None

    def problems(self, spec: HealthSpec) -> list[str]:
        """Why the variant is unhealthy (empty when healthy)."""
        out = [f"alarm {a} is firing" for a in self.alarms]
        enough = self.requests is None or self.requests >= spec.min_requests
        if enough and self.error_rate is not None and self.error_rate > spec.max_error_rate:
            out.append(f"error rate {self.error_rate:.2%} above {spec.max_error_rate:.2%}")
        if enough and self.p99_ms is not None and self.p99_ms > spec.max_p99_ms:
            out.append(f"p99 latency {self.p99_ms:.0f} ms above {spec.max_p99_ms:.0f} ms")
        return out


class Target(Protocol):
    """What a rollout needs from a place that serves models."""

    name: str

    def variants(self) -> list[Variant]:
        """The versions deployed now with their traffic shares."""

    def stage(self, version: int, model_uri: str) -> str:
        """Deploy ``version`` next to what serves, with no traffic; returns its variant name."""

    def shift(self, weights: dict[str, float]) -> None:
        """Set the traffic shares of the named variants (they sum to 1)."""

    def smoke(self, variant: str) -> list[str]:
        """Send a request straight to ``variant``; the problems found (empty when fine)."""

    def health(self, variant: str, since: datetime) -> Health:
        """The variant's health since ``since``."""

    def retire(self, variant: str) -> None:
        """Remove ``variant`` (it must have no traffic)."""


class RolloutFailed(HeadwaterError):
    """A step's checks failed (the rollout rolls back)."""


def _bake(target: Target, variant: str, health: HealthSpec, bake_s: float, poll_s: float,
          sleep: Callable[[float], None], clock: Callable[[], float]) -> list[str]:
    """Watch ``variant`` for ``bake_s`` seconds; the first problems seen, or []. A bake that
    saw fewer than ``min_requests`` requests is extended once."""
    since = datetime.now(UTC)
    end, extended = clock() + bake_s, False
    while True:
        seen = target.health(variant, since)
        problems = seen.problems(health)
        if problems:
            return problems
        left = end - clock()
        if left <= 0 and not extended and bake_s > 0 and seen.requests is not None \
                and seen.requests < health.min_requests:
            end, extended, left = end + bake_s, True, bake_s
        if left <= 0:
            return []
        sleep(min(poll_s, left))


def restore(target: Target, history: DeploymentHistory) -> Deployment | None:
    """Finish what a killed rollout left: the previous version gets all traffic again."""
    row = history.unfinished(target.name)
    if row is None:
        return None
    variants = target.variants()
    keep = [v for v in variants if v.version == row["previous_version"]]
    if not keep:  # a first deployment was killed: the new version is all there is
        keep = [v for v in variants if v.version == row["version"]]
    dep = Deployment(model=row["model"], version=row["version"], target=row["target"],
                     strategy=row["strategy"], previous_version=row["previous_version"],
                     commit=row["commit"], id=row["id"], started_at=row["started_at"])
    if keep:  # weights are relative: every other variant goes to 0 explicitly
        target.shift({v.name: 1.0 if v.name == keep[0].name else 0.0 for v in variants})
        for v in variants:
            if v.name != keep[0].name:
                target.retire(v.name)
    dep.status, dep.reason = "rolled_back", "the deploy command was killed mid-rollout; " + (
        f"version {keep[0].version} serves again" if keep else "nothing was deployed")
    dep.ended_at = datetime.now(UTC)
    history.save(dep)
    log.warning("rollout_restored", target=target.name, reason=dep.reason)
    return dep


def rollout(target: Target, *, model: str, version: int, model_uri: str,
            strategy: StrategySpec, health: HealthSpec, history: DeploymentHistory,
            commit: str | None = None, sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], float] = time.monotonic,
            on_step: Callable[[str], None] | None = None) -> Deployment:
    """Roll ``model`` ``version`` out on ``target`` with ``strategy``; roll back on failure.

    Idempotent: when ``version`` already takes all traffic, nothing is deployed and the returned
    deployment has status ``unchanged``.
    """
    say = on_step or (lambda message: None)
    restore(target, history)
    variants = target.variants()
    serving = max(variants, key=lambda v: v.weight) if variants else None
    if serving is not None and serving.version == version and serving.weight >= 1.0:
        say(f"{model} version {version} already serves all traffic on {target.name}")
        return Deployment(model=model, version=version, target=target.name,
                          strategy=strategy.kind, previous_version=version, commit=commit,
                          status="unchanged", ended_at=datetime.now(UTC))
    blue = serving.name if serving is not None else None
    dep = Deployment(model=model, version=version, target=target.name, strategy=strategy.kind,
                     previous_version=serving.version if serving else None, commit=commit)
    history.save(dep)
    bake_s, poll_s = duration_ms(strategy.bake) / 1000, duration_ms(strategy.poll) / 1000
    green: str | None = None
    try:
        green = target.stage(version, model_uri)
        say(f"staged version {version} as {green} (no traffic)")
        for percent in strategy.percents() if blue else [100]:
            problems = target.smoke(green)
            if not problems:
                share = percent / 100
                target.shift({green: share, blue: 1 - share} if blue else {green: 1.0})
                mirror = getattr(target, "mirror", None)  # targets that can mirror traffic
                shadow = percent == 0 and strategy.shadow_percent and mirror is not None
                if shadow:
                    mirror({green: strategy.shadow_percent / 100})
                say(f"{green}: {percent} % of traffic"
                    + (f" ({strategy.shadow_percent} % mirrored)" if shadow else "")
                    + f", baking {strategy.bake}")
                problems = _bake(target, green, health, bake_s, poll_s, sleep, clock)
            dep.steps.append({"percent": percent, "problems": problems,
                              "at": datetime.now(UTC).isoformat()})
            history.save(dep)
            if problems:
                raise RolloutFailed(f"version {version} at {percent} %: " + "; ".join(problems))
        if blue:
            target.retire(blue)
        dep.status = "succeeded"
        say(f"version {version} serves all traffic on {target.name}")
    except Exception as exc:
        dep.status = "rolled_back" if isinstance(exc, RolloutFailed) else "failed"
        dep.reason = str(exc)
        if blue is not None:  # weights are relative: green goes to 0 explicitly
            target.shift({blue: 1.0, **({green: 0.0} if green and green != blue else {})})
        if green is not None and green != blue:
            target.retire(green)
        say(f"rolled back: {exc}" if blue else f"failed: {exc}")
        log.warning("rollout_rolled_back", target=target.name, version=version, reason=str(exc))
        if isinstance(exc, HeadwaterError) and not isinstance(exc, RolloutFailed):
            raise
        if not isinstance(exc, HeadwaterError):
            raise DeployError(f"deploying {model} version {version} to {target.name} failed: "
                              f"{type(exc).__name__}: {exc}",
                              hint="the previous version serves again; fix the cause and "
                              "run the deploy again") from exc
    finally:
        dep.ended_at = datetime.now(UTC)
        history.save(dep)
    return dep

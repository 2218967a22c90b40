"""Rollout strategies on an in-memory target: steps, bakes, rollback, restore after a kill."""

from __future__ import annotations

from datetime import datetime

import pytest

from headwater.config._deploy import HealthSpec, StrategySpec
from headwater.deploy import DeploymentHistory, Health, Variant, rollout
from headwater.deploy._rollout import restore


class MemoryTarget:
    """Variants in a dict; ``sick`` versions report an alarm once they carry traffic."""

    name = "memory"

    def __init__(self, sick: set[int] = frozenset(), smoke_fails: set[int] = frozenset()):
        self.weights: dict[str, float] = {}
        self.sick, self.smoke_fails = set(sick), set(smoke_fails)
        self.log: list[tuple[str, dict[str, float]]] = []

    def variants(self) -> list[Variant]:
        return [Variant(n, int(n[1:]), w) for n, w in self.weights.items()]

    def stage(self, version: int, model_uri: str) -> str:
        self.weights[f"v{version}"] = 0.0 if self.weights else 1.0
        return f"v{version}"

    def shift(self, weights: dict[str, float]) -> None:
        self.weights.update(weights)
        self.log.append(("shift", dict(self.weights)))

    def smoke(self, variant: str) -> list[str]:
        return ["smoke failed"] if int(variant[1:]) in self.smoke_fails else []

    def health(self, variant: str, since: datetime) -> Health:
        sick = int(variant[1:]) in self.sick and self.weights[variant] > 0
        return Health(alarms=[f"{variant}-5xx"] if sick else [])

    def retire(self, variant: str) -> None:
        assert self.weights.pop(variant) == 0.0 or len(self.weights) == 0


@pytest.fixture
def history(tmp_path) -> DeploymentHistory:
    return DeploymentHistory(f"sqlite:///{tmp_path}/m.db")


def _go(target, history, version, kind, **strategy):
    spec = StrategySpec(kind=kind, bake="0s", poll="0s", **strategy)
    return rollout(target, model="m", version=version, model_uri="x", strategy=spec,
                   health=HealthSpec(), history=history, sleep=lambda s: None)


@pytest.mark.parametrize(("kind", "extra", "shares"), [
    ("all_at_once", {}, [1.0]),
    ("blue_green", {}, [0.0, 1.0]),
    ("canary", {"canary_percent": 5}, [0.05, 1.0]),
    ("linear", {"steps": [20, 60, 100]}, [0.2, 0.6, 1.0]),
    ("canary", {"shadow_percent": 20}, [0.0, 0.1, 1.0]),  # a shadow bake first
    ("blue_green", {"shadow_percent": 20}, [0.0, 1.0]),  # its 0 % step is the shadow bake
])
def test_each_strategy_steps_green_up_then_retires_blue(kind, extra, shares, history) -> None:
    target = MemoryTarget()
    assert _go(target, history, 1, kind).status == "succeeded"  # first: all there is
    target.log.clear()
    dep = _go(target, history, 2, kind, **extra)
    assert dep.status == "succeeded" and target.weights == {"v2": 1.0}
    assert [w["v2"] for _, w in target.log] == shares
    assert dep.previous_version == 1 and len(dep.steps) == len(shares)


@pytest.mark.parametrize("kind", ["all_at_once", "blue_green", "canary", "linear"])
def test_a_sick_green_rolls_back_to_blue(kind, history) -> None:
    target = MemoryTarget(sick={2})
    _go(target, history, 1, kind)
    dep = _go(target, history, 2, kind)
    assert dep.status == "rolled_back" and "v2-5xx is firing" in dep.reason
    assert target.weights == {"v1": 1.0}


def test_a_failed_smoke_test_never_sends_traffic(history) -> None:
    target = MemoryTarget(smoke_fails={2})
    _go(target, history, 1, "blue_green")
    dep = _go(target, history, 2, "blue_green")
    assert dep.status == "rolled_back" and all(w.get("v2", 0) == 0 for _, w in target.log)


def test_same_version_deploys_nothing(history) -> None:
    target = MemoryTarget()
    _go(target, history, 1, "canary")
    assert _go(target, history, 1, "canary").status == "unchanged"
    assert [r["status"] for r in history.list()] == ["succeeded"]


def test_restore_puts_the_previous_version_back_after_a_kill(history) -> None:
    from headwater.deploy import Deployment

    target = MemoryTarget()
    _go(target, history, 1, "canary")
    target.stage(2, "x")
    target.shift({"v2": 0.1, "v1": 0.9})  # a killed rollout left this behind
    history.save(Deployment(model="m", version=2, target="memory", strategy="canary",
                            previous_version=1))
    dep = restore(target, history)
    assert dep.status == "rolled_back" and target.weights == {"v1": 1.0}
    assert history.unfinished("memory") is None


def test_strategy_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="steps must rise and end at 100"):
        StrategySpec(kind="linear", steps=[50, 20])
    with pytest.raises(ValueError):
        StrategySpec(bake="soon")


def test_a_target_that_mirrors_gets_the_shadow_share_before_any_live_traffic(history) -> None:
    class Mirroring(MemoryTarget):
        def mirror(self, shares: dict[str, float]) -> None:
            self.log.append(("mirror", dict(shares)))

    target = Mirroring()
    _go(target, history, 1, "canary")
    target.log.clear()
    _go(target, history, 2, "canary", shadow_percent=25)
    assert target.log[:3] == [("shift", {"v1": 1.0, "v2": 0.0}), ("mirror", {"v2": 0.25}),
                              ("shift", {"v1": 0.9, "v2": 0.1})]

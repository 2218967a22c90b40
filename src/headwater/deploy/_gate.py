"""The quality gate: a challenger is deployed only when its holdout metric beats the champion's.

Both values come from the registered versions: their tags first (``headwater train`` tags each
version with ``holdout_roc_auc``), else the metrics of the MLflow runs they were logged from.
No champion yet: the gate passes. Passing moves the ``champion`` alias to the challenger's
version (:func:`promote`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError, HeadwaterError

if TYPE_CHECKING:
    from headwater.config._deploy import GateSpec
    from headwater.ml import Tracker


class GateFailed(HeadwaterError):
    """The challenger is not better than the champion by the configured margin."""


@dataclass
class GateResult:
    """The two versions compared and the verdict."""

    model: str
    metric: str
    challenger: int
    challenger_value: float
    champion: int | None
    champion_value: float | None
    passed: bool
    message: str


def _version_metric(tracker: Tracker, ref: str, metric: str) -> tuple[int, float]:
    _, model, version = tracker.resolve(ref)
    mv = tracker.client.get_model_version(model, str(version))
    if metric in (mv.tags or {}):
        return int(version), float(mv.tags[metric])
    metrics: dict[str, Any] = tracker.client.get_run(mv.run_id).data.metrics if mv.run_id else {}
    if metric not in metrics:
        raise ConfigError(f"{model} version {version} ({ref}) has no metric '{metric}'",
                          hint=f"set deploy.gate.metric to one of: "
                          f"{', '.join(sorted(metrics)) or 'none logged'}")
    return int(version), float(metrics[metric])


def quality_gate(tracker: Tracker, model: str, spec: GateSpec, *,
                 version: int | None = None) -> GateResult:
    """Compare ``model@challenger`` (or ``version``) with ``model@champion`` on ``spec.metric``."""
    ref = f"{model}/{version}" if version is not None else f"{model}@{spec.challenger}"
    version, value = _version_metric(tracker, ref, spec.metric)
    aliases = next((m["aliases"] for m in tracker.models() if m["name"] == model), {})
    if spec.champion not in aliases:
        return GateResult(model, spec.metric, version, value, None, None, True,
                          f"{model} has no @{spec.champion} yet: version {version} becomes it")
    champion, best = _version_metric(tracker, f"{model}@{spec.champion}", spec.metric)
    gain = (value - best) if spec.higher_is_better else (best - value)
    passed = champion == version or gain >= spec.min_improvement
    verdict = "passes" if passed else "fails"
    return GateResult(model, spec.metric, version, value, champion, best, passed,
                      f"{spec.metric}: challenger v{version} {value:.4f} vs champion "
                      f"v{champion} {best:.4f} ({gain:+.4f}; needs {spec.min_improvement:+.4f}) "
                      f"— the gate {verdict}")


def promote(tracker: Tracker, result: GateResult, spec: GateSpec) -> None:
    """Point ``@champion`` at the challenger's version."""
    tracker.set_alias(result.model, spec.champion, result.challenger)

"""What a model server runs: the model(s), routing between them, state, log, auth, routes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from headwater.core import ConfigError

#: The environment variable that holds the API key (clients send it as ``X-API-Key`` or
#: ``Authorization: Bearer ...``).
API_KEY_ENV = "HEADWATER_API_KEY"


@dataclass
class ServeSettings:
    """Settings of one model server (the CLI builds them from its options).

    Parameters
    ----------
    model:
        ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME``: the model served (variant ``a``).
    candidate:
        A second model for an A/B split (variant ``b``), or None.
    split:
        Share of users routed to the candidate (0..1); assignment is sticky by user.
    shadow:
        A model scored on a sample of requests without being served (its answers are compared
        with the served ones in the metrics), or None.
    shadow_sample:
        Share of requests the shadow model also scores.
    api_key:
        The key clients must send; None with ``auth=True`` is a configuration error.
    auth:
        False turns the key check off (loopback demos, a trusted network).
    redis_url:
        Online state in Redis (several workers or replicas); None keeps it in this process.
    key_prefix:
        Prefix of every Redis key (one per deployment; tests use a unique one).
    log_dir:
        Folder of the durable interaction log (the embedded log, one topic per replica).
    replica:
        This replica's name: its interaction log topic is ``interactions-<replica>``.
    reload_s:
        How often the registry is asked whether an alias moved (0: never; hot reload).
    refresh_s:
        How often new interactions are folded into the recommender (new items, new users).
    sagemaker / azureml:
        Add SageMaker's ``/ping`` + ``/invocations`` or Azure ML's ``/`` + ``/score`` routes.
    fsync:
        The interaction log's fsync policy (``interval`` by default: a killed server loses
        nothing it acknowledged; a power cut at most ``fsync_interval_ms``).
    """

    model: str
    candidate: str | None = None
    split: float = 0.5
    shadow: str | None = None
    shadow_sample: float = 1.0
    api_key: str | None = field(default=None, repr=False)
    auth: bool = True
    redis_url: str | None = None
    key_prefix: str = "headwater:serve"
    log_dir: Path | None = None
    replica: str = "0"
    reload_s: float = 10.0
    refresh_s: float = 60.0
    sagemaker: bool = False
    azureml: bool = False
    fsync: str = "interval"
    batch_max: int = 256

    def check(self) -> ServeSettings:
        """Raise ConfigError for settings that cannot work; return self."""
        if self.auth and not self.api_key:
            raise ConfigError(
                f"the model server requires an API key, and {API_KEY_ENV} is not set",
                hint=f"export {API_KEY_ENV}=<a long random key> (clients send it as X-API-Key), "
                "or start with --no-auth on a trusted network")
        if not 0.0 <= self.split <= 1.0:
            raise ConfigError(f"split must be between 0 and 1, got {self.split}",
                              hint="--split 0.1 sends 10 % of users to the candidate")
        if self.candidate is None and self.split not in (0.0, 0.5):
            raise ConfigError("--split needs a --candidate model to split traffic with",
                              hint="headwater serve churn@champion --candidate churn@challenger "
                              "--split 0.1")
        if not 0.0 <= self.shadow_sample <= 1.0:
            raise ConfigError(f"shadow sample must be between 0 and 1, got {self.shadow_sample}",
                              hint="--shadow-sample 0.2 scores one request in five")
        return self


def api_key_from_env() -> str | None:
    """The API key from the environment (None if unset or empty)."""
    return os.environ.get(API_KEY_ENV) or None

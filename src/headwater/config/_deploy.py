"""The ``deploy:`` section of headwater.yaml: targets, the rollout strategy and the gates.

Example::

    deploy:
      model: churn
      gate: {metric: holdout_roc_auc, min_improvement: 0.0}
      strategy: {kind: canary, canary_percent: 10, bake: 10m}
      health: {max_error_rate: 0.01, max_p99_ms: 200}
      targets:
        production:
          kind: sagemaker
          region: eu-west-1
          endpoint: churn-prod
          role_arn: ${SAGEMAKER_ROLE_ARN}
          bucket: my-models
          image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/headwater-serve:1.0
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from headwater.core import duration_ms


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _duration(value: str) -> str:
    duration_ms(value)  # raises ValueError with the accepted forms
    return value


class StrategySpec(_Spec):
    """How traffic moves from the version serving now (blue) to the new one (green)."""

    kind: Literal["all_at_once", "blue_green", "canary", "linear"] = Field(
        "canary", description="all_at_once: 100 % at once; blue_green: green is checked with no "
        "traffic, then takes all of it; canary: canary_percent, then 100 %; linear: steps")
    canary_percent: int = Field(10, ge=1, le=99, description="canary traffic share, percent")
    steps: list[int] = Field(default_factory=lambda: [25, 50, 75, 100],
                             description="linear: the green traffic share after each step")
    bake: str = Field("5m", description="how long each step must stay healthy, e.g. 30s, 10m")
    poll: str = Field("5s", description="how often health is checked during a bake")
    shadow_percent: int = Field(0, ge=0, le=50, description="first mirror this share of live "
                                "traffic to green for one bake, its answers discarded, before "
                                "it takes any live traffic (targets that mirror: azureml, local)")

    _check = field_validator("bake", "poll")(_duration)

    @field_validator("steps")
    @classmethod
    def _rising(cls, steps: list[int]) -> list[int]:
        if not steps or steps != sorted(steps) or steps[-1] != 100 or steps[0] <= 0:
            raise ValueError("steps must rise and end at 100, e.g. [25, 50, 75, 100]")
        return steps

    def percents(self) -> list[int]:
        """The green traffic share at each step (0 = checked without traffic)."""
        steps = {"all_at_once": [100], "blue_green": [0, 100],
                 "canary": [self.canary_percent, 100], "linear": list(self.steps)}[self.kind]
        return [0, *steps] if self.shadow_percent and steps[0] else steps


class HealthSpec(_Spec):
    """What a healthy new version is while it bakes; failing it rolls back."""

    max_error_rate: float = Field(0.01, ge=0, le=1, description="5xx answers / requests")
    max_p99_ms: float = Field(250.0, gt=0, description="99th percentile latency, ms")
    min_requests: int = Field(20, ge=0, description="fewer requests than this in a bake "
                              "cannot judge the error rate (the bake is extended once)")


class GateSpec(_Spec):
    """The quality gate: the challenger's holdout metrics against the champion's."""

    metric: str = Field("holdout_roc_auc", description="a metric of the registered run")
    higher_is_better: bool = Field(True, description="false for errors such as rmse")
    min_improvement: float = Field(0.0, description="how much better the challenger must be; "
                                   "negative tolerates a small loss")
    challenger: str = Field("challenger", description="alias of the candidate version")
    champion: str = Field("champion", description="alias of the version serving now; moved "
                          "to the challenger when the gate passes")


class SageMakerTargetSpec(_Spec):
    """An AWS SageMaker real-time endpoint with one production variant per version."""

    kind: Literal["sagemaker"] = "sagemaker"
    region: str = Field(..., description="AWS region, e.g. eu-west-1")
    endpoint: str = Field(..., pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
                          description="the endpoint name")
    role_arn: str = Field(..., description="IAM role SageMaker assumes (from ${ENV})")
    bucket: str = Field(..., description="S3 bucket for model data")
    prefix: str = Field("headwater/models", description="S3 key prefix for model data")
    image: str | None = Field(None, description="a serving image URI you maintain; or set "
                              "`repository` and the image is built from the bundle")
    repository: str | None = Field(None, pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$",
                                   description="ECR repository the bundle's image is pushed to "
                                   "(created if missing), tagged v<version>-<bundle sha256>")
    instance_type: str = Field("ml.m5.large", description="instance type per variant")
    instance_count: int = Field(1, ge=1, description="instances per variant")
    endpoint_url: str | None = Field(None, description="override the AWS endpoint URL (tests, "
                                     "VPC endpoints); credentials come from the environment")

    @model_validator(mode="after")
    def _one_image(self) -> SageMakerTargetSpec:
        if (self.image is None) == (self.repository is None):
            raise ValueError("set exactly one of image (an image you maintain) and repository "
                             "(an ECR repository the bundle's image is pushed to)")
        return self


class AzureMLTargetSpec(_Spec):
    """An Azure ML managed online endpoint with one deployment per version."""

    kind: Literal["azureml"] = "azureml"
    subscription_id: str = Field(..., description="Azure subscription id (from ${ENV})")
    resource_group: str = Field(..., description="resource group of the workspace")
    workspace: str = Field(..., pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$",
                           description="Azure ML workspace name")
    endpoint: str = Field(..., pattern=r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$",
                          description="online endpoint name (3-32 characters, unique in the "
                          "region)")
    image: str = Field(..., description="the serving image in ACR, e.g. "
                       "myacr.azurecr.io/headwater-serve:1.0 (`headwater package --push`)")
    storage_account: str = Field(..., description="storage account for model data")
    container: str = Field("headwater-models", description="blob container for model data")
    prefix: str = Field("headwater/models", description="blob name prefix for model data")
    instance_type: str = Field("Standard_DS3_v2", description="VM size per deployment")
    instance_count: int = Field(1, ge=1, description="instances per deployment")
    api_version: str = Field("2024-04-01", description="Azure ML REST API version")
    management_url: str = Field("https://management.azure.com", description="Azure Resource "
                                "Manager URL (override for sovereign clouds and tests)")
    authority_url: str = Field("https://login.microsoftonline.com", description="Entra ID "
                               "(AAD) authority for the client-credentials flow")
    storage_url: str | None = Field(None, description="blob endpoint (default "
                                    "https://<storage_account>.blob.core.windows.net)")
    registry_url: str | None = Field(None, description="registry endpoint for the image check "
                                     "(default https://<image's registry host>)")



class LocalTargetSpec(_Spec):
    """Model versions as processes on this machine behind a router with weighted routing."""

    kind: Literal["local"] = "local"
    host: str = Field("127.0.0.1", description="address the router listens on")
    port: int = Field(8080, ge=1, le=65535, description="the router's port: clients call it")
    runtime: Literal["server", "bundle"] = Field(
        "server", description="server: the model server with this interpreter; bundle: build "
        "the version's bundle (`headwater package`) and run it as a process")
    api_key: str | None = Field(None, repr=False, description="key every version requires "
                                "(from ${ENV}); needed when host is not loopback")
    ready_timeout: str = Field("120s", description="how long a new version may take to load")
    drain: str = Field("30s", description="longest wait for requests in flight to a retired "
                       "version")

    _check = field_validator("ready_timeout", "drain")(_duration)


#: Deploy targets, told apart by ``kind``.
TargetSpec = Annotated[SageMakerTargetSpec | AzureMLTargetSpec | LocalTargetSpec,
                       Field(discriminator="kind")]


class SmokeSpec(_Spec):
    """The smoke test of a pipeline's staging deployment: requests that must all succeed."""

    data: str | None = Field(None, description="CSV/Parquet of request rows (relative to the "
                             "project); default: the model's logged input example")
    requests: int = Field(10, ge=1, description="how many requests to send")
    rows: int = Field(5, ge=1, description="rows per request at most")
    max_p99_ms: float = Field(2000.0, gt=0, description="99th percentile latency allowed, ms")


class PipelineSpec(_Spec):
    """``headwater pipeline run``: train → gate → package → staging → smoke → production."""

    task: str | None = Field(None, description="training task (ml.train.<task>); default: "
                             "the pipeline's name")
    train: bool = Field(True, description="false: take the model's @challenger as it is")
    staging: str = Field(..., description="deploy target the smoke test runs against")
    production: str = Field(..., description="deploy target promoted to when staging passes")
    strategy: StrategySpec | None = Field(None, description="production rollout; default "
                                          "deploy.strategy")
    staging_strategy: StrategySpec = Field(
        default_factory=lambda: StrategySpec(kind="all_at_once", bake="0s"),
        description="staging rollout (default: all at once, no bake)")
    gate: GateSpec | None = Field(None, description="default deploy.gate")
    smoke: SmokeSpec = Field(default_factory=SmokeSpec)


class DeploySpec(_Spec):
    """Where and how registered models are deployed (``headwater deploy``)."""

    model: str | None = Field(None, description="registered model name deployed by default")
    targets: dict[str, TargetSpec] = Field(default_factory=dict,
                                           description="named deploy targets")
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    health: HealthSpec = Field(default_factory=HealthSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    pipelines: dict[str, PipelineSpec] = Field(default_factory=dict, description="named "
                                               "pipelines for `headwater pipeline run`")

"""AWS SageMaker real-time endpoints as a deploy target (boto3).

One endpoint, one production variant per model version (``v4``, ``v5``): a rollout stages the new
version as a second variant with no traffic (a new endpoint config holding both variants, then
UpdateEndpoint), shifts traffic with UpdateEndpointWeightsAndCapacities, watches a CloudWatch
alarm per variant (5xx errors, p99 model latency), and removes the old variant when done.

Before any resource is created, :meth:`SageMakerTarget.preflight` checks the credentials
(STS), the execution role (IAM), the model bucket (S3) and the region, so a missing piece is one
clear error and nothing half-made.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError, require
from headwater.deploy._rollout import DeployError, Health, Variant

if TYPE_CHECKING:
    from headwater.config._deploy import HealthSpec, SageMakerTargetSpec
    from headwater.deploy._bundle import Bundle

#: How long to wait for an endpoint to become InService after a change.
WAIT_S = 1800.0


def model_archive(folder: Path) -> bytes:
    """``model.tar.gz`` of an MLflow model folder, byte-identical for identical files.

    >>> import tempfile; d = Path(tempfile.mkdtemp()); _ = (d / "MLmodel").write_text("x")
    >>> model_archive(d) == model_archive(d)
    True
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(str(path.relative_to(folder)))
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    # gzip stores a timestamp in its header: zero it so that the same files give the same bytes
    return raw[:4] + b"\0\0\0\0" + raw[8:]


class SageMakerTarget:
    """A SageMaker endpoint whose production variants are model versions."""

    def __init__(self, name: str, spec: SageMakerTargetSpec, health: HealthSpec, *,
                 session: Any = None) -> None:
        boto3 = require("boto3", "s3")
        self.name, self.spec, self.health_spec = name, spec, health
        self.session = session or boto3.session.Session(region_name=spec.region)
        kw = {"region_name": spec.region, "endpoint_url": spec.endpoint_url}
        self.sm = self.session.client("sagemaker", **kw)
        self.s3 = self.session.client("s3", **kw)
        self.cw = self.session.client("cloudwatch", **kw)
        self.runtime = self.session.client("sagemaker-runtime", **kw)
        self._kw = kw
        self._examples: dict[str, bytes] = {}
        self.image = spec.image  # with spec.repository: set by publish()

    @property
    def needs_bundle(self) -> bool:
        """True when the image is built from the bundle and pushed to ECR (``repository``)."""
        return self.spec.repository is not None

    def publish(self, bundle: Bundle) -> str:
        """Push ``bundle``'s image to the ECR repository (once per bundle); the models this
        target creates from now on run it."""
        from headwater.deploy._ecr import Registry

        if self.spec.repository is not None:
            self.image = Registry(self.session, self.spec.repository, region=self.spec.region,
                                  endpoint_url=self.spec.endpoint_url).publish(bundle)
        return self.image or ""

    # -- checks before anything is created ----------------------------------------------------
    def preflight(self) -> None:
        """Credentials, region, role and bucket exist: else one clear error, nothing created."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        spec = self.spec
        regions = self.session.get_available_regions("sagemaker")
        if spec.endpoint_url is None and spec.region not in regions:
            raise ConfigError(f"deploy target '{self.name}': unknown AWS region '{spec.region}'",
                              hint=f"use one of {', '.join(sorted(regions)[:6])}, ...")
        try:
            self.session.client("sts", **self._kw).get_caller_identity()
        except NoCredentialsError:
            raise ConfigError(f"deploy target '{self.name}': no AWS credentials",
                              hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                              "AWS_PROFILE) in the environment or the CI's secret store") from None
        except (ClientError, BotoCoreError) as exc:
            raise ConfigError(f"deploy target '{self.name}': AWS rejected the credentials: "
                              f"{_message(exc)}", hint="check the access key and secret") from None
        role = spec.role_arn.rsplit("/", 1)[-1]
        try:
            self.session.client("iam", **self._kw).get_role(RoleName=role)
        except ClientError:
            raise ConfigError(f"deploy target '{self.name}': IAM role '{spec.role_arn}' not "
                              "found", hint="create the SageMaker execution role or fix "
                              "deploy.targets.<name>.role_arn") from None
        try:
            self.s3.head_bucket(Bucket=spec.bucket)
        except ClientError:
            raise ConfigError(f"deploy target '{self.name}': S3 bucket '{spec.bucket}' not found "
                              "or not yours", hint="create it, or fix deploy.targets.<name>."
                              "bucket") from None

    # -- Target --------------------------------------------------------------------------------
    def _endpoint(self) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.sm.describe_endpoint(EndpointName=self.spec.endpoint)
        except ClientError as exc:
            if "Could not find" in _message(exc) or _code(exc) == "ValidationException":
                return None
            raise

    def variants(self) -> list[Variant]:
        """The endpoint's production variants (``v<version>``) and their traffic weights."""
        endpoint = self._endpoint()
        if endpoint is None:
            return []
        found = endpoint.get("ProductionVariants", [])
        total = sum(v.get("CurrentWeight", 0.0) for v in found) or 1.0
        return [Variant(v["VariantName"], int(v["VariantName"].lstrip("v")),
                        v.get("CurrentWeight", 0.0) / total) for v in found]

    def upload(self, version: int, model_dir: Path) -> str:
        """Put the model archive in S3 under a content-addressed key; its ``s3://`` URL."""
        data = model_archive(model_dir)
        digest = hashlib.sha256(data).hexdigest()[:16]
        key = f"{self.spec.prefix.strip('/')}/{self.spec.endpoint}/v{version}-{digest}.tar.gz"
        self.s3.put_object(Bucket=self.spec.bucket, Key=key, Body=data)
        return f"s3://{self.spec.bucket}/{key}"

    def stage(self, version: int, model_uri: str) -> str:
        """Create the model and a variant for ``version`` with weight 0 (or 1 when first)."""
        spec, variant = self.spec, f"v{version}"
        if self.image is None:
            raise DeployError(f"deploy target '{self.name}': no image to run version {version}",
                              hint="publish the bundle first (deploy_model does it)")
        model_name = f"{spec.endpoint}-{variant}"
        data_url = model_uri if model_uri.startswith("s3://") else self.upload(
            version, Path(model_uri))
        example = Path(model_uri) / "input_example.json"
        if not model_uri.startswith("s3://") and example.exists():  # what smoke tests send
            self._examples[variant] = (b'{"dataframe_split": ' + example.read_bytes() + b"}")
        self.sm.create_model(ModelName=model_name, ExecutionRoleArn=spec.role_arn,
                             PrimaryContainer={"Image": self.image, "ModelDataUrl": data_url,
                                               "Environment": {"HEADWATER_MODEL_VERSION":
                                                               str(version)}})
        current = [v for v in self.variants() if v.name != variant]
        rows = [self._variant_row(v.name, v.weight) for v in current]
        rows.append(self._variant_row(variant, 0.0 if current else 1.0))
        config = f"{spec.endpoint}-{int(time.time() * 1000)}"
        self.sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=rows)
        if self._endpoint() is None:
            self.sm.create_endpoint(EndpointName=spec.endpoint, EndpointConfigName=config)
        else:
            self.sm.update_endpoint(EndpointName=spec.endpoint, EndpointConfigName=config)
        self._wait()
        self._alarms(variant)
        return variant

    def _variant_row(self, name: str, weight: float) -> dict[str, Any]:
        return {"VariantName": name, "ModelName": f"{self.spec.endpoint}-{name}",
                "InitialInstanceCount": self.spec.instance_count,
                "InstanceType": self.spec.instance_type, "InitialVariantWeight": weight}

    def _wait(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while True:
            status = (self._endpoint() or {}).get("EndpointStatus")
            if status == "InService":
                return
            if status == "Failed" or time.monotonic() > deadline:
                raise DeployError(f"endpoint {self.spec.endpoint} is {status}",
                                  hint="see the endpoint's events in the SageMaker console")
            time.sleep(5)

    def _alarm_names(self, variant: str) -> list[str]:
        return [f"{self.spec.endpoint}-{variant}-5xx", f"{self.spec.endpoint}-{variant}-p99"]

    def _alarms(self, variant: str) -> None:
        dims = [{"Name": "EndpointName", "Value": self.spec.endpoint},
                {"Name": "VariantName", "Value": variant}]
        errors, latency = self._alarm_names(variant)
        self.cw.put_metric_alarm(
            AlarmName=errors, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
            Dimensions=dims, Statistic="Sum", Period=60, EvaluationPeriods=1,
            Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching")
        self.cw.put_metric_alarm(
            AlarmName=latency, Namespace="AWS/SageMaker", MetricName="ModelLatency",
            Dimensions=dims, ExtendedStatistic="p99", Period=60, EvaluationPeriods=1,
            Threshold=self.health_spec.max_p99_ms * 1000.0,  # ModelLatency is in microseconds
            ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")

    def shift(self, weights: dict[str, float]) -> None:
        """UpdateEndpointWeightsAndCapacities with the given shares."""
        self.sm.update_endpoint_weights_and_capacities(
            EndpointName=self.spec.endpoint,
            DesiredWeightsAndCapacities=[{"VariantName": n, "DesiredWeight": float(w)}
                                         for n, w in weights.items()])
        self._wait()

    def smoke(self, variant: str) -> list[str]:
        """InvokeEndpoint on ``variant`` with the model's input example; a failure is a problem."""
        from botocore.exceptions import BotoCoreError, ClientError

        body = self._examples.get(variant)
        if body is None:  # no example logged with the model: nothing to send
            return []
        try:
            self.runtime.invoke_endpoint(EndpointName=self.spec.endpoint, TargetVariant=variant,
                                         ContentType="application/json", Body=body)
        except (ClientError, BotoCoreError) as exc:
            return [f"smoke request to {variant} failed: {_message(exc)}"]
        return []

    def health(self, variant: str, since: datetime) -> Health:
        """The variant's CloudWatch alarms that are in ALARM."""
        found = self.cw.describe_alarms(AlarmNames=self._alarm_names(variant))["MetricAlarms"]
        return Health(alarms=[a["AlarmName"] for a in found if a["StateValue"] == "ALARM"])

    def retire(self, variant: str) -> None:
        """A new endpoint config without ``variant``; then its model and alarms go."""
        spec = self.spec
        keep = [v for v in self.variants() if v.name != variant]
        if keep:
            config = f"{spec.endpoint}-{int(time.time() * 1000)}"
            self.sm.create_endpoint_config(
                EndpointConfigName=config,
                ProductionVariants=[self._variant_row(v.name, 1.0 if len(keep) == 1 else v.weight)
                                    for v in keep])
            self.sm.update_endpoint(EndpointName=spec.endpoint, EndpointConfigName=config)
            self._wait()
        self.cw.delete_alarms(AlarmNames=self._alarm_names(variant))
        self.sm.delete_model(ModelName=f"{spec.endpoint}-{variant}")


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _message(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Message", "") or str(exc)

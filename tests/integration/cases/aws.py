"""moto's server on loopback (real HTTP) with what SageMaker deploy tests need.

moto 5 implements UpdateEndpointWeightsAndCapacities but not UpdateEndpoint;
:func:`moto_aws` adds UpdateEndpoint to moto's backend (as MLflow's own tests extend moto),
applying the new endpoint config's variants. A firing CloudWatch alarm is simulated with
SetAlarmState by the tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def _update_endpoint(self):  # moto's missing UpdateEndpoint, applied like CreateEndpoint
    from moto.core.responses import ActionResult

    backend = self.sagemaker_backend
    name, config = self._get_param("EndpointName"), self._get_param("EndpointConfigName")
    endpoint = backend.endpoints[name]
    variants = backend.describe_endpoint_config(config)["ProductionVariants"]
    endpoint.endpoint_config_name = config
    endpoint.production_variants = endpoint._process_production_variants(variants)
    return ActionResult({"EndpointArn": endpoint.arn})


@contextmanager
def moto_aws(bucket: str = "hw-models") -> Iterator[dict[str, Any]]:
    """A moto server with credentials in the environment, a SageMaker role and a bucket."""
    import boto3
    from moto.sagemaker.responses import SageMakerResponse
    from moto.server import ThreadedMotoServer

    SageMakerResponse.update_endpoint = _update_endpoint
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    import httpx

    httpx.post(f"{url}/moto-api/reset")  # moto's backends are per process: start clean
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "eu-west-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    kw = {"endpoint_url": url, "region_name": "eu-west-1"}
    try:
        role = boto3.client("iam", **kw).create_role(
            RoleName="sagemaker-exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        boto3.client("s3", **kw).create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield {"url": url, "role": role, "kw": kw, "env": env, "bucket": bucket}
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def moto_server() -> Any:
    """A module-scoped fixture of :func:`moto_aws`: ``aws = moto_server()`` in a test module."""

    @pytest.fixture(scope="module", name="aws")
    def fixture() -> Iterator[dict[str, Any]]:
        with moto_aws() as found:
            yield found

    return fixture


def weights(aws: dict[str, Any], endpoint: str) -> dict[str, float]:
    """The endpoint's variants and their current weights."""
    import boto3

    sm = boto3.client("sagemaker", **aws["kw"])
    found = sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"]
    return {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in found}

"""Bundles: a registered model, the server that answers for it, its pinned requirements and a
Dockerfile meeting SageMaker's and Azure ML's container contracts, in one content-addressed
folder.

    bundle = build_bundle(project, "churn@champion", Path("bundles"))
    bundle.path, bundle.digest          # bundles/churn-v3-<digest[:12]>/, sha256 of the manifest

The folder holds ``model/`` (the MLflow model), ``headwater/`` (the package's own source, so the
server in the image is the one that was tested), ``requirements.lock`` (every distribution of
the running environment, pinned), ``serve`` (the entry point SageMaker runs), a ``Dockerfile``
and ``manifest.json`` (each file's sha256, the headwater version, the model's name and
version). The same model and environment give the same bytes and the same digest. Nothing from
the project folder or the environment enters it except the model, so no secret can.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from headwater._version import __version__
from headwater.core import ConfigError
from headwater.deploy._rollout import DeployError

if TYPE_CHECKING:
    from headwater.config import Project

#: The port both clouds' container contracts use.
PORT = 8080
DOCKERFILE = """\
# Built by `headwater package`: SageMaker (/ping, /invocations) and Azure ML (/, /score) on 8080.
FROM python:3.11-slim
WORKDIR /opt/headwater
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY headwater/ /opt/headwater/src/headwater/
COPY model/ /opt/ml/model/
COPY serve /usr/local/bin/serve
ENV PYTHONPATH=/opt/headwater/src HEADWATER_MODEL_DIR=/opt/ml/model
EXPOSE 8080
ENTRYPOINT ["serve"]
"""
SERVE = """\
#!/bin/sh
# The container's entry point (SageMaker starts it as `serve`): the model server on port 8080.
# HEADWATER_API_KEY turns the key check on; without it the endpoint's own auth applies.
set -e
[ "$1" = serve ] && shift
dir="${HEADWATER_MODEL_DIR:-$(dirname "$0")/model}"
auth="--no-auth"; [ -n "${HEADWATER_API_KEY:-}" ] && auth="--auth"
exec python -m headwater serve "file://$(cd "$dir" && pwd)" --sagemaker --azureml \\
  --host "${HEADWATER_HOST:-0.0.0.0}" --port "${HEADWATER_PORT:-8080}" --reload-every 0 $auth "$@"
"""


@dataclass
class Bundle:
    """A built bundle folder and its digest."""

    path: Path
    digest: str
    model: str
    version: int


def _pinned_requirements() -> str:
    """Every installed distribution but headwater itself, ``name==version``, sorted."""
    pins = {}
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower().replace("_", "-")
        if name and name != "headwater":
            pins[name] = dist.version
    return "".join(f"{n}=={v}\n" for n, v in sorted(pins.items()))


def _copy_package(dest: Path) -> None:
    source = Path(__file__).parents[1]  # the installed headwater package
    for path in sorted(source.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_bundle(project: Project, ref: str, out: Path) -> Bundle:
    """Build the bundle of registered model ``ref`` under ``out``; the same inputs, same digest."""
    import mlflow.artifacts

    from headwater.ml import Tracker

    tracker = Tracker.for_project(project)
    uri, name, version = tracker.resolve(ref)
    if name is None or version is None:
        raise ConfigError(f"'{ref}' is not a registered model version",
                          hint="package registered models: NAME@ALIAS or NAME/VERSION")
    tracker._mlflow()
    return _assemble(out, name, version, lambda model: mlflow.artifacts.download_artifacts(
        artifact_uri=uri, dst_path=str(model)))


def bundle_model(model_dir: Path, name: str, version: int, out: Path) -> Bundle:
    """Build the bundle of the MLflow model in ``model_dir`` (a downloaded version) as ``name``
    version ``version`` under ``out``."""
    return _assemble(out, name, version, lambda model: shutil.copytree(model_dir, model))


def _assemble(out: Path, name: str, version: int, put_model: Callable[[Path], object]) -> Bundle:
    staging = out / f".{name}-v{version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    put_model(staging / "model")
    _copy_package(staging / "headwater")
    (staging / "requirements.lock").write_text(_pinned_requirements(), encoding="utf-8")
    (staging / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    (staging / "serve").write_text(SERVE, encoding="utf-8")
    (staging / "serve").chmod(0o755)
    files = {str(p.relative_to(staging)): _sha(p)
             for p in sorted(staging.rglob("*")) if p.is_file()}
    manifest = {"headwater_version": __version__, "model": name, "version": version,
                "port": PORT, "files": files}
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()
    (staging / "manifest.json").write_text(text, encoding="utf-8")
    final = out / f"{name}-v{version}-{digest[:12]}"
    if final.exists():  # the same bundle was built before: it is this one, byte for byte
        shutil.rmtree(staging)
    else:
        staging.rename(final)
    return Bundle(final, digest, name, version)


def build_command(bundle: Path, tag: str | None = None) -> list[str]:
    """How to build the image where a container builder exists (none runs on every machine)."""
    for tool in ("docker", "podman", "buildah"):
        if shutil.which(tool):
            verb = ["bud"] if tool == "buildah" else ["build"]
            return [tool, *verb, "-t", tag or f"headwater/{bundle.name}", str(bundle)]
    return []


def builder() -> str | None:
    """The container builder that works on this machine: docker (with a daemon that answers),
    podman or buildah; None when there is none."""
    for tool in ("docker", "podman", "buildah"):
        if shutil.which(tool) is None:
            continue
        try:
            works = subprocess.run([tool, "info"], capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            works = False
        if works:
            return tool
    return None


def image_commands(tool: str, bundle: Bundle, archive: Path | None = None) -> list[list[str]]:
    """The commands that build ``bundle``'s image with ``tool`` (labelled with the bundle's
    sha256) and, given ``archive``, save it there as an OCI archive."""
    image = f"headwater/{bundle.path.name}"
    verb = "bud" if tool == "buildah" else "build"
    commands = [[tool, verb, "--label", f"headwater.bundle.sha256={bundle.digest}", "-t", image,
                 str(bundle.path)]]
    if archive is not None:
        commands.append({"docker": ["docker", "save", "-o", str(archive), image],
                         "podman": ["podman", "save", "--format", "oci-archive", "-o",
                                    str(archive), image],
                         "buildah": ["buildah", "push", image, f"oci-archive:{archive}"]}[tool])
    return commands


def push_commands(bundle: Path, image: str) -> list[list[str]]:
    """Build ``bundle`` as ``image`` and push it (OCI distribution API, through the builder);
    empty where no builder exists."""
    build = build_command(bundle, image)
    return [build, [build[0], "push", image]] if build else []


def push_hint(bundle: Path, image: str) -> str:
    """What pushes ``image`` from another machine, or from Azure itself for ACR."""
    registry = image.split("/", 1)[0]
    if registry.endswith(".azurecr.io"):
        name = registry.split(".", 1)[0]
        return (f"az acr build --registry {name} --image {image.split('/', 1)[1]} {bundle}"
                f"   (ACR builds it; or, where docker runs: az acr login --name {name} && "
                f"docker build -t {image} {bundle} && docker push {image})")
    return f"docker build -t {image} {bundle} && docker push {image}   (after docker login)"


def bundle_env(bundle: Path, *, port: int = PORT, host: str = "127.0.0.1",
               model_dir: Path | None = None) -> dict[str, str]:
    """The environment ``bundle``'s ``serve`` runs with here: its own headwater and model (or
    ``model_dir``), this interpreter, after checking this environment matches its
    ``requirements.lock`` (a mismatch is a ConfigError naming the packages)."""
    wanted = dict(line.split("==", 1) for line in
                  (bundle / "requirements.lock").read_text().split() if "==" in line)
    have = {n: v for n, v in (line.split("==", 1) for line in _pinned_requirements().split())}
    wrong = sorted(n for n, v in wanted.items() if have.get(n) != v)
    if wrong:
        raise ConfigError(f"this environment does not match {bundle.name}'s requirements.lock "
                          f"({', '.join(wrong[:8])}{' …' if len(wrong) > 8 else ''})",
                          hint=f"python -m venv env && env/bin/pip install -r "
                          f"{bundle / 'requirements.lock'}, then run with env/bin/python")
    return {"PYTHONPATH": str(bundle), "HEADWATER_MODEL_DIR": str(model_dir or bundle / "model"),
            "HEADWATER_PORT": str(port), "HEADWATER_HOST": host,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_bundle(bundle: Path, *, port: int = PORT, host: str = "127.0.0.1",
               workdir: Path | None = None, model_dir: Path | None = None,
               ) -> subprocess.Popen[bytes]:
    """Start ``bundle`` as a plain process answering the container's routes on ``port``.

    ``model_dir`` serves another model folder than the bundle's own (as a cloud mounts the
    model's files into the container).

    It runs the bundle's own copy of headwater and model with this interpreter; the
    requirements it needs are checked against this environment first (a mismatch is an error
    naming the packages; build a venv from ``requirements.lock`` to match it exactly).
    """
    env = {**os.environ, **bundle_env(bundle, port=port, host=host, model_dir=model_dir)}
    cwd = workdir or Path(tempfile.mkdtemp(prefix="headwater-bundle-"))
    return subprocess.Popen([str(bundle / "serve"), "serve"], cwd=cwd, env=env)


@contextmanager
def serving(bundle: Path, *, timeout: float = 120.0) -> Iterator[str]:
    """Run ``bundle`` on a free loopback port until ``/ping`` answers; yield its base URL,
    stop it after the block."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="headwater-bundle-") as work:
        proc = run_bundle(bundle, port=port, workdir=Path(work))
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise DeployError(f"the server of {bundle.name} exited with code "
                                      f"{proc.returncode} before answering /ping",
                                      hint=f"run it by hand to see why: {bundle / 'serve'}")
                try:
                    if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise DeployError(f"{bundle.name} did not answer /ping within {timeout:.0f} s",
                                      hint="see its output above")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

"""Bundle images in Amazon ECR: the repository is created if missing, the image is built where a
container builder exists, and its blobs and manifest go up through ECR's image API.

    registry = Registry(session, "churn-serve", region="eu-west-1")
    image = registry.publish(bundle)  # 1234.dkr.ecr.eu-west-1.amazonaws.com/churn-serve:v3-<sha>

The tag is ``v<version>-<bundle sha256>``: a bundle is pushed once, and ``DescribeImages`` on the
tag shows which bundle an image was built from. The push reads the builder's OCI archive (an
OCI image layout: ``index.json`` and ``blobs/sha256/…``) and uploads each blob with
InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload (blobs ECR already has are skipped),
then PutImage with the manifest; no ``docker login`` is needed, only the IAM permissions of those
calls. With no builder on the machine nothing is pushed: the error says how to build and push
the bundle elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError
from headwater.deploy._bundle import builder, image_commands
from headwater.deploy._rollout import DeployError

if TYPE_CHECKING:
    from headwater.deploy._bundle import Bundle

#: Media types of an image manifest ECR stores (OCI and Docker v2).
MANIFESTS = ("application/vnd.oci.image.manifest.v1+json",
             "application/vnd.docker.distribution.manifest.v2+json")


def image_tag(bundle: Bundle) -> str:
    """The tag of ``bundle``'s image: ``v<version>-<bundle sha256>``."""
    return f"v{bundle.version}-{bundle.digest}"


@dataclass
class OciImage:
    """An image read from an OCI archive: its manifest bytes and blobs by digest."""

    manifest: bytes
    media_type: str
    blobs: dict[str, bytes]

    @property
    def digest(self) -> str:
        """``sha256:…`` of the manifest, the image digest a registry shows."""
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


def read_oci_archive(path: Path) -> OciImage:
    """The single image of an OCI archive (``podman save --format oci-archive``, ``docker save``
    of Docker 25+, ``buildah push … oci-archive:``); every blob's digest is checked."""
    with tarfile.open(path) as tar:
        def blob(digest: str) -> bytes:
            algorithm, _, hexdigest = digest.partition(":")
            member = tar.extractfile(f"blobs/{algorithm}/{hexdigest}")
            if member is None:
                raise ConfigError(f"{path}: blob {digest} is missing")
            data = member.read()
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                raise ConfigError(f"{path}: blob {digest} does not match its digest")
            return data

        try:
            index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        except KeyError:
            raise ConfigError(f"{path} is not an OCI archive (no index.json)",
                              hint="save the image with `podman save --format oci-archive` or "
                              "Docker 25 or later") from None
        entries = index.get("manifests", [])
        if len(entries) != 1 or entries[0].get("mediaType") not in MANIFESTS:
            raise ConfigError(f"{path}: expected one image manifest in index.json, found "
                              f"{[e.get('mediaType') for e in entries]}",
                              hint="save a single-platform image")
        manifest = blob(entries[0]["digest"])
        parsed = json.loads(manifest)
        blobs = {d["digest"]: blob(d["digest"]) for d in [parsed["config"], *parsed["layers"]]}
    return OciImage(manifest, entries[0]["mediaType"], blobs)


class Registry:
    """One ECR repository of bundle images."""

    def __init__(self, session: Any, repository: str, *, region: str,
                 endpoint_url: str | None = None) -> None:
        self.repository = repository
        self.ecr = session.client("ecr", region_name=region, endpoint_url=endpoint_url)

    def ensure_repository(self) -> str:
        """The repository's URI, creating it (immutable tags, scan on push) when missing."""
        try:
            found = self.ecr.describe_repositories(repositoryNames=[self.repository])
            return found["repositories"][0]["repositoryUri"]
        except self.ecr.exceptions.RepositoryNotFoundException:
            made = self.ecr.create_repository(
                repositoryName=self.repository, imageTagMutability="IMMUTABLE",
                imageScanningConfiguration={"scanOnPush": True})
            return made["repository"]["repositoryUri"]

    def find(self, tag: str) -> dict[str, Any] | None:
        """DescribeImages of ``tag``: the image's details, or None when it is not there."""
        try:
            found = self.ecr.describe_images(repositoryName=self.repository,
                                             imageIds=[{"imageTag": tag}])["imageDetails"]
        except self.ecr.exceptions.ImageNotFoundException:
            return None
        return found[0] if found else None

    def push(self, image: OciImage, tag: str) -> str:
        """Upload the blobs ECR lacks, then PutImage ``tag``; the image digest."""
        digests = list(image.blobs)
        have = self.ecr.batch_check_layer_availability(
            repositoryName=self.repository, layerDigests=digests)["layers"]
        present = {x["layerDigest"] for x in have if x.get("layerAvailability") == "AVAILABLE"}
        for digest in digests:
            if digest not in present:
                self._upload(digest, image.blobs[digest])
        self.ecr.put_image(repositoryName=self.repository, imageManifest=image.manifest.decode(),
                           imageManifestMediaType=image.media_type, imageTag=tag,
                           imageDigest=image.digest)
        return image.digest

    def _upload(self, digest: str, data: bytes) -> None:
        started = self.ecr.initiate_layer_upload(repositoryName=self.repository)
        upload, part = started["uploadId"], int(started.get("partSize") or 10 * 2**20)
        for first in range(0, len(data), part):
            chunk = data[first:first + part]
            self.ecr.upload_layer_part(repositoryName=self.repository, uploadId=upload,
                                       partFirstByte=first, partLastByte=first + len(chunk) - 1,
                                       layerPartBlob=chunk)
        done = self.ecr.complete_layer_upload(repositoryName=self.repository, uploadId=upload,
                                              layerDigests=[digest])
        if done["layerDigest"] != digest:
            raise DeployError(f"ECR stored blob {digest} as {done['layerDigest']}",
                              hint="the upload was corrupted on the way; push again")

    def publish(self, bundle: Bundle) -> str:
        """``bundle``'s image URI in the repository: pushed now, or found from an earlier push.

        Without docker, podman or buildah on this machine the image cannot be built: a
        :class:`DeployError` says how to build and push it, and nothing is created but the
        repository.
        """
        uri = self.ensure_repository()
        tag = image_tag(bundle)
        if self.find(tag) is not None:
            return f"{uri}:{tag}"
        tool = builder()
        if tool is None:
            raise DeployError(
                f"the image of bundle {bundle.path.name} is not in ECR repository "
                f"{self.repository} and this machine has no docker, podman or buildah to build it",
                hint=f"on a machine with one: docker build -t {uri}:{tag} {bundle.path} && "
                f"aws ecr get-login-password | docker login --username AWS --password-stdin "
                f"{uri.split('/', 1)[0]} && docker push {uri}:{tag}; then deploy again")
        with tempfile.TemporaryDirectory(prefix="headwater-image-") as work:
            archive = Path(work) / "image.tar"
            for command in image_commands(tool, bundle, archive):
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode:
                    last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                    raise DeployError(f"`{' '.join(command[:2])}` failed for {bundle.path.name}: "
                                      f"{last}", hint=f"build it by hand: {' '.join(command)}")
            self.push(read_oci_archive(archive), tag)
        return f"{uri}:{tag}"

"""A stand-in for `podman` on a machine with no container runtime (tests only).

`podman build --label K=V -t IMAGE CONTEXT` records the context and labels;
`podman save --format oci-archive -o OUT IMAGE` writes a genuine OCI image layout (oci-layout,
index.json, blobs/sha256/...) whose one layer holds the build context under /opt/headwater.
The image has no base layers, so it does not run; the code under test only pushes it and
checks digests, which is what the ECR push needs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import sys
import tarfile
from pathlib import Path

STATE = Path(os.environ["FAKE_BUILDER_STATE"])


def _blob(data: bytes, media: str) -> tuple[dict, bytes]:
    return {"mediaType": media, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data)}, data


def build(args: list[str]) -> None:
    labels, image, context = {}, None, Path(args[-1])
    for flag, value in itertools.pairwise(args):
        if flag == "--label":
            key, _, val = value.partition("=")
            labels[key] = val
        elif flag == "-t":
            image = value
    if not (context / "Dockerfile").is_file():
        sys.exit(f"Error: no Dockerfile in {context}")
    images = json.loads(STATE.read_text()) if STATE.exists() else {}
    images[image] = {"context": str(context), "labels": labels}
    STATE.write_text(json.dumps(images))


def save(args: list[str]) -> None:
    out, image = Path(args[args.index("-o") + 1]), args[-1]
    found = json.loads(STATE.read_text())[image]
    context = Path(found["context"])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path in sorted(p for p in context.rglob("*") if p.is_file()):
            info = tarfile.TarInfo("opt/headwater/" + str(path.relative_to(context)))
            data = path.read_bytes()
            info.size, info.mode = len(data), 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    layer = raw.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Labels": found["labels"], "Entrypoint": ["serve"],
                                    "ExposedPorts": {"8080/tcp": {}}},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}},
                        sort_keys=True).encode()
    layer_desc, layer_gz = _blob(gzip.compress(layer, mtime=0),
                                 "application/vnd.oci.image.layer.v1.tar+gzip")
    config_desc, _ = _blob(config, "application/vnd.oci.image.config.v1+json")
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config_desc, "layers": [layer_desc]}).encode()
    manifest_desc, _ = _blob(manifest, "application/vnd.oci.image.manifest.v1+json")
    files = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
             "index.json": json.dumps({"schemaVersion": 2, "manifests": [manifest_desc]}).encode()}
    for desc, data in ((layer_desc, layer_gz), (config_desc, config), (manifest_desc, manifest)):
        files["blobs/sha256/" + desc["digest"].split(":")[1]] = data
    with tarfile.open(out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    verb, rest = sys.argv[1], sys.argv[2:]
    {"build": build, "save": save, "info": lambda args: None}[verb](rest)

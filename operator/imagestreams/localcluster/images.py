"""Build small OCI and Docker schema-2 images and multi-arch indexes in-process, and push them.

For tests and demos only. The push client speaks the Registry HTTP API v2 with
basic and bearer (Docker token) auth on a synchronous httpx2 client; the
operator's own registry client is a separate, async one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import ssl
import tarfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx2

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
# Without every one of these, distribution 2.8 answers 404 for OCI content or rewrites
# Docker schema 2 to schema 1 under another digest.
ACCEPT_ALL = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
EPOCH = "1970-01-01T00:00:00Z"


class ImageFormat(StrEnum):
    OCI = "oci"
    DOCKER = "docker"


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    def as_dict(self) -> dict[str, str]:
        result = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            result["variant"] = self.variant
        return result


@dataclass(frozen=True)
class Image:
    manifest: bytes
    media_type: str
    config: Blob
    layers: tuple[Blob, ...]
    platform: Platform

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


@dataclass(frozen=True)
class ImageIndex:
    manifest: bytes
    media_type: str
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def _layer(
    files: Mapping[str, bytes], modes: Mapping[str, int] | None = None, compresslevel: int = 9
) -> tuple[bytes, str]:
    """A reproducible gzipped tar of `files` and the diff_id (digest of the uncompressed tar).

    Files are 0644 unless `modes` (keyed like `files`) says otherwise, e.g. 0755 for a program.
    """
    modes = modes or {}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mtime, info.mode = len(content), 0, modes.get(name, 0o644)
            tar.addfile(info, io.BytesIO(content))
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, compresslevel=compresslevel, mtime=0), sha256_digest(uncompressed)


def build_image(
    files: Mapping[str, bytes],
    *,
    platform: Platform | None = None,
    image_format: ImageFormat = ImageFormat.OCI,
    labels: Mapping[str, str] | None = None,
    cmd: Sequence[str] = ("/hello",),
    created: str = EPOCH,
    modes: Mapping[str, int] | None = None,
    compresslevel: int = 9,
) -> Image:
    """A one-layer image holding `files` (mode 0644 unless `modes` names another); identical inputs give an
    identical digest. A lower gzip `compresslevel` builds a large layer (a program) much faster."""
    platform = platform or Platform()
    layer_bytes, diff_id = _layer(files, modes, compresslevel)
    oci = image_format is ImageFormat.OCI
    layer = Blob(OCI_LAYER if oci else DOCKER_LAYER, layer_bytes)
    config_doc: dict[str, Any] = {
        **platform.as_dict(),
        "created": created,
        "config": {"Cmd": list(cmd), "Labels": dict(labels or {})},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "imagestreams.localcluster.images"}],
    }
    config = Blob(OCI_CONFIG if oci else DOCKER_CONFIG, _canonical_json(config_doc))
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    }
    return Image(_canonical_json(manifest_doc), media_type, config, (layer,), platform)


def build_index(images: Sequence[Image], image_format: ImageFormat = ImageFormat.OCI) -> ImageIndex:
    """A multi-arch index (OCI) or manifest list (Docker) over `images`."""
    media_type = OCI_INDEX if image_format is ImageFormat.OCI else DOCKER_LIST
    manifests = [
        {
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": len(image.manifest),
            "platform": image.platform.as_dict(),
        }
        for image in images
    ]
    document = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    return ImageIndex(_canonical_json(document), media_type, tuple(images))


def unique_image(label: str = "", **kwargs: Any) -> Image:
    """An image whose content (and so digest) differs from every other call's."""
    return build_image({"hello": f"{label} {uuid.uuid4()}\n".encode()}, **kwargs)


@dataclass(frozen=True)
class ManifestHead:
    digest: str
    media_type: str
    size: int


class RegistryError(RuntimeError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class PushClient:
    """A small synchronous Registry HTTP API v2 client for pushing test images."""

    base_url: str
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = 15.0
    _tokens: dict[str, str] = field(default_factory=dict)
    _http: httpx2.Client | None = None

    def __post_init__(self) -> None:
        verify = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        self._http = httpx2.Client(base_url=self.base_url, verify=verify, timeout=self.timeout)

    def close(self) -> None:
        if self._http:
            self._http.close()

    def __enter__(self) -> PushClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- auth ----------------------------------------------------------------

    def _credentials(self) -> tuple[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return self.username, self.password

    def _bearer_token(self, challenge: str, repository: str, actions: str) -> str:
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        scope = f"repository:{repository}:{actions}"
        if scope in self._tokens:
            return self._tokens[scope]
        assert self._http
        response = self._http.get(
            params["realm"],
            params={"service": params.get("service", ""), "scope": scope},
            auth=self._credentials() or httpx2.USE_CLIENT_DEFAULT,
        )
        if response.status_code != 200:
            raise RegistryError(
                f"token server refused {scope}: {response.status_code} {response.text[:200]}",
                response.status_code,
            )
        body = response.json()
        token: str = body.get("token") or body["access_token"]
        self._tokens[scope] = token
        return token

    def request(self, method: str, url: str, repository: str, actions: str = "pull", **kwargs: Any) -> httpx2.Response:
        """Send a request, answering one auth challenge (basic or bearer) if the registry asks."""
        assert self._http
        headers = dict(kwargs.pop("headers", {}))
        scope = f"repository:{repository}:{actions}"
        if scope in self._tokens:
            headers["Authorization"] = f"Bearer {self._tokens[scope]}"
        response = self._http.request(method, url, headers=headers, **kwargs)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        if challenge.lower().startswith("bearer"):
            self._tokens.pop(scope, None)
            headers["Authorization"] = f"Bearer {self._bearer_token(challenge, repository, actions)}"
            return self._http.request(method, url, headers=headers, **kwargs)
        credentials = self._credentials()
        if challenge.lower().startswith("basic") and credentials:
            return self._http.request(method, url, headers=headers, auth=credentials, **kwargs)
        return response

    @staticmethod
    def _check(response: httpx2.Response, expected: tuple[int, ...], what: str) -> httpx2.Response:
        if response.status_code not in expected:
            raise RegistryError(
                f"{what}: registry answered {response.status_code}: {response.text[:300]}", response.status_code
            )
        return response

    # --- push ----------------------------------------------------------------

    def push_blob(self, repository: str, blob: Blob) -> None:
        path = f"/v2/{repository}/blobs/{blob.digest}"
        if self.request("HEAD", path, repository, "pull,push").status_code == 200:
            return
        started = self._check(
            self.request("POST", f"/v2/{repository}/blobs/uploads/", repository, "pull,push"),
            (202,),
            f"start upload of {blob.digest}",
        )
        location = httpx2.URL(self.base_url).join(started.headers["Location"])
        upload = location.copy_merge_params({"digest": blob.digest})
        self._check(
            self.request(
                "PUT",
                str(upload),
                repository,
                "pull,push",
                content=blob.data,
                headers={"Content-Type": "application/octet-stream"},
            ),
            (201,),
            f"upload {blob.digest}",
        )

    def push_manifest(self, repository: str, reference: str, manifest: bytes, media_type: str) -> str:
        response = self._check(
            self.request(
                "PUT",
                f"/v2/{repository}/manifests/{reference}",
                repository,
                "pull,push",
                content=manifest,
                headers={"Content-Type": media_type},
            ),
            (201,),
            f"put manifest {repository}:{reference}",
        )
        digest: str = response.headers["Docker-Content-Digest"]
        return digest

    def push_image(self, repository: str, tag: str, image: Image) -> str:
        """Push blobs and manifest under `tag` (or by digest when `tag` is a digest); returns the digest."""
        for blob in (image.config, *image.layers):
            self.push_blob(repository, blob)
        return self.push_manifest(repository, tag, image.manifest, image.media_type)

    def push_index(self, repository: str, tag: str, index: ImageIndex) -> str:
        """Push each child by digest first (the registry refuses an index with unknown children), then the index."""
        for image in index.images:
            self.push_image(repository, image.digest, image)
        return self.push_manifest(repository, tag, index.manifest, index.media_type)

    # --- read ----------------------------------------------------------------

    def head_manifest(self, repository: str, reference: str, accept: Sequence[str] = ACCEPT_ALL) -> ManifestHead:
        response = self._check(
            self.request(
                "HEAD",
                f"/v2/{repository}/manifests/{reference}",
                repository,
                headers={"Accept": ", ".join(accept)},
            ),
            (200,),
            f"HEAD {repository}:{reference}",
        )
        return ManifestHead(
            digest=response.headers["Docker-Content-Digest"],
            media_type=response.headers.get("Content-Type", ""),
            size=int(response.headers.get("Content-Length", "0")),
        )

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        response = self._check(
            self.request(
                "GET",
                f"/v2/{repository}/manifests/{reference}",
                repository,
                headers={"Accept": ", ".join(ACCEPT_ALL)},
            ),
            (200,),
            f"GET {repository}:{reference}",
        )
        return response.content, response.headers.get("Content-Type", "")

    def tags(self, repository: str) -> list[str]:
        response = self._check(
            self.request("GET", f"/v2/{repository}/tags/list", repository), (200,), f"list tags of {repository}"
        )
        tags: list[str] = response.json().get("tags") or []
        return tags

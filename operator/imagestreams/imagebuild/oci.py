"""The image's documents: config, manifest, an OCI image layout on disk, and the SPDX 2.3 SBOM.

Pure functions of their inputs: canonical JSON (sorted keys, no spaces), times from SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagestreams.imagebuild.debian import DebPackage
from imagestreams.imagebuild.layers import Layer
from imagestreams.imagebuild.python import PyPackage
from imagestreams.localcluster.images import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Blob, Image, Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ImageSettings:
    """What the config says about how the image runs, and who made it."""

    created: int  # SOURCE_DATE_EPOCH
    labels: Mapping[str, str]
    entrypoint: Sequence[str]
    cmd: Sequence[str]
    env: Sequence[str]
    user: str
    working_dir: str = "/"


def config_document(settings: ImageSettings, layers: Sequence[tuple[Layer, str]]) -> dict[str, Any]:
    """The OCI image config; `layers` pairs each layer with the history line that made it."""
    created = rfc3339(settings.created)
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": settings.user,
            "Env": list(settings.env),
            "Entrypoint": list(settings.entrypoint),
            "Cmd": list(settings.cmd),
            "WorkingDir": settings.working_dir,
            "Labels": dict(settings.labels),
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer, _ in layers]},
        "history": [{"created": created, "created_by": created_by} for _, created_by in layers],
    }


def image(settings: ImageSettings, layers: Sequence[tuple[Layer, str]]) -> Image:
    """An OCI image manifest over the layers, with the annotations of its labels."""
    config = Blob(OCI_CONFIG, canonical_json(config_document(settings, layers)))
    blobs = tuple(Blob(OCI_LAYER, layer.compressed) for layer, _ in layers)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [blob.descriptor() for blob in blobs],
        "annotations": {key: value for key, value in settings.labels.items() if key.startswith("org.opencontainers")},
    }
    return Image(canonical_json(manifest), OCI_MANIFEST, config, blobs, Platform())


def write_layout(built: Image, directory: Path, tag: str) -> None:
    """An OCI image layout (oci-layout, index.json, blobs/sha256/...): what skopeo, crane and podman read."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for blob in (built.config, *built.layers, Blob(OCI_MANIFEST, built.manifest)):
        path = blobs / blob.digest.removeprefix("sha256:")
        if not path.is_file() or path.stat().st_size != len(blob.data):
            path.write_bytes(blob.data)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": built.digest,
                "size": len(built.manifest),
                "platform": built.platform.as_dict(),
                "annotations": {REF_NAME: tag},
            }
        ],
    }
    (directory / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    (directory / "index.json").write_bytes(canonical_json(index))


def _spdx_id(prefix: str, name: str) -> str:
    return "SPDXRef-" + prefix + "-" + "".join(char if char.isalnum() or char in ".-" else "-" for char in name)


def sbom(
    *,
    name: str,
    version: str,
    digest: str,
    created: int,
    debian: Sequence[DebPackage],
    python: Sequence[PyPackage],
    project: PyPackage,
) -> dict[str, Any]:
    """An SPDX 2.3 document: the image, which CONTAINS each Debian package and each Python distribution."""
    image_id = "SPDXRef-image"
    packages: list[dict[str, Any]] = [
        {
            "SPDXID": image_id,
            "name": name,
            "versionInfo": version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "CONTAINER",
            "checksums": [{"algorithm": "SHA256", "checksumValue": digest.removeprefix("sha256:")}],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }
    ]
    for deb in sorted(debian):
        packages.append(
            {
                "SPDXID": _spdx_id("deb", deb.name),
                "name": deb.name,
                "versionInfo": deb.version,
                "supplier": "Organization: Debian",
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "primaryPackagePurpose": "OPERATING-SYSTEM" if deb.name == "base-files" else "LIBRARY",
                "checksums": [{"algorithm": "SHA256", "checksumValue": deb.sha256}],
                "externalRefs": [
                    {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": deb.purl}
                ],
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            }
        )
    for wheel in sorted([*python, project]):
        entry: dict[str, Any] = {
            "SPDXID": _spdx_id("pypi", wheel.name),
            "name": wheel.name,
            "versionInfo": wheel.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "APPLICATION" if wheel == project else "LIBRARY",
            "externalRefs": [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": wheel.purl}
            ],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "Apache-2.0" if wheel == project else "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }
        if wheel.sha256:
            entry["checksums"] = [{"algorithm": "SHA256", "checksumValue": wheel.sha256}]
        packages.append(entry)
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}
    ]
    relationships += [
        {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": package["SPDXID"]}
        for package in packages[1:]
    ]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{name}@{digest}",
        "documentNamespace": f"https://spdx.org/spdxdocs/{name}-{version}-{digest.removeprefix('sha256:')}",
        "creationInfo": {"created": rfc3339(created), "creators": ["Tool: imagestreams.imagebuild"]},
        "documentDescribes": [image_id],
        "packages": packages,
        "relationships": relationships,
    }


def sbom_packages(document: Mapping[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """{"deb": {(name, version)}, "pypi": {...}} from an SBOM, by the purl type of each package."""
    result: dict[str, set[tuple[str, str]]] = {"deb": set(), "pypi": set()}
    for package in document["packages"]:
        for ref in package.get("externalRefs", []):
            locator: str = ref["referenceLocator"]
            kind = locator.removeprefix("pkg:").split("/", 1)[0]
            if kind in result:
                result[kind].add((package["name"], package["versionInfo"]))
    return result

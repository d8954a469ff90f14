"""Media types, name validation, digests, and parsing of manifests and image configs. Pure functions."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from imagestreams.core.jsonlimits import load_json
from imagestreams.registry.models import ImageMetadata, Layer, ManifestChild

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# Every type must be listed: distribution answers 404 for OCI content without the OCI types, and rewrites Docker
# schema 2 to schema 1 (under another digest) without the schema 2 type.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

# Possessive quantifiers (*+, ++) keep these linear on hostile names: each is followed by a character it cannot
# match, so giving text back could never make a match succeed. A host label is alphanumeric runs joined by dashes.
_COMPONENT = r"[a-z0-9]++(?:(?:[._]|__|-++)[a-z0-9]++)*+"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*+")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")
_DIGEST_SHAPE = re.compile(r"[a-z0-9]++(?:[.+_-][a-z0-9]++)*+:[a-zA-Z0-9=_-]++")
_LABEL = r"[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*+|\[[0-9A-Fa-f:.]++\])(?::[0-9]{{1,5}})?")


class ManifestError(ValueError):
    """The registry sent a manifest or config this client cannot use."""


def validate_registry(registry: str) -> None:
    if not _HOST.fullmatch(registry):
        raise ValueError(f"invalid registry host {registry!r}: expected host[:port]")


def validate_repository(repository: str) -> None:
    if len(repository) > 255 or not _REPOSITORY.fullmatch(repository):
        raise ValueError(f"invalid repository name {repository!r}")


def is_digest(reference: str) -> bool:
    return bool(_DIGEST_SHAPE.fullmatch(reference))


def is_supported_digest(digest: str) -> bool:
    return bool(_DIGEST.fullmatch(digest))


def validate_reference(reference: str) -> None:
    if is_digest(reference):
        if not is_supported_digest(reference):
            raise ValueError(f"unsupported digest {reference!r}: only sha256 and sha512 can be verified")
    elif not _TAG.fullmatch(reference):
        raise ValueError(f"invalid tag {reference!r}")


def image_name(registry: str, repository: str, reference: str) -> str:
    """How messages name an image: host/repo:tag or host/repo@digest."""
    separator = "@" if is_digest(reference) else ":"
    return f"{registry}/{repository}{separator}{reference}"


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    if algorithm == "sha512":
        return f"sha512:{hashlib.sha512(data).hexdigest()}"
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def digest_matches(data: bytes, expected: str) -> tuple[bool, str]:
    """Whether `data` hashes to `expected` (with `expected`'s algorithm), and the digest it does hash to."""
    actual = compute_digest(data, expected.partition(":")[0])
    return actual == expected, actual


def media_type_of(content_type: str | None) -> str:
    """The media type of a Content-Type header, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class ParsedIndex:
    digest: str
    media_type: str
    children: tuple[ManifestChild, ...]


@dataclass(frozen=True)
class ParsedImage:
    digest: str
    media_type: str
    config: Descriptor
    layers: tuple[Layer, ...]


ParsedManifest = ParsedIndex | ParsedImage


def _descriptor(entry: Any, what: str) -> Descriptor:
    if not isinstance(entry, dict):
        raise ManifestError(f"{what} is not an object")
    digest, size = entry.get("digest"), entry.get("size")
    if not isinstance(digest, str) or not is_supported_digest(digest):
        raise ManifestError(f"{what} has an invalid digest {str(digest)[:80]!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{what} has an invalid size")
    media_type = entry.get("mediaType")
    return Descriptor(media_type if isinstance(media_type, str) else "", digest, size)


def _load_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        document = load_json(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, JSONNestingError
        raise ManifestError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return document


def parse_manifest(body: bytes, content_type: str | None, digest: str) -> ParsedManifest:
    """Parse an image manifest or an index. The media type comes from the body, else the Content-Type."""
    document = _load_object(body, "manifest")
    if document.get("schemaVersion") == 1:
        raise ManifestError(
            "the manifest is Docker schema 1, which is not supported; push the image again with a current client"
        )
    declared = document.get("mediaType")
    media_type = declared if isinstance(declared, str) and declared else media_type_of(content_type)
    if not media_type or media_type not in INDEX_TYPES | IMAGE_TYPES:
        if isinstance(document.get("manifests"), list):
            media_type = OCI_INDEX
        elif isinstance(document.get("config"), dict):
            media_type = OCI_MANIFEST
        else:
            raise ManifestError(f"unsupported manifest media type {media_type!r}")
    if media_type in INDEX_TYPES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("the index has no manifests list")
        children = []
        for number, entry in enumerate(entries):
            descriptor = _descriptor(entry, f"index entry {number}")
            platform = entry.get("platform") if isinstance(entry.get("platform"), dict) else {}
            variant = platform.get("variant")
            children.append(
                ManifestChild(
                    digest=descriptor.digest,
                    media_type=descriptor.media_type,
                    size=descriptor.size,
                    os=str(platform.get("os") or ""),
                    architecture=str(platform.get("architecture") or ""),
                    variant=str(variant) if variant else None,
                )
            )
        return ParsedIndex(digest, media_type, tuple(children))
    config = _descriptor(document.get("config"), "the config descriptor")
    layers_doc = document.get("layers")
    if not isinstance(layers_doc, list):
        raise ManifestError("the manifest has no layers list")
    layers = []
    for number, entry in enumerate(layers_doc):
        layer = _descriptor(entry, f"layer {number}")
        layers.append(Layer(layer.digest, layer.size, layer.media_type))
    return ParsedImage(digest, media_type, config, tuple(layers))


def image_metadata(manifest: ParsedImage, config_body: bytes) -> ImageMetadata:
    """Metadata from a manifest and its config blob; size = config size + distinct layer sizes."""
    config = _load_object(config_body, "image config")
    inner = config.get("config")
    raw_labels = inner.get("Labels") if isinstance(inner, dict) else None
    labels = {str(key): str(value) for key, value in raw_labels.items()} if isinstance(raw_labels, dict) else {}
    distinct = {layer.digest: layer.size for layer in manifest.layers}
    created = config.get("created")
    variant = config.get("variant")
    run = inner if isinstance(inner, dict) else {}
    ports = run.get("ExposedPorts")
    return ImageMetadata(
        digest=manifest.digest,
        media_type=manifest.media_type,
        size=manifest.config.size + sum(distinct.values()),
        architecture=str(config.get("architecture") or ""),
        os=str(config.get("os") or ""),
        created=created if isinstance(created, str) else None,
        labels=labels,
        layers=manifest.layers,
        config_digest=manifest.config.digest,
        variant=str(variant) if variant else None,
        entrypoint=_strings(run.get("Entrypoint")),
        cmd=_strings(run.get("Cmd")),
        working_dir=str(run.get("WorkingDir") or "") or None,
        user=str(run.get("User") or "") or None,
        exposed_ports=tuple(sorted(str(port) for port in ports)) if isinstance(ports, dict) else (),
    )


def _strings(value: object) -> tuple[str, ...] | None:
    """A config list such as Cmd; None when absent or not a list."""
    return tuple(str(item) for item in value) if isinstance(value, list) else None

"""Manifest and config parsing, digests and name validation (no network)."""

from __future__ import annotations

import json

import pytest

from imagestreams.localcluster.images import (
    ImageFormat,
    build_image,
    build_index,
    sha256_digest,
)
from imagestreams.localcluster.images import Platform as PushPlatform
from imagestreams.registry.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ManifestError,
    ParsedImage,
    ParsedIndex,
    compute_digest,
    digest_matches,
    image_metadata,
    image_name,
    is_digest,
    media_type_of,
    parse_manifest,
    validate_reference,
    validate_registry,
    validate_repository,
)
from imagestreams.registry.models import Layer

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("image_format", "media_type"), [(ImageFormat.OCI, OCI_MANIFEST), (ImageFormat.DOCKER, DOCKER_MANIFEST)]
)
def test_image_manifest_and_metadata(image_format: ImageFormat, media_type: str) -> None:
    image = build_image(
        {"hello": b"world"},
        platform=PushPlatform("linux", "arm64", "v8"),
        image_format=image_format,
        labels={"team": "blue"},
        created="2026-01-02T03:04:05Z",
    )
    parsed = parse_manifest(image.manifest, None, image.digest)
    assert isinstance(parsed, ParsedImage)
    assert parsed.media_type == media_type
    assert parsed.config.digest == image.config.digest
    metadata = image_metadata(parsed, image.config.data)
    layer = image.layers[0]
    assert metadata.layers == (Layer(layer.digest, len(layer.data), layer.media_type),)
    assert (metadata.os, metadata.architecture, metadata.variant) == ("linux", "arm64", "v8")
    assert metadata.labels == {"team": "blue"}
    assert metadata.created == "2026-01-02T03:04:05Z"
    assert metadata.size == len(image.config.data) + len(layer.data)
    assert metadata.config_digest == image.config.digest
    assert metadata.digest == image.digest


def test_repeated_layers_count_once_in_size() -> None:
    layer = {"mediaType": "x", "digest": DIGEST, "size": 100}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "c", "digest": "sha256:" + "b" * 64, "size": 10},
        "layers": [layer, layer],
    }
    parsed = parse_manifest(json.dumps(manifest).encode(), None, "sha256:" + "c" * 64)
    assert isinstance(parsed, ParsedImage)
    assert image_metadata(parsed, b"{}").size == 110


@pytest.mark.parametrize(
    ("image_format", "media_type"), [(ImageFormat.OCI, OCI_INDEX), (ImageFormat.DOCKER, DOCKER_LIST)]
)
def test_index_children(image_format: ImageFormat, media_type: str) -> None:
    images = [
        build_image({"a": b"1"}, platform=PushPlatform("linux", "amd64"), image_format=image_format),
        build_image({"a": b"2"}, platform=PushPlatform("linux", "arm", "v7"), image_format=image_format),
    ]
    index = build_index(images, image_format)
    parsed = parse_manifest(index.manifest, "application/json", index.digest)
    assert isinstance(parsed, ParsedIndex)
    assert parsed.media_type == media_type
    assert [(c.digest, c.os, c.architecture, c.variant) for c in parsed.children] == [
        (images[0].digest, "linux", "amd64", None),
        (images[1].digest, "linux", "arm", "v7"),
    ]
    assert parsed.children[1].size == len(images[1].manifest)


def test_media_type_falls_back_to_content_type_then_shape() -> None:
    body = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert parse_manifest(body, f"{DOCKER_LIST}; charset=utf-8", DIGEST).media_type == DOCKER_LIST
    assert parse_manifest(body, None, DIGEST).media_type == OCI_INDEX


def test_index_entry_without_platform() -> None:
    body = json.dumps({"mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": DIGEST, "size": 3}]})
    parsed = parse_manifest(body.encode(), None, DIGEST)
    assert isinstance(parsed, ParsedIndex)
    assert (parsed.children[0].os, parsed.children[0].architecture) == ("", "")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"schemaVersion": 1, "fsLayers": []}', "schema 1"),
        (b'{"mediaType": "text/plain"}', "unsupported manifest media type"),
        (json.dumps({"mediaType": OCI_INDEX, "manifests": [{"digest": "../../x", "size": 1}]}).encode(), "digest"),
        (json.dumps({"mediaType": OCI_INDEX, "manifests": [{"digest": DIGEST, "size": -1}]}).encode(), "size"),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": {"digest": DIGEST, "size": 1}}).encode(), "layers"),
    ],
)
def test_bad_manifests(body: bytes, words: str) -> None:
    with pytest.raises(ManifestError, match=words):
        parse_manifest(body, None, DIGEST)


def test_config_without_labels_or_platform() -> None:
    parsed = ParsedImage(DIGEST, OCI_MANIFEST, Descriptor(OCI_MANIFEST, DIGEST, 2), ())
    metadata = image_metadata(parsed, b'{"config": {"Labels": null}}')
    assert (metadata.labels, metadata.architecture, metadata.os, metadata.created) == ({}, "", "", None)


def test_digests() -> None:
    assert compute_digest(b"abc") == sha256_digest(b"abc")
    assert compute_digest(b"abc", "sha512").startswith("sha512:")
    assert digest_matches(b"abc", sha256_digest(b"abc")) == (True, sha256_digest(b"abc"))
    assert digest_matches(b"abd", sha256_digest(b"abc"))[0] is False
    assert is_digest(DIGEST)
    assert not is_digest("v1.2")
    assert media_type_of("Application/JSON; charset=utf-8") == "application/json"
    assert media_type_of(None) == ""


@pytest.mark.parametrize("name", ["library/nginx", "a", "team/app-1_x.y/sub", "a__b"])
def test_valid_repositories(name: str) -> None:
    validate_repository(name)


@pytest.mark.parametrize("name", ["", "Upper/case", "../etc", "a//b", "a/", "-a", "a?b", "a b"])
def test_invalid_repositories(name: str) -> None:
    with pytest.raises(ValueError, match="repository"):
        validate_repository(name)


@pytest.mark.parametrize("reference", ["latest", "v1.2.3-rc_1", DIGEST, "sha512:" + "b" * 128])
def test_valid_references(reference: str) -> None:
    validate_reference(reference)


@pytest.mark.parametrize("reference", ["", ".hidden", "a/b", "x" * 129, "sha256:short", "md5:" + "a" * 32])
def test_invalid_references(reference: str) -> None:
    with pytest.raises(ValueError, match=r"tag|digest"):
        validate_reference(reference)


@pytest.mark.parametrize("registry", ["127.0.0.1:5000", "registry-1.docker.io", "[::1]:5000", "localhost"])
def test_valid_registries(registry: str) -> None:
    validate_registry(registry)


@pytest.mark.parametrize("registry", ["", "http://x", "host/path", "user@host", "host:port"])
def test_invalid_registries(registry: str) -> None:
    with pytest.raises(ValueError, match="registry"):
        validate_registry(registry)


def test_image_names() -> None:
    assert image_name("h:5000", "a/b", "v1") == "h:5000/a/b:v1"
    assert image_name("h:5000", "a/b", DIGEST) == f"h:5000/a/b@{DIGEST}"

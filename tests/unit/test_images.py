"""Image building is pure: same inputs, same bytes; the documents have the shape registries expect."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from imagestreams.localcluster.images import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    ImageFormat,
    Platform,
    build_image,
    build_index,
    sha256_digest,
    unique_image,
)


def test_identical_inputs_give_identical_digests() -> None:
    assert build_image({"a": b"1"}).digest == build_image({"a": b"1"}).digest


def test_different_content_gives_a_different_digest() -> None:
    assert build_image({"a": b"1"}).digest != build_image({"a": b"2"}).digest
    assert unique_image().digest != unique_image().digest


def test_oci_manifest_references_its_config_and_layer() -> None:
    image = build_image({"hello": b"world"}, platform=Platform("linux", "arm64", "v8"))
    manifest = json.loads(image.manifest)
    assert manifest["mediaType"] == image.media_type == OCI_MANIFEST
    assert manifest["config"] == {
        "mediaType": OCI_CONFIG,
        "digest": sha256_digest(image.config.data),
        "size": len(image.config.data),
    }
    assert [layer["mediaType"] for layer in manifest["layers"]] == [OCI_LAYER]
    config = json.loads(image.config.data)
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm64", "v8")


def test_layer_is_a_gzipped_tar_whose_diff_id_is_in_the_config() -> None:
    image = build_image({"/etc/motd": b"hi\n", "hello": b"x"})
    raw = gzip.decompress(image.layers[0].data)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        names = tar.getnames()
        motd = tar.extractfile("etc/motd")
        assert motd is not None
        assert motd.read() == b"hi\n"
    assert names == ["etc/motd", "hello"]
    assert json.loads(image.config.data)["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(raw).hexdigest()}"]


def test_docker_format_uses_docker_media_types() -> None:
    image = build_image({"a": b"1"}, image_format=ImageFormat.DOCKER)
    manifest = json.loads(image.manifest)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert manifest["layers"][0]["mediaType"] == DOCKER_LAYER


def test_index_lists_each_platform_by_digest() -> None:
    amd, arm = unique_image(platform=Platform("linux", "amd64")), unique_image(platform=Platform("linux", "arm64"))
    for image_format, media_type in ((ImageFormat.OCI, OCI_INDEX), (ImageFormat.DOCKER, DOCKER_LIST)):
        index = build_index([amd, arm], image_format)
        document = json.loads(index.manifest)
        assert document["mediaType"] == index.media_type == media_type
        assert [(m["digest"], m["platform"]["architecture"]) for m in document["manifests"]] == [
            (amd.digest, "amd64"),
            (arm.digest, "arm64"),
        ]
        assert index.digest == sha256_digest(index.manifest)

"""The registries are Debian's docker-registry, and the image tooling talks to them correctly."""

from __future__ import annotations

import ssl

import httpx2
import pytest

from imagestreams.localcluster import LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.images import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageFormat,
    Platform,
    PushClient,
    RegistryError,
    build_image,
    build_index,
    sha256_digest,
    unique_image,
)
from imagestreams.localcluster.notifications import NotificationReceiver
from tests.helpers import pusher_for


@pytest.mark.parametrize("image_format", list(ImageFormat))
def test_head_digest_is_the_sha256_of_the_pushed_manifest(
    any_registry: Registry, repository: str, image_format: ImageFormat
) -> None:
    image = unique_image("digest", image_format=image_format)
    with pusher_for(any_registry) as client:
        pushed = client.push_image(repository, "v1", image)
        head = client.head_manifest(repository, "v1")
        body, media_type = client.get_manifest(repository, "v1")
    assert pushed == head.digest == sha256_digest(image.manifest)
    assert head.media_type == media_type == (OCI_MANIFEST if image_format is ImageFormat.OCI else DOCKER_MANIFEST)
    assert body == image.manifest


def test_pushing_new_content_under_a_tag_changes_its_digest(any_registry: Registry, repository: str) -> None:
    first, second = unique_image("first"), unique_image("second")
    with pusher_for(any_registry) as client:
        client.push_image(repository, "latest", first)
        before = client.head_manifest(repository, "latest").digest
        client.push_image(repository, "latest", second)
        after = client.head_manifest(repository, "latest").digest
        # The old image stays reachable by digest: history points at it.
        assert client.head_manifest(repository, before).digest == first.digest
    assert (before, after) == (first.digest, second.digest)
    assert before != after


def test_pushing_identical_content_keeps_the_digest(plain_registry: Registry, repository: str) -> None:
    with pusher_for(plain_registry) as client:
        one = client.push_image(repository, "a", build_image({"same": b"bytes"}))
        two = client.push_image(repository, "b", build_image({"same": b"bytes"}))
    assert one == two


@pytest.mark.parametrize("image_format", list(ImageFormat))
def test_multi_arch_index_round_trips(any_registry: Registry, repository: str, image_format: ImageFormat) -> None:
    platforms = [Platform("linux", "amd64"), Platform("linux", "arm64", "v8"), Platform("linux", "s390x")]
    images = [unique_image(p.architecture, platform=p, image_format=image_format) for p in platforms]
    index = build_index(images, image_format)
    with pusher_for(any_registry) as client:
        assert client.push_index(repository, "multi", index) == index.digest
        head = client.head_manifest(repository, "multi")
        body, _ = client.get_manifest(repository, "multi")
        children = [client.head_manifest(repository, image.digest) for image in images]
    assert head.digest == index.digest
    assert head.media_type == index.media_type
    assert body == index.manifest
    assert [child.digest for child in children] == [image.digest for image in images]
    if image_format is ImageFormat.OCI:
        assert head.media_type == OCI_INDEX


def test_without_the_full_accept_list_the_registry_hides_or_rewrites_manifests(
    plain_registry: Registry, repository: str
) -> None:
    """The real registry quirks that make the Accept list matter (kept as an oracle for the import client)."""
    oci, docker = unique_image("oci"), unique_image("docker", image_format=ImageFormat.DOCKER)
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "oci", oci)
        client.push_image(repository, "docker", docker)
        with pytest.raises(RegistryError) as hidden:
            client.head_manifest(repository, "oci", accept=["application/json"])
        rewritten = client.head_manifest(repository, "docker", accept=["application/json"])
    assert hidden.value.status == 404
    assert rewritten.digest != docker.digest  # schema 1 rewrite under another digest


@pytest.mark.parametrize("kind", [RegistryKind.TLS_BASIC, RegistryKind.TOKEN])
def test_auth_registries_refuse_anonymous_pulls_and_accept_credentials(
    cluster: LocalCluster, kind: RegistryKind, repository: str
) -> None:
    registry = cluster.registries[kind]
    image = unique_image("private")
    with pusher_for(registry) as client:
        client.push_image(repository, "v1", image)
    with PushClient(registry.url, ca_file=registry.ca_file) as anonymous, pytest.raises(RegistryError) as refused:
        anonymous.head_manifest(repository, "v1")
    assert refused.value.status == 401
    assert registry.reader is not None
    with PushClient(
        registry.url, ca_file=registry.ca_file, username=registry.reader.username, password=registry.reader.password
    ) as reader:
        assert reader.head_manifest(repository, "v1").digest == image.digest
    with (
        PushClient(registry.url, ca_file=registry.ca_file, username=registry.reader.username, password="wrong") as bad,
        pytest.raises(RegistryError) as wrong_password,
    ):
        bad.head_manifest(repository, "v1")
    assert wrong_password.value.status == 401


def test_token_registry_grants_the_reader_pull_but_not_push(token_registry: Registry, repository: str) -> None:
    assert token_registry.reader is not None
    with pusher_for(token_registry) as client:
        client.push_image(repository, "v1", unique_image("owned"))
    with (
        PushClient(
            token_registry.url, username=token_registry.reader.username, password=token_registry.reader.password
        ) as reader,
        pytest.raises(RegistryError) as refused,
    ):
        reader.push_image(repository, "v2", unique_image("intruder"))
    assert refused.value.status == 401


def test_tls_registry_is_refused_without_its_ca(tls_registry: Registry, repository: str) -> None:
    with pytest.raises(httpx2.ConnectError) as failure:
        httpx2.get(f"{tls_registry.url}/v2/", verify=ssl.create_default_context())
    assert "CERTIFICATE_VERIFY_FAILED" in str(failure.value)


def test_push_notification_reaches_a_receiver(cluster: LocalCluster, repository: str) -> None:
    receiver = NotificationReceiver().start()
    try:
        registry = cluster.add_registry(RegistryKind.PLAIN, notifications_url=receiver.url)
        image = unique_image("notify")
        with pusher_for(registry) as client:
            client.push_image(repository, "v7", image)
        event = receiver.wait_for(lambda e: e.get("action") == "push" and e["target"].get("tag") == "v7")
    finally:
        receiver.stop()
    assert event["target"]["repository"] == repository
    assert event["target"]["digest"] == image.digest
    assert event["target"]["mediaType"] == OCI_MANIFEST

"""Imports from the real registries into ImageStream status, by the operator running as its own process."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from imagestreams.localcluster import LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.images import ImageFormat, Platform, build_image, build_index, unique_image
from tests.conftest import kubectl, namespace_events, solo_settings
from tests.helpers import OperatorProcess, eventually, pusher_for
from tests.streams import (
    apply_stream,
    docker_tag,
    get_stream,
    grant_image_puller,
    insecure_tag,
    pull_secret,
    push_unique,
    status_tag,
    wait_for_tag,
)


@pytest.fixture
def ns(namespace: str, operator: OperatorProcess) -> str:
    """A namespace with the operator running."""
    return namespace


def test_tag_is_imported_with_digest_reference_and_generation(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    image = push_unique(plain_registry, repository, "v1", "import")
    pull_spec = f"{plain_registry.host}/{repository}:v1"
    apply_stream(crds, ns, "app", [insecure_tag("v1", pull_spec)])

    entry = wait_for_tag(crds, ns, "app", "v1", image=image.digest)
    [item] = entry["items"]
    assert item["dockerImageReference"] == f"{plain_registry.host}/{repository}@{image.digest}"
    assert item["generation"] == 1
    assert item["created"].endswith("Z")
    assert "conditions" not in entry
    stream = get_stream(crds, ns, "app")
    assert stream["status"]["tagsSummary"] == "v1"
    # The operator leaves no Kopf bookkeeping on the stream.
    assert not [key for key in stream["metadata"].get("annotations", {}) if "kopf" in key]
    assert not stream["metadata"].get("finalizers")


def test_plain_http_registry_needs_insecure(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "v1", unique_image("http"))
    apply_stream(crds, ns, "app", [docker_tag("v1", f"{plain_registry.host}/{repository}:v1")])
    entry = wait_for_tag(crds, ns, "app", "v1", reason="InternalError")
    assert "insecure" in entry["conditions"][0]["message"]
    assert entry["conditions"][0]["status"] == "False"
    assert entry["conditions"][0]["type"] == "ImportSuccess"


def test_import_request_annotation_reimports_and_history_grows(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    first, second = unique_image("first"), unique_image("second")
    pull_spec = f"{plain_registry.host}/{repository}:latest"
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "latest", first)
        apply_stream(crds, ns, "app", [insecure_tag("latest", pull_spec)])
        wait_for_tag(crds, ns, "app", "latest", image=first.digest)
        client.push_image(repository, "latest", second)
    kubectl(crds, "annotate", "-n", ns, "imagestream", "app", "imagestreams.dev/import-request=1", "--overwrite")
    entry = wait_for_tag(crds, ns, "app", "latest", image=second.digest)
    assert [item["image"] for item in entry["items"]] == [second.digest, first.digest]
    assert get_stream(crds, ns, "app")["status"]["importRequest"] == "1"


def test_generation_zero_requests_a_new_import(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    first, second = unique_image("first"), unique_image("second")
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "v1", first)
        apply_stream(crds, ns, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
        wait_for_tag(crds, ns, "app", "v1", image=first.digest)
        client.push_image(repository, "v1", second)
    apply_stream(crds, ns, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1", generation=0)])
    entry = wait_for_tag(crds, ns, "app", "v1", image=second.digest)
    assert entry["items"][0]["generation"] == 2  # the stream generation at which the request was made


def test_scheduled_tag_follows_its_source_and_idle_rounds_write_nothing(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    first, second = unique_image("first"), unique_image("second")
    pull_spec = f"{plain_registry.host}/{repository}:latest"
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "latest", first)
        apply_stream(crds, ns, "app", [insecure_tag("latest", pull_spec, importPolicy={"scheduled": True})])
        wait_for_tag(crds, ns, "app", "latest", image=first.digest)
        version = get_stream(crds, ns, "app")["metadata"]["resourceVersion"]
        # Several 3-second intervals pass with the same digest: nothing is written.
        time.sleep(10)
        assert get_stream(crds, ns, "app")["metadata"]["resourceVersion"] == version
        client.push_image(repository, "latest", second)
    entry = wait_for_tag(crds, ns, "app", "latest", image=second.digest)
    assert [item["image"] for item in entry["items"]] == [second.digest, first.digest]


def test_failed_import_keeps_the_last_good_image(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    image = push_unique(plain_registry, repository, "v1", "good")
    apply_stream(crds, ns, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
    wait_for_tag(crds, ns, "app", "v1", image=image.digest)
    apply_stream(crds, ns, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:missing")])
    entry = wait_for_tag(crds, ns, "app", "v1", reason="NotFound")
    assert [item["image"] for item in entry["items"]] == [image.digest]
    assert entry["conditions"][0]["generation"] == 2
    assert repository in entry["conditions"][0]["message"]


@pytest.mark.parametrize("kind", ["tls", "token"])
@pytest.mark.usefixtures("ns")
def test_pull_secret_in_the_namespace_is_used(
    crds: LocalCluster, namespace: str, cluster: LocalCluster, repository: str, kind: str
) -> None:
    ns = namespace
    registry = cluster.registries[RegistryKind.TLS_BASIC if kind == "tls" else RegistryKind.TOKEN]
    image = push_unique(registry, repository, "v1", "private")
    tag = docker_tag("v1", f"{registry.host}/{repository}:v1")
    if kind == "token":  # the token registry speaks plain HTTP
        tag["importPolicy"] = {"insecure": True}
    apply_stream(crds, ns, "private", [tag])
    wait_for_tag(crds, ns, "private", "v1", reason="Unauthorized")

    pull_secret(crds, ns, registry)
    kubectl(crds, "annotate", "-n", ns, "imagestream", "private", "imagestreams.dev/import-request=after-secret")
    entry = wait_for_tag(crds, ns, "private", "v1", image=image.digest)
    assert "conditions" not in entry
    # Nothing of the credentials reaches the stream.
    assert registry.reader is not None
    assert registry.reader.password not in json.dumps(get_stream(crds, ns, "private"))


@pytest.mark.usefixtures("ns")
def test_a_stale_pull_secret_listed_first_does_not_fail_the_import(
    crds: LocalCluster, namespace: str, token_registry: Registry, repository: str
) -> None:
    """Two pull secrets match the token registry; the first (by name, as they are listed) has a wrong password.
    Each is tried in turn, as the kubelet does, so the import succeeds with the second."""
    ns = namespace
    image = push_unique(token_registry, repository, "v1", "two-secrets")
    pull_secret(crds, ns, token_registry, name="a-stale", password="a-password-no-longer-valid")
    pull_secret(crds, ns, token_registry, name="b-current")
    tag = docker_tag("v1", f"{token_registry.host}/{repository}:v1")
    tag["importPolicy"] = {"insecure": True}  # the token registry speaks plain HTTP
    apply_stream(crds, ns, "private", [tag])
    entry = wait_for_tag(crds, ns, "private", "v1", image=image.digest)
    assert "conditions" not in entry
    stream = json.dumps(get_stream(crds, ns, "private"))
    assert token_registry.reader is not None
    assert "a-password-no-longer-valid" not in stream and token_registry.reader.password not in stream


def test_excluded_secret_is_not_used(crds: LocalCluster, ns: str, tls_registry: Registry, repository: str) -> None:
    with pusher_for(tls_registry) as client:
        client.push_image(repository, "v1", unique_image("private"))
    pull_secret(crds, ns, tls_registry, exclude=True)
    apply_stream(crds, ns, "private", [docker_tag("v1", f"{tls_registry.host}/{repository}:v1")])
    entry = wait_for_tag(crds, ns, "private", "v1", reason="Unauthorized")
    assert "you may not have access" in entry["conditions"][0]["message"]


def test_alias_follows_its_target(crds: LocalCluster, ns: str, plain_registry: Registry, repository: str) -> None:
    first, second = unique_image("first"), unique_image("second")
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "latest", first)
        tags = [
            insecure_tag("latest", f"{plain_registry.host}/{repository}:latest"),
            {"name": "stable", "from": {"kind": "ImageStreamTag", "name": "latest"}},
            {"name": "prod", "from": {"kind": "ImageStreamTag", "name": "app:stable"}},
        ]
        apply_stream(crds, ns, "app", tags)
        wait_for_tag(crds, ns, "app", "prod", image=first.digest)
        client.push_image(repository, "latest", second)
    kubectl(crds, "annotate", "-n", ns, "imagestream", "app", "imagestreams.dev/import-request=2")
    wait_for_tag(crds, ns, "app", "prod", image=second.digest)
    entry = wait_for_tag(crds, ns, "app", "stable", image=second.digest)
    assert [item["image"] for item in entry["items"]] == [second.digest, first.digest]


def test_reference_tag_is_recorded_not_imported(crds: LocalCluster, ns: str) -> None:
    apply_stream(crds, ns, "refs", [docker_tag("ext", "quay.io/nobody/nothing:1", reference=True)])

    def recorded() -> dict[str, Any] | None:
        entry = status_tag(get_stream(crds, ns, "refs"), "ext")
        return entry if entry.get("items") else None

    entry = eventually(recorded, timeout=30, what="the reference tag to be recorded")
    assert entry["items"][0]["dockerImageReference"] == "quay.io/nobody/nothing:1"
    assert entry["items"][0]["image"] == ""
    assert "conditions" not in entry


def test_other_stream_tag_is_copied_and_waits_for_a_missing_source(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    image = unique_image("source")
    apply_stream(crds, ns, "copy", [{"name": "v1", "from": {"kind": "ImageStreamTag", "name": "source:v1"}}])
    wait_for_tag(crds, ns, "copy", "v1", reason="NotFound")
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "v1", image)
    apply_stream(crds, ns, "source", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
    entry = wait_for_tag(crds, ns, "copy", "v1", image=image.digest)
    assert entry["items"][0]["dockerImageReference"] == f"{plain_registry.host}/{repository}@{image.digest}"
    assert "conditions" not in entry


def test_image_stream_image_source(crds: LocalCluster, ns: str, plain_registry: Registry, repository: str) -> None:
    image = push_unique(plain_registry, repository, "v1", "pinned")
    apply_stream(crds, ns, "source", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
    wait_for_tag(crds, ns, "source", "v1", image=image.digest)
    short = image.digest[: len("sha256:") + 12]
    apply_stream(crds, ns, "pin", [{"name": "p", "from": {"kind": "ImageStreamImage", "name": f"source@{short}"}}])
    wait_for_tag(crds, ns, "pin", "p", image=image.digest)


@pytest.mark.parametrize("image_format", list(ImageFormat))
def test_multi_arch_modes(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str, image_format: ImageFormat
) -> None:
    amd = unique_image("amd", platform=Platform("linux", "amd64"), image_format=image_format)
    arm = unique_image("arm", platform=Platform("linux", "arm64"), image_format=image_format)
    index = build_index([amd, arm], image_format)
    with pusher_for(plain_registry) as client:
        client.push_index(repository, "multi", index)
    pull_spec = f"{plain_registry.host}/{repository}:multi"
    apply_stream(
        crds,
        ns,
        "multi",
        [
            insecure_tag("default", pull_spec),
            insecure_tag("arm", pull_spec, annotations={"importer.image.openshift.io/prefer-arch": "arm64"}),
            insecure_tag("whole", pull_spec, importPolicy={"importMode": "PreserveOriginal"}),
        ],
    )
    wait_for_tag(crds, ns, "multi", "default", image=amd.digest)
    wait_for_tag(crds, ns, "multi", "arm", image=arm.digest)
    wait_for_tag(crds, ns, "multi", "whole", image=index.digest)


def test_denied_registry_is_never_contacted(crds: LocalCluster, ns: str) -> None:
    apply_stream(crds, ns, "probe", [insecure_tag("x", "169.254.169.254/latest/meta-data:x")])
    entry = wait_for_tag(crds, ns, "probe", "x", reason="Forbidden")
    assert "denied by the operator's registry policy" in entry["conditions"][0]["message"]


def test_docker_image_repository_imports_tags_in_priority_order_up_to_the_limit(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    images = {}
    with pusher_for(plain_registry) as client:
        # The test operator's limit is 4 (OPERATOR_TEST_SETTINGS); push 6 tags.
        for tag in ["latest", "1.0", "1.1", "2.0.1", "dev", "zzz"]:
            images[tag] = unique_image(tag)
            client.push_image(repository, tag, images[tag])
    apply_stream(
        crds,
        ns,
        "repo",
        [],
        annotations={"openshift.io/image.insecureRepository": "true"},
        dockerImageRepository=f"{plain_registry.host}/{repository}",
    )

    def imported() -> dict[str, Any] | None:
        status = get_stream(crds, ns, "repo").get("status") or {}
        return status if status.get("repositoryImport") else None

    status = eventually(imported, timeout=30, what="the repository import")
    by_tag = {entry["tag"]: entry["items"][0]["image"] for entry in status["tags"]}
    # latest first, then X.Y newest first, then full semver: the 4 most relevant tags.
    assert by_tag == {tag: images[tag].digest for tag in ["latest", "1.1", "1.0", "2.0.1"]}
    assert status["repositoryImport"]["additionalTags"] == ["dev", "zzz"]


def test_restarted_operator_writes_nothing_when_nothing_changed(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    """A fresh operator (not the session one) imports, restarts, and leaves every stream untouched."""
    namespace = solo_namespace
    image = push_unique(plain_registry, repository, "v1", "steady")
    settings = solo_settings(namespace)
    first = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        apply_stream(
            crds,
            namespace,
            "app",
            [
                insecure_tag("v1", f"{plain_registry.host}/{repository}:v1", importPolicy={"scheduled": True}),
                {"name": "alias", "from": {"kind": "ImageStreamTag", "name": "v1"}},
                docker_tag("ref", "quay.io/x/y:1", reference=True),
            ],
        )
        wait_for_tag(crds, namespace, "app", "alias", image=image.digest)
    finally:
        first.stop()
    version = get_stream(crds, namespace, "app")["metadata"]["resourceVersion"]
    second = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        time.sleep(8)  # start-up, the initial listing, and two scheduled rounds
        assert get_stream(crds, namespace, "app")["metadata"]["resourceVersion"] == version
        assert [line for line in second.log().splitlines() if "write: " in line] == []
        assert any("write: " in line for line in first.log().splitlines())  # the first one did write
    finally:
        second.stop()


def test_history_is_newest_first_and_bounded(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    images = [unique_image(f"gen{i}") for i in range(4)]
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "latest", images[0])
        apply_stream(crds, ns, "app", [insecure_tag("latest", f"{plain_registry.host}/{repository}:latest")])
        wait_for_tag(crds, ns, "app", "latest", image=images[0].digest)
        for number, image in enumerate(images[1:], start=1):
            client.push_image(repository, "latest", image)
            kubectl(crds, "annotate", "-n", ns, "is", "app", f"imagestreams.dev/import-request={number}", "--overwrite")
            wait_for_tag(crds, ns, "app", "latest", image=image.digest)
    entry = status_tag(get_stream(crds, ns, "app"), "latest")
    # The test operator keeps 3 entries (IMAGESTREAMS_HISTORY_LIMIT=3).
    assert [item["image"] for item in entry["items"]] == [images[3].digest, images[2].digest, images[1].digest]
    created = [item["created"] for item in entry["items"]]
    assert created == sorted(created, reverse=True)
    # Metadata is kept for exactly the images still in history.
    assert [summary["image"] for summary in get_stream(crds, ns, "app")["status"]["images"]] == sorted(
        image.digest for image in images[1:]
    )


def test_image_metadata_is_recorded_in_status(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    image = build_image(
        {"app": b"binary"},
        platform=Platform("linux", "arm64", "v8"),
        labels={"org.opencontainers.image.source": "https://example.com/app"},
        cmd=("/app", "--serve"),
    )
    amd, arm = unique_image("amd"), unique_image("arm", platform=Platform("linux", "arm64"))
    index = build_index([amd, arm])
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "v1", image)
        client.push_index(repository, "multi", index)
    apply_stream(
        crds,
        ns,
        "meta",
        [
            insecure_tag("v1", f"{plain_registry.host}/{repository}:v1"),
            insecure_tag(
                "whole", f"{plain_registry.host}/{repository}:multi", importPolicy={"importMode": "PreserveOriginal"}
            ),
        ],
    )
    wait_for_tag(crds, ns, "meta", "v1", image=image.digest)
    wait_for_tag(crds, ns, "meta", "whole", image=index.digest)
    summaries = {summary["image"]: summary for summary in get_stream(crds, ns, "meta")["status"]["images"]}
    single = summaries[image.digest]
    assert (single["architecture"], single["os"], single["variant"]) == ("arm64", "linux", "v8")
    assert single["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert single["cmd"] == ["/app", "--serve"]
    assert single["labels"] == {"org.opencontainers.image.source": "https://example.com/app"}
    assert single["layerCount"] == 1
    assert single["size"] == len(image.config.data) + len(image.layers[0].data)
    assert single["created"] == "1970-01-01T00:00:00Z"
    whole = summaries[index.digest]
    assert [(m["digest"], m["architecture"]) for m in whole["manifests"]] == [
        (amd.digest, "amd64"),
        (arm.digest, "arm64"),
    ]


def test_events_report_new_images_and_failures(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    image = push_unique(plain_registry, repository, "v1", "evented")
    apply_stream(
        crds,
        ns,
        "app",
        [
            insecure_tag("v1", f"{plain_registry.host}/{repository}:v1"),
            insecure_tag("gone", f"{plain_registry.host}/{repository}:gone"),
        ],
    )
    wait_for_tag(crds, ns, "app", "gone", reason="NotFound")

    def events() -> list[dict[str, Any]] | None:
        items = namespace_events(crds, ns)
        reasons = {item["reason"] for item in items}
        return items if {"TagUpdated", "ImportFailed"} <= reasons else None

    items = eventually(events, timeout=20, what="events for the stream")
    by_reason = {item["reason"]: item for item in items}
    assert by_reason["TagUpdated"]["type"] == "Normal"
    assert image.digest in by_reason["TagUpdated"]["message"]
    assert by_reason["ImportFailed"]["type"] == "Warning"
    assert "gone" in by_reason["ImportFailed"]["message"]
    assert by_reason["ImportFailed"]["involvedObject"]["kind"] == "ImageStream"


def test_streams_sharing_a_scheduled_source_share_one_lookup_per_round(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    image = push_unique(plain_registry, repository, "shared", "shared")
    pull_spec = f"{plain_registry.host}/{repository}:shared"
    streams = [f"s{i}" for i in range(5)]
    for name in streams:
        apply_stream(crds, ns, name, [insecure_tag("t", pull_spec, importPolicy={"scheduled": True})])
    for name in streams:
        wait_for_tag(crds, ns, name, "t", image=image.digest)
    log = next(p for p in plain_registry.processes if p.name.startswith("registry-")).log_path
    start = log.stat().st_size
    time.sleep(9.5)  # three 3-second rounds
    # A byte offset, so read bytes: the registry writes durations like "590.1µs", and "µ" is two bytes in UTF-8, so
    # slicing the decoded text at `start` would begin one character late for every such line before it.
    requests = log.read_bytes()[start:].decode()
    heads = requests.count(f"HEAD /v2/{repository}/manifests/shared")
    gets = requests.count(f"GET /v2/{repository}/manifests/")
    # One HEAD per round for the five streams together, never a GET for an unchanged image.
    assert 2 <= heads <= 4, requests
    assert gets == 0, requests


def test_cross_namespace_sources_need_the_image_puller_role(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    image = push_unique(plain_registry, repository, "v1", "shared-base")
    other = f"{ns}-base"
    kubectl(crds, "create", "namespace", other)
    try:
        apply_stream(crds, other, "base", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
        wait_for_tag(crds, other, "base", "v1", image=image.digest)
        short = image.digest[: len("sha256:") + 16]
        tags = [
            {"name": "base", "from": {"kind": "ImageStreamTag", "name": "base:v1", "namespace": other}},
            {"name": "pinned", "from": {"kind": "ImageStreamImage", "name": f"base@{short}", "namespace": other}},
        ]
        apply_stream(crds, ns, "app", tags)
        denied = wait_for_tag(crds, ns, "app", "base", reason="Forbidden")
        assert f"may not pull from namespace {other}" in denied["conditions"][0]["message"]
        assert "items" not in denied

        grant_image_puller(crds, other, ns)
        kubectl(crds, "annotate", "-n", ns, "is", "app", "imagestreams.dev/import-request=granted")
        wait_for_tag(crds, ns, "app", "base", image=image.digest)
        entry = wait_for_tag(crds, ns, "app", "pinned", image=image.digest)
        assert entry["items"][0]["dockerImageReference"] == f"{plain_registry.host}/{repository}@{image.digest}"
    finally:
        kubectl(crds, "delete", "namespace", other, "--wait=false")


def test_openshift_manifest_with_every_spec_field_imports(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    image = push_unique(plain_registry, repository, "3.1", "ruby")
    manifest = f"""
apiVersion: image.openshift.io/v1
kind: ImageStream
metadata:
  name: ruby
  namespace: {ns}
  annotations:
    openshift.io/display-name: Ruby
    openshift.io/image.insecureRepository: "true"
spec:
  lookupPolicy:
    local: true
  tags:
  - name: "3.1"
    annotations:
      description: Build and run Ruby 3.1 applications
      importer.image.openshift.io/prefer-arch: amd64
    from:
      kind: DockerImage
      name: {plain_registry.host}/{repository}:3.1
    generation: 2
    reference: false
    importPolicy:
      importMode: Legacy
      scheduled: true
      insecure: true
    referencePolicy:
      type: Local
  - name: latest
    from:
      kind: ImageStreamTag
      name: ruby:3.1
    generation: 2
    importPolicy:
      importMode: Legacy
    referencePolicy:
      type: Source
"""
    kubectl(crds, "apply", "--server-side", "-f", "-", stdin=manifest)
    wait_for_tag(crds, ns, "ruby", "3.1", image=image.digest)
    wait_for_tag(crds, ns, "ruby", "latest", image=image.digest)


def test_registry_policy_checks_names_and_the_addresses_they_resolve_to(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    namespace = solo_namespace
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "v1", unique_image("internal"))
    port = plain_registry.host.rsplit(":", 1)[1]
    settings = {**solo_settings(namespace), "IMAGESTREAMS_DENIED_REGISTRIES": "127.0.0.0/8,::1"}
    strict = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        apply_stream(
            crds,
            namespace,
            "probe",
            [
                insecure_tag("literal", f"127.0.0.1:{port}/{repository}:v1"),
                insecure_tag("byname", f"localhost:{port}/{repository}:v1"),
            ],
        )
        literal = wait_for_tag(crds, namespace, "probe", "literal", reason="Forbidden")
        byname = wait_for_tag(crds, namespace, "probe", "byname", reason="Forbidden")
    finally:
        strict.stop()
    assert "denied by the operator's registry policy (127.0.0.0/8)" in literal["conditions"][0]["message"]
    assert "resolves to" in byname["conditions"][0]["message"]


# --- OpenShift's import and status rules (issue 9) -----------------------------------------------------------------


def events_with_reason(crds: LocalCluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    items = namespace_events(crds, namespace)
    return [item for item in items if item["reason"] == reason]


def test_insecure_repository_annotation_applies_to_the_repository_import_only(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    """handleImageStream (openshift-controller-manager image/controller/imagestream_controller.go) puts the
    insecureRepository annotation on the repository import alone; each spec tag uses its own importPolicy."""
    image = push_unique(plain_registry, repository, "v1", "repo-only")
    apply_stream(
        crds,
        ns,
        "mixed",
        [docker_tag("plain", f"{plain_registry.host}/{repository}:v1")],
        annotations={"openshift.io/image.insecureRepository": "true"},
        dockerImageRepository=f"{plain_registry.host}/{repository}",
    )
    entry = wait_for_tag(crds, ns, "mixed", "v1", image=image.digest)  # through the repository: insecure
    assert entry["items"][0]["dockerImageReference"] == f"{plain_registry.host}/{repository}@{image.digest}"
    failed = wait_for_tag(crds, ns, "mixed", "plain", reason="InternalError")
    assert "insecure" in failed["conditions"][0]["message"]
    assert "items" not in failed


def test_a_spec_tag_removed_by_apply_keeps_its_history(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    """OpenShift's update strategy keeps status when spec changes (PrepareForUpdate); only deleting the
    ImageStreamTag removes it. Adding the tag back imports it again, as its new spec generation does there."""
    first = push_unique(plain_registry, repository, "v1", "kept")
    tags = [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")]
    apply_stream(crds, ns, "app", [*tags, insecure_tag("v2", f"{plain_registry.host}/{repository}:v1")])
    wait_for_tag(crds, ns, "app", "v2", image=first.digest)
    apply_stream(crds, ns, "app", tags)
    time.sleep(2)  # the operator acts on the spec change within milliseconds
    stream = get_stream(crds, ns, "app")
    assert [entry["tag"] for entry in stream["status"]["tags"]] == ["v1", "v2"]
    assert status_tag(stream, "v2")["items"][0]["image"] == first.digest
    second = push_unique(plain_registry, repository, "v1", "added back")
    apply_stream(crds, ns, "app", [*tags, insecure_tag("v2", f"{plain_registry.host}/{repository}:v1")])
    entry = wait_for_tag(crds, ns, "app", "v2", image=second.digest)
    assert [item["image"] for item in entry["items"]] == [second.digest, first.digest]


def test_image_stream_image_by_digest_alone_means_this_stream(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    """parseFromReference (openshift-apiserver registry/imagestream/strategy.go): an ImageStreamImage name
    without "@" is an image of this stream."""
    image = push_unique(plain_registry, repository, "v1", "own")
    apply_stream(crds, ns, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
    wait_for_tag(crds, ns, "app", "v1", image=image.digest)
    pinned = {"name": "pinned", "from": {"kind": "ImageStreamImage", "name": image.digest}}
    apply_stream(crds, ns, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1"), pinned])
    entry = wait_for_tag(crds, ns, "app", "pinned", image=image.digest)
    assert "conditions" not in entry


def test_changing_the_repository_check_annotation_imports_the_repository_again(
    crds: LocalCluster, ns: str, plain_registry: Registry, repository: str
) -> None:
    """needsImport (openshift-controller-manager image/controller/imagestream_controller.go) imports the repository
    again when openshift.io/image.dockerRepositoryCheck is removed; the operator acts on any change of it."""
    first = push_unique(plain_registry, repository, "v1", "before")
    annotations = {"openshift.io/image.insecureRepository": "true", "openshift.io/image.dockerRepositoryCheck": "1"}
    apply_stream(crds, ns, "repo", [], annotations, dockerImageRepository=f"{plain_registry.host}/{repository}")
    wait_for_tag(crds, ns, "repo", "v1", image=first.digest)
    second = push_unique(plain_registry, repository, "v1", "after")
    time.sleep(1)
    assert status_tag(get_stream(crds, ns, "repo"), "v1")["items"][0]["image"] == first.digest  # not yet
    kubectl(crds, "annotate", "-n", ns, "imagestream", "repo", "openshift.io/image.dockerRepositoryCheck-")
    wait_for_tag(crds, ns, "repo", "v1", image=second.digest)
    stream = get_stream(crds, ns, "repo")
    assert "dockerRepositoryCheck" not in stream["status"]["repositoryImport"]


def test_alias_to_nothing_gets_a_warning_and_no_condition(crds: LocalCluster, ns: str) -> None:
    """tagsChanged (openshift-apiserver registry/imagestream/strategy.go) leaves an alias whose target has no image
    alone, with no condition; the operator says so with a Warning Event."""
    tags = [
        {"name": "x", "from": {"kind": "ImageStreamTag", "name": "y"}},
        {"name": "y", "from": {"kind": "ImageStreamTag", "name": "x"}},
        {"name": "typo", "from": {"kind": "ImageStreamTag", "name": "lates"}},
    ]
    apply_stream(crds, ns, "app", tags)
    warnings = eventually(
        lambda: found if len(found := events_with_reason(crds, ns, "TagReferenceIgnored")) >= 3 else None,
        timeout=20,
        what="TagReferenceIgnored warnings",
    )
    messages = sorted(item["message"] for item in warnings)
    assert any("circular tag reference: x -> y -> x" in message for message in messages)
    assert any("tag typo follows nothing: tag 'lates' does not exist in this stream" in m for m in messages)
    assert all(item["type"] == "Warning" for item in warnings)
    assert (get_stream(crds, ns, "app").get("status") or {}).get("tags") is None

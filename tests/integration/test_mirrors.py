"""Registry mirrors on the real cluster and registries (issue 12, item 2): ImageDigestMirrorSets and ImageTagMirrorSets
send imports to the local registries in place of a source that does not exist on this machine.

The sources are `*.disconnected.invalid` names (`.invalid` never resolves, RFC 2606) or, where a test must see whether
the source is asked, a FaultProxy that records every request. That no request reaches an unresolvable source is read
from the operator's `imagestreams_registry_requests_total`, which counts every attempt by the host it is for, DNS
failures included (registry/transport.py `_send`).

One operator of the module's own watches one solo-* namespace; mirror sets are cluster-wide, so each test's sources
are names no other test uses, and each test deletes its sets.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from imagestreams.localcluster import ClusterSettings, LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.faults import Fault, FaultProxy
from tests.conftest import REPO_ROOT, kubectl, solo_settings
from tests.helpers import OperatorProcess, eventually, pusher_for
from tests.integration.test_metrics import free_port, scrape, total
from tests.streams import apply_stream, get_stream, insecure_tag, pull_secret, push_unique, status_tag

DISCONNECTED = "registry.disconnected.invalid"
REQUESTS = "imagestreams_registry_requests_total"


@dataclass
class MirrorOperator:
    cluster: LocalCluster
    namespace: str
    process: OperatorProcess
    metrics: str  # the operator's metrics base URL

    def requests_to(self, host: str) -> float:
        return total(scrape(self.metrics), REQUESTS, registry=host)


@pytest.fixture(scope="module")
def mirror_operator(
    crds: LocalCluster, admin: Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MirrorOperator]:
    namespace = f"solo-{uuid.uuid4().hex[:10]}"
    admin.create(Namespace(metadata=ObjectMeta(name=namespace, labels={"imagestreams.test": "true"})))
    port = free_port()
    settings = {
        **solo_settings(namespace),
        "IMAGESTREAMS_HEALTH_ADDRESS": "127.0.0.1",
        "IMAGESTREAMS_HEALTH_PORT": str(port),
    }
    process = OperatorProcess(crds.admin_kubeconfig, tmp_path_factory.mktemp("mirrors-operator"), settings).start()
    try:
        yield MirrorOperator(crds, namespace, process, f"http://127.0.0.1:{port}")
    finally:
        process.stop()
        admin.delete(Namespace, namespace)
    assert "Traceback" not in process.log(), process.log()[-3000:]


class MirrorSets:
    """Mirror sets a test creates, deleted when it ends."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.created: list[tuple[str, str]] = []

    def apply(self, kind: str, entries: list[dict[str, Any]]) -> str:
        name = f"test-{uuid.uuid4().hex[:10]}"
        field = "imageDigestMirrors" if kind == "ImageDigestMirrorSet" else "imageTagMirrors"
        manifest = {
            "apiVersion": "config.openshift.io/v1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": {field: entries},
        }
        kubectl(self.cluster, "apply", "-f", "-", stdin=json.dumps(manifest))
        self.created.append((kind.lower(), name))
        return name

    def delete_all(self) -> None:
        for resource, name in self.created:
            kubectl(self.cluster, "delete", resource, name, "--ignore-not-found")
        self.created.clear()


@pytest.fixture
def mirror_sets(crds: LocalCluster) -> Iterator[MirrorSets]:
    sets = MirrorSets(crds)
    try:
        yield sets
    finally:
        sets.delete_all()


def mirrored_from(stream: dict[str, Any], digest: str) -> str | None:
    """status.images[].mirror of the image: the mirror repository it was read from (None: its source)."""
    for summary in (stream.get("status") or {}).get("images") or []:
        if summary["image"] == digest:
            return summary.get("mirror")
    raise AssertionError(f"{digest} is not in status.images")


def wait_for_image(cluster: LocalCluster, namespace: str, name: str, tag: str, digest: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        stream = get_stream(cluster, namespace, name)
        items = status_tag(stream, tag).get("items") or []
        return stream if items and items[0]["image"] == digest else None

    return eventually(probe, what=f"tag {tag} of {namespace}/{name} to show {digest}")


def wait_for_failure(cluster: LocalCluster, namespace: str, name: str, tag: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        conditions = status_tag(get_stream(cluster, namespace, name), tag).get("conditions") or []
        return conditions[0] if conditions else None

    condition: dict[str, Any] = eventually(probe, what=f"tag {tag} of {namespace}/{name} to fail")
    return condition


def request_import(cluster: LocalCluster, namespace: str, name: str) -> None:
    kubectl(
        cluster, "annotate", "-n", namespace, "imagestream", name,
        f"imagestreams.dev/import-request={uuid.uuid4().hex[:8]}", "--overwrite",
    )  # fmt: skip


def test_a_disconnected_source_is_imported_through_its_mirrors_without_a_request_to_it(
    mirror_operator: MirrorOperator,
    mirror_sets: MirrorSets,
    plain_registry: Registry,
    token_registry: Registry,
) -> None:
    """Tags of a source that does not exist here: the tag through the ImageTagMirrorSet's mirror (the plain
    registry), the digest through the ImageDigestMirrorSet's (the token registry, with the namespace's pull secret
    for that host), and spec.dockerImageRepository listed through the tag mirror. Status keeps the source's name with
    the digest, as OpenShift records dockerImageReference (importer.importImages: repo.Ref with the digest), and
    status.images says which mirror each image was read from."""
    cluster, ns = mirror_operator.cluster, mirror_operator.namespace
    uid = uuid.uuid4().hex[:8]
    source = f"{DISCONNECTED}/{uid}"
    mirror = f"mirrors/{uid}"
    tagged = push_unique(plain_registry, f"{mirror}/app", "v1", "tag-mirror")
    # The digest mirror holds another image under the same tag: a tag lookup that asked it would find that one.
    push_unique(token_registry, f"{mirror}/app", "v1", "wrong-for-tags")
    # The pinned image is in both mirrors: which one served it shows that digest lookups ask the digest mirror first.
    pinned = push_unique(token_registry, f"{mirror}/app", "pinned", "digest-mirror")
    with pusher_for(plain_registry) as client:
        client.push_image(f"{mirror}/app", "pinned", pinned)
    also = push_unique(plain_registry, f"{mirror}/app", "also")  # another tag for the repository's listing
    pull_secret(cluster, ns, token_registry)  # for the mirror's host: the source has no secret
    mirror_sets.apply("ImageTagMirrorSet", [{"source": source, "mirrors": [f"{plain_registry.host}/{mirror}"]}])
    mirror_sets.apply("ImageDigestMirrorSet", [{"source": source, "mirrors": [f"{token_registry.host}/{mirror}"]}])
    before = mirror_operator.requests_to(DISCONNECTED)

    apply_stream(
        cluster,
        ns,
        "app",
        [insecure_tag("v1", f"{source}/app:v1"), insecure_tag("pinned", f"{source}/app@{pinned.digest}")],
    )
    apply_stream(
        cluster,
        ns,
        "repo",
        [],
        annotations={"openshift.io/image.insecureRepository": "true"},
        dockerImageRepository=f"{source}/app",
    )

    stream = wait_for_image(cluster, ns, "app", "v1", tagged.digest)
    stream = wait_for_image(cluster, ns, "app", "pinned", pinned.digest)
    assert status_tag(stream, "v1")["items"][0]["dockerImageReference"] == f"{source}/app@{tagged.digest}"
    assert status_tag(stream, "pinned")["items"][0]["dockerImageReference"] == f"{source}/app@{pinned.digest}"
    assert mirrored_from(stream, tagged.digest) == f"{plain_registry.host}/{mirror}/app"
    assert mirrored_from(stream, pinned.digest) == f"{token_registry.host}/{mirror}/app"

    repo = wait_for_image(cluster, ns, "repo", "also", also.digest)
    assert status_tag(repo, "v1")["items"][0]["image"] == tagged.digest
    assert status_tag(repo, "also")["items"][0]["dockerImageReference"] == f"{source}/app@{also.digest}"
    assert mirrored_from(repo, also.digest) == f"{plain_registry.host}/{mirror}/app"

    assert mirror_operator.requests_to(DISCONNECTED) == before == 0
    assert mirror_operator.requests_to(plain_registry.host) > 0
    assert mirror_operator.requests_to(token_registry.host) > 0
    assert "registry mirrors: " in mirror_operator.process.log()


def test_never_contact_source_keeps_the_import_off_the_source_allow_contacting_source_falls_back(
    mirror_operator: MirrorOperator, mirror_sets: MirrorSets, plain_registry: Registry
) -> None:
    """Both sources are a FaultProxy in front of the plain registry, which has the images; the mirror is empty. With
    AllowContactingSource the import falls back to the source; with NeverContactSource the source never sees a
    request and the tag fails, saying why; an image pushed to the mirror is then imported from there."""
    cluster, ns = mirror_operator.cluster, mirror_operator.namespace
    uid = uuid.uuid4().hex[:8]
    with FaultProxy(plain_registry.url) as source:
        allowed = push_unique(plain_registry, f"allow-{uid}/app", "v1")
        push_unique(plain_registry, f"never-{uid}/app", "v1")
        empty = f"{plain_registry.host}/empty-{uid}"
        mirror_sets.apply(
            "ImageTagMirrorSet",
            [
                {"source": f"{source.host}/{path}-{uid}", "mirrors": [empty], "mirrorSourcePolicy": policy}
                for path, policy in (("allow", "AllowContactingSource"), ("never", "NeverContactSource"))
            ],
        )
        apply_stream(
            cluster,
            ns,
            "policies",
            [
                insecure_tag("allowed", f"{source.host}/allow-{uid}/app:v1"),
                insecure_tag("never", f"{source.host}/never-{uid}/app:v1"),
            ],
        )

        stream = wait_for_image(cluster, ns, "policies", "allowed", allowed.digest)
        assert mirrored_from(stream, allowed.digest) is None  # read from the source
        condition = wait_for_failure(cluster, ns, "policies", "never")
        assert condition["reason"] == "NotFound", condition
        assert f"mirror {empty}/app" in condition["message"], condition
        assert "never contacted (mirrorSourcePolicy NeverContactSource" in condition["message"], condition
        assert source.requests(f"/allow-{uid}/"), "the allowed source was not asked"
        assert source.requests(f"/never-{uid}/") == []

        in_mirror = push_unique(plain_registry, f"empty-{uid}/app", "v1", "now-mirrored")
        request_import(cluster, ns, "policies")
        stream = wait_for_image(cluster, ns, "policies", "never", in_mirror.digest)
        assert mirrored_from(stream, in_mirror.digest) == f"{empty}/app"
        assert status_tag(stream, "never")["items"][0]["dockerImageReference"] == (
            f"{source.host}/never-{uid}/app@{in_mirror.digest}"
        )
        assert source.requests(f"/never-{uid}/") == []


def test_a_failing_mirror_hands_the_lookup_to_the_next(
    mirror_operator: MirrorOperator, mirror_sets: MirrorSets, plain_registry: Registry
) -> None:
    """importer.getManifest: a mirror that fails (500 for the image's manifests) is left for the next one in order."""
    cluster, ns = mirror_operator.cluster, mirror_operator.namespace
    uid = uuid.uuid4().hex[:8]
    source = f"{DISCONNECTED}/next-{uid}"
    image = push_unique(plain_registry, f"second-{uid}/app", "v1")
    with FaultProxy(plain_registry.url) as broken:
        broken.inject(Fault.status(500).on("/manifests/"))
        mirror_sets.apply(
            "ImageTagMirrorSet",
            [
                {
                    "source": source,
                    "mirrors": [f"{broken.host}/first-{uid}", f"{plain_registry.host}/second-{uid}"],
                    "mirrorSourcePolicy": "NeverContactSource",
                }
            ],
        )
        apply_stream(cluster, ns, "next", [insecure_tag("v1", f"{source}/app:v1")])
        stream = wait_for_image(cluster, ns, "next", "v1", image.digest)
        assert mirrored_from(stream, image.digest) == f"{plain_registry.host}/second-{uid}/app"
        asked = broken.requests(f"/first-{uid}/app/manifests/v1")
        assert asked, "the first mirror was not asked"
        assert {seen.answer for seen in asked} == {"status"}, asked


def test_a_mirror_set_made_after_the_stream_serves_the_next_import_and_changes_nothing_by_itself(
    mirror_operator: MirrorOperator, mirror_sets: MirrorSets, plain_registry: Registry
) -> None:
    """A source that cannot be reached fails; a mirror set created afterwards re-imports nothing by itself: the
    scheduled tag takes it at its next check, the other tag at the next requested import. Deleted, the set no longer
    applies."""
    cluster, ns = mirror_operator.cluster, mirror_operator.namespace
    uid = uuid.uuid4().hex[:8]
    source = f"late.disconnected.invalid/{uid}"
    apply_stream(
        cluster,
        ns,
        "late",
        [
            insecure_tag("requested", f"{source}/app:v1"),
            insecure_tag("scheduled", f"{source}/app:v2", importPolicy={"scheduled": True}),
        ],
    )
    first = wait_for_failure(cluster, ns, "late", "requested")
    wait_for_failure(cluster, ns, "late", "scheduled")
    requested = push_unique(plain_registry, f"late-{uid}/app", "v1")
    scheduled = push_unique(plain_registry, f"late-{uid}/app", "v2")

    mirror_sets.apply("ImageTagMirrorSet", [{"source": source, "mirrors": [f"{plain_registry.host}/late-{uid}"]}])
    stream = wait_for_image(cluster, ns, "late", "scheduled", scheduled.digest)  # its next check (every 3 s here)
    assert status_tag(stream, "requested")["conditions"][0] == first  # not imported again for the new set

    request_import(cluster, ns, "late")
    stream = wait_for_image(cluster, ns, "late", "requested", requested.digest)
    assert mirrored_from(stream, requested.digest) == f"{plain_registry.host}/late-{uid}/app"

    forgotten = mirror_operator.process.log().count("registry mirrors: none")
    mirror_sets.delete_all()
    eventually(
        lambda: mirror_operator.process.log().count("registry mirrors: none") > forgotten,
        what="the operator to forget the deleted set",
    )
    push_unique(plain_registry, f"late-{uid}/app", "v1", "after-delete")
    request_import(cluster, ns, "late")
    condition = wait_for_failure(cluster, ns, "late", "requested")
    assert "late.disconnected.invalid" in condition["message"], condition
    assert status_tag(get_stream(cluster, ns, "late"), "requested")["items"][0]["image"] == requested.digest


def test_without_the_crds_the_operator_says_so_once_and_imports_without_mirrors(tmp_path: Path) -> None:
    """A cluster of the test's own with the ImageStream CRD alone, as a plain cluster whose admin skipped the mirror
    sets: Kopf finds no such resources at start-up and says so once; imports work."""
    settings = ClusterSettings(workdir=tmp_path / "cluster", registries=(RegistryKind.PLAIN,), controller_manager=False)
    with LocalCluster(settings) as bare:
        kubectl(bare, "apply", "--server-side", "-f", str(REPO_ROOT / "crds" / "imagestreams.image.openshift.io.yaml"))
        kubectl(bare, "wait", "--for=condition=Established", "--timeout=30s", "crd/imagestreams.image.openshift.io")
        kubectl(bare, "create", "namespace", "solo-bare")
        registry = bare.registries[RegistryKind.PLAIN]
        image = push_unique(registry, "bare/app", "v1")
        operator = OperatorProcess(bare.admin_kubeconfig, tmp_path, solo_settings("solo-bare")).start()
        try:
            apply_stream(bare, "solo-bare", "app", [insecure_tag("v1", f"{registry.host}/bare/app:v1")])
            wait_for_image(bare, "solo-bare", "app", "v1", image.digest)
        finally:
            operator.stop()
    log = operator.log()
    unresolved = [line for line in log.splitlines() if "Unresolved resources cannot be served" in line]
    assert len(unresolved) == 1, unresolved
    assert "imagedigestmirrorsets" in unresolved[0] and "imagetagmirrorsets" in unresolved[0], unresolved
    assert "Traceback" not in log, log[-3000:]

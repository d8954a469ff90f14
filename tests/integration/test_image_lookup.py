"""Image lookup at admission on the real API server: the operator's lookup webhook, served in the test process.

The streams are imported by the session operator from the plain registry; the objects are created with kubectl as
admin, and what the API server stored is what is asserted. The webhook reads streams through a client that records
each read (namespace, name) and passes it on to the real API server, so the tests can say which streams were read.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from imagestreams.admission.lookup import ImageLookup
from imagestreams.admission.routes import handlers as operator_handlers
from imagestreams.api.webhooks import LOOKUP_PATH
from imagestreams.core.lookup import RESOLVE_NAMES_ANNOTATION
from imagestreams.localcluster import LocalCluster, Registry
from tests.conftest import kubectl
from tests.helpers import OperatorProcess, eventually
from tests.streams import apply_stream, get_stream, insecure_tag, push_unique, wait_for_tag
from tests.webhooks import ServedWebhooks, served_webhooks, wait_until_called

RESOLVE_ALL = {RESOLVE_NAMES_ANNOTATION: "*"}


class RecordingClient:
    """The admin client, noting each stream read the webhook makes before passing it on."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.reads: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def get(self, resource: Any, name: str, *, namespace: str | None = None) -> Any:
        with self._lock:
            self.reads.append((namespace or "", name))
        return self.client.get(resource, name, namespace=namespace)


@dataclass
class Lookup:
    served: ServedWebhooks
    client: RecordingClient
    results: Counter[str] = field(default_factory=Counter)  # what the observer was told

    def reset(self) -> None:
        self.client.reads.clear()
        self.results.clear()


@pytest.fixture
def lookup(crds: LocalCluster, admin: Client, namespace: str, operator: OperatorProcess) -> Iterator[Lookup]:
    """The operator's webhooks, the lookup reading through a RecordingClient, called for `namespace`."""
    client = RecordingClient(admin)
    results: Counter[str] = Counter()
    image_lookup = ImageLookup(cast(Client, client), observe=lambda result: results.update([result]))
    handlers = {**operator_handlers(admin), LOOKUP_PATH: image_lookup.admit}
    with served_webhooks(crds, admin, handlers) as served:
        served.enroll(crds, namespace)
        wait_until_called(served, crds, namespace)
        # A Pod needs the namespace's default ServiceAccount, which the controller manager makes.
        eventually(lambda: kubectl(crds, "get", "sa", "default", "-n", namespace, check=False).startswith("NAME"))
        yield Lookup(served, client, results)


@pytest.fixture
def other_namespace(admin: Client) -> Iterator[str]:
    name = f"test-other-{uuid.uuid4().hex[:8]}"
    admin.create(Namespace(metadata=ObjectMeta(name=name, labels={"imagestreams.test": "true"})))
    yield name
    admin.delete(Namespace, name)


def imported_stream(
    cluster: LocalCluster,
    namespace: str,
    registry: Registry,
    repository: str,
    name: str = "app",
    *,
    local: bool = True,
    tag: str = "v1",
    **tag_fields: Any,
) -> str:
    """A stream `name` whose `tag` is imported from a new image in registry/repository; returns that image's digest
    pull spec (the tag's dockerImageReference)."""
    image = push_unique(registry, repository, tag)
    apply_stream(
        cluster,
        namespace,
        name,
        [insecure_tag(tag, f"{registry.host}/{repository}:{tag}", **tag_fields)],
        lookupPolicy={"local": local},
    )
    entry = wait_for_tag(cluster, namespace, name, tag, image=image.digest)
    reference: str = entry["items"][0]["dockerImageReference"]
    assert reference == f"{registry.host}/{repository}@{image.digest}"
    return reference


def pod_spec(image: str, init: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": image}]}
    if init is not None:
        spec["initContainers"] = [{"name": "setup", "image": init}]
    return spec


def manifest(
    kind: str,
    namespace: str,
    name: str,
    image: str,
    *,
    init: str | None = None,
    annotations: dict[str, str] | None = None,
    template_annotations: dict[str, str] | None = None,
    replicas: int = 0,
) -> dict[str, Any]:
    """A `kind` object whose pod spec runs `image` (and an init container `init`); no pods unless `replicas`."""
    metadata = {"name": name, "namespace": namespace, "annotations": annotations or {}}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": kind, "metadata": metadata, "spec": pod_spec(image, init)}
    labels = {"app": name}
    template = {
        "metadata": {"labels": labels, "annotations": template_annotations or {}},
        "spec": pod_spec(image, init),
    }
    if kind in ("Job", "CronJob"):
        template["spec"]["restartPolicy"] = "Never"
        job = {"suspend": True, "template": template}
        if kind == "Job":
            return {"apiVersion": "batch/v1", "kind": kind, "metadata": metadata, "spec": job}
        cron = {"schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {"spec": job}}
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": metadata, "spec": cron}
    if kind == "ReplicationController":
        spec: dict[str, Any] = {"replicas": replicas, "selector": labels, "template": template}
        return {"apiVersion": "v1", "kind": kind, "metadata": metadata, "spec": spec}
    spec = {"selector": {"matchLabels": labels}, "template": template}
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec}


def create(cluster: LocalCluster, body: dict[str, Any]) -> dict[str, Any]:
    """Create the object; returns what the API server stored."""
    stored: dict[str, Any] = json.loads(kubectl(cluster, "create", "-o", "json", "-f", "-", stdin=json.dumps(body)))
    return stored


def get(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(kubectl(cluster, "get", kind.lower(), name, "-n", namespace, "-o", "json"))
    return body


def images(body: dict[str, Any]) -> dict[str, str]:
    """container name -> image, init containers included, wherever the kind keeps its pod spec."""
    spec = body["spec"]
    if body["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]["template"]["spec"]
    elif body["kind"] != "Pod":
        spec = spec["template"]["spec"]
    return {c["name"]: c["image"] for c in spec.get("initContainers", []) + spec["containers"]}


def patch(cluster: LocalCluster, kind: str, namespace: str, name: str, change: dict[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(
        kubectl(
            cluster,
            "patch",
            kind.lower(),
            name,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            json.dumps(change),
            "-o",
            "json",
        )
    )
    return stored


KINDS = ("Pod", "ReplicationController", "ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob")


def test_every_covered_kind_is_stored_with_the_digest_pull_spec(
    lookup: Lookup, crds: LocalCluster, namespace: str, plain_registry: Registry, repository: str
) -> None:
    digest_spec = imported_stream(crds, namespace, plain_registry, repository)
    lookup.reset()
    stored = {kind: create(crds, manifest(kind, namespace, kind.lower(), "app:v1", init="app:v1")) for kind in KINDS}
    assert {kind: images(body) for kind, body in stored.items()} == {
        kind: {"setup": digest_spec, "main": digest_spec} for kind in KINDS
    }
    # What the API server stored is what a later read shows (no other writer set it).
    assert images(get(crds, "Deployment", namespace, "deployment")) == {"setup": digest_spec, "main": digest_spec}
    assert lookup.results == {"resolved": 2 * len(KINDS)}
    assert lookup.client.reads == [(namespace, "app")] * len(KINDS)  # one read per request


def test_a_short_name_needs_local_lookup_or_the_annotation_on_the_object_or_pod_template(
    lookup: Lookup, crds: LocalCluster, namespace: str, plain_registry: Registry, repository: str
) -> None:
    digest_spec = imported_stream(crds, namespace, plain_registry, repository, local=False)
    lookup.reset()
    plain = create(crds, manifest("Deployment", namespace, "plain", "app:v1"))
    on_object = create(crds, manifest("Deployment", namespace, "on-object", "app:v1", annotations=RESOLVE_ALL))
    on_template = create(
        crds, manifest("Deployment", namespace, "on-template", "app:v1", template_annotations=RESOLVE_ALL)
    )
    on_pod = create(crds, manifest("Pod", namespace, "on-pod", "app:v1", annotations=RESOLVE_ALL))
    not_star = create(
        crds, manifest("Pod", namespace, "not-star", "app:v1", annotations={RESOLVE_NAMES_ANNOTATION: "true"})
    )
    assert images(plain) == {"main": "app:v1"}  # the stream does not allow local lookup
    assert images(on_object) == images(on_template) == images(on_pod) == {"main": digest_spec}
    assert images(not_star) == {"main": "app:v1"}
    assert lookup.results == {"resolved": 3, "left": 2}


def test_the_annotation_added_later_resolves_the_image_on_update(
    lookup: Lookup, crds: LocalCluster, namespace: str, plain_registry: Registry, repository: str
) -> None:
    digest_spec = imported_stream(crds, namespace, plain_registry, repository, local=False)
    created = create(crds, manifest("Deployment", namespace, "web", "app:v1"))
    assert images(created) == {"main": "app:v1"}
    relabelled = patch(crds, "Deployment", namespace, "web", {"metadata": {"labels": {"tier": "front"}}})
    assert images(relabelled) == {"main": "app:v1"}
    annotated = patch(
        crds, "Deployment", namespace, "web", {"spec": {"template": {"metadata": {"annotations": RESOLVE_ALL}}}}
    )
    assert images(annotated) == {"main": digest_spec}


def test_an_object_made_before_its_stream_keeps_its_short_name(
    lookup: Lookup, crds: LocalCluster, namespace: str, plain_registry: Registry, repository: str
) -> None:
    created = create(crds, manifest("Deployment", namespace, "early", "late:v1"))
    assert images(created) == {"main": "late:v1"}
    digest_spec = imported_stream(crds, namespace, plain_registry, repository, "late")
    # An update that leaves the image string as it was does not look it up again, stream or no stream.
    lookup.reset()
    calls = lookup.served.calls[LOOKUP_PATH]
    relabelled = patch(crds, "Deployment", namespace, "early", {"metadata": {"labels": {"tier": "front"}}})
    assert images(relabelled) == {"main": "late:v1"}
    # The webhook saw the update (it counts a call just after answering it).
    eventually(lambda: lookup.served.calls[LOOKUP_PATH] > calls, 5, "the webhook to answer the update")
    assert lookup.client.reads == [] and lookup.results == {}
    # The stream itself resolves: a new object gets its image.
    assert images(create(crds, manifest("Pod", namespace, "later", "late:v1"))) == {"main": digest_spec}


def test_pods_of_a_controller_inherit_the_template_and_are_not_looked_up(
    lookup: Lookup, crds: LocalCluster, namespace: str, plain_registry: Registry, repository: str
) -> None:
    digest_spec = imported_stream(crds, namespace, plain_registry, repository)
    lookup.reset()
    created = create(crds, manifest("Deployment", namespace, "web", "app:v1", replicas=1))
    assert images(created) == {"main": digest_spec}

    def pod() -> dict[str, Any] | None:
        found = json.loads(kubectl(crds, "get", "pods", "-n", namespace, "-l", "app=web", "-o", "json"))["items"]
        return found[0] if found else None

    made = eventually(pod, what="the Deployment's pod")
    assert images(made) == {"main": digest_spec}
    replica_set = json.loads(kubectl(crds, "get", "rs", "-n", namespace, "-l", "app=web", "-o", "json"))["items"][0]
    assert images(replica_set) == {"main": digest_spec}
    # The webhook saw the ReplicaSet and the pod, but only the Deployment's container was looked up: they have a
    # controller owner.
    eventually(lambda: lookup.served.calls[LOOKUP_PATH] >= 3, 5, "the webhook to answer the ReplicaSet and pod")
    assert lookup.results == {"resolved": 1}
    assert lookup.client.reads == [(namespace, "app")]

    # A pod with a controller owner keeps even a short name (ALG admit skips it whole).
    owner = json.loads(kubectl(crds, "create", "configmap", "owner", "-n", namespace, "-o", "json"))
    owned = manifest("Pod", namespace, "owned", "app:v1", annotations=RESOLVE_ALL)
    owned["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"], "controller": True}
    ]
    assert images(create(crds, owned)) == {"main": "app:v1"}


def test_a_tag_without_an_image_is_left_or_points_at_the_streams_repository(
    lookup: Lookup, crds: LocalCluster, namespace: str, plain_registry: Registry, repository: str
) -> None:
    # A reference tag records its source without an image: there is no ImageStreamTag to resolve to.
    apply_stream(
        crds,
        namespace,
        "refonly",
        [{"name": "v1", "reference": True, "from": {"kind": "DockerImage", "name": "quay.io/x/app:1"}}],
        lookupPolicy={"local": True},
    )
    wait_for_tag(crds, namespace, "refonly", "v1", image="")
    # A stream with a repository of its own (status.dockerImageRepository) points a missing tag at it.
    mirror = f"{plain_registry.host}/{repository}"
    push_unique(plain_registry, repository, "v1")
    apply_stream(crds, namespace, "mirror", [], lookupPolicy={"local": True}, dockerImageRepository=mirror)
    eventually(
        lambda: (get_stream(crds, namespace, "mirror").get("status") or {}).get("dockerImageRepository") == mirror,
        what="status.dockerImageRepository",
    )
    lookup.reset()
    assert images(create(crds, manifest("Pod", namespace, "ref", "refonly:v1"))) == {"main": "refonly:v1"}
    assert images(create(crds, manifest("Pod", namespace, "missing", "mirror:missing"))) == {
        "main": f"{mirror}:missing"
    }
    assert lookup.results == {"left": 1, "resolved": 1}


def test_local_reference_policy_resolves_to_the_streams_repository(
    lookup: Lookup, crds: LocalCluster, namespace: str, plain_registry: Registry, repository: str
) -> None:
    mirror_repository = f"{repository}-mirror"
    push_unique(plain_registry, mirror_repository, "other")
    mirror = f"{plain_registry.host}/{mirror_repository}"
    image = push_unique(plain_registry, repository, "v1")
    apply_stream(
        crds,
        namespace,
        "app",
        [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1", referencePolicy={"type": "Local"})],
        lookupPolicy={"local": True},
        dockerImageRepository=mirror,
    )
    wait_for_tag(crds, namespace, "app", "v1", image=image.digest)
    stored = create(crds, manifest("Pod", namespace, "local", "app:v1"))
    assert images(stored) == {"main": f"{mirror}@{image.digest}"}


def test_a_digest_reference_is_used_as_written(
    lookup: Lookup, crds: LocalCluster, namespace: str, plain_registry: Registry, repository: str
) -> None:
    digest_spec = imported_stream(crds, namespace, plain_registry, repository)
    digest = digest_spec.rpartition("@")[2]
    lookup.reset()
    for image in (f"app@{digest}", f"app:v1@{digest}"):
        name = f"pinned-{len(image)}"
        assert images(create(crds, manifest("Pod", namespace, name, image, annotations=RESOLVE_ALL))) == {"main": image}
    assert lookup.client.reads == []
    assert lookup.results == {"left": 2}


def test_names_of_another_namespace_are_never_resolved_there(
    lookup: Lookup,
    crds: LocalCluster,
    namespace: str,
    other_namespace: str,
    plain_registry: Registry,
    repository: str,
) -> None:
    here = imported_stream(crds, namespace, plain_registry, repository)
    there = imported_stream(crds, other_namespace, plain_registry, f"{repository}-other")
    imported_stream(crds, other_namespace, plain_registry, f"{repository}-only", "only")
    assert here != there
    lookup.reset()
    # Without the annotation a name with a namespace is not a local name: nothing is read.
    plain = create(crds, manifest("Pod", namespace, "plain", f"{other_namespace}/app:v1"))
    assert images(plain) == {"main": f"{other_namespace}/app:v1"}
    assert lookup.client.reads == [] and lookup.results == {"left": 1}
    # With it, the namespace is discarded, as OpenShift does: <namespace>/app:v1, this namespace's image.
    annotated = create(
        crds, manifest("Pod", namespace, "annotated", f"{other_namespace}/app:v1", annotations=RESOLVE_ALL)
    )
    assert images(annotated) == {"main": here}
    # A stream that exists only in the other namespace is not found here, and is not looked for there.
    only = create(crds, manifest("Pod", namespace, "only", f"{other_namespace}/only:v1", annotations=RESOLVE_ALL))
    assert images(only) == {"main": f"{other_namespace}/only:v1"}
    assert lookup.client.reads == [(namespace, "app"), (namespace, "only")]
    assert all(read_namespace == namespace for read_namespace, _ in lookup.client.reads)


def test_a_replication_controller_without_a_template_gets_the_api_servers_own_refusal(
    lookup: Lookup, crds: LocalCluster, namespace: str
) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "bare", "namespace": namespace},
        "spec": {"replicas": 0, "selector": {"app": "bare"}},
    }
    refused = kubectl(crds, "create", "-f", "-", stdin=json.dumps(body), check=False)
    assert "spec.template: Required value" in refused
    assert "image policy" not in refused


def test_pods_are_admitted_unchanged_while_the_webhook_server_is_down(
    lookup: Lookup, crds: LocalCluster, namespace: str, plain_registry: Registry, repository: str
) -> None:
    digest_spec = imported_stream(crds, namespace, plain_registry, repository)
    assert images(create(crds, manifest("Pod", namespace, "up", "app:v1"))) == {"main": digest_spec}
    lookup.served.server.stop()
    started = time.monotonic()
    down = create(crds, manifest("Pod", namespace, "down", "app:v1"))
    elapsed = time.monotonic() - started
    assert images(down) == {"main": "app:v1"}  # failurePolicy Ignore: admitted as written
    print(f"\npod created with the lookup webhook down in {elapsed:.2f} s")

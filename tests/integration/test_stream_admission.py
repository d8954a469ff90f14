"""OpenShift's write-time rules for image streams on the real API server: the operator's stream webhooks, served in
the test process (tests/webhooks.py), and the session operator importing.

What the API server stored is what is asserted: generations, defaults, refusals, resource versions, and the audit
log's record of who wrote what.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from imagestreams.admission.review import Request, Response
from imagestreams.admission.routes import handlers as operator_handlers
from imagestreams.admission.server import Handler
from imagestreams.api.webhooks import STREAM_MUTATE_PATH, STREAM_VALIDATE_PATH
from imagestreams.kube.streams import ImageStreamResource
from imagestreams.localcluster import LocalCluster, Registry
from tests.conftest import kubectl
from tests.helpers import OperatorProcess, eventually, operator_writes
from tests.streams import (
    apply_stream,
    docker_tag,
    get_stream,
    grant_image_puller,
    insecure_tag,
    push_unique,
    status_tag,
    wait_for_tag,
)
from tests.webhooks import ServedWebhooks, served_webhooks, wait_until_called

REFUSED_BY = 'admission webhook "validate.imagestreams.image.openshift.io" denied the request: '


@dataclass(frozen=True)
class Seen:
    """What one stream webhook received."""

    path: str
    operation: str
    name: str
    generation: object  # object.metadata.generation as received
    old_generation: object
    tag_generations: dict[str, object]


@dataclass
class Recorder:
    """Wraps handlers to note what the API server sent them."""

    seen: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, handlers: Mapping[str, Handler]) -> dict[str, Handler]:
        return {path: self._recording(path, handler) for path, handler in handlers.items()}

    def _recording(self, path: str, handler: Handler) -> Handler:
        def handle(request: Request) -> Response:
            body, old = request.object or {}, request.old_object or {}
            tags = (body.get("spec") or {}).get("tags") or []
            with self._lock:
                self.seen.append(
                    Seen(
                        path,
                        request.operation,
                        request.name,
                        (body.get("metadata") or {}).get("generation"),
                        (old.get("metadata") or {}).get("generation"),
                        {tag.get("name"): tag.get("generation") for tag in tags if isinstance(tag, dict)},
                    )
                )
            return handler(request)

        return handle

    def last(self, path: str, name: str) -> Seen:
        with self._lock:
            return [seen for seen in self.seen if seen.path == path and seen.name == name][-1]


@dataclass
class Admission:
    served: ServedWebhooks
    recorder: Recorder


@contextmanager
def serve(
    cluster: LocalCluster, admin: Client, namespaces: list[str], kube: Client | None = None
) -> Iterator[Admission]:
    """The operator's stream webhooks (their reviews made with `kube`), called for `namespaces`."""
    recorder = Recorder()
    with served_webhooks(cluster, admin, recorder.wrap(operator_handlers(kube or admin))) as served:
        for namespace in namespaces:
            served.enroll(cluster, namespace)
            wait_until_called(served, cluster, namespace)
        yield Admission(served, recorder)


@pytest.fixture
def admission(crds: LocalCluster, admin: Client, namespace: str, operator: OperatorProcess) -> Iterator[Admission]:
    """The operator's webhooks called for `namespace`, where the session operator imports."""
    with serve(crds, admin, [namespace]) as served:
        yield served


@pytest.fixture
def other_namespace(admin: Client) -> Iterator[str]:
    name = f"test-base-{uuid.uuid4().hex[:8]}"
    admin.create(Namespace(metadata=ObjectMeta(name=name, labels={"imagestreams.test": "true"})))
    yield name
    admin.delete(Namespace, name)


def manifest(namespace: str, name: str, tags: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"tags": tags, **spec},
    }


def spec_tags(stream: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {tag["name"]: tag for tag in stream["spec"].get("tags") or []}


def generations(cluster: LocalCluster, namespace: str, name: str) -> tuple[int, dict[str, object]]:
    """The stored metadata.generation and every spec tag's generation (None when it has none)."""
    stream = get_stream(cluster, namespace, name)
    return stream["metadata"]["generation"], {tag: spec.get("generation") for tag, spec in spec_tags(stream).items()}


def reference_tag(name: str, pull_spec: str, **extra: Any) -> dict[str, Any]:
    """A tag the operator records without a registry call (reference: true)."""
    return docker_tag(name, pull_spec, reference=True, **extra)


def test_the_webhook_runs_before_the_api_server_bumps_the_generation(
    crds: LocalCluster, namespace: str, admission: Admission
) -> None:
    recorder = admission.recorder
    apply_stream(crds, namespace, "app", [reference_tag("latest", "quay.io/org/app:1")])
    created = recorder.last(STREAM_MUTATE_PATH, "app")
    assert (created.operation, created.generation) == ("CREATE", None)  # the API server sets 1 afterwards
    assert recorder.last(STREAM_VALIDATE_PATH, "app").generation == 1
    assert generations(crds, namespace, "app") == (1, {"latest": 1})

    # A source change: the mutating webhook sees the stored generation (1), the validating one the bumped one (2),
    # and the tag's generation the webhook predicted is the one the API server stored.
    apply_stream(crds, namespace, "app", [reference_tag("latest", "quay.io/org/app:2")])
    mutate, validate = recorder.last(STREAM_MUTATE_PATH, "app"), recorder.last(STREAM_VALIDATE_PATH, "app")
    assert (mutate.generation, mutate.old_generation) == (1, 1)
    assert (validate.generation, validate.old_generation, validate.tag_generations) == (2, 1, {"latest": 2})
    assert generations(crds, namespace, "app") == (2, {"latest": 2})

    # A PUT carries whatever metadata.generation the client wrote: the webhook must not trust it.
    stream = get_stream(crds, namespace, "app")
    stream["metadata"]["generation"] = 42
    stream["spec"]["tags"][0]["from"]["name"] = "quay.io/org/app:3"
    kubectl(crds, "replace", "-f", "-", stdin=json.dumps(stream))
    mutate, validate = recorder.last(STREAM_MUTATE_PATH, "app"), recorder.last(STREAM_VALIDATE_PATH, "app")
    assert (mutate.generation, mutate.old_generation) == (42, 2)
    assert validate.generation == 3
    assert generations(crds, namespace, "app") == (3, {"latest": 3})


def test_generations_on_create_and_after_updates(crds: LocalCluster, namespace: str, admission: Admission) -> None:
    def write(*tags: dict[str, Any], **spec: Any) -> tuple[int, dict[str, object]]:
        apply_stream(crds, namespace, "app", list(tags), **spec)
        return generations(crds, namespace, "app")

    a, b, c = (reference_tag(name, f"quay.io/org/{name}:1") for name in "abc")
    # PrepareForCreate: everything 1, whatever was sent.
    assert write({**a, "generation": 7}, {**b, "generation": 0}, c) == (1, {"a": 1, "b": 1, "c": 1})
    # The same manifest again: nothing changes.
    assert write(a, b, c) == (1, {"a": 1, "b": 1, "c": 1})
    # A source change renumbers that tag only.
    a2 = reference_tag("a", "quay.io/org/a:2")
    assert write(a2, b, c) == (2, {"a": 2, "b": 1, "c": 1})
    # Generation 0 renumbers, even though nothing else changed.
    assert write(a2, {**b, "generation": 0}, c) == (3, {"a": 2, "b": 3, "c": 1})
    # Any other value sent is replaced by the stored one: no change at all.
    assert write(a2, b, {**c, "generation": 99}) == (3, {"a": 2, "b": 3, "c": 1})
    # A field tagRefChanged does not compare bumps metadata.generation only.
    assert write(a2, b, {**c, "importPolicy": {"insecure": True}}) == (4, {"a": 2, "b": 3, "c": 1})
    assert write(a2, b, c, lookupPolicy={"local": True}) == (5, {"a": 2, "b": 3, "c": 1})
    # A new tag gets the new generation.
    d = reference_tag("d", "quay.io/org/d:1")
    assert write(a2, b, c, d, lookupPolicy={"local": True}) == (6, {"a": 2, "b": 3, "c": 1, "d": 6})


def test_defaults_are_stored_as_openshift_stores_them(crds: LocalCluster, namespace: str, admission: Admission) -> None:
    apply_stream(
        crds,
        namespace,
        "app",
        [
            reference_tag("absent", "quay.io/org/app:1"),
            reference_tag("empty", "quay.io/org/app:2", referencePolicy={"type": ""}, importPolicy={"importMode": ""}),
            reference_tag(
                "set",
                "quay.io/org/app:3",
                referencePolicy={"type": "Local"},
                importPolicy={"importMode": "PreserveOriginal", "scheduled": False},
            ),
        ],
    )
    tags = spec_tags(get_stream(crds, namespace, "app"))
    policies = {name: (tag["referencePolicy"], tag["importPolicy"]) for name, tag in tags.items()}
    assert policies == {
        "absent": ({"type": "Source"}, {"importMode": "Legacy"}),
        "empty": ({"type": "Source"}, {"importMode": "Legacy"}),
        "set": ({"type": "Local"}, {"importMode": "PreserveOriginal", "scheduled": False}),
    }


def test_a_repeated_generation_0_write_imports_every_time(
    crds: LocalCluster, namespace: str, admission: Admission, plain_registry: Registry, repository: str
) -> None:
    pull_spec = f"{plain_registry.host}/{repository}:latest"
    first = push_unique(plain_registry, repository, "latest", "first")
    apply_stream(crds, namespace, "app", [insecure_tag("latest", pull_spec)])
    wait_for_tag(crds, namespace, "app", "latest", image=first.digest)

    # What `oc tag SOURCE app:latest` writes, twice, with a push before each: both re-import.
    second = push_unique(plain_registry, repository, "latest", "second")
    apply_stream(crds, namespace, "app", [insecure_tag("latest", pull_spec, generation=0)])
    wait_for_tag(crds, namespace, "app", "latest", image=second.digest)
    third = push_unique(plain_registry, repository, "latest", "third")
    apply_stream(crds, namespace, "app", [insecure_tag("latest", pull_spec, generation=0)])
    entry = wait_for_tag(crds, namespace, "app", "latest", image=third.digest)

    assert [item["image"] for item in entry["items"]] == [third.digest, second.digest, first.digest]
    # Each entry carries the generation its write gave the tag, as on OpenShift.
    assert [item["generation"] for item in entry["items"]] == [3, 2, 1]
    assert generations(crds, namespace, "app") == (3, {"latest": 3})


@pytest.mark.parametrize("server_side", [True, False], ids=["server-side apply", "client-side apply"])
def test_reapplying_the_same_manifest_changes_nothing(
    crds: LocalCluster,
    namespace: str,
    admission: Admission,
    plain_registry: Registry,
    repository: str,
    server_side: bool,
) -> None:
    image = push_unique(plain_registry, repository, "v1")
    body = json.dumps(
        manifest(
            namespace,
            "app",
            [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1"), reference_tag("ref", "quay.io/org/a:1")],
        )
    )
    how = ["--server-side"] if server_side else []
    kubectl(crds, "apply", *how, "-f", "-", stdin=body)
    wait_for_tag(crds, namespace, "app", "v1", image=image.digest)
    eventually(lambda: status_tag(get_stream(crds, namespace, "app"), "ref"), what="the reference tag recorded")
    time.sleep(1)  # the operator's last status write, if any, lands
    before = get_stream(crds, namespace, "app")
    push_unique(plain_registry, repository, "v1", "pushed-after")  # an import now would change the status
    mark = crds.audit.mark()

    for _ in range(2):
        kubectl(crds, "apply", *how, "-f", "-", stdin=body)
    time.sleep(3)  # time for the operator to react, were there anything to react to

    after = get_stream(crds, namespace, "app")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"] == 1
    assert after["status"] == before["status"]
    assert operator_writes(crds, mark, namespace) == []


def test_a_stream_stored_before_the_webhook_is_left_alone_by_a_reapply(
    crds: LocalCluster, admin: Client, namespace: str, operator: OperatorProcess
) -> None:
    tags = [reference_tag("ref", "quay.io/org/a:1")]
    body = json.dumps(manifest(namespace, "app", tags))
    kubectl(crds, "apply", "--server-side", "-f", "-", stdin=body)  # no webhook yet: stored as written
    eventually(lambda: status_tag(get_stream(crds, namespace, "app"), "ref"), what="the reference tag recorded")
    time.sleep(1)
    before = get_stream(crds, namespace, "app")
    assert "generation" not in spec_tags(before)["ref"]

    with serve(crds, admin, [namespace]):
        mark = crds.audit.mark()
        kubectl(crds, "apply", "--server-side", "-f", "-", stdin=body)
        time.sleep(2)
        after = get_stream(crds, namespace, "app")
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert spec_tags(after) == spec_tags(before)
        assert operator_writes(crds, mark, namespace) == []
        # The tag gets a generation and the defaults when a write asks for an import.
        apply_stream(crds, namespace, "app", [{**tags[0], "generation": 0}])
        assert generations(crds, namespace, "app") == (2, {"ref": 2})
        assert spec_tags(get_stream(crds, namespace, "app"))["ref"]["importPolicy"] == {"importMode": "Legacy"}


def as_service_account(namespace: str, name: str) -> tuple[str, ...]:
    return (
        f"--as=system:serviceaccount:{namespace}:{name}",
        "--as-group=system:serviceaccounts",
        f"--as-group=system:serviceaccounts:{namespace}",
    )


def test_a_cross_namespace_source_needs_the_writers_right_to_pull(
    crds: LocalCluster,
    admin: Client,
    namespace: str,
    other_namespace: str,
    operator: OperatorProcess,
    plain_registry: Registry,
    repository: str,
    service_account_client: Any,
) -> None:
    base = other_namespace
    image = push_unique(plain_registry, repository, "3")
    apply_stream(crds, base, "python", [insecure_tag("3", f"{plain_registry.host}/{repository}:3")])
    wait_for_tag(crds, base, "python", "3", image=image.digest)
    # The writer: a pipeline's service account that may edit streams in its own namespace, nothing more.
    kubectl(crds, "create", "serviceaccount", "ci", "-n", namespace)
    kubectl(
        crds, "create", "rolebinding", "ci-edit", "-n", namespace, "--clusterrole=imagestreams-edit",
        f"--serviceaccount={namespace}:ci",
    )  # fmt: skip
    ci = as_service_account(namespace, "ci")
    source = {"name": "py", "from": {"kind": "ImageStreamTag", "name": "python:3", "namespace": base}}
    body = json.dumps(manifest(namespace, "app", [source]))

    with serve(crds, admin, [namespace, base]):
        refusal = kubectl(crds, *ci, "apply", "--server-side", "-f", "-", stdin=body, check=False)
        expected = (
            f'ImageStream.image.openshift.io "app" is invalid: : Internal error: imagestreams "app" is invalid: '
            f'spec.tags[py].from: Forbidden: {base}/python: "" ""'
        )
        assert REFUSED_BY + expected in refusal
        # The same through the API, to see the status: 422 Invalid, as OpenShift answers.
        with pytest.raises(ApiError) as raised:
            service_account_client(namespace, "ci").create(ImageStreamResource.from_dict(json.loads(body)))
        assert (raised.value.status.code, raised.value.status.reason) == (422, "Invalid")
        assert raised.value.status.message == REFUSED_BY + expected
        # A DockerImage source cannot name a namespace (parseFromReference): refused without asking.
        docker = {"name": "d", "from": {"kind": "DockerImage", "name": "quay.io/org/a:1", "namespace": base}}
        refusal = kubectl(
            crds, *ci, "apply", "--server-side", "-f", "-", stdin=json.dumps(manifest(namespace, "d", [docker])),
            check=False,
        )  # fmt: skip
        assert (
            'spec.tags[d].from.name: Invalid value: "quay.io/org/a:1": '
            "must be of the form <tag>, <repo>:<tag>, <id>, or <repo>@<id>"
        ) in refusal
        # A dry run is answered the same way and stores nothing; the webhook writes nothing but its review.
        mark = crds.audit.mark()
        dry = json.dumps(manifest(namespace, "dry", [source]))
        refusal = kubectl(crds, *ci, "create", "--dry-run=server", "-f", "-", stdin=dry, check=False)
        assert REFUSED_BY in refusal and f"Forbidden: {base}/python" in refusal

        grant_image_puller(crds, base, namespace)  # system:image-puller for the namespace's service accounts
        eventually(
            lambda: kubectl(crds, *ci, "create", "--dry-run=server", "-f", "-", stdin=dry, check=False).startswith(
                "imagestream.image.openshift.io/dry created (server dry run)"
            ),
            what="the dry run allowed after the RoleBinding",
        )
        assert "NotFound" in kubectl(crds, "get", "is", "dry", "-n", namespace, check=False)
        assert operator_writes(crds, mark, namespace) == operator_writes(crds, mark, base) == []
        assert any(write.resource == "subjectaccessreviews" for write in crds.audit.writes(mark))

        kubectl(crds, *ci, "apply", "--server-side", "-f", "-", stdin=body)
        entry = wait_for_tag(crds, namespace, "app", "py", image=image.digest)
        assert entry["items"][0]["dockerImageReference"] == f"{plain_registry.host}/{repository}@{image.digest}"

        # Only new or changed sources are checked: with the RoleBinding gone, the unchanged tag can be written
        # again, a changed one cannot.
        kubectl(crds, "delete", "rolebinding", "-n", base, f"pull-{namespace}")
        changed = json.dumps(manifest(namespace, "app", [{**source, "from": {**source["from"], "name": "python:4"}}]))
        eventually(
            lambda: "Forbidden" in kubectl(crds, *ci, "apply", "--server-side", "-f", "-", stdin=changed, check=False),
            what="the changed source refused without the RoleBinding",
        )
        kubectl(crds, *ci, "apply", "--server-side", "-f", "-", stdin=body)


def test_a_review_that_cannot_be_made_refuses_the_write(
    crds: LocalCluster,
    admin: Client,
    namespace: str,
    other_namespace: str,
    user_client: Any,
) -> None:
    # The webhook's own credentials may not create SubjectAccessReviews (a broken install): the write is refused
    # and the message says why, rather than the check being skipped.
    powerless = user_client("webhook-without-rights")
    source = {"name": "py", "from": {"kind": "ImageStreamTag", "name": "python:3", "namespace": other_namespace}}
    with serve(crds, admin, [namespace], kube=powerless):
        refusal = kubectl(
            crds, "apply", "--server-side", "-f", "-", stdin=json.dumps(manifest(namespace, "app", [source])),
            check=False,
        )  # fmt: skip
        assert f'spec.tags[py].from: Forbidden: {other_namespace}/python: "" ""- the access review could not' in refusal
        assert "webhook-without-rights" in refusal
        assert "NotFound" in kubectl(crds, "get", "is", "app", "-n", namespace, check=False)


def test_a_docker_image_pull_spec_that_does_not_parse_is_refused(
    crds: LocalCluster, namespace: str, admission: Admission
) -> None:
    """ValidateImageStreamTagReference (openshift-apiserver pkg/image/apis/image/validation) refuses a DockerImage
    from.name that library-go's reference.Parse refuses, with its error; the CRD alone cannot (docs)."""
    bad = manifest(
        namespace,
        "bad",
        [
            {"name": "upper", "from": {"kind": "DockerImage", "name": "Team/App:1"}},
            {"name": "space", "from": {"kind": "DockerImage", "name": "team/app:1 2"}},
            {"name": "fine", "from": {"kind": "DockerImage", "name": "quay.io/team/app:1"}},
        ],
    )
    out = kubectl(crds, "apply", "--server-side", "-f", "-", stdin=json.dumps(bad), check=False)
    assert (
        'ImageStream.image.openshift.io "bad" is invalid: ['
        'spec.tags[upper].from.name: Invalid value: "Team/App:1": repository name must be lowercase, '
        'spec.tags[space].from.name: Invalid value: "team/app:1 2": invalid reference format]'
    ) in out
    assert "serverside-applied" not in out

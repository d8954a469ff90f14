"""Image lookup decisions (core/lookup.py), row by row against OpenShift's ImagePolicy admission plugin.

ALG = openshift/apiserver-library-go pkg/admission/imagepolicy (imagepolicy.go, accept.go,
imagereferencemutators/{meta,pods}.go); LGO = openshift/library-go pkg/image/reference/reference.go;
OAS = openshift/openshift-apiserver pkg/image/apiserver (internal/imageutil/helpers.go, registry/imagestreamtag).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

import pytest
from lightkube import Client

from imagestreams.admission.lookup import ImageLookup, patch_operations
from imagestreams.admission.review import Request, UserInfo
from imagestreams.controller.metrics import Metrics
from imagestreams.core.lookup import (
    RESOLVE_NAMES_ANNOTATION,
    DockerImageReference,
    LookupDecision,
    LookupResult,
    StreamUnreadable,
    decide_lookup,
    split_reference,
)
from imagestreams.core.references import InvalidReference

NS = "team"
DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
SOURCE = "registry.example:5000/upstream/app"
REPOSITORY = "mirror.example/team/app"
PODS = ("", "pods")
DEPLOYMENTS = ("apps", "deployments")
RESOLVE_ALL = {RESOLVE_NAMES_ANNOTATION: "*"}


def image_stream(
    name: str = "app",
    *,
    local: bool = True,
    tags: Mapping[str, tuple[str, str]] | None = None,
    repository: str = "",
    reference_policies: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A stream body as the API server returns it: `tags` maps tag -> (dockerImageReference, image)."""
    history = tags if tags is not None else {"v1": (f"{SOURCE}@{DIGEST_A}", DIGEST_A)}
    spec_tags = [{"name": tag, "referencePolicy": {"type": kind}} for tag, kind in (reference_policies or {}).items()]
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"lookupPolicy": {"local": local}, "tags": spec_tags, "dockerImageRepository": repository or None},
        "status": {
            "dockerImageRepository": repository,
            "tags": [
                {
                    "tag": tag,
                    "items": [
                        {"created": "2026-01-01T00:00:00Z", "dockerImageReference": ref, "image": img, "generation": 1}
                    ],
                }
                for tag, (ref, img) in history.items()
            ],
        },
    }


class Streams:
    """The streams of namespace NS, and the names asked for (a reader is bound to one namespace)."""

    def __init__(self, *bodies: dict[str, Any], unreadable: tuple[str, ...] = ()) -> None:
        self.bodies = {body["metadata"]["name"]: body for body in bodies}
        self.unreadable = unreadable
        self.reads: list[str] = []

    def read(self, name: str) -> Mapping[str, Any] | None:
        self.reads.append(name)
        if name in self.unreadable:
            raise StreamUnreadable("the server is currently unable to handle the request")
        return self.bodies.get(name)


def pod(
    *images: str,
    init: tuple[str, ...] = (),
    annotations: dict[str, str] | None = None,
    owners: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": image} for i, image in enumerate(init)]
    metadata: dict[str, Any] = {"name": "p", "namespace": NS, "annotations": annotations or {}}
    if owners is not None:
        metadata["ownerReferences"] = owners
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def deployment(
    *images: str, annotations: dict[str, str] | None = None, template: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": NS, "annotations": annotations or {}},
        "spec": {
            "template": {
                "metadata": {"annotations": template or {}},
                "spec": {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]},
            }
        },
    }


def images_after(obj: dict[str, Any], decision: LookupDecision) -> list[str]:
    """The object's container images once the decision's rewrites are applied."""
    result = copy.deepcopy(obj)
    for container in decision.rewrites:
        node: Any = result
        for part in container.path[:-1]:
            node = node[part]
        node[container.path[-1]] = container.resolved
    spec = result["spec"] if result["kind"] == "Pod" else result["spec"]["template"]["spec"]
    return [c["image"] for c in spec.get("initContainers", []) + spec["containers"]]


# --- library-go reference.Parse ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("app", DockerImageReference(name="app"), id="LGO Parse: one component is a name"),
        pytest.param("app:v2", DockerImageReference(name="app", tag="v2"), id="LGO Parse: name and tag"),
        pytest.param("myns/app", DockerImageReference(namespace="myns", name="app"), id="LGO Parse: namespace/name"),
        pytest.param("docker.io/app", DockerImageReference("docker.io", "", "app"), id="LGO Parse: '.' is a registry"),
        pytest.param("localhost/app", DockerImageReference("localhost", "", "app"), id="LGO Parse: localhost"),
        pytest.param("reg:5000/app", DockerImageReference("reg:5000", "", "app"), id="LGO Parse: ':' is a registry"),
        pytest.param("quay.io/a/b/c", DockerImageReference("quay.io", "a", "b/c"), id="LGO Parse: name is the rest"),
        pytest.param("Foo/bar", DockerImageReference("", "Foo", "bar"), id="LGO Parse: upper case is no registry"),
        pytest.param("my.app:v1", DockerImageReference(registry="my.app:v1"), id="LGO Parse: isRegistryOnly '.'"),
        pytest.param("localhost:5000", DockerImageReference("localhost:5000"), id="LGO Parse: isRegistryOnly host"),
        pytest.param("localhostapp", DockerImageReference("localhostapp"), id="LGO Parse: isRegistryOnly prefix"),
        pytest.param(f"app@{DIGEST_A}", DockerImageReference(name="app", id=DIGEST_A), id="LGO Parse: digest"),
        pytest.param(
            f"r.io/n/app:v1@{DIGEST_A}", DockerImageReference("r.io", "n", "app", "v1", DIGEST_A), id="LGO Parse: both"
        ),
    ],
)
def test_split_reference_follows_library_go(text: str, expected: DockerImageReference) -> None:
    assert split_reference(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="LGO Parse: ErrNameEmpty"),
        pytest.param("App:v1", id="LGO Parse: ErrNameContainsUppercase"),
        pytest.param("app:", id="LGO Parse: ErrReferenceInvalidFormat (empty tag)"),
        pytest.param("[::1]:5000/app", id="LGO Parse: no IPv6 hosts in library-go's grammar"),
    ],
)
def test_split_reference_refuses_what_library_go_refuses(text: str) -> None:
    with pytest.raises(InvalidReference):
        split_reference(text)


@pytest.mark.parametrize(
    ("reference", "exact"),
    [
        pytest.param(DockerImageReference("r.io", "n", "app", "v1", DIGEST_A), f"r.io/n/app@{DIGEST_A}", id="id wins"),
        pytest.param(DockerImageReference("r.io", "", "app", "v1"), "r.io/app:v1", id="tag"),
        pytest.param(DockerImageReference(name="app"), "app", id="name only"),
        pytest.param(DockerImageReference("my.app:v1"), "", id="LGO Exact: no name, nothing"),
    ],
)
def test_exact_follows_library_go(reference: DockerImageReference, exact: str) -> None:
    assert reference.exact() == exact


# --- one image: which names are looked up, and what they become ----------------------------------------------------

LOCAL_APP = image_stream()
NOT_LOCAL_APP = image_stream(local=False)
APP_A = f"{SOURCE}@{DIGEST_A}"
WITH_REPOSITORY = image_stream(repository=REPOSITORY)
REFERENCE_TAG = {"v1": ("quay.io/x/app:1", "")}  # a reference: true tag's entry has no image


def case(
    image: str, streams: list[dict[str, Any]], becomes: str, reads: list[str], why: str, **annotations: str
) -> Any:
    """A row: `image` in a Pod with `annotations` (resolve_all="*" for the resolve-names annotation) becomes
    `becomes` (the same image: left), and the streams named in `reads` were asked for."""
    if "resolve_all" in annotations:
        annotations[RESOLVE_NAMES_ANNOTATION] = annotations.pop("resolve_all")
    return pytest.param(image, annotations, streams, becomes, reads, id=why)


@pytest.mark.parametrize(
    ("image", "annotations", "streams", "becomes", "reads"),
    [
        case("app:v1", [LOCAL_APP], APP_A, ["app"], "ALG resolveImageStreamTag: short name, local stream -> digest"),
        case(
            "app",
            [image_stream(tags={"latest": (f"{SOURCE}@{DIGEST_B}", DIGEST_B)})],
            f"{SOURCE}@{DIGEST_B}",
            ["app"],
            "ALG resolveImageReference: no tag is DefaultImageTag latest",
        ),
        case("app:v1", [NOT_LOCAL_APP], "app:v1", ["app"], "ALG resolveImageStreamTag: not local, no annotation"),
        case("app:v1", [NOT_LOCAL_APP], APP_A, ["app"], "ALG ResolveAllNames overrides the policy", resolve_all="*"),
        case("app:v1", [NOT_LOCAL_APP], "app:v1", ["app"], "ALG ResolveAllNames: only '*'", resolve_all="true"),
        case("team/app:v1", [LOCAL_APP], "team/app:v1", [], "ALG resolveImageReference: a namespace is not partial"),
        case("docker.io/app:v1", [LOCAL_APP], "docker.io/app:v1", [], "ALG resolveImageReference: nor a registry"),
        case(
            "quay.io/org/app:v1",
            [NOT_LOCAL_APP],
            APP_A,
            ["app"],
            "ALG resolveImageReference: resolve-all discards registry and namespace",
            resolve_all="*",
        ),
        case(
            "otherns/app:v1",
            [LOCAL_APP],
            APP_A,
            ["app"],
            "ALG resolveImageReference: resolve-all looks otherns/app up in the object's namespace",
            resolve_all="*",
        ),
        case(
            "quay.io/a/b/c:v1",
            [LOCAL_APP],
            "quay.io/a/b/c:v1",
            [],
            "ALG resolveImageStreamTag: name b/c is no stream (OpenShift's GET fails)",
            resolve_all="*",
        ),
        case("my.app:v1", [LOCAL_APP], "my.app:v1", [], "LGO Parse isRegistryOnly: no name", resolve_all="*"),
        case(
            f"app@{DIGEST_B}",
            [LOCAL_APP],
            f"app@{DIGEST_B}",
            [],
            "ALG resolveImageReference: a digest is never a stream lookup",
            resolve_all="*",
        ),
        case(f"app:v1@{DIGEST_B}", [LOCAL_APP], f"app:v1@{DIGEST_B}", [], "ALG: tag and digest is a digest"),
        case("App:v1", [LOCAL_APP], "App:v1", [], "ALG accept: a parse error is ignored", resolve_all="*"),
        case("app:v1", [], "app:v1", ["app"], "ALG accept: no such stream is ignored under Attempt"),
        case("app:v2", [LOCAL_APP], "app:v2", ["app"], "OAS imageFor: no such tag, no dockerImageRepository"),
        case(
            "app:v1",
            [image_stream(tags=REFERENCE_TAG)],
            "app:v1",
            ["app"],
            "OAS imageFor: a tag whose entry has no image is not found",
        ),
        case(
            "app:v2",
            [WITH_REPOSITORY],
            f"{REPOSITORY}:v2",
            ["app"],
            "ALG resolveImageStreamTag: tag not found, local stream with a repository -> <repository>:<tag>",
        ),
        case(
            "app:v1",
            [image_stream(tags=REFERENCE_TAG, repository=REPOSITORY)],
            f"{REPOSITORY}:v1",
            ["app"],
            "ALG resolveImageStreamTag: a reference tag and a repository -> tag form",
        ),
        case(
            "app:v2",
            [image_stream(local=False, repository=REPOSITORY)],
            "app:v2",
            ["app"],
            "ALG resolveImageStreamTag: the tag-form fallback needs local or the annotation",
        ),
        case(
            "app:v2",
            [image_stream(local=False, repository=REPOSITORY)],
            f"{REPOSITORY}:v2",
            ["app"],
            "ALG resolveImageStreamTag: the tag-form fallback with the annotation",
            resolve_all="*",
        ),
        case(
            "app:v1",
            [image_stream(repository=REPOSITORY, reference_policies={"v1": "Local"})],
            f"{REPOSITORY}@{DIGEST_A}",
            ["app"],
            "OAS ResolveReferenceForTagEvent: Local -> status.dockerImageRepository@digest",
        ),
        case(
            "app:v1",
            [image_stream(reference_policies={"v1": "Local"})],
            APP_A,
            ["app"],
            "OAS ResolveReferenceForTagEvent: Local without a repository falls back to Source",
        ),
        case(
            "app:v1",
            [image_stream(tags={"v1": (f"{SOURCE}:v1@{DIGEST_A}", DIGEST_A)})],
            APP_A,
            ["app"],
            "ALG resolveImageStreamTag: ref.Tag = '' and ref.ID = the image",
        ),
        case(
            "app:v1",
            [image_stream(tags={"v1": (f"docker.io/library/app@{DIGEST_B}", DIGEST_A)})],
            f"docker.io/library/app@{DIGEST_A}",
            ["app"],
            "ALG resolveImageStreamTag: the digest is the tag's image, not the reference's",
        ),
    ],
)
def test_one_image(
    image: str, annotations: dict[str, str], streams: list[dict[str, Any]], becomes: str, reads: list[str]
) -> None:
    source = Streams(*streams)
    obj = pod(image, annotations=annotations)
    decision = decide_lookup(PODS, obj, None, NS, source.read)
    (container,) = decision.containers
    expected = LookupResult.LEFT if becomes == image else LookupResult.RESOLVED
    assert (container.result, images_after(obj, decision), source.reads) == (expected, [becomes], reads)
    assert container.reason


def test_a_stream_that_cannot_be_read_fails_the_lookup_and_leaves_the_image() -> None:
    """ALG accept: any resolution error (here an API error) is ignored under Attempt."""
    source = Streams(LOCAL_APP, unreadable=("app",))
    decision = decide_lookup(PODS, pod("app:v1"), None, NS, source.read)
    (container,) = decision.containers
    assert container.result is LookupResult.FAILED
    assert "could not be read: the server is currently unable" in container.reason
    assert decision.rewrites == ()


def test_each_stream_is_read_once_per_request() -> None:
    source = Streams(
        image_stream(tags={"v1": (f"{SOURCE}@{DIGEST_A}", DIGEST_A), "v2": (f"{SOURCE}@{DIGEST_B}", DIGEST_B)})
    )
    obj = pod("app:v1", "app:v2", "app:v1", "other:v1", "other", init=("app:v2",))
    decision = decide_lookup(PODS, obj, None, NS, source.read)
    assert source.reads == ["app", "other"]
    assert images_after(obj, decision) == [
        f"{SOURCE}@{DIGEST_B}",
        f"{SOURCE}@{DIGEST_A}",
        f"{SOURCE}@{DIGEST_B}",
        f"{SOURCE}@{DIGEST_A}",
        "other:v1",
        "other",
    ]


# --- which objects and containers are examined --------------------------------------------------------------------


def test_init_containers_first_then_containers_and_never_ephemeral_ones() -> None:
    """ALG podSpecV1Mutator.Mutate: initContainers, then containers; ephemeralContainers have no code path."""
    obj = pod("app:v1", init=("app:v1",))
    obj["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "app:v1"}]
    decision = decide_lookup(PODS, obj, None, NS, Streams(LOCAL_APP).read)
    assert [(c.container_list, c.index) for c in decision.containers] == [("initContainers", 0), ("containers", 0)]
    assert patch_operations(decision) == (
        {"op": "replace", "path": "/spec/initContainers/0/image", "value": f"{SOURCE}@{DIGEST_A}"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": f"{SOURCE}@{DIGEST_A}"},
    )
    assert obj["spec"]["ephemeralContainers"][0]["image"] == "app:v1"


@pytest.mark.parametrize(
    ("owners", "examined"),
    [
        pytest.param(
            [{"kind": "ReplicaSet", "name": "r", "uid": "u", "controller": True}], False, id="ALG admit: controller"
        ),
        pytest.param(
            [{"kind": "ConfigMap", "name": "c", "uid": "u", "controller": False}], True, id="not a controller"
        ),
        pytest.param([{"kind": "ConfigMap", "name": "c", "uid": "u"}], True, id="controller unset"),
    ],
)
def test_objects_with_a_controller_owner_are_skipped(owners: list[dict[str, Any]], examined: bool) -> None:
    source = Streams(LOCAL_APP)
    decision = decide_lookup(PODS, pod("app:v1", owners=owners), None, NS, source.read)
    assert bool(decision.containers) is examined
    assert bool(source.reads) is examined
    assert bool(decision.skipped) is not examined


@pytest.mark.parametrize(
    ("resource", "obj", "path"),
    [
        pytest.param(
            ("", "replicationcontrollers"),
            {
                "spec": {
                    "template": {
                        "metadata": {"annotations": RESOLVE_ALL},
                        "spec": {"containers": [{"name": "c", "image": "app:v1"}]},
                    }
                }
            },
            "/spec/template/spec/containers/0/image",
            id="ALG GetPodSpecV1 / GetTemplateMetaObject: ReplicationController",
        ),
        pytest.param(
            ("batch", "cronjobs"),
            {
                "spec": {
                    "jobTemplate": {
                        "spec": {
                            "template": {
                                "metadata": {"annotations": RESOLVE_ALL},
                                "spec": {"containers": [{"name": "c", "image": "app:v1"}]},
                            }
                        }
                    }
                }
            },
            "/spec/jobTemplate/spec/template/spec/containers/0/image",
            id="ALG GetPodSpecV1 / GetTemplateMetaObject: CronJob",
        ),
        *(
            pytest.param(
                resource,
                {
                    "spec": {
                        "template": {
                            "metadata": {"annotations": RESOLVE_ALL},
                            "spec": {"containers": [{"name": "c", "image": "app:v1"}]},
                        }
                    }
                },
                "/spec/template/spec/containers/0/image",
                id=f"ALG GetPodSpecV1 / GetTemplateMetaObject: {resource[1]}",
            )
            for resource in [
                ("apps", "deployments"),
                ("apps", "replicasets"),
                ("apps", "daemonsets"),
                ("apps", "statefulsets"),
                ("batch", "jobs"),
            ]
        ),
    ],
)
def test_every_covered_kind_is_rewritten_in_its_pod_template(
    resource: tuple[str, str], obj: dict[str, Any], path: str
) -> None:
    decision = decide_lookup(resource, obj, None, NS, Streams(NOT_LOCAL_APP).read)
    assert patch_operations(decision) == ({"op": "replace", "path": path, "value": f"{SOURCE}@{DIGEST_A}"},)


@pytest.mark.parametrize(
    ("annotations", "template", "resolved"),
    [
        pytest.param(RESOLVE_ALL, {}, True, id="ALG ResolveAllNames: the object's annotation"),
        pytest.param({}, RESOLVE_ALL, True, id="ALG ResolveAllNames: the pod template's annotation"),
        pytest.param({}, {RESOLVE_NAMES_ANNOTATION: ""}, False, id="ALG ResolveAllNames: empty is not '*'"),
        pytest.param({}, {}, False, id="neither"),
    ],
)
def test_the_annotation_counts_on_the_object_or_its_pod_template(
    annotations: dict[str, str], template: dict[str, str], resolved: bool
) -> None:
    obj = deployment("otherns/app:v1", annotations=annotations, template=template)
    decision = decide_lookup(DEPLOYMENTS, obj, None, NS, Streams(NOT_LOCAL_APP).read)
    assert images_after(obj, decision) == [f"{SOURCE}@{DIGEST_A}" if resolved else "otherns/app:v1"]


def test_a_pod_template_annotation_does_not_count_on_a_pod() -> None:
    """ALG GetTemplateMetaObject: a Pod has no template, so only its own metadata counts."""
    obj = pod("otherns/app:v1")
    obj["spec"]["template"] = {"metadata": {"annotations": RESOLVE_ALL}}
    decision = decide_lookup(PODS, obj, None, NS, Streams(NOT_LOCAL_APP).read)
    assert images_after(obj, decision) == ["otherns/app:v1"]


def test_an_object_without_a_pod_spec_is_let_through_unchanged() -> None:
    """ALG admit returns 403 (errNoImageMutator) for a ReplicationController without spec.template; here it is let
    through and the API server's own validation refuses it (spec.template: Required value)."""
    source = Streams(LOCAL_APP)
    decision = decide_lookup(("", "replicationcontrollers"), {"spec": {"replicas": 1}}, None, NS, source.read)
    assert decision.containers == ()
    assert decision.skipped == "it has no pod spec"
    assert source.reads == []


def test_a_resource_that_is_not_covered_is_skipped() -> None:
    """ALG admit: skipped unless a resolution rule covers the group/resource (SetDefaults_ImagePolicyConfig)."""
    decision = decide_lookup(("", "podtemplates"), {"template": {"spec": {}}}, None, NS, Streams().read)
    assert decision.skipped and decision.containers == ()


def test_an_image_that_already_is_what_it_resolves_to_needs_no_patch() -> None:
    image = f"{REPOSITORY}:v2"
    decision = decide_lookup(
        PODS, pod(image, annotations=RESOLVE_ALL), None, NS, Streams(image_stream(repository=REPOSITORY)).read
    )
    assert decision.containers[0].result is LookupResult.RESOLVED
    assert patch_operations(decision) == ()


def test_a_container_without_an_image_is_left() -> None:
    obj = pod("app:v1")
    del obj["spec"]["containers"][0]["image"]
    decision = decide_lookup(PODS, obj, None, NS, Streams(LOCAL_APP).read)
    assert [(c.result, c.reason) for c in decision.containers] == [(LookupResult.LEFT, "no image")]


# --- UPDATE -------------------------------------------------------------------------------------------------------


def test_update_looks_up_only_containers_whose_image_changed() -> None:
    """ALG hasIdenticalPodSpecV1Image: a container with the same name and image string in the old spec is skipped."""
    old = deployment("app:v1", "app:v2", "nginx")
    new = deployment("app:v1", "app:v1", "nginx")
    new["spec"]["template"]["spec"]["containers"].append({"name": "added", "image": "app:v1"})
    source = Streams(LOCAL_APP)
    decision = decide_lookup(DEPLOYMENTS, new, old, NS, source.read)
    assert [c.name for c in decision.containers] == ["c1", "added"]
    assert images_after(new, decision) == ["app:v1", f"{SOURCE}@{DIGEST_A}", "nginx", f"{SOURCE}@{DIGEST_A}"]


def test_update_keeps_a_stored_short_name_that_did_not_change() -> None:
    """ALG hasIdenticalPodSpecV1Image: an unchanged image is never re-resolved, even if it would resolve now."""
    source = Streams(LOCAL_APP)
    decision = decide_lookup(DEPLOYMENTS, deployment("app:v1"), deployment("app:v1"), NS, source.read)
    assert decision.containers == () and source.reads == []


def test_update_finds_the_old_container_by_name_init_containers_first() -> None:
    """ALG hasIdenticalPodSpecV1Image searches initContainers, then containers, for the first with that name."""
    old = pod("app:v1", init=("other:v1",))
    old["spec"]["initContainers"][0]["name"] = "c0"  # the same name as the container
    decision = decide_lookup(PODS, pod("app:v1"), old, NS, Streams(LOCAL_APP).read)
    assert [c.name for c in decision.containers] == ["c0"]


@pytest.mark.parametrize(
    ("old_annotations", "new_annotations", "becomes"),
    [
        pytest.param({}, RESOLVE_ALL, f"{SOURCE}@{DIGEST_A}", id="ALG resolveAnnotationChanged: turned on"),
        pytest.param(RESOLVE_ALL, {}, "otherns/app:v1", id="ALG resolveAnnotationChanged: turned off, re-examined"),
    ],
)
def test_toggling_the_annotation_looks_every_container_up_again(
    old_annotations: dict[str, str], new_annotations: dict[str, str], becomes: str
) -> None:
    old = deployment("otherns/app:v1", template=old_annotations)
    new = deployment("otherns/app:v1", template=new_annotations)
    decision = decide_lookup(DEPLOYMENTS, new, old, NS, Streams(NOT_LOCAL_APP).read)
    assert [c.name for c in decision.containers] == ["c0"]
    assert images_after(new, decision) == [becomes]


def test_jobs_are_not_rewritten_on_update_but_cronjobs_are() -> None:
    """ALG skipImageRewriteOnUpdate: batch/jobs only (their template cannot change)."""
    job = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "app:v1"}]}}}}
    changed = copy.deepcopy(job)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "app"
    source = Streams(image_stream(tags={"latest": (f"{SOURCE}@{DIGEST_B}", DIGEST_B)}))
    assert decide_lookup(("batch", "jobs"), changed, job, NS, source.read).skipped
    assert decide_lookup(("batch", "jobs"), changed, None, NS, source.read).rewrites
    cron = {"spec": {"jobTemplate": job}}
    cron_changed = {"spec": {"jobTemplate": changed}}
    assert decide_lookup(("batch", "cronjobs"), cron_changed, cron, NS, source.read).rewrites


# --- the handler's early exits (no stream is read, so no client is needed) ---------------------------------------


@pytest.mark.parametrize(
    ("operation", "subresource"),
    [
        pytest.param("CREATE", "ephemeralcontainers", id="ALG admit: subresources are skipped"),
        pytest.param("UPDATE", "status", id="ALG admit: status"),
        pytest.param("DELETE", "", id="ALG NewHandler(Create, Update): delete"),
        pytest.param("CONNECT", "", id="ALG NewHandler(Create, Update): connect"),
    ],
)
def test_the_handler_answers_other_requests_without_reading(operation: str, subresource: str) -> None:
    lookup = ImageLookup(cast(Client, None))  # any read would fail on None
    request = Request(
        uid="u",
        group="",
        resource="pods",
        subresource=subresource,
        kind="Pod",
        namespace=NS,
        name="p",
        operation=operation,
        user=UserInfo(),
        object=pod("app:v1"),
        old_object=pod("x"),
        dry_run=False,
    )
    response = lookup.admit(request)
    assert response.allowed and response.patch == () and response.warnings == ()


def test_each_examined_image_is_told_to_the_observer_and_counted() -> None:
    metrics = Metrics()
    lookup = ImageLookup(cast(Client, None), observe=metrics.image_looked_up)  # digests are never read
    request = Request(
        uid="u",
        group="",
        resource="pods",
        subresource="",
        kind="Pod",
        namespace=NS,
        name="p",
        operation="CREATE",
        user=UserInfo(),
        object=pod(f"app@{DIGEST_A}", f"app:v1@{DIGEST_B}"),
        old_object=None,
        dry_run=False,
    )
    assert lookup.admit(request).patch == ()
    assert metrics.registry.get_sample_value("imagestreams_image_lookups_total", {"result": "left"}) == 2

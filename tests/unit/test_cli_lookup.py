"""What the plugin shows of image lookup: `set-image-lookup`'s tables and `describe is --show-lookup`.

The decisions themselves are core/lookup.py's (tests/unit/test_lookup.py checks them against OpenShift); these tests
check that the plugin asks it the right question and how it words and lays out the answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from imagestreams.cli.commands.set_image_lookup import (
    Shown,
    lookup_rows,
    set_stream_lookup,
    set_workload_lookup,
    shown_stream,
    shown_workload,
)
from imagestreams.cli.lookupview import LookupLine, lookup_section, stream_lookups, workload_lookups
from imagestreams.cli.tabwriter import table
from imagestreams.cli.workloads import WorkloadRef, lookup_enabled
from imagestreams.core.lookup import RESOLVE_NAMES_ANNOTATION, StreamReader, StreamUnreadable
from imagestreams.core.workloadkinds import WorkloadKind

NS = "team"
DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
SOURCE = "quay.io/upstream/app"
OFF = (
    "left: the image stream app does not allow local lookup (spec.lookupPolicy.local), "
    f'and {RESOLVE_NAMES_ANNOTATION} is not "*"'
)


def image_stream(
    *,
    local: bool = True,
    images: Mapping[str, str] | None = None,
    spec_only: Sequence[str] = (),
    repository: str = "",
    local_policy: Sequence[str] = (),
) -> dict[str, Any]:
    """Stream `app` of NS: `images` maps tag -> image digest (imported from SOURCE); `spec_only` tags have no image;
    `local_policy` tags have referencePolicy Local."""
    history = {"latest": DIGEST_A, "v1": DIGEST_B} if images is None else images
    spec_tags = [{"name": tag} for tag in spec_only]
    spec_tags += [{"name": tag, "referencePolicy": {"type": "Local"}} for tag in local_policy]
    return {
        "metadata": {"name": "app", "namespace": NS},
        "spec": {"lookupPolicy": {"local": local}, "tags": spec_tags},
        "status": {
            "dockerImageRepository": repository,
            "tags": [
                {
                    "tag": tag,
                    "items": [
                        {
                            "created": "2026-01-01T00:00:00Z",
                            "dockerImageReference": f"{SOURCE}@{image}",
                            "image": image,
                            "generation": 1,
                        }
                    ],
                }
                for tag, image in history.items()
            ],
        },
    }


def deployment(
    images: Mapping[str, str],
    *,
    init: Mapping[str, str] | None = None,
    template_annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Deployment `web` of NS: container name -> image (`init`: its init containers)."""
    pod: dict[str, Any] = {"containers": [{"name": name, "image": image} for name, image in images.items()]}
    if init:
        pod["initContainers"] = [{"name": name, "image": image} for name, image in init.items()]
    template = {"metadata": {"annotations": dict(template_annotations or {})}, "spec": pod}
    return {"metadata": {"name": "web", "namespace": NS}, "spec": {"template": template}}


def streams(*bodies: dict[str, Any], unreadable: Sequence[str] = ()) -> StreamReader:
    """A reader of NS's streams, as the command's reader behaves: None for a missing one, StreamUnreadable for a
    forbidden one."""
    by_name = {body["metadata"]["name"]: body for body in bodies}

    def read(name: str) -> Mapping[str, Any] | None:
        if name in unreadable:
            raise StreamUnreadable(f'imagestreams.image.openshift.io "{name}" is forbidden')
        return by_name.get(name)

    return read


# --- a stream's short names -------------------------------------------------------------------------------------


def test_each_tag_of_a_local_stream_in_ocs_order_resolves_to_its_image_by_digest() -> None:
    body = image_stream(images={"v1": DIGEST_B, "latest": DIGEST_A, "1.2": DIGEST_B}, spec_only=["pending"])
    assert stream_lookups(body) == [
        LookupLine("app:latest", f"resolved to {SOURCE}@{DIGEST_A}"),
        LookupLine("app:1.2", f"resolved to {SOURCE}@{DIGEST_B}"),
        LookupLine(
            "app:pending", "left: the tag app:pending has no image, and the stream has no status.dockerImageRepository"
        ),
        LookupLine("app:v1", f"resolved to {SOURCE}@{DIGEST_B}"),
    ]


def test_a_streams_repository_and_reference_policy_are_admissions() -> None:
    body = image_stream(
        images={"v1": DIGEST_B}, spec_only=["pending"], repository="mirror.example/team/app", local_policy=["v1"]
    )
    assert stream_lookups(body) == [
        LookupLine("app:pending", "resolved to mirror.example/team/app:pending"),
        LookupLine("app:v1", f"resolved to mirror.example/team/app@{DIGEST_B}"),
    ]


def test_a_stream_with_lookup_off_is_one_row_for_all_its_tags() -> None:
    assert stream_lookups(image_stream(local=False)) == [LookupLine("app:*", OFF)]
    # One tag is shown as that tag; a stream without tags as what `app` means, app:latest.
    assert stream_lookups(image_stream(local=False, images={"v1": DIGEST_A})) == [LookupLine("app:v1", OFF)]
    assert stream_lookups(image_stream(local=False, images={})) == [LookupLine("app:latest", OFF)]
    assert stream_lookups(image_stream(images={})) == [
        LookupLine(
            "app:latest", "left: the tag app:latest has no image, and the stream has no status.dockerImageRepository"
        )
    ]


# --- a workload's containers ------------------------------------------------------------------------------------


def test_each_container_init_containers_first_with_what_its_image_becomes() -> None:
    body = deployment({"web": "app", "side": "busybox", "full": "quay.io/x/app:v1"}, init={"setup": "app:v1"})
    lines = workload_lookups(WorkloadKind.DEPLOYMENT, body, NS, streams(image_stream()))
    assert lines == [
        LookupLine("app:v1", f"resolved to {SOURCE}@{DIGEST_B}", "setup"),
        LookupLine("app", f"resolved to {SOURCE}@{DIGEST_A}", "web"),
        LookupLine("busybox", f"left: there is no image stream busybox in namespace {NS}", "side"),
        LookupLine(
            "quay.io/x/app:v1",
            f'left: not a short name (it names a registry or namespace), and {RESOLVE_NAMES_ANNOTATION} is not "*"',
            "full",
        ),
    ]


def test_the_annotation_resolves_any_name_through_any_stream_of_the_namespace() -> None:
    body = deployment(
        {"full": "quay.io/x/app:v1", "as-is": "mirror.example/team/app:pending", "pinned": f"app@{DIGEST_A}"},
        template_annotations={RESOLVE_NAMES_ANNOTATION: "*"},
    )
    stream = image_stream(local=False, spec_only=["pending"], repository="mirror.example/team/app")
    assert lookup_enabled(body, WorkloadKind.DEPLOYMENT)
    assert workload_lookups(WorkloadKind.DEPLOYMENT, body, NS, streams(stream)) == [
        LookupLine("quay.io/x/app:v1", f"resolved to {SOURCE}@{DIGEST_B}", "full"),
        # The image it resolves to is what is written already: admission leaves it, and the plugin says so.
        LookupLine(
            "mirror.example/team/app:pending", "resolved to mirror.example/team/app:pending (as written)", "as-is"
        ),
        LookupLine(f"app@{DIGEST_A}", "left: a digest reference is used as written", "pinned"),
    ]


def test_an_unreadable_stream_and_a_controlled_object_say_why_nothing_resolves() -> None:
    body = deployment({"web": "app:v1"})
    assert workload_lookups(WorkloadKind.DEPLOYMENT, body, NS, streams(unreadable=["app"])) == [
        LookupLine(
            "app:v1",
            'failed: the image stream app could not be read: imagestreams.image.openshift.io "app" is forbidden',
            "web",
        )
    ]
    owned = {**body, "metadata": {**body["metadata"], "ownerReferences": [{"kind": "CronJob", "controller": True}]}}
    assert workload_lookups(WorkloadKind.JOB, owned, NS, streams(image_stream())) == [
        LookupLine("<none>", "left: it has a controller owner: its images come from its owner's template")
    ]


def test_a_cronjobs_pod_template_is_where_its_kind_keeps_it() -> None:
    pod = {"containers": [{"name": "job", "image": "app"}]}
    cronjob = {
        "metadata": {"name": "nightly", "namespace": NS},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }
    assert workload_lookups(WorkloadKind.CRONJOB, cronjob, NS, streams(image_stream())) == [
        LookupLine("app", f"resolved to {SOURCE}@{DIGEST_A}", "job")
    ]


# --- layouts --------------------------------------------------------------------------------------------------


def test_the_listing_keeps_ocs_columns_first_and_adds_image_and_lookup() -> None:
    web = shown_workload(
        WorkloadRef(WorkloadKind.DEPLOYMENT, "web"),
        deployment({"web": "app"}, template_annotations={RESOLVE_NAMES_ANNOTATION: "*"}),
        NS,
        streams(image_stream()),
    )
    assert web == Shown("deployments/web", True, [LookupLine("app", f"resolved to {SOURCE}@{DIGEST_A}", "web")], NS)
    app = shown_stream(image_stream(local=False))
    assert table(lookup_rows([app]), padding=2, minwidth=0) == (
        f"NAME  LOCAL  IMAGE  LOOKUP\napp   false  app:*  {OFF}\n"
    )
    assert table(lookup_rows([app], with_namespace=True), padding=2, minwidth=0) == (
        f"NAMESPACE  NAME  LOCAL  IMAGE  LOOKUP\nteam       app   false  app:*  {OFF}\n"
    )
    assert table(lookup_rows([web, app], with_containers=True), padding=2, minwidth=0) == (
        "NAME             LOCAL  CONTAINER  IMAGE  LOOKUP\n"
        f"deployments/web  true   web        app    resolved to {SOURCE}@{DIGEST_A}\n"
        f"app              false  <none>     app:*  {OFF}\n"
    )


def test_describe_show_lookup_section_uses_ocs_tab_layout() -> None:
    assert lookup_section(stream_lookups(image_stream())) == (
        f"Lookup:\n  app:latest\tresolved to {SOURCE}@{DIGEST_A}\n  app:v1\tresolved to {SOURCE}@{DIGEST_B}\n"
    )


def test_after_a_change_lookup_is_shown_for_the_object_as_the_patch_makes_it() -> None:
    stream_edit = set_stream_lookup(image_stream(local=False), name="app", enabled=True)
    assert stream_edit.patch == {"spec": {"lookupPolicy": {"local": True}}}
    assert stream_lookups(stream_edit.result)[0] == LookupLine("app:latest", f"resolved to {SOURCE}@{DIGEST_A}")
    ref = WorkloadRef(WorkloadKind.DEPLOYMENT, "web")
    workload_edit = set_workload_lookup(deployment({"web": "quay.io/x/app"}), kind=ref, enabled=True)
    assert lookup_enabled(workload_edit.result, WorkloadKind.DEPLOYMENT)
    assert workload_lookups(WorkloadKind.DEPLOYMENT, workload_edit.result, NS, streams(image_stream(local=False))) == [
        LookupLine("quay.io/x/app", f"resolved to {SOURCE}@{DIGEST_A}", "web")
    ]
    # resolve-names counts only when it is exactly "*", as admission reads it.
    assert not lookup_enabled(
        deployment({"web": "app"}, template_annotations={RESOLVE_NAMES_ANNOTATION: "true"}), WorkloadKind.DEPLOYMENT
    )

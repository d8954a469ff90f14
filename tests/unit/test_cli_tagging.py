"""`oc tag`: source-kind inference, validation messages, the spec tag written and the messages printed."""

from __future__ import annotations

from typing import Any

import pytest

from imagestreams.cli.errors import CliError, UsageError
from imagestreams.cli.tagging import (
    ROLLED_BACK_ANNOTATION,
    Destination,
    ImageRef,
    Source,
    TagOptions,
    delete_message,
    infer_source,
    needs_resolution,
    parse_destination,
    parse_image_ref,
    plan_tag,
    resolve_stream_tag,
    source_unchanged,
    spec_tag,
    tag_message,
    with_tag,
    without_tag,
)

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("app:v1", ImageRef(name="app", tag="v1")),
        ("ns/app:v1", ImageRef(namespace="ns", name="app", tag="v1")),
        ("quay.io/team/app:1.2", ImageRef("quay.io", "team", "app", "1.2")),
        ("localhost:5000/app", ImageRef("localhost:5000", "", "app")),
        (f"app@{DIGEST}", ImageRef(name="app", id=DIGEST)),
        ("a/b/c", ImageRef(namespace="a", name="b/c")),
    ],
)
def test_references_split_like_openshift(text: str, ref: ImageRef) -> None:
    assert parse_image_ref(text) == ref


def test_exact_and_name_string() -> None:
    ref = ImageRef("quay.io", "team", "app", "1.2", DIGEST)
    assert ref.name_string() == f"app:1.2@{DIGEST}"
    assert ref.exact() == f"quay.io/team/app:1.2@{DIGEST}"
    assert ImageRef().exact() == ""


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("quay.io/team/app:1.2", "DockerImage"),  # a registry: a container image
        ("localhost/app", "DockerImage"),
        (f"app@{DIGEST}", "ImageStreamImage"),  # an ID: an image of a stream
        ("app:v1", "ImageStreamTag"),  # a tag: a stream tag
        ("nginx:1.27", "ImageStreamTag"),  # ... even when a Docker Hub name was meant
        ("nginx", "DockerImage"),  # neither: a container image
    ],
)
def test_source_kind_is_inferred_as_oc_does(source: str, kind: str) -> None:
    assert infer_source(source, "", "ns").kind == kind


@pytest.mark.parametrize(
    ("flag", "kind"),
    [
        ("docker", "DockerImage"),
        ("DockerImage", "DockerImage"),
        ("istag", "ImageStreamTag"),
        ("imagestreamtag", "ImageStreamTag"),
        ("isimage", "ImageStreamImage"),
        ("imagestreamimage", "ImageStreamImage"),
    ],
)
def test_source_flag_names_the_kind(flag: str, kind: str) -> None:
    text = f"app@{DIGEST}" if kind == "ImageStreamImage" else "app:v1"
    assert infer_source(text, flag, "ns").kind == kind


@pytest.mark.parametrize(
    ("text", "flag", "message"),
    [
        (
            "app:v1",
            "bogus",
            'invalid source "bogus"; valid values are docker, dockerimage, imagestreamimage, imagestreamtag, '
            "isimage, istag",
        ),
        ("quay.io/a:1", "istag", "server in SOURCE is only allowed when providing a container image"),
        ("app", "istag", "--source=ImageStreamTag requires a valid <name>:<tag> in SOURCE"),
        ("app:v1", "isimage", "--source=ImageStreamImage requires a valid <name>@<id> in SOURCE"),
        ("App:V1", "", 'invalid SOURCE: invalid reference "App:V1": repository name must be lowercase'),
    ],
)
def test_source_errors_carry_oc_messages(text: str, flag: str, message: str) -> None:
    with pytest.raises(CliError) as caught:
        infer_source(text, flag, "ns")
    assert str(caught.value) == message


def test_the_library_namespace_means_the_current_one_for_stream_sources() -> None:
    assert infer_source("library/app:v1", "istag", "ns").ref.namespace == "ns"


def test_destinations_parse_with_namespace_and_default_tag() -> None:
    assert parse_destination("app:v1", "ns") == Destination("ns", "app", "v1", "app:v1")
    assert parse_destination("other/app:", "ns") == Destination("other", "app", "latest", "app:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app", '"app" must be of the form <stream_name>:<tag>'),
        ("a/b/c:1", 'invalid image stream "a/b/c:1"'),
        ("/app:1", 'invalid namespace "" for image stream "/app:1"'),
        ("ns/", 'invalid name "" for image stream "ns/"'),
        ("App:1", 'invalid image stream name "App"'),
        ("app:-x", 'invalid tag "-x"'),
    ],
)
def test_destination_errors(text: str, message: str) -> None:
    with pytest.raises(CliError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_destination(text, "ns")


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (["app:v1", "other:latest"], TagOptions(alias=True), "cannot set alias across different Image Streams"),
        (["other/app:v1", "app:latest"], TagOptions(alias=True), "cannot set alias across different Image Streams"),
        (["app:v1", "app:x"], TagOptions(scheduled=True), "only container images can have importing flags set"),
        (["app:v1", "app:x"], TagOptions(insecure=True), "only container images can have importing flags set"),
        (
            ["quay.io/a/b:1", "b:x"],
            TagOptions(alias=True, scheduled=True),
            "cannot set a container image tag as an alias and also set import flags",
        ),
        (["app:v1"], TagOptions(), "at least a destination is required"),
        (["app:v1"], TagOptions(delete=True, alias=True), "--alias and --delete may not be both specified"),
        (["app:v1"], TagOptions(delete=True, source="docker"), "cannot specify a source kind when deleting"),
        (
            ["app:v1"],
            TagOptions(delete=True, scheduled=True),
            "cannot set flags for importing images when deleting a tag",
        ),
        (["x/y:1", "a:b"], TagOptions(reference_policy="Local"), "reference policy must be set to 'source' or 'local'"),
        (["x/y:1", "a:b"], TagOptions(import_mode="legacy"), "valid ImportMode values are Legacy or PreserveOriginal"),
    ],
)
def test_validation_messages_are_ocs(args: list[str], options: TagOptions, message: str) -> None:
    with pytest.raises(CliError) as caught:
        plan_tag(args, options, "ns")
    assert str(caught.value) == message


def test_no_arguments_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        plan_tag([], TagOptions(), "ns")
    assert caught.value.verb == "tag"
    assert str(caught.value) == "you must specify a source and at least one destination or one or more tags to delete"


def test_alias_within_the_stream_and_delete_plans() -> None:
    plan = plan_tag(["app:v1", "app:latest", "ns/app:edge"], TagOptions(alias=True), "ns")
    assert plan.source is not None and plan.source.kind == "ImageStreamTag"
    assert [d.tag for d in plan.destinations] == ["latest", "edge"]
    assert not needs_resolution(plan.source, TagOptions(alias=True))
    assert needs_resolution(plan.source, TagOptions())
    deleting = plan_tag(["app:v1", "other/app:v2"], TagOptions(delete=True), "ns")
    assert deleting.source is None
    assert [delete_message(d) for d in deleting.destinations] == ["Deleted tag ns/app:v1.", "Deleted tag other/app:v2."]


def test_a_stream_tag_resolves_to_the_image_it_points_at() -> None:
    source = infer_source("ns2/app:v1", "", "ns")
    resolved = resolve_stream_tag(source, {"image": DIGEST, "dockerImageReference": f"r/x@{DIGEST}"})
    assert (resolved.kind, resolved.ref.exact()) == ("ImageStreamImage", f"ns2/app@{DIGEST}")
    reference = resolve_stream_tag(source, {"image": "", "dockerImageReference": "quay.io/x/y:2"})
    assert (reference.kind, reference.ref.exact()) == ("DockerImage", "quay.io/x/y:2")


def test_a_stream_tag_without_image_cannot_be_a_source() -> None:
    with pytest.raises(CliError) as caught:
        resolve_stream_tag(infer_source("app:v1", "", "ns"), None)
    assert str(caught.value) == '"app:v1" is not currently pointing to an image, cannot use it as the source of a tag'
    with pytest.raises(CliError, match='the image stream tag "app:v1" has an invalid pull spec'):
        resolve_stream_tag(infer_source("app:v1", "", "ns"), {"image": "", "dockerImageReference": "Bad Spec"})


def dest(text: str = "app:v1", namespace: str = "ns") -> Destination:
    return parse_destination(text, namespace)


def test_spec_tag_for_a_container_image_has_every_flag() -> None:
    source = infer_source("quay.io/team/app:1", "", "ns")
    options = TagOptions(scheduled=True, insecure=True, reference_policy="local", import_mode="PreserveOriginal")
    existing = {"name": "v1", "annotations": {"keep": "me", ROLLED_BACK_ANNOTATION: "{}"}, "generation": 3}
    assert spec_tag(dest(), source, options, "ns", existing) == {
        "name": "v1",
        "annotations": {"keep": "me"},
        "from": {"kind": "DockerImage", "name": "quay.io/team/app:1"},
        "generation": 3,
        "importPolicy": {"insecure": True, "scheduled": True, "importMode": "PreserveOriginal"},
        "referencePolicy": {"type": "Local"},
    }


def test_spec_tag_for_a_stream_source_names_the_namespace_when_needed() -> None:
    source = Source("ImageStreamImage", ImageRef(name="app", id=DIGEST), "app:v1")
    same = spec_tag(dest(), source, TagOptions(), "ns", None)
    assert same == {
        "name": "v1",
        "from": {"kind": "ImageStreamImage", "name": f"app@{DIGEST}"},
        "referencePolicy": {"type": "Source"},
    }
    elsewhere = spec_tag(dest("other/app:v1"), source, TagOptions(reference=True), "ns", None)
    assert elsewhere["from"] == {"kind": "ImageStreamImage", "name": f"app@{DIGEST}", "namespace": "ns"}
    assert elsewhere["reference"] is True
    alias = spec_tag(dest("app:latest"), infer_source("app:v1", "", "ns"), TagOptions(alias=True), "ns", None)
    assert alias["from"] == {"kind": "ImageStreamTag", "name": "app:v1"}


def test_messages_for_each_kind_of_tagging() -> None:
    docker = infer_source("quay.io/team/app:1", "", "ns")
    assert tag_message(dest(), docker, TagOptions(), "ns") == "Tag app:v1 set to quay.io/team/app:1."
    assert tag_message(dest("o/app:v1"), docker, TagOptions(), "ns") == "Tag o/app:v1 set to quay.io/team/app:1."
    scheduled = TagOptions(scheduled=True)
    assert tag_message(dest(), docker, scheduled, "ns") == "Tag app:v1 set to import quay.io/team/app:1 periodically."
    # oc's cross-namespace variant lacks "import".
    assert (
        tag_message(dest("o/app:v1"), docker, scheduled, "ns") == "Tag o/app:v1 set to quay.io/team/app:1 periodically."
    )
    alias = infer_source("app:v1", "", "ns")
    assert (
        tag_message(dest("app:latest"), alias, TagOptions(alias=True), "ns") == "Tag app:latest set up to track app:v1."
    )
    pinned = resolve_stream_tag(alias, {"image": DIGEST})
    assert tag_message(dest("app:stable"), pinned, TagOptions(), "ns") == f"Tag app:stable set to app@{DIGEST}."


def test_tags_are_replaced_in_place_or_appended_and_deleted() -> None:
    tags: list[dict[str, Any]] = [{"name": "a", "x": 1}, {"name": "b"}]
    assert with_tag(tags, {"name": "a", "y": 2}) == [{"name": "a", "y": 2}, {"name": "b"}]
    assert with_tag(tags, {"name": "c"}) == [*tags, {"name": "c"}]
    assert without_tag(tags, "a") == [{"name": "b"}]
    assert without_tag(tags, "zzz") is None


def test_an_unchanged_source_needs_an_explicit_import_request() -> None:
    old = {"name": "v1", "from": {"kind": "DockerImage", "name": "x/y:1"}, "importPolicy": {"scheduled": True}}
    same_source = {"name": "v1", "from": {"kind": "DockerImage", "name": "x/y:1"}, "importPolicy": {"insecure": True}}
    assert source_unchanged(old, same_source)
    assert not source_unchanged(old, {"name": "v1", "from": {"kind": "DockerImage", "name": "x/y:2"}})
    assert not source_unchanged(None, same_source)

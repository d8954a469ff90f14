"""`oc describe is|istag|isimage` layouts computed from a stream."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from imagestreams.api.imagestream import ImageLookupPolicy, ImageStream, ImageStreamStatus, ImageSummary, TagReference
from imagestreams.cli.describe import (
    ImageView,
    ReferenceProblem,
    describe_image,
    describe_stream,
    find_image,
    follow_tag_reference,
    isimage_view,
    istag_view,
    tag_pending,
)
from imagestreams.cli.errors import CliError, NotFound
from imagestreams.core.tags import source_fingerprint

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
A, B, C = ("sha256:" + letter * 64 for letter in "abc")


def at(**delta: float) -> str:
    return (NOW - datetime.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def item(reference: str, image: str, created: str, generation: int = 1) -> dict[str, Any]:
    return {"created": created, "dockerImageReference": reference, "image": image, "generation": generation}


def stream(
    spec_tags: list[dict[str, Any]], status_tags: list[dict[str, Any]], *, seen: bool = True, **metadata: Any
) -> ImageStream:
    """A stream whose status records (when `seen`) the current source of every spec tag, at generation 1."""
    entries = {entry["tag"]: dict(entry) for entry in status_tags}
    if seen:
        for tag in spec_tags:
            fingerprint = source_fingerprint(TagReference.model_validate(tag))
            entry = entries.setdefault(tag["name"], {"tag": tag["name"]})
            entry["source"] = {"sourceFingerprint": fingerprint, "specGeneration": 1}
    return ImageStream.model_validate(
        {
            "metadata": {"name": "app", "namespace": "ns", "generation": 1, **metadata},
            "spec": {"tags": spec_tags},
            "status": {"tags": list(entries.values())},
        }
    )


def docker(name: str, pull_spec: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "from": {"kind": "DockerImage", "name": pull_spec}, **extra}


def full_stream() -> ImageStream:
    spec = [
        {"name": "latest", "from": {"kind": "ImageStreamTag", "name": "v1"}},
        docker("v1", "quay.io/team/app:v1", importPolicy={"insecure": True, "scheduled": True}),
        {"name": "stable", "from": {"kind": "ImageStreamImage", "name": f"app@{A}"}},
        docker("ref", "quay.io/team/app:v2", reference=True),
        docker(
            "broken",
            "quay.io/team/missing:1",
            referencePolicy={"type": "Local"},
            annotations={"description": "Broken one", "tags": "a,b", "supports": "x", "sampleRepo": "https://git"},
        ),
    ]
    status = [
        {
            "tag": "v1",
            "items": [
                item(f"quay.io/team/app@{A}", A, at(minutes=2)),
                item(f"quay.io/team/app@{B}", B, at(hours=3)),
            ],
        },
        {"tag": "latest", "items": [item(f"quay.io/team/app@{A}", A, at(minutes=2))]},
        {"tag": "stable", "items": [item(f"quay.io/team/app@{A}", A, at(minutes=2))]},
        {"tag": "ref", "items": [item("quay.io/team/app:v2", "", at(minutes=10))]},
        {
            "tag": "broken",
            "conditions": [
                {
                    "type": "ImportSuccess",
                    "status": "False",
                    "reason": "NotFound",
                    "message": "not here",
                    "generation": 1,
                    "lastTransitionTime": at(seconds=30),
                }
            ],
        },
        {"tag": "extra", "items": [item("quay.io/team/app:v3", C, at(minutes=2))]},
    ]
    result = stream(
        spec,
        status,
        creationTimestamp=at(minutes=5),
        labels={"team": "a", "app": "x"},
        annotations={"description": "My app", "openshift.io/display-name": "App"},
    )
    # A tag from another namespace the operator has not looked at yet.
    other = TagReference.model_validate(
        {"name": "other", "from": {"kind": "ImageStreamTag", "name": "other:v1", "namespace": "lib"}}
    )
    result.spec.tags = [*(result.spec.tags or []), other]
    result.spec.lookup_policy = ImageLookupPolicy(local=True)
    return result


EXPECTED = (
    "Name:\t\t\tapp\n"
    "Namespace:\t\tns\n"
    "Created:\t\t5 minutes ago\n"
    "Labels:\t\t\tapp=x\n"
    "\t\t\tteam=a\n"
    "Description:\t\tMy app\n"
    "Annotations:\t\topenshift.io/display-name=App\n"
    "Image Repository:\t<none>\n"
    "Image Lookup:\t\tlocal=true\n"
    "Unique Images:\t\t4\n"
    "Tags:\t\t\t7\n"
    "\n"
    "broken\n"
    "  tagged from quay.io/team/missing:1\n"
    "    prefer registry pullthrough when referencing this tag\n"
    "\n"
    "  Broken one\n"
    "  Tags: a, b\n"
    "  Supports: x\n"
    "  Example Repo: https://git\n"
    "\n"
    "  ! error: Import failed (NotFound): not here\n"
    "      30 seconds ago\n"
    "\n"
    "extra\n"
    "  no spec tag\n"
    "\n"
    "  * quay.io/team/app:v3\n"
    f"      2 minutes ago\t{C}\n"
    "\n"
    "other\n"
    "  tagged from lib/other:v1\n"
    "\n"
    "  ~ importing latest image ...\n"
    "\n"
    "ref\n"
    "  reference to registry quay.io/team/app:v2\n"
    "\n"
    "  * quay.io/team/app:v2\n"
    "      10 minutes ago\n"
    "\n"
    "stable\n"
    f"  tagged from app@{A}\n"
    "\n"
    f"  * quay.io/team/app@{A}\n"
    "      2 minutes ago\n"
    "\n"
    "v1 (latest)\n"
    "  updates automatically from registry quay.io/team/app:v1\n"
    "    will use insecure HTTPS or HTTP connections\n"
    "\n"
    f"  * quay.io/team/app@{A}\n"
    "      2 minutes ago\n"
    f"    quay.io/team/app@{B}\n"
    "      3 hours ago\n"
)


def test_describe_stream_follows_oc_line_for_line() -> None:
    assert describe_stream(full_stream(), NOW) == EXPECTED


def test_a_stream_without_tags_says_none() -> None:
    empty = ImageStream.model_validate({"metadata": {"name": "app", "namespace": "ns"}})
    assert describe_stream(empty, NOW) == (
        "Name:\t\t\tapp\n"
        "Namespace:\t\tns\n"
        "Labels:\t\t\t<none>\n"
        "Annotations:\t\t<none>\n"
        "Image Repository:\t<none>\n"
        "Image Lookup:\t\tlocal=false\n"
        "Tags:\t\t\t<none>\n"
    )


def test_public_repository_wins_over_the_internal_one() -> None:
    body = ImageStream.model_validate(
        {
            "metadata": {"name": "app"},
            "status": {"dockerImageRepository": "internal/ns/app", "publicDockerImageRepository": "public/ns/app"},
        }
    )
    assert "Image Repository:\tpublic/ns/app\n" in describe_stream(body, NOW)


def test_pending_source_change_and_pending_request_show_importing() -> None:
    tag = docker("v1", "quay.io/team/app:v1")
    current = [{"tag": "v1", "items": [item(f"quay.io/team/app@{A}", A, at(minutes=1))]}]
    seen = stream([tag], current)
    assert "~ importing" not in describe_stream(seen, NOW)
    assert "  ~ importing latest image ...\n" in describe_stream(seen, NOW, request_pending=True)
    unseen = stream([tag], current, seen=False)
    assert "  ~ importing latest image ...\n" in describe_stream(unseen, NOW)


def test_reference_and_sourceless_tags_are_never_pending() -> None:
    ref = TagReference.model_validate(docker("r", "x/y:1", reference=True))
    bare = TagReference.model_validate({"name": "b"})
    empty = stream([], [])
    assert not tag_pending(empty, ref, None, request_pending=True)
    assert not tag_pending(empty, bare, None, request_pending=True)


def test_a_newer_source_generation_than_observed_is_pending() -> None:
    tag = docker("v1", "quay.io/team/app:v1")
    body = stream([tag], [{"tag": "v1", "items": [item(f"quay.io/team/app@{A}", A, at(minutes=1), generation=1)]}])
    entry = ((body.status or ImageStreamStatus()).tags or [])[0]
    assert entry.source is not None
    entry.source.spec_generation = 2
    assert tag_pending(body, TagReference.model_validate(tag), entry, request_pending=False)


def test_reference_chains_are_followed_like_oc() -> None:
    body = stream(
        [
            {"name": "a", "from": {"kind": "ImageStreamTag", "name": "b"}},
            {"name": "b", "from": {"kind": "ImageStreamTag", "name": "app:c"}},
            docker("c", "x/y:1"),
            {"name": "loop1", "from": {"kind": "ImageStreamTag", "name": "loop2"}},
            {"name": "loop2", "from": {"kind": "ImageStreamTag", "name": "loop1"}},
            {"name": "cross", "from": {"kind": "ImageStreamTag", "name": "other:c"}},
            {"name": "elsewhere", "from": {"kind": "ImageStreamTag", "name": "c", "namespace": "lib"}},
            {"name": "dangling", "from": {"kind": "ImageStreamTag", "name": "gone"}},
        ],
        [],
    )
    followed = follow_tag_reference(body, "a")
    assert (followed.final, followed.multiple, followed.problem) == ("c", True, None)
    assert followed.spec is not None and followed.spec.name == "c"
    assert follow_tag_reference(body, "c").multiple is False
    assert follow_tag_reference(body, "loop1").problem is ReferenceProblem.CIRCULAR
    assert follow_tag_reference(body, "cross").problem is ReferenceProblem.CROSS_STREAM
    assert follow_tag_reference(body, "elsewhere").problem is ReferenceProblem.CROSS_STREAM
    dangling = follow_tag_reference(body, "dangling")
    assert (dangling.final, dangling.problem) == ("gone", ReferenceProblem.NOT_FOUND)


def test_several_references_are_listed_in_priority_order_under_their_target() -> None:
    body = stream(
        [
            docker("1.0", "x/y:1"),
            {"name": "stable", "from": {"kind": "ImageStreamTag", "name": "1.0"}},
            {"name": "latest", "from": {"kind": "ImageStreamTag", "name": "stable"}},
        ],
        [{"tag": "1.0", "items": [item(f"x/y@{A}", A, at(minutes=1))]}],
    )
    text = describe_stream(body, NOW)
    assert "1.0 (latest, stable)\n" in text
    assert "\nstable\n" not in text


def test_multiline_annotation_values_continue_on_their_own_lines() -> None:
    body = ImageStream.model_validate({"metadata": {"name": "app", "annotations": {"note": "one\ntwo"}}})
    assert "Annotations:\t\tnote=one\n\t\t\ttwo\n" in describe_stream(body, NOW)


def summary(**extra: Any) -> dict[str, Any]:
    return {
        "image": A,
        "architecture": "amd64",
        "os": "linux",
        "created": at(days=3),
        "size": 12_345_678,
        "layerCount": 3,
        "labels": {"b": "2", "a": "1"},
        "entrypoint": ["/bin/sh", "-c"],
        "cmd": ["run"],
        "workingDir": "/app",
        "user": "1000",
        "exposedPorts": ["8080/tcp", "443/tcp"],
        **extra,
    }


def test_istag_view_uses_the_current_image_and_the_reference_policy() -> None:
    body = stream(
        [docker("v1", "quay.io/team/app:v1", referencePolicy={"type": "Local"}, annotations={"owner": "me"})],
        [{"tag": "v1", "items": [item(f"quay.io/team/app@{A}", A, at(minutes=2))]}],
    )
    status = body.status or ImageStreamStatus()
    status.docker_image_repository = "registry.local/ns/app"
    status.images = [ImageSummary.model_validate(summary())]
    view = istag_view(body, "v1")
    assert view.docker_image == f"registry.local/ns/app@{A}"
    assert view.image_name == A
    assert view.annotations == {"owner": "me"}
    assert describe_image(view, NOW) == (
        f"Image Name:\t{A}\n"
        f"Docker Image:\tregistry.local/ns/app@{A}\n"
        f"Name:\t\t{A}\n"
        "Created:\t2 minutes ago\n"
        "Annotations:\towner=me\n"
        "Image Size:\t12.35MB in 3 layers\n"
        "Image Created:\t3 days ago\n"
        "Author:\t\t<none>\n"
        "Arch:\t\tamd64\n"
        "Entrypoint:\t/bin/sh -c\n"
        "Command:\trun\n"
        "Working Dir:\t/app\n"
        "User:\t\t1000\n"
        "Exposes Ports:\t443/tcp, 8080/tcp\n"
        "Docker Labels:\ta=1\n"
        "\t\tb=2\n"
    )


def test_istag_of_a_missing_or_imageless_tag_is_not_found() -> None:
    body = stream(
        [docker("ref", "x/y:1", reference=True), docker("new", "x/y:2")],
        [{"tag": "ref", "items": [item("x/y:1", "", at(minutes=1))]}],
    )
    for tag in ("ref", "new", "nope"):
        with pytest.raises(NotFound, match=f'^imagestreamtags.image.openshift.io "app:{tag}" not found$'):
            istag_view(body, tag)


def test_isimage_by_prefix_uses_the_first_time_the_image_was_seen() -> None:
    body = stream(
        [docker("a", "x/y:1"), docker("b", "x/y:2")],
        [
            {"tag": "a", "items": [item(f"x/y@{A}", A, at(minutes=1)), item(f"x/y@{B}", B, at(hours=2))]},
            {"tag": "b", "items": [item(f"x/y@{B}", B, at(hours=5))]},
        ],
    )
    view = isimage_view(body, "sha256:bbbb")
    assert (view.digest, view.docker_image) == (B, f"x/y@{B}")
    assert view.created == NOW - datetime.timedelta(hours=5)
    assert isimage_view(body, "aaaa").digest == A  # the algorithm may be left out
    digest, entries = find_image(body, B)
    assert digest == B and [(tag, position) for tag, position, _ in entries] == [("a", 1), ("b", 0)]


def test_isimage_not_found_and_ambiguous() -> None:
    ab = "sha256:ab" + "0" * 62
    ac = "sha256:ac" + "0" * 62
    body = stream([docker("a", "x/y:1")], [{"tag": "a", "items": [item("x/y:1", ab, at()), item("x/y:2", ac, at())]}])
    with pytest.raises(NotFound, match=r'^imagestreamimages\.image\.openshift\.io "app@sha256:ff" not found$'):
        isimage_view(body, "sha256:ff")
    with pytest.raises(CliError, match='"sha256:a" matches 2 images of image stream "app"'):
        isimage_view(body, "sha256:a")


def test_describe_image_of_a_multi_arch_image_lists_its_manifests() -> None:
    index = summary(
        layerCount=None,
        size=None,
        manifests=[
            {"digest": B, "architecture": "arm64", "os": "linux", "variant": "v8"},
            {"digest": C, "architecture": "amd64", "os": "linux"},
        ],
        entrypoint=None,
        cmd=None,
        labels=None,
        exposedPorts=None,
    )
    view = ImageView(digest=A, docker_image=f"x/y@{A}", summary=ImageSummary.model_validate(index))
    text = describe_image(view, NOW)
    assert f"Manifests:\tlinux/arm64/v8\t{B}\n\t\tlinux/amd64\t{C}\n" in text
    assert "Command:\t<none>\n" in text
    assert "Exposes Ports:\t<none>\n" in text


def test_describe_image_without_metadata_prints_placeholders() -> None:
    text = describe_image(ImageView(digest=A, docker_image=f"x/y@{A}"), NOW)
    assert text.startswith(f"Docker Image:\tx/y@{A}\nName:\t\t{A}\n")
    assert "Layer Size:\t0B\n" in text
    assert "Image Created:\t<unknown>\n" in text

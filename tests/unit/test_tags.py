"""Tag decisions: source kinds, the history rule, conditions, aliases and the next status."""

from __future__ import annotations

from typing import Any

import pytest

from imagestreams.api.imagestream import ImageStream, TagEvent, TagEventCondition, TagReference
from imagestreams.core.tags import (
    AliasProblem,
    Failure,
    RepositoryResult,
    Resolved,
    SourceType,
    add_tag_event,
    alias_problems,
    classify_source,
    failure_conditions,
    follow_aliases,
    next_status,
    repository_needs_import,
    repository_tags_to_import,
    source_fingerprint,
    tags_needing_resolution,
    tags_updated_message,
)

NOW, LATER = "2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z"
DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def tag(name: str, kind: str | None = None, source: str | None = None, **extra: Any) -> TagReference:
    data: dict[str, Any] = {"name": name, **extra}
    if kind:
        data["from"] = {"kind": kind, "name": source}
    return TagReference.model_validate(data)


def stream(*tags: TagReference, generation: int = 1, status: dict[str, Any] | None = None) -> ImageStream:
    return ImageStream.model_validate(
        {
            "metadata": {"name": "app", "namespace": "team", "generation": generation},
            "spec": {"tags": [t.dump() for t in tags]},
            "status": status,
        }
    )


def event(reference: str, image: str, generation: int = 1, created: str = NOW) -> TagEvent:
    return TagEvent.model_validate(
        {"created": created, "dockerImageReference": reference, "image": image, "generation": generation}
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (tag("a"), (SourceType.NONE, "", "", "")),
        (tag("a", "DockerImage", "nginx:1"), (SourceType.IMPORT, "", "", "nginx:1")),
        (tag("a", "DockerImage", "nginx:1", reference=True), (SourceType.REFERENCE, "", "", "nginx:1")),
        (tag("a", "ImageStreamTag", "latest"), (SourceType.ALIAS, "team", "app", "latest")),
        (tag("a", "ImageStreamTag", "app:latest"), (SourceType.ALIAS, "team", "app", "latest")),
        (tag("a", "ImageStreamTag", "other:latest"), (SourceType.OTHER_STREAM_TAG, "team", "other", "latest")),
        (tag("a", "ImageStreamImage", f"other@{DIGEST_A}"), (SourceType.STREAM_IMAGE, "team", "other", DIGEST_A)),
        # parseFromReference (openshift-apiserver registry/imagestream/strategy.go): one part means this stream.
        (tag("a", "ImageStreamImage", DIGEST_A), (SourceType.STREAM_IMAGE, "team", "app", DIGEST_A)),
        (tag("a", "ImageStreamImage", "sha256:ab12"), (SourceType.STREAM_IMAGE, "team", "app", "sha256:ab12")),
        # Two parts with an empty tag: LatestTaggedImage (internal/imageutil/helpers.go) reads "" as "latest".
        (tag("a", "ImageStreamTag", "app:"), (SourceType.ALIAS, "team", "app", "latest")),
        (tag("a", "ImageStreamTag", "other:"), (SourceType.OTHER_STREAM_TAG, "team", "other", "latest")),
    ],
)
def test_classify_source(spec: TagReference, expected: tuple[SourceType, str, str, str]) -> None:
    source = classify_source("team", "app", spec)
    assert (source.type, source.namespace, source.stream, source.target) == expected


def test_same_name_in_another_namespace_is_not_an_alias() -> None:
    spec = TagReference.model_validate(
        {"name": "a", "from": {"kind": "ImageStreamTag", "name": "app:latest", "namespace": "elsewhere"}}
    )
    assert classify_source("team", "app", spec).type is SourceType.OTHER_STREAM_TAG


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (tag("a", "DockerImage", ""), "from.name is required"),
        # parseFromReference refuses more than two parts, and a stream name cannot be empty.
        (tag("a", "ImageStreamImage", f"a@b@{DIGEST_A}"), "must be <stream>@<digest> or <digest>"),
        (tag("a", "ImageStreamTag", "a:b:c"), "must be <stream>:<tag> or <tag>"),
        (tag("a", "ImageStreamTag", ":latest"), "must be <stream>:<tag> or <tag>"),
    ],
)
def test_invalid_sources_say_what_is_wrong(spec: TagReference, problem: str) -> None:
    source = classify_source("team", "app", spec)
    assert source.type is SourceType.INVALID
    assert problem in source.problem


def test_fingerprint_changes_with_source_defining_fields_only() -> None:
    base = tag("a", "DockerImage", "nginx:1")
    assert source_fingerprint(base) == source_fingerprint(tag("a", "DockerImage", "nginx:1"))
    assert source_fingerprint(base) != source_fingerprint(tag("a", "DockerImage", "nginx:2"))
    assert source_fingerprint(base) != source_fingerprint(tag("a", "DockerImage", "nginx:1", reference=True))
    assert source_fingerprint(base) != source_fingerprint(
        tag("a", "DockerImage", "nginx:1", importPolicy={"importMode": "PreserveOriginal"})
    )
    assert source_fingerprint(base) != source_fingerprint(tag("a", "DockerImage", "nginx:1", generation=0))
    # Like OpenShift, scheduling, insecure, reference policy and annotations do not mean a new source.
    assert source_fingerprint(base) == source_fingerprint(
        tag(
            "a",
            "DockerImage",
            "nginx:1",
            importPolicy={"scheduled": True, "insecure": True},
            referencePolicy={"type": "Local"},
            annotations={"x": "y"},
        )
    )


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        # all equal: no change
        (event("r@a", DIGEST_A, 1, LATER), None),
        # only generation differs: generation updated in place
        (event("r@a", DIGEST_A, 2, LATER), [event("r@a", DIGEST_A, 2), event("old", DIGEST_B)]),
        # same reference, new image: image replaced in place
        (event("r@a", DIGEST_B, 2, LATER), [event("r@a", DIGEST_B, 2), event("old", DIGEST_B)]),
        # same image, new reference: reference replaced in place
        (event("other@a", DIGEST_A, 1, LATER), [event("other@a", DIGEST_A, 1), event("old", DIGEST_B)]),
        # both differ: prepended
        (
            event("r@b", DIGEST_B, 2, LATER),
            [event("r@b", DIGEST_B, 2, LATER), event("r@a", DIGEST_A), event("old", DIGEST_B)],
        ),
    ],
)
def test_history_rule(new: TagEvent, expected: list[TagEvent] | None) -> None:
    history = [event("r@a", DIGEST_A), event("old", DIGEST_B)]
    assert add_tag_event(history, new, limit=10) == expected


def test_history_is_bounded() -> None:
    history = [event(f"r@{i}", f"sha256:{i}") for i in range(3)]
    result = add_tag_event(history, event("r@new", "sha256:new"), limit=3)
    assert result is not None
    assert [e.image for e in result] == ["sha256:new", "sha256:0", "sha256:1"]


def test_same_failure_is_not_rewritten() -> None:
    first = failure_conditions([], "NotFound", "gone", 1, NOW)
    assert first == [
        TagEventCondition(
            type="ImportSuccess",
            status="False",
            reason="NotFound",
            message="gone",
            generation=1,
            last_transition_time=NOW,
        )
    ]
    assert failure_conditions(first, "NotFound", "gone", 2, LATER) == first
    changed = failure_conditions(first, "Unauthorized", "denied", 2, LATER)
    assert (changed[0].reason, changed[0].last_transition_time) == ("Unauthorized", LATER)


def test_alias_chains_are_followed_and_cycles_detected() -> None:
    tags = {
        t.name: t
        for t in [
            tag("stable", "ImageStreamTag", "candidate"),
            tag("candidate", "ImageStreamTag", "app:latest"),
            tag("latest", "DockerImage", "nginx:1"),
            tag("x", "ImageStreamTag", "y"),
            tag("y", "ImageStreamTag", "x"),
            tag("dangling", "ImageStreamTag", "missing"),
        ]
    }
    assert follow_aliases("team", "app", tags, "stable") == "latest"
    with pytest.raises(AliasProblem, match="circular tag reference: x -> y -> x"):
        follow_aliases("team", "app", tags, "x")
    with pytest.raises(AliasProblem, match="'missing' does not exist"):
        follow_aliases("team", "app", tags, "dangling")
    # A tag that lives in status only ends a chain (LatestTaggedImage reads status).
    assert follow_aliases("team", "app", tags, "dangling", {"missing"}) == "missing"


def test_new_stream_imports_every_importable_tag() -> None:
    s = stream(tag("latest", "DockerImage", "nginx:1"), tag("ref", "DockerImage", "x:1", reference=True), tag("a"))
    assert tags_needing_resolution(s, requested=False) == ["latest"]


def test_imported_tag_is_not_imported_again_until_something_asks() -> None:
    s = stream(tag("latest", "DockerImage", "nginx:1"))
    s.status = next_status(s, {"latest": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=NOW)
    assert tags_needing_resolution(s, requested=False) == []
    assert tags_needing_resolution(s, requested=True) == ["latest"]
    assert tags_needing_resolution(s, requested=False, due=frozenset({"latest"})) == ["latest"]
    s.spec.tags = [tag("latest", "DockerImage", "nginx:2")]
    assert tags_needing_resolution(s, requested=False) == ["latest"]


def test_failed_import_is_retried_only_when_asked_or_due() -> None:
    s = stream(tag("latest", "DockerImage", "nginx:1"))
    s.status = next_status(s, {"latest": Failure("NotFound", "no such tag")}, now=NOW)
    assert tags_needing_resolution(s, requested=False) == []
    assert tags_needing_resolution(s, requested=False, due=frozenset({"latest"})) == ["latest"]


def test_next_status_records_import_and_follows_alias() -> None:
    s = stream(
        tag("latest", "DockerImage", "nginx:1"),
        tag("stable", "ImageStreamTag", "latest"),
        generation=3,
    )
    status = next_status(s, {"latest": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=NOW)
    by_tag = {t.tag: t for t in status.tags or []}
    assert by_tag["latest"].items == [event("nginx@" + DIGEST_A, DIGEST_A, 3)]
    assert by_tag["stable"].items == [event("nginx@" + DIGEST_A, DIGEST_A, 3)]
    assert by_tag["latest"].source is not None
    assert by_tag["latest"].source.spec_generation == 3


def test_failure_keeps_the_last_good_image() -> None:
    s = stream(tag("latest", "DockerImage", "nginx:1"))
    s.status = next_status(s, {"latest": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=NOW)
    status = next_status(s, {"latest": Failure("Unauthorized", "denied")}, now=LATER)
    entry = (status.tags or [])[0]
    assert entry.items == [event("nginx@" + DIGEST_A, DIGEST_A)]
    assert entry.conditions is not None
    assert (entry.conditions[0].reason, entry.conditions[0].status) == ("Unauthorized", "False")


def test_success_after_failure_clears_the_condition() -> None:
    s = stream(tag("latest", "DockerImage", "nginx:1"))
    s.status = next_status(s, {"latest": Failure("NotFound", "no such tag")}, now=NOW)
    status = next_status(s, {"latest": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=LATER)
    assert (status.tags or [])[0].conditions is None


def test_unchanged_digest_gives_an_identical_status() -> None:
    s = stream(tag("latest", "DockerImage", "nginx:1"), tag("stable", "ImageStreamTag", "latest"))
    s.status = next_status(s, {"latest": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=NOW)
    assert next_status(s, {"latest": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=LATER) == s.status


def test_unrelated_spec_change_rewrites_nothing() -> None:
    s = stream(tag("latest", "DockerImage", "nginx:1"), generation=1)
    s.status = next_status(s, {"latest": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=NOW)
    s.metadata["generation"] = 2
    s.spec.tags = [*(s.spec.tags or []), tag("ref", "DockerImage", "x:1", reference=True)]
    status = next_status(s, {}, now=LATER)
    by_tag = {t.tag: t for t in status.tags or []}
    assert by_tag["latest"] == {t.tag: t for t in s.status.tags or []}["latest"]
    assert by_tag["ref"].items == [event("x:1", "", 2, LATER)]


def test_new_image_prepends_history() -> None:
    s = stream(tag("latest", "DockerImage", "nginx:1"))
    s.status = next_status(s, {"latest": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=NOW)
    status = next_status(s, {"latest": Resolved("nginx@" + DIGEST_B, DIGEST_B)}, now=LATER)
    assert [e.image for e in (status.tags or [])[0].items or []] == [DIGEST_B, DIGEST_A]


def test_alias_cycle_and_missing_target_leave_no_status_and_are_reported_as_problems() -> None:
    """tagsChanged (openshift-apiserver registry/imagestream/strategy.go) skips an alias whose LatestTaggedImage is
    nil, with no error and no condition; the operator says why in a Warning Event (alias_problems)."""
    s = stream(
        tag("x", "ImageStreamTag", "y"),
        tag("y", "ImageStreamTag", "x"),
        tag("dangling", "ImageStreamTag", "missing"),
        tag("waiting", "ImageStreamTag", "pending"),
        tag("pending", "DockerImage", "nginx:1"),
    )
    status = next_status(s, {}, now=NOW)
    assert status.tags is None
    problems = alias_problems(s)
    assert set(problems) == {"x", "y", "dangling"}
    assert "circular tag reference: x -> y -> x" in problems["x"]
    assert "'missing' does not exist" in problems["dangling"]


def test_alias_of_target_without_an_image_yet_has_no_status_entry() -> None:
    """No ImportSuccess=False NotFound for an alias whose target is still importing: nothing failed."""
    s = stream(tag("latest", "ImageStreamTag", "1.0"), tag("1.0", "DockerImage", "nginx:1"))
    status = next_status(s, {"1.0": Failure("Unauthorized", "denied")}, now=NOW)
    assert [t.tag for t in status.tags or []] == ["1.0"]


def test_tag_never_imported_has_no_status_entry() -> None:
    """collapseEmptyStatusTags (openshift-apiserver registry/imagestream/strategy.go) drops entries with neither
    items nor conditions; a tag without `from` or still waiting for its first import has none."""
    s = stream(tag("pushed-only"), tag("a", "DockerImage", "nginx:1"), tag("b", "DockerImage", "nginx:2"))
    status = next_status(s, {"a": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=NOW)
    assert [t.tag for t in status.tags or []] == ["a"]


def test_removed_spec_tag_keeps_its_status_history() -> None:
    """OpenShift's PrepareForUpdate keeps status on a spec update, so a tag removed with apply or edit keeps its
    history (only deleting the ImageStreamTag removes both); the operator's source bookkeeping goes, so adding the
    tag again imports it again."""
    s = stream(tag("a", "DockerImage", "nginx:1"), tag("b", "DockerImage", "nginx:2"))
    s.status = next_status(
        s, {"a": Resolved("nginx@" + DIGEST_A, DIGEST_A), "b": Resolved("nginx@" + DIGEST_B, DIGEST_B)}, now=NOW
    )
    s.spec.tags = [tag("a", "DockerImage", "nginx:1")]
    s.status = next_status(s, {}, now=LATER)
    kept = {t.tag: t for t in s.status.tags or []}
    assert list(kept) == ["a", "b"]
    assert [item.image for item in kept["b"].items or []] == [DIGEST_B]
    assert kept["b"].source is None
    assert s.status.tags_summary == "a,b"
    s.spec.tags = [tag("a", "DockerImage", "nginx:1"), tag("b", "DockerImage", "nginx:2")]
    assert "b" in tags_needing_resolution(s, requested=False)


def test_alias_follows_a_tag_imported_through_the_repository() -> None:
    """LatestTaggedImage reads status, so an alias may name a tag that spec.dockerImageRepository imported."""
    s = stream(tag("stable", "ImageStreamTag", "v1"))
    s.spec.docker_image_repository = "127.0.0.1:5000/team/app"
    result = RepositoryResult(
        "127.0.0.1:5000/team/app", {"v1": Resolved("127.0.0.1:5000/team/app@" + DIGEST_A, DIGEST_A)}
    )
    s.status = next_status(s, {}, now=NOW, repository=result)
    entries = {t.tag: t for t in s.status.tags or []}
    assert [item.image for item in entries["stable"].items or []] == [DIGEST_A]
    assert entries["stable"].conditions is None
    assert alias_problems(s) == {}


def test_status_names_the_spec_repository_as_openshift_without_an_integrated_registry() -> None:
    """Strategy.dockerImageRepository: with no internal registry hostname, status.dockerImageRepository is
    spec.dockerImageRepository, written even when empty."""
    s = stream(tag("a", "DockerImage", "nginx:1"))
    assert next_status(s, {}, now=NOW).docker_image_repository == ""
    s.spec.docker_image_repository = "quay.io/team/app"
    assert next_status(s, {}, now=NOW).docker_image_repository == "quay.io/team/app"


def test_summary_lists_three_tags_with_images_then_counts_the_rest() -> None:
    names = ["e", "d", "c", "b", "a"]
    s = stream(*(tag(n, "DockerImage", f"x:{n}") for n in names), tag("none", "DockerImage", "x:none"))
    outcomes: dict[str, Resolved | Failure] = {n: Resolved(f"x@{DIGEST_A}", DIGEST_A) for n in names}
    outcomes["none"] = Failure("NotFound", "missing")
    status = next_status(s, outcomes, now=NOW)
    assert status.tags_summary == "a,b,c + 2 more..."
    assert status.updated == NOW


def test_repository_tags_skip_spec_tags_and_respect_the_limit() -> None:
    chosen, left = repository_tags_to_import(["latest", "2.0", "1.0", "dev", "old"], ["dev"], limit=3)
    assert (chosen, left) == (["latest", "2.0", "1.0"], ["old"])
    assert repository_tags_to_import(["a", "b"], [], limit=0) == (["a", "b"], [])


def test_repository_import_records_status_only_tags_and_what_was_left_out() -> None:
    s = stream()
    s.spec.docker_image_repository = "127.0.0.1:5000/team/app"
    assert repository_needs_import(s, requested=False)
    result = RepositoryResult(
        "127.0.0.1:5000/team/app",
        {"latest": Resolved("127.0.0.1:5000/team/app@" + DIGEST_A, DIGEST_A), "bad": Failure("NotFound", "x")},
        additional_tags=("old",),
    )
    s.status = next_status(s, {}, now=NOW, repository=result)
    assert [t.tag for t in s.status.tags or []] == ["latest"]  # a failed new tag leaves no empty entry
    assert s.status.repository_import is not None
    assert s.status.repository_import.additional_tags == ["old"]
    assert not repository_needs_import(s, requested=False)
    assert repository_needs_import(s, requested=True)
    # Status-only tags survive later passes that do not touch the repository.
    assert next_status(s, {}, now=LATER) == s.status


def test_success_with_the_same_image_after_a_failure_clears_the_condition() -> None:
    s = stream(tag("latest", "DockerImage", "nginx:1"))
    s.status = next_status(s, {"latest": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=NOW)
    s.status = next_status(s, {"latest": Failure("Timeout", "slow")}, now=LATER)
    assert (s.status.tags or [])[0].conditions
    status = next_status(s, {"latest": Resolved("nginx@" + DIGEST_A, DIGEST_A)}, now=LATER)
    entry = (status.tags or [])[0]
    assert entry.conditions is None
    assert [item.image for item in entry.items or []] == [DIGEST_A]


def test_one_updated_tag_is_named_with_its_reference() -> None:
    assert tags_updated_message([("latest", "reg/app@sha256:aa")], 1024) == "tag latest now points at reg/app@sha256:aa"


def test_updated_tags_of_one_pass_make_one_message_in_status_order() -> None:
    message = tags_updated_message([("v1", "reg/app@sha256:aa"), ("v2", "reg/app@sha256:bb")], 1024)
    assert message == "2 tags now point at new images: v1 at reg/app@sha256:aa; v2 at reg/app@sha256:bb"


def test_many_updated_tags_stay_within_the_limit_and_count_the_rest() -> None:
    updates = [(f"t{n}", f"registry.example/app@sha256:{n:064x}") for n in range(1000)]
    message = tags_updated_message(updates, 1024)
    assert len(message) <= 1024
    assert message.startswith("1000 tags now point at new images: t0 at registry.example/app@sha256:")
    named = message.count(" at registry.example/")
    assert 1 <= named < 1000
    assert message.endswith(f"; and {1000 - named} more")
    # Every tag named is named whole, in order.
    assert f"t{named - 1} at registry.example/app@sha256:{named - 1:064x}; and" in message


def test_a_limit_too_small_for_any_tag_still_counts_them_all() -> None:
    assert tags_updated_message([("a", "x" * 50), ("b", "y" * 50)], 60) == "2 tags now point at new images"

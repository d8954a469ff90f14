"""OpenShift's write-time rules for image streams (core/streamwrite.py), row by row.

The generation rows follow the table of openshift-apiserver's ImageStream strategy (strategy.go: PrepareForCreate,
prepareForUpdate = updateSpecTagGenerationsForUpdate + ensureSpecTagGenerationsAreSet, tagRefChanged), with M the
stored metadata.generation and g the tag's stored generation. Each row also asks the operator's own question: does
the write change the tag's source fingerprint (core/tags.py), which is what makes the operator import?
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestreams.api.imagestream import TagReference
from imagestreams.core.streamwrite import (
    FieldError,
    SourceCheck,
    invalid_message,
    pull_spec_errors,
    pull_spec_problem,
    refused_source,
    source_checks,
    stream_write,
    tag_ref_changed,
)
from imagestreams.core.tags import source_fingerprint

M, G = 5, 3  # stored metadata.generation, stored tag generation
DEFAULTS = {"referencePolicy": {"type": "Source"}, "importPolicy": {"importMode": "Legacy"}}


def docker(name: str, source: str = "quay.io/org/app:1", **extra: Any) -> dict[str, Any]:
    return {"name": name, "from": {"kind": "DockerImage", "name": source}, **extra}


def stored_tag(name: str = "latest", source: str = "quay.io/org/app:1", **extra: Any) -> dict[str, Any]:
    """A tag as the webhook stores it: a generation and both defaults."""
    return docker(name, source, generation=G, **{**copy.deepcopy(DEFAULTS), **extra})


def body(tags: list[Any] | None, generation: int = M, namespace: str = "team", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "app", "namespace": namespace, "generation": generation},
        "spec": {**spec, **({"tags": tags} if tags is not None else {})},
    }


def apply_patch(document: dict[str, Any], operations: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """RFC 6902 `add` (which replaces an existing member) and `remove` on object members and list indexes."""
    result = copy.deepcopy(document)
    for operation in operations:
        *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]]
        target: Any = result
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if operation["op"] == "add":
            target[last] = operation["value"]
        else:
            assert operation["op"] == "remove"
            del target[last]
    return result


def final_tag(old: dict[str, Any] | None, new: dict[str, Any], name: str = "latest") -> tuple[int, dict[str, Any]]:
    """The predicted metadata.generation and the tag `name` after the webhook's patch."""
    write = stream_write(old, new)
    patched = apply_patch(new, write.patch)
    return write.generation, next(tag for tag in patched["spec"]["tags"] if tag["name"] == name)


def fingerprint(tag: dict[str, Any]) -> str:
    return source_fingerprint(TagReference.model_validate(tag))


# --- PrepareForCreate ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [None, 0, 7], ids=["no generation", "generation 0", "generation 7"])
def test_create_gives_every_tag_generation_1_whatever_was_sent(sent: int | None) -> None:
    # PrepareForCreate: stream.Generation = 1; every spec tag's generation = &stream.Generation.
    tag = docker("latest") if sent is None else docker("latest", generation=sent)
    write = stream_write(None, body([tag, docker("v1", "quay.io/org/app:v1")]))
    patched = apply_patch(body([tag, docker("v1", "quay.io/org/app:v1")]), write.patch)
    assert write.generation == 1
    assert [t["generation"] for t in patched["spec"]["tags"]] == [1, 1]
    assert write.renumbered == ("latest", "v1")


def test_create_without_tags_patches_nothing() -> None:
    assert stream_write(None, body(None)).patch == ()
    assert stream_write(None, body([])).generation == 1


# --- prepareForUpdate: the rows of the generation table --------------------------------------------------------

# (row, stored tag, sent tag, other spec fields sent, metadata.generation after, tag generation after, renumbered)
UPDATE_ROWS: list[tuple[str, dict[str, Any] | None, dict[str, Any], dict[str, Any], int, int | None, bool]] = [
    # ensureSpecTagGenerationsAreSet: a tag not in the old spec gets the new metadata.generation; the client's value
    # is ignored.
    ("new tag, no generation", None, docker("latest"), {}, M + 1, M + 1, True),
    ("new tag, generation 0", None, docker("latest", generation=0), {}, M + 1, M + 1, True),
    ("new tag, generation 99", None, docker("latest", generation=99), {}, M + 1, M + 1, True),
    # updateSpecTagGenerationsForUpdate: an existing tag keeps its stored generation when nil is sent; nothing
    # changed, so no bump (prepareForUpdate's Semantic.DeepEqual of the specs).
    ("present, nil, unchanged", stored_tag(), docker("latest"), {}, M, G, False),
    # ... and another spec field changing bumps metadata.generation but not the tag's.
    (
        "present, nil, other field changed",
        stored_tag(),
        docker("latest"),
        {"lookupPolicy": {"local": True}},
        M + 1,
        G,
        False,
    ),
    # tagRefChanged: from.name, from.namespace, reference and importMode each count as a change.
    ("present, nil, from.name changed", stored_tag(), docker("latest", "quay.io/org/app:2"), {}, M + 1, M + 1, True),
    (
        "present, nil, from.namespace changed",
        stored_tag(),
        {"name": "latest", "from": {"kind": "DockerImage", "name": "quay.io/org/app:1", "namespace": "other"}},
        {},
        M + 1,
        M + 1,
        True,
    ),
    ("present, nil, reference changed", stored_tag(), docker("latest", reference=True), {}, M + 1, M + 1, True),
    (
        "present, nil, importMode changed",
        stored_tag(),
        docker("latest", importPolicy={"importMode": "PreserveOriginal"}),
        {},
        M + 1,
        M + 1,
        True,
    ),
    # The same generation as stored: as the nil row.
    ("present, same generation, unchanged", stored_tag(), docker("latest", generation=G), {}, M, G, False),
    # Another non-zero generation is replaced by the stored one first, so it is no change.
    ("present, other generation, unchanged", stored_tag(), docker("latest", generation=G + 40), {}, M, G, False),
    (
        "present, other generation, from changed",
        stored_tag(),
        docker("latest", "quay.io/org/app:2", generation=9),
        {},
        M + 1,
        M + 1,
        True,
    ),
    # Generation 0 is kept by updateSpecTagGenerationsForUpdate, differs from g (a spec change, so a bump), and
    # tagRefGenerationChanged makes ensure renumber the tag: the forced re-import `oc tag` relies on.
    ("present, 0, unchanged", stored_tag(), docker("latest", generation=0), {}, M + 1, M + 1, True),
    (
        "present, 0, from changed",
        stored_tag(),
        docker("latest", "quay.io/org/app:2", generation=0),
        {},
        M + 1,
        M + 1,
        True,
    ),
    # Changes tagRefChanged does not look at: scheduled, insecure, referencePolicy, annotations, from.kind. The spec
    # changed (bump), the tag keeps its generation.
    (
        "present, nil, scheduled changed",
        stored_tag(),
        docker("latest", importPolicy={"scheduled": True}),
        {},
        M + 1,
        G,
        False,
    ),
    (
        "present, nil, referencePolicy changed",
        stored_tag(),
        docker("latest", referencePolicy={"type": "Local"}),
        {},
        M + 1,
        G,
        False,
    ),
    (
        "present, nil, from.kind changed",
        stored_tag(),
        {"name": "latest", "from": {"kind": "ImageStreamTag", "name": "quay.io/org/app:1"}},
        {},
        M + 1,
        G,
        False,
    ),
]


@pytest.mark.parametrize(
    ("stored", "sent", "spec", "generation", "tag_generation", "renumbered"),
    [row[1:] for row in UPDATE_ROWS],
    ids=[row[0] for row in UPDATE_ROWS],
)
def test_update_generations_follow_openshift(
    stored: dict[str, Any] | None,
    sent: dict[str, Any],
    spec: dict[str, Any],
    generation: int,
    tag_generation: int | None,
    renumbered: bool,
) -> None:
    other = stored_tag("other", "quay.io/org/other:1")
    old = body([other, *([stored] if stored else [])])
    generation_after, tag = final_tag(old, body([copy.deepcopy(other), sent], **spec))
    assert generation_after == generation
    assert tag.get("generation") == tag_generation
    assert (stream_write(old, body([copy.deepcopy(other), sent], **spec)).renumbered == ("latest",)) is renumbered


@pytest.mark.parametrize(
    ("stored", "sent", "spec", "generation", "tag_generation", "renumbered"),
    [row[1:] for row in UPDATE_ROWS if row[1] is not None and "from.kind" not in row[0]],
    ids=[row[0] for row in UPDATE_ROWS if row[1] is not None and "from.kind" not in row[0]],
)
def test_the_operator_imports_exactly_the_renumbered_tags(
    stored: dict[str, Any],
    sent: dict[str, Any],
    spec: dict[str, Any],
    generation: int,
    tag_generation: int | None,
    renumbered: bool,
) -> None:
    # The operator imports a tag when its source fingerprint (from, reference, importMode, generation) changes
    # (core/tags.py tags_needing_resolution). With the webhook's generations that is exactly when OpenShift's
    # tagNeedsImport would import: when the tag was renumbered. (A from.kind change is the one exception, left out
    # here: the operator resolves the new kind of source, where OpenShift does nothing.)
    _, tag = final_tag(body([stored]), body([sent], **spec))
    assert (fingerprint(tag) != fingerprint(stored)) is renumbered


def test_a_repeated_generation_0_write_renumbers_every_time() -> None:
    # `oc tag SOURCE app:latest` twice: each write sends generation 0, each gets a new generation (and an import).
    first_generation, first = final_tag(body([stored_tag()]), body([docker("latest", generation=0)]))
    after_first = body([first], generation=first_generation)
    second_generation, second = final_tag(after_first, body([docker("latest", generation=0)], generation=0))
    assert (first["generation"], second["generation"]) == (M + 1, M + 2)
    assert second_generation == M + 2
    assert fingerprint(first) != fingerprint(second)


def test_a_reapplied_manifest_changes_nothing() -> None:
    # What a GitOps tool sends again: the manifest without generations and defaults. The stored ones come back,
    # so the final body equals the stored one and the API server neither bumps nor writes.
    stored = body([stored_tag(), stored_tag("v1", "quay.io/org/app:v1")])
    manifest = body([docker("latest"), docker("v1", "quay.io/org/app:v1")])
    write = stream_write(stored, manifest)
    assert write.generation == M
    assert write.renumbered == ()
    assert apply_patch(manifest, write.patch)["spec"] == stored["spec"]


def test_the_api_server_generation_sent_by_a_client_is_not_the_one_predicted() -> None:
    # A PUT may carry any metadata.generation; the API server keeps the stored one (rest.BeforeUpdate), so the
    # prediction starts from the old object.
    new = body([docker("latest", "quay.io/org/app:2")], generation=1)
    _, tag = final_tag(body([stored_tag()]), new)
    assert tag["generation"] == M + 1


def test_reordering_tags_bumps_metadata_generation_but_renumbers_nothing() -> None:
    # OpenShift keeps tags in a map (order is no change); a CRD list is compared in order, so the API server bumps.
    first, second = stored_tag("a"), stored_tag("b", "quay.io/org/b:1")
    write = stream_write(body([first, second]), body([copy.deepcopy(second), copy.deepcopy(first)]))
    assert (write.generation, write.renumbered, write.patch) == (M + 1, (), ())


def test_metadata_only_changes_keep_the_generation() -> None:
    new = body([stored_tag()])
    new["metadata"]["labels"] = {"team": "a"}
    assert stream_write(body([stored_tag()]), new).generation == M


# --- tags stored before the webhook (the module's rule) --------------------------------------------------------


def test_a_legacy_tag_without_generation_keeps_none_when_the_write_does_not_change_it() -> None:
    # OpenShift's ensure would set it (without a bump, as "legacy objects"); on a CRD setting it is a spec change,
    # a bump and a new fingerprint, so an unchanged legacy tag stays as stored.
    legacy = docker("latest")
    generation, tag = final_tag(body([legacy]), body([docker("latest", generation=12)]))
    assert (generation, "generation" in tag) == (M, False)
    generation, tag = final_tag(body([legacy]), body([docker("latest")], lookupPolicy={"local": True}))
    assert (generation, "generation" in tag, fingerprint(tag) == fingerprint(legacy)) == (M + 1, False, True)


def test_a_legacy_tag_gets_a_generation_and_defaults_when_it_changes() -> None:
    generation, tag = final_tag(body([docker("latest")]), body([docker("latest", "quay.io/org/app:2")]))
    assert (generation, tag["generation"]) == (M + 1, M + 1)
    assert tag["referencePolicy"] == {"type": "Source"} and tag["importPolicy"] == {"importMode": "Legacy"}


def test_a_legacy_tag_stored_with_generation_0_is_renumbered_only_when_0_is_sent_again() -> None:
    legacy = docker("latest", generation=0)
    assert final_tag(body([legacy]), body([docker("latest")]))[1]["generation"] == 0
    assert final_tag(body([legacy]), body([docker("latest", generation=0)]))[1]["generation"] == M + 1


def test_a_legacy_explicit_null_generation_is_kept_as_stored() -> None:
    legacy = docker("latest", generation=None)
    write = stream_write(body([legacy]), body([docker("latest")]))
    assert write.generation == M
    assert apply_patch(body([docker("latest")]), write.patch)["spec"]["tags"][0] == legacy


# --- defaults: SetDefaults_TagReferencePolicy, SetDefaults_TagImportPolicy -------------------------------------


@pytest.mark.parametrize(
    ("sent", "reference_policy", "import_policy"),
    [
        (docker("latest"), {"type": "Source"}, {"importMode": "Legacy"}),
        (
            docker("latest", referencePolicy={"type": ""}, importPolicy={"importMode": "", "scheduled": True}),
            {"type": "Source"},
            {"importMode": "Legacy", "scheduled": True},
        ),
        (
            docker("latest", referencePolicy=None, importPolicy=None),
            {"type": "Source"},
            {"importMode": "Legacy"},
        ),
        (
            docker("latest", referencePolicy={"type": "Local"}, importPolicy={"importMode": "PreserveOriginal"}),
            {"type": "Local"},
            {"importMode": "PreserveOriginal"},
        ),
    ],
    ids=["absent", "empty", "null", "set"],
)
def test_new_tags_get_openshifts_defaults(
    sent: dict[str, Any], reference_policy: dict[str, Any], import_policy: dict[str, Any]
) -> None:
    _, tag = final_tag(None, body([sent]))
    assert (tag["referencePolicy"], tag["importPolicy"]) == (reference_policy, import_policy)


def test_defaults_a_client_leaves_out_are_written_back_where_stored() -> None:
    generation, tag = final_tag(body([stored_tag()]), body([docker("latest", importPolicy={"insecure": True})]))
    assert tag["referencePolicy"] == {"type": "Source"}
    assert tag["importPolicy"] == {"insecure": True, "importMode": "Legacy"}
    assert generation == M + 1  # insecure changed


def test_a_stored_non_default_policy_left_out_becomes_the_default() -> None:
    stored = stored_tag(referencePolicy={"type": "Local"})
    generation, tag = final_tag(body([stored]), body([docker("latest")]))
    assert (tag["referencePolicy"], tag["generation"], generation) == ({"type": "Source"}, G, M + 1)


def test_legacy_tags_without_defaults_are_not_given_them_by_a_write_that_leaves_them_alone() -> None:
    write = stream_write(body([docker("latest")]), body([docker("latest")]))
    assert (write.patch, write.generation) == ((), M)


def test_a_stored_empty_import_mode_equals_legacy() -> None:
    # Both sides are defaulted before tagRefChanged compares them.
    assert not tag_ref_changed(docker("a", importPolicy={"importMode": ""}), docker("a", **DEFAULTS), "team")
    assert not tag_ref_changed(docker("a"), docker("a", importPolicy={"importMode": "Legacy"}), "team")


# --- tagRefChanged ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        (docker("a"), {"name": "a"}, False),  # next.From == nil
        (docker("a"), {"name": "a", "from": {}}, False),  # neither kind nor name
        ({"name": "a"}, docker("a"), True),  # gaining a source
        (
            docker("a"),
            {"name": "a", "from": {"kind": "DockerImage", "name": "quay.io/org/app:1", "namespace": "team"}},
            False,
        ),  # the stream's own namespace written out
        (docker("a", generation=3), docker("a", generation=0), True),
        (docker("a"), docker("a", generation=0), False),  # no stored generation: tagRefGenerationChanged is false
        (docker("a", generation=0), docker("a", generation=0), False),
        (docker("a", generation=3), docker("a", generation=4), False),
    ],
)
def test_tag_ref_changed(old: dict[str, Any], new: dict[str, Any], changed: bool) -> None:
    assert tag_ref_changed(old, new, "team") is changed


# --- patches the API server can apply --------------------------------------------------------------------------


def test_the_patch_edits_only_tags_and_leaves_malformed_entries_alone() -> None:
    new = body(["not-a-tag", docker("latest")], lookupPolicy={"local": True})
    write = stream_write(None, new)
    assert {operation["path"].split("/")[3] for operation in write.patch} == {"1"}
    patched = apply_patch(new, write.patch)
    assert patched["spec"]["tags"][0] == "not-a-tag"
    assert patched["spec"]["lookupPolicy"] == {"local": True}


def test_a_sent_generation_is_replaced_and_an_unwanted_one_removed() -> None:
    write = stream_write(body([docker("latest")]), body([docker("latest", generation=4)]))
    assert write.patch == ({"op": "remove", "path": "/spec/tags/0/generation"},)
    write = stream_write(body([stored_tag()]), body([docker("latest", generation=True, **DEFAULTS)]))
    assert write.patch == ({"op": "add", "path": "/spec/tags/0/generation", "value": G},)


# The API server calls the mutating webhook before it validates a custom resource against its schema, so the webhook
# sees whatever a client sent: any JSON where a tag should be.
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 9), st.sampled_from(["", "Local", "x:1", "a:b:c"]))
FIELD = st.sampled_from(
    ["name", "from", "generation", "reference", "referencePolicy", "importPolicy", "kind", "namespace", "type"]
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELD, inner, max_size=4))
TAGS = st.lists(st.one_of(st.dictionaries(FIELD, JSON, max_size=6), SCALARS), max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    old=st.one_of(st.none(), TAGS), new=TAGS, generation=st.one_of(st.none(), st.integers(0, 5), st.text(max_size=2))
)
def test_any_json_gets_a_patch_that_applies_and_never_an_exception(
    old: list[Any] | None, new: list[Any], generation: object
) -> None:
    old_body = None if old is None else {**body(old), "metadata": {"name": "app", "generation": generation}}
    write = stream_write(old_body, body(new))
    patched = apply_patch(body(new), write.patch)
    stored = generation if isinstance(generation, int) and not isinstance(generation, bool) and generation else 1
    assert write.generation == 1 if old_body is None else write.generation in (stored, stored + 1)
    source_checks(old_body, patched)


# --- TagVerifier -------------------------------------------------------------------------------------------------


def source(name: str, kind: str, reference: str, namespace: str | None = "base", **extra: Any) -> dict[str, Any]:
    origin: dict[str, Any] = {"kind": kind, "name": reference}
    if namespace is not None:
        origin["namespace"] = namespace
    return {"name": name, "from": origin, **extra}


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (source("a", "ImageStreamTag", "python:3.12"), [SourceCheck("base", "python", ("a",))]),
        (source("a", "ImageStreamTag", "3.12"), [SourceCheck("base", "app", ("a",))]),  # this stream's own name
        (source("a", "ImageStreamImage", "python@sha256:abc"), [SourceCheck("base", "python", ("a",))]),
        (source("a", "ImageStreamImage", "sha256:abc"), [SourceCheck("base", "app", ("a",))]),
        (source("a", "ImageStreamTag", "python:3.12", namespace="team"), []),  # the stream's own namespace
        (source("a", "ImageStreamTag", "python:3.12", namespace=""), []),
        (source("a", "ImageStreamTag", "python:3.12", namespace=None), []),
        ({"name": "a"}, []),
    ],
)
def test_which_sources_are_checked_on_create(tag: dict[str, Any], expected: list[SourceCheck]) -> None:
    checks, invalid = source_checks(None, body([tag]))
    assert (list(checks), invalid) == (expected, ())


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (source("a", "DockerImage", "quay.io/org/app:1"), "quay.io/org/app:1"),  # parseFromReference: no such kind
        (source("a", "ImageStreamTag", "python:3:12"), "python:3:12"),  # more than one separator
        (source("a", "ImageStreamImage", "a@b@c"), "a@b@c"),
    ],
)
def test_sources_parse_from_reference_refuses_are_invalid(tag: dict[str, Any], value: str) -> None:
    checks, invalid = source_checks(None, body([tag]))
    assert checks == ()
    assert invalid == (
        FieldError(
            f'spec.tags[a].from.name: Invalid value: "{value}": '
            "must be of the form <tag>, <repo>:<tag>, <id>, or <repo>@<id>"
        ),
    )


def test_one_review_per_stream_names_every_tag() -> None:
    tags = [
        source("a", "ImageStreamTag", "python:3.12"),
        source("b", "ImageStreamTag", "python:3.13"),
        source("c", "ImageStreamTag", "node:22"),
    ]
    checks, _ = source_checks(None, body(tags))
    assert checks == (SourceCheck("base", "python", ("a", "b")), SourceCheck("base", "node", ("c",)))


@pytest.mark.parametrize(
    ("stored", "sent", "checked"),
    [
        # Unchanged, or changed only where tagRefChanged does not look: not checked again.
        (
            source("a", "ImageStreamTag", "python:3.12", generation=3),
            source("a", "ImageStreamTag", "python:3.12", generation=3),
            False,
        ),
        (
            source("a", "ImageStreamTag", "python:3.12", generation=3),
            source("a", "ImageStreamTag", "python:3.12", generation=3, importPolicy={"importMode": "Legacy"}),
            False,
        ),
        # A generation reset alone is not checked (the mutated body carries the new generation, not 0).
        (
            source("a", "ImageStreamTag", "python:3.12", generation=3),
            source("a", "ImageStreamTag", "python:3.12", generation=6),
            False,
        ),
        # A new source is.
        (
            source("a", "ImageStreamTag", "python:3.12", generation=3),
            source("a", "ImageStreamTag", "python:3.13", generation=6),
            True,
        ),
        (
            source("a", "ImageStreamTag", "python:3.12", namespace="team", generation=3),
            source("a", "ImageStreamTag", "python:3.12", generation=6),
            True,
        ),
        (None, source("a", "ImageStreamTag", "python:3.12", generation=6), True),
    ],
)
def test_which_sources_are_checked_on_update(
    stored: dict[str, Any] | None, sent: dict[str, Any], checked: bool
) -> None:
    checks, _ = source_checks(body([stored] if stored else []), body([sent]))
    assert bool(checks) is checked


def test_the_refusal_reads_as_openshifts() -> None:
    check = SourceCheck("base", "python", ("a", "b"))
    errors = refused_source(check)
    assert errors == [
        FieldError('spec.tags[a].from: Forbidden: base/python: "" ""'),
        FieldError('spec.tags[b].from: Forbidden: base/python: "" ""'),
    ]
    assert invalid_message("app", errors[:1]) == (
        'ImageStream.image.openshift.io "app" is invalid: : Internal error: imagestreams "app" is invalid: '
        'spec.tags[a].from: Forbidden: base/python: "" ""'
    )
    assert invalid_message("app", errors).endswith(
        'is invalid: [spec.tags[a].from: Forbidden: base/python: "" "", '
        'spec.tags[b].from: Forbidden: base/python: "" ""]'
    )


def test_a_review_that_could_not_be_made_is_a_refusal_that_says_why() -> None:
    (error,) = refused_source(SourceCheck("base", "python", ("a",)), error="connection refused")
    assert error.text == 'spec.tags[a].from: Forbidden: base/python: "" ""- connection refused'
    (error,) = refused_source(SourceCheck("base", "python", ("a",)), reason="no", evaluation_error='say "why"')
    assert error.text == 'spec.tags[a].from: Forbidden: base/python: "no" "say \\"why\\""'


# library-go pkg/image/reference.Parse (internal/reference ReferenceRegexp, ParseNamed, internal/digest ParseDigest),
# as ValidateImageStreamTagReference applies it to DockerImage sources.
@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("nginx", None),
        ("docker.io/library/nginx:1.25", None),
        ("127.0.0.1:5000/team/app@sha256:" + "a" * 64, None),
        ("quay.io/team/app:v1@sha256:" + "A" * 64, None),  # go-digest accepts upper-case hex
        ("registry:5000/app", None),
        ("Team/App", "repository name must be lowercase"),
        ("a b", "invalid reference format"),
        ("[::1]:5000/app", "invalid reference format"),  # the grammar predates IPv6 hosts
        ("app:" + "t" * 129, "invalid reference format"),  # tags are at most 128 characters
        ("app@sha256:abc", "invalid checksum digest length"),
        ("app@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("app@sha256:xyz", "invalid checksum digest format"),
        ("a/" * 127 + "ab", "repository name must not be more than 255 characters"),
    ],
)
def test_pull_spec_problem_follows_library_go(spec: str, problem: str | None) -> None:
    assert pull_spec_problem(spec) == problem


def test_only_docker_image_sources_are_parsed_as_pull_specs() -> None:
    stream = {
        "metadata": {"name": "app", "namespace": "ns"},
        "spec": {
            "tags": [
                {"name": "a", "from": {"kind": "DockerImage", "name": "Bad"}},
                {"name": "b", "from": {"kind": "ImageStreamTag", "name": "Bad:Tag"}},
                {"name": "c", "from": {"kind": "DockerImage", "name": ""}},  # from.name required: the CRD says so
            ]
        },
    }
    assert [error.text for error in pull_spec_errors(stream)] == [
        'spec.tags[a].from.name: Invalid value: "Bad": repository name must be lowercase'
    ]

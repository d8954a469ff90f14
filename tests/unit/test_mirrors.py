"""Registry mirrors (core/mirrors.py): merging the sets, finding the scope of an image, and the places to try.

Each table names the function of OpenShift's stack whose rule it checks:
- openshift/runtime-utils pkg/registries: `mergedMirrorSets`/`mergedMirrors`/`topoGraph.Sorted`, `addMirrorSet`,
  `EditRegistriesConfig`; the merge cases are its `mergedMirrorsetsTestcases`;
- containers/image pkg/sysregistriesv2: `findRegistryWithParsedConfig`, `refMatchingPrefix`,
  `refMatchingSubdomainPrefix`, `Registry.PullSourcesFromReference`, `Endpoint.rewriteReference`; docker/
  docker_client.go `newDockerClient` (a blocked registry is refused);
- openshift-apiserver pkg/image/apiserver/importer: `findRegistryConfiguration`/`isSubrepo`, `getManifest`, and the
  cases of `TestImportFromMirror`.
"""

from __future__ import annotations

from typing import Any

import pytest

from imagestreams.api.mirrorsets import (
    DIGEST_MIRROR_SETS,
    TAG_MIRROR_SETS,
    ImageDigestMirrorSet,
    ImageTagMirrorSet,
)
from imagestreams.controller.importer import MirrorSets, describe_mirrors, plan_failure
from imagestreams.core.mirrors import (
    Lookup,
    Mirror,
    MirrorConfig,
    MirrorEntry,
    Place,
    Plan,
    Scope,
    entries_of_digest_sets,
    entries_of_tag_sets,
    merged_mirror_sets,
    mirror_config,
    topological_order,
)
from imagestreams.core.references import parse_reference
from imagestreams.core.tags import Failure

DIGEST = "sha256:" + "a" * 64
E = MirrorEntry

# runtime-utils registries_test.go mergedMirrorsetsTestcases: (name, entries, expected (source, mirrors, never)).
MERGE_CASES: list[tuple[str, list[MirrorEntry], list[tuple[str, tuple[str, ...], bool]]]] = [
    ("Empty", [], []),
    ("Irrelevant singletons", [E("a.example.com", ()), E("b.example.com", ())], []),
    (
        "Separate mirror sets (sorted by source, each list's order kept)",
        [
            E("source.example.net", ("z1.example.net", "y2.example.net", "x3.example.net")),
            E("source.example.com", ("z1.example.com", "y2.example.com", "x3.example.com")),
        ],
        [
            ("source.example.com", ("z1.example.com", "y2.example.com", "x3.example.com"), False),
            ("source.example.net", ("z1.example.net", "y2.example.net", "x3.example.net"), False),
        ],
    ),
    (
        "Separate mirror sets with mirrorSourcePolicy set",
        [
            E("source.example.net", ("z1.example.net", "y2.example.net", "x3.example.net"), never_contact_source=True),
            E("source.example.com", ("z1.example.com", "y2.example.com", "x3.example.com")),
        ],
        [
            ("source.example.com", ("z1.example.com", "y2.example.com", "x3.example.com"), False),
            ("source.example.net", ("z1.example.net", "y2.example.net", "x3.example.net"), True),
        ],
    ),
    (
        "Sets with a shared element - strict order",
        [
            E("source.example.net", ("z1.example.net", "y2.example.net")),
            E("source.example.com", ("z1.example.com", "y2.example.com")),
            E("source.example.net", ("y2.example.net", "x3.example.net")),
            E("source.example.com", ("y2.example.com", "x3.example.com")),
        ],
        [
            ("source.example.com", ("z1.example.com", "y2.example.com", "x3.example.com"), False),
            ("source.example.net", ("z1.example.net", "y2.example.net", "x3.example.net"), False),
        ],
    ),
    (
        "Source included in mirrors (kept where the merged order puts it)",
        [
            E("source.example.com", ("z1.example.com", "source.example.com", "y2.example.com")),
            E("source.example.com", ("source.example.com", "y2.example.com", "x3.example.com")),
        ],
        [("source.example.com", ("z1.example.com", "source.example.com", "y2.example.com", "x3.example.com"), False)],
    ),
    (
        "Mirrors includes only source (ignored, policy included: addMirrorSet)",
        [
            E("source.example.com", ("source.example.com",), never_contact_source=True),
            E("source.example.net", ("source.example.net", "source.example.net")),
        ],
        [],
    ),
    (
        "Example: vendor and admin sets, one in conflicting order",
        [
            E("source.vendor.com", ("registry2.vendor.com",)),
            E("source.vendor2.com", ("registry1.vendor2.com", "registry2.vendor2.com")),
            E("source.vendor.com", ("local-mirror.example.com",)),
            E("source.vendor2.com", ("local-mirror2.example.com", "registry2.vendor2.com", "registry1.vendor2.com")),
        ],
        [
            ("source.vendor.com", ("local-mirror.example.com", "registry2.vendor.com"), False),
            (
                "source.vendor2.com",
                ("local-mirror2.example.com", "registry1.vendor2.com", "registry2.vendor2.com"),
                False,
            ),
        ],
    ),
]


@pytest.mark.parametrize(("name", "entries", "expected"), MERGE_CASES, ids=[case[0] for case in MERGE_CASES])
def test_merging_follows_runtime_utils_merged_mirror_sets(
    name: str, entries: list[MirrorEntry], expected: list[tuple[str, tuple[str, ...], bool]]
) -> None:
    assert merged_mirror_sets(entries) == expected


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        # topoGraph.Sorted: free nodes in name order, successors as they are freed.
        ([("z", "y"), ("y", "x")], ["z", "y", "x"]),
        ([("b", "s"), ("a", "s")], ["a", "b", "s"]),
        # A loop (a, b vs b, a) is broken with the first unused node in name order.
        ([("a", "b"), ("b", "a"), ("b", "s"), ("a", "s")], ["a", "b", "s"]),
        ([("b", "a"), ("a", "b"), ("b", "s"), ("a", "s")], ["a", "b", "s"]),
    ],
)
def test_topological_order_follows_topo_graph_sorted(edges: list[tuple[str, str]], expected: list[str]) -> None:
    assert topological_order(edges) == expected


def test_one_scope_per_source_digest_mirrors_first_blocked_by_either_kind() -> None:
    """EditRegistriesConfig: addMirrorsToRegistries(digest sets, digest-only), then (tag sets, tag-only) into the same
    registry entry; NeverContactSource of either kind sets Blocked on it."""
    config = mirror_config(
        [E("quay.io/team", ("digest.mirror/team",)), E("registry.io", ("d.mirror",), never_contact_source=True)],
        [E("quay.io/team", ("tag.mirror/team",), never_contact_source=True), E("docker.io", ("hub.mirror",))],
    )
    assert config.scopes == (
        Scope("docker.io", (Mirror("hub.mirror", Lookup.TAG),)),
        Scope(
            "quay.io/team",
            (Mirror("digest.mirror/team", Lookup.DIGEST), Mirror("tag.mirror/team", Lookup.TAG)),
            blocked=True,
        ),
        Scope("registry.io", (Mirror("d.mirror", Lookup.DIGEST),), blocked=True),
    )


SCOPES = MirrorConfig(
    tuple(
        Scope(source, (Mirror("m.local", Lookup.TAG),))
        for source in sorted(
            ["quay.io", "quay.io/team", "quay.io/team/app", "example.com", "*.example.com", "docker.io/library"]
        )
    )
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # findRegistryWithParsedConfig: the longest matching source.
        ("quay.io/team/app", "quay.io/team/app"),
        ("quay.io/team/app/sub", "quay.io/team/app"),
        ("quay.io/team/other", "quay.io/team"),
        ("quay.io/else", "quay.io"),
        # isSubrepo: a source matches at a "/" boundary only.
        ("quay.io/teamx/app", "quay.io"),
        ("quay.iox/app", None),
        # refMatchingPrefix would let example.com match example.com:5000 ("DON'T RELY"); isSubrepo does not.
        ("example.com:5000/app", None),
        ("example.com/app", "example.com"),
        # refMatchingSubdomainPrefix: *.example.com matches hosts under it, not example.com itself.
        ("a.example.com/app", "*.example.com"),
        ("a.b.example.com/app", "*.example.com"),
        ("example.com.evil/app", None),
        # A port would stay in the rewritten reference and break it: no wildcard match.
        ("a.example.com:5000/app", None),
        # Names are normalized first: busybox is docker.io/library/busybox (reference.ParseNormalizedNamed).
        ("docker.io/library/busybox", "docker.io/library"),
        ("docker.io/team/app", None),
    ],
)
def test_the_longest_matching_source_applies(name: str, expected: str | None) -> None:
    scope = SCOPES.scope_for(name)
    assert (scope.source if scope else None) == expected


def test_a_tie_goes_to_the_source_that_sorts_first() -> None:
    """Equal lengths: registries.conf entries are sorted by prefix and findRegistryWithParsedConfig replaces the best
    only with a longer one, so `*.b.io` (sorting before letters) wins over `x.b.io`, which is as long."""
    config = mirror_config([], [E("x.b.io", ("one.mirror",)), E("*.b.io", ("two.mirror",))])
    scope = config.scope_for("x.b.io/app")
    assert scope is not None and scope.source == "*.b.io"


def places(plan: Plan) -> list[tuple[str, str | None]]:
    return [(place.reference.exact(), place.mirror) for place in plan.places]


BOTH = mirror_config(
    [E("source.io/team", ("digest1.mirror/copies", "digest2.mirror"))],
    [E("source.io/team", ("tag1.mirror/copies",))],
)


@pytest.mark.parametrize(
    ("config", "reference", "expected"),
    [
        pytest.param(
            BOTH,
            "source.io/team/app:v1",
            [("tag1.mirror/copies/app:v1", "tag1.mirror/copies"), ("source.io/team/app:v1", None)],
            id="a tag lookup: tag mirrors, then the source (PullSourcesFromReference, MirrorByTagOnly)",
        ),
        pytest.param(
            BOTH,
            f"source.io/team/app@{DIGEST}",
            [
                (f"digest1.mirror/copies/app@{DIGEST}", "digest1.mirror/copies"),
                (f"digest2.mirror/app@{DIGEST}", "digest2.mirror"),
                (f"source.io/team/app@{DIGEST}", None),
            ],
            id="a digest lookup: digest mirrors in order, then the source (MirrorByDigestOnly)",
        ),
        pytest.param(
            BOTH,
            "other.io/app:v1",
            [("other.io/app:v1", None)],
            id="no set matches: the source alone",
        ),
        pytest.param(
            mirror_config([E("quay.io/openshift", ("mirror.example.com/openshift4",))], []),
            f"quay.io/openshift/test@{DIGEST}",
            [
                (f"mirror.example.com/openshift4/test@{DIGEST}", "mirror.example.com/openshift4"),
                (f"quay.io/openshift/test@{DIGEST}", None),
            ],
            id="TestImportFromMirror: by digest from mirrored repo",
        ),
        pytest.param(
            mirror_config([E("quay.io/openshift", ("mirror.example.com/openshift4",))], []),
            f"docker.io/openshift/test@{DIGEST}",
            [(f"docker.io/openshift/test@{DIGEST}", None)],
            id="TestImportFromMirror: by digest from another repo",
        ),
        pytest.param(
            mirror_config([E("quay.io", ("mirror.example.com",), never_contact_source=True)], []),
            f"quay.io/openshift/test@{DIGEST}",
            [(f"mirror.example.com/openshift/test@{DIGEST}", "mirror.example.com")],
            id="TestImportFromMirror: source blocked, pull by digest only from mirrored repo (source left out)",
        ),
        pytest.param(
            mirror_config([E("quay.io", ("mirror.example.com",), never_contact_source=True)], []),
            "quay.io/openshift/test:v1",
            [],
            id="a digest-only NeverContactSource set leaves a tag lookup nowhere to go (newDockerClient: blocked)",
        ),
        pytest.param(
            mirror_config([], [E("docker.io", ("hub.mirror/dockerhub",))]),
            "busybox:1.36",
            [("hub.mirror/dockerhub/library/busybox:1.36", "hub.mirror/dockerhub"), ("busybox:1.36", None)],
            id="Docker Hub names are matched and rewritten normalized; the source keeps its spelling",
        ),
        pytest.param(
            mirror_config([], [E("*.redhat.io", ("mirror.local/redhat",))]),
            "registry.redhat.io/product/repo:1",
            [
                ("mirror.local/redhat/product/repo:1", "mirror.local/redhat"),
                ("registry.redhat.io/product/repo:1", None),
            ],
            id="a wildcard source: the host is replaced (the API's own example)",
        ),
        pytest.param(
            mirror_config([E("quay.io/team", ("digest.mirror",))], [E("quay.io/team/app", ("tag.mirror/app",))]),
            f"quay.io/team/app@{DIGEST}",
            [(f"quay.io/team/app@{DIGEST}", None)],
            id="the most specific source shadows a broader one, even of the other kind",
        ),
        pytest.param(
            mirror_config(
                [],
                [
                    E("source.io", ("mirror.io", "source.io")),
                    E("mirror.io", ("elsewhere.io",), never_contact_source=True),
                ],
            ),
            "source.io/app:v1",
            [("source.io/app:v1", None)],
            id="a mirror inside a NeverContactSource scope is never contacted either",
        ),
        pytest.param(
            mirror_config([], [E("source.io", ("a.mirror", "source.io", "b.mirror"))]),
            "source.io/app:v1",
            [("a.mirror/app:v1", "a.mirror"), ("source.io/app:v1", None), ("b.mirror/app:v1", "b.mirror")],
            id="the source listed as a mirror is tried there, as the source, and once",
        ),
        pytest.param(
            mirror_config([], [E("source.io", ("plainhost", "good.mirror"))]),
            "source.io/app:v1",
            [("good.mirror/app:v1", "good.mirror"), ("source.io/app:v1", None)],
            id="a single-label mirror host would read as Docker Hub: left out (ParseNamed refuses it)",
        ),
    ],
)
def test_the_places_to_try(config: MirrorConfig, reference: str, expected: list[tuple[str, str | None]]) -> None:
    plan = config.plan(parse_reference(reference), Lookup.of(parse_reference(reference).manifest_reference))
    assert places(plan) == expected


def test_what_is_left_out_is_said() -> None:
    config = mirror_config([E("quay.io", ("mirror.example.com",), never_contact_source=True)], [])
    plan = config.plan(parse_reference("quay.io/team/app:v1"), Lookup.TAG)
    assert plan.places == ()
    assert plan.scope == "quay.io"
    assert plan.left_out == (
        "source quay.io/team/app: never contacted (mirrorSourcePolicy NeverContactSource for quay.io)",
    )


@pytest.mark.parametrize(("text", "lookup"), [("latest", Lookup.TAG), (DIGEST, Lookup.DIGEST), ("sha256", Lookup.TAG)])
def test_a_lookup_is_by_digest_only_for_a_digest(text: str, lookup: Lookup) -> None:
    assert Lookup.of(text) is lookup


# --- the import's side (controller/importer.py): failures, the cache of sets ------------------------------------


def test_an_unmirrored_failure_is_reported_as_it_is() -> None:
    reference = parse_reference("source.io/app:v1")
    failure = Failure("NotFound", "source.io/app:v1: manifest unknown")
    assert plan_failure(reference, Plan((Place(reference),)), [(Place(reference), failure)]) is failure


def test_a_mirrored_failure_names_every_place_in_order_with_the_last_reason() -> None:
    """getManifest: every pull source's error is kept; the reason here is the last place's."""
    reference = parse_reference("source.io/app:v1")
    mirror = Place(parse_reference("m.io/app:v1"), "m.io")
    plan = Plan((mirror, Place(reference)), "source.io")
    failure = plan_failure(
        reference,
        plan,
        [(mirror, Failure("NotFound", "m.io/app:v1: not found")), (Place(reference), Failure("Timeout", "slow"))],
    )
    assert failure == Failure(
        "Timeout", "source.io/app:v1, mirrored under source.io: mirror m.io/app: m.io/app:v1: not found; source "
        "source.io/app: slow"
    )  # fmt: skip


def test_no_place_at_all_is_forbidden() -> None:
    reference = parse_reference("quay.io/app:v1")
    plan = Plan((), "quay.io", ("source quay.io/app: never contacted",))
    assert plan_failure(reference, plan, []) == Failure(
        "Forbidden", "quay.io/app:v1: no registry may be asked for it (left out source quay.io/app: never contacted)"
    )


def digest_set(name: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"imageDigestMirrors": list(entries)}}


def tag_set(name: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"imageTagMirrors": list(entries)}}


def test_the_cache_of_sets_follows_events_and_fresh_lists() -> None:
    sets = MirrorSets()
    assert sets.config() == MirrorConfig()
    sets.seen(DIGEST_MIRROR_SETS, "ADDED", digest_set("a", {"source": "quay.io", "mirrors": ["m.io"]}))
    sets.seen(TAG_MIRROR_SETS, None, tag_set("b", {"source": "quay.io", "mirrors": ["t.io"]}))
    assert sets.config().scopes == (Scope("quay.io", (Mirror("m.io", Lookup.DIGEST), Mirror("t.io", Lookup.TAG))),)
    sets.seen(DIGEST_MIRROR_SETS, "DELETED", digest_set("a"))
    assert sets.config().scopes == (Scope("quay.io", (Mirror("t.io", Lookup.TAG),)),)
    sets.replace(TAG_MIRROR_SETS, [])  # deleted while no watch said so
    assert sets.config() == MirrorConfig()


def test_a_set_that_does_not_parse_is_left_out_whole(caplog: pytest.LogCaptureFixture) -> None:
    sets = MirrorSets()
    sets.seen(
        DIGEST_MIRROR_SETS,
        "ADDED",
        digest_set("bad", {"source": "quay.io", "mirrors": ["m.io"]}, {"source": "not a source!", "mirrors": ["x.io"]}),
    )
    assert sets.config() == MirrorConfig()
    assert "ImageDigestMirrorSet bad is ignored: spec.imageDigestMirrors.1.source" in caplog.text


def test_the_models_read_openshift_objects() -> None:
    digest = ImageDigestMirrorSet.model_validate(
        digest_set("d", {"source": "quay.io/a", "mirrors": ["m.io/a"], "mirrorSourcePolicy": "NeverContactSource"})
    )
    tag = ImageTagMirrorSet.model_validate(tag_set("t", {"source": "*.example.com", "mirrors": ["m.io"]}))
    assert entries_of_digest_sets([digest]) == [E("quay.io/a", ("m.io/a",), never_contact_source=True)]
    assert entries_of_tag_sets([tag]) == [E("*.example.com", ("m.io",))]


def test_the_log_line_says_what_is_mirrored() -> None:
    config = mirror_config(
        [E("quay.io", ("a.io", "b.io"), never_contact_source=True)], [E("quay.io", ("c.io",)), E("x.io", ("y.io",))]
    )
    assert describe_mirrors(config) == (
        "quay.io (2 digest mirror(s), 1 tag mirror(s), source never contacted); x.io (1 tag mirror(s))"
    )
    assert describe_mirrors(MirrorConfig()) == "none"

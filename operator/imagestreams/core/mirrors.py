"""Registry mirrors: the places an import tries, in order, for one image, from ImageDigestMirrorSets and
ImageTagMirrorSets.

OpenShift turns the mirror sets into a containers-registries.conf(5) configuration and both its nodes and its image
importer read that. The same steps here, each after the function it follows:

1. Merge (openshift/runtime-utils pkg/registries): the entries of all sets of one kind are grouped by `source`; an
   entry whose mirrors are only the source itself is ignored, policy included (`addMirrorSet`,
   `mirrorsContainsARealMirror`); the mirror lists of one source are merged into one order that keeps each list's
   order where the lists agree (`mergedMirrors` over `topoGraph.Sorted`, a deterministic topological sort that
   breaks loops in name order). NeverContactSource in any entry of a source blocks that source.
2. Build one scope per source (`EditRegistriesConfig`): digest mirrors first, marked digest-only, then tag mirrors,
   marked tag-only; the scope is blocked when either kind said NeverContactSource for it.
3. Find the scope of an image (containers/image pkg/sysregistriesv2 `findRegistryWithParsedConfig`): the longest
   source that matches the repository name (`docker.io/library/busybox` for `busybox`), matching at a `/` boundary
   as openshift-apiserver's importer does (`findRegistryConfiguration`, `isSubrepo`), or a wildcard `*.example.com`
   matching any host under example.com (`refMatchingSubdomainPrefix`). One scope applies and no other: a more
   specific source shadows a broader one, even one of the other kind.
4. List the places (`Registry.PullSourcesFromReference`): the scope's mirrors that serve this lookup (digest-only
   ones for an image named by digest, tag-only ones for a tag), each with the matched part of the name replaced by
   the mirror (`Endpoint.rewriteReference`), then the source itself.
5. Leave out every place whose own scope is blocked: containers/image refuses to contact a blocked registry
   (docker/docker_client.go `newDockerClient`), so a NeverContactSource source is never contacted, for tag or
   digest lookups alike (a tag lookup under a digest-only NeverContactSource set has no place at all).

Step 5 is where this differs from openshift-apiserver's importer, which tries the source after the mirrors whatever
the policy (its `blockedRegistry` skips scopes that have mirrors), and step 3's wildcards, which its importer never
matches (rest.go sets every Prefix to the Location, empty for a wildcard); here both behave as OpenShift's nodes do.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from imagestreams.api.mirrorsets import ImageDigestMirrorSet, ImageTagMirrorSet, MirrorSourcePolicy
from imagestreams.core.references import ImageReference, InvalidReference, is_digest, parse_reference

WILDCARD_PREFIX = "*."


class Lookup(StrEnum):
    """How an image is named in the lookup: which mirrors may serve it."""

    TAG = "tag"
    DIGEST = "digest"

    @classmethod
    def of(cls, tag_or_digest: str) -> Lookup:
        return cls.DIGEST if is_digest(tag_or_digest) else cls.TAG


@dataclass(frozen=True)
class MirrorEntry:
    """One entry of a mirror set: a source, its mirrors in order, and whether the source may be contacted."""

    source: str
    mirrors: tuple[str, ...]
    never_contact_source: bool = False


@dataclass(frozen=True)
class Mirror:
    location: str
    serves: Lookup


@dataclass(frozen=True)
class Scope:
    """What the sets say about one source: a registries.conf [[registry]] entry."""

    source: str
    mirrors: tuple[Mirror, ...]
    blocked: bool = False  # NeverContactSource

    def matched_length(self, name: str) -> int | None:
        """The length of `name` this scope's source matches (the part a mirror replaces), or None."""
        if self.source.startswith(WILDCARD_PREFIX):
            host, slash, _ = name.partition("/")
            # A host with a port is left alone: containers/image would keep the port in the part after the match
            # and append it to the mirror, which no longer parses.
            suffix = self.source[1:]
            if slash and ":" not in host and host.endswith(suffix) and len(host) > len(suffix):
                return len(host)
            return None
        if name == self.source or name.startswith(self.source + "/"):
            return len(self.source)
        return None


@dataclass(frozen=True)
class Place:
    """Where to look an image up: the reference to send requests for, and the mirror that led there (None for the
    source itself)."""

    reference: ImageReference
    mirror: str | None = None

    @property
    def repository(self) -> str:
        """The repository as contacted, e.g. mirror.local/copies/app."""
        return self.reference.repository_spelling


@dataclass(frozen=True)
class Plan:
    """The places to try in order, the source the mirror sets apply under (None: no set matches, the image is looked
    up where it is named), and why places were left out."""

    places: tuple[Place, ...]
    scope: str | None = None
    left_out: tuple[str, ...] = ()

    @property
    def mirrored(self) -> bool:
        return self.scope is not None


@dataclass(frozen=True)
class MirrorConfig:
    """The merged mirror sets of the cluster; empty when there are none (or no CRDs for them)."""

    scopes: tuple[Scope, ...] = ()

    def scope_for(self, name: str) -> Scope | None:
        """The scope with the longest source matching `name` (host/repository). On a tie the source that sorts first
        wins, as registries.conf entries are sorted by prefix and only a longer one replaces the best so far."""
        best: Scope | None = None
        for scope in self.scopes:
            if (best is None or len(scope.source) > len(best.source)) and scope.matched_length(name) is not None:
                best = scope
        return best

    def plan(self, reference: ImageReference, lookup: Lookup) -> Plan:
        """The places to try for `reference`, looked up by tag or by digest."""
        name = full_name(reference)
        scope = self.scope_for(name)
        if scope is None:
            return Plan((Place(reference),))
        matched = scope.matched_length(name)
        assert matched is not None
        places: list[Place] = []
        left_out: list[str] = []
        for mirror in scope.mirrors:
            if mirror.serves is not lookup:
                continue
            rewritten = mirror.location + name[matched:]
            try:
                target = parse_reference(rewritten)
            except InvalidReference as error:
                left_out.append(f"mirror {mirror.location}: {error}")
                continue
            if target.registry != mirror.location.partition("/")[0]:
                # A single-label host (`mirror/app`) reads as a Docker Hub repository; containers/image refuses it too.
                left_out.append(f"mirror {mirror.location}: {rewritten} does not name a registry host")
                continue
            blocked = self.scope_for(full_name(target))
            if blocked is not None and blocked.blocked:
                left_out.append(f"mirror {rewritten}: {_never_contacted(blocked)}")
                continue
            # A mirror that names the source itself is the source, spelled as the stream spells it. A place is
            # tried once: a second attempt within one lookup would only repeat the first one's answer.
            if full_name(target) == name:
                place = Place(reference)
            else:
                place = Place(replace(target, tag=reference.tag, digest=reference.digest), mirror.location)
            if all(full_name(known.reference) != full_name(place.reference) for known in places):
                places.append(place)
        if scope.blocked:
            left_out.append(f"source {reference.repository_spelling}: {_never_contacted(scope)}")
        elif all(full_name(known.reference) != name for known in places):
            places.append(Place(reference))
        return Plan(tuple(places), scope.source, tuple(left_out))


def _never_contacted(scope: Scope) -> str:
    return f"never contacted (mirrorSourcePolicy NeverContactSource for {scope.source})"


def full_name(reference: ImageReference) -> str:
    """The repository's full name as registries.conf matches it: docker.io/library/busybox for busybox."""
    return f"{reference.registry_host}/{reference.normalized_repository}"


def entries_of_digest_sets(sets: Iterable[ImageDigestMirrorSet]) -> list[MirrorEntry]:
    return [
        _entry(item.source, item.mirrors, item.mirror_source_policy)
        for mirror_set in sets
        for item in mirror_set.spec.image_digest_mirrors or []
    ]


def entries_of_tag_sets(sets: Iterable[ImageTagMirrorSet]) -> list[MirrorEntry]:
    return [
        _entry(item.source, item.mirrors, item.mirror_source_policy)
        for mirror_set in sets
        for item in mirror_set.spec.image_tag_mirrors or []
    ]


def _entry(source: str, mirrors: Sequence[str] | None, policy: str | None) -> MirrorEntry:
    return MirrorEntry(source, tuple(mirrors or ()), policy == MirrorSourcePolicy.NEVER_CONTACT_SOURCE)


def mirror_config(digest_entries: Iterable[MirrorEntry], tag_entries: Iterable[MirrorEntry]) -> MirrorConfig:
    """The scopes the entries make (runtime-utils `EditRegistriesConfig`): per source, its merged digest mirrors,
    then its merged tag mirrors, blocked if either kind blocks it; sorted by source."""
    mirrors: dict[str, list[Mirror]] = {}
    blocked: set[str] = set()
    for entries, serves in ((digest_entries, Lookup.DIGEST), (tag_entries, Lookup.TAG)):
        for source, merged, never in merged_mirror_sets(entries):
            mirrors.setdefault(source, []).extend(Mirror(location, serves) for location in merged)
            if never:
                blocked.add(source)
    return MirrorConfig(tuple(Scope(source, tuple(mirrors[source]), source in blocked) for source in sorted(mirrors)))


def merged_mirror_sets(entries: Iterable[MirrorEntry]) -> list[tuple[str, tuple[str, ...], bool]]:
    """(source, merged mirrors, NeverContactSource) per source, sorted by source (runtime-utils `mergedMirrorSets`):
    entries without a mirror other than the source are ignored, their policy too (`addMirrorSet`)."""
    lists: dict[str, list[tuple[str, ...]]] = {}
    never: set[str] = set()
    for entry in entries:
        if not any(mirror != entry.source for mirror in entry.mirrors):
            continue
        lists.setdefault(entry.source, []).append(entry.mirrors)
        if entry.never_contact_source:
            never.add(entry.source)
    return [(source, merged_mirrors(source, lists[source]), source in never) for source in sorted(lists)]


def merged_mirrors(source: str, lists: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """One order for a source's mirror lists (runtime-utils `mergedMirrors`): each list is a chain of edges ending
    in the source (unless it names the source itself); the source is dropped when it sorts last, since it is tried
    after the mirrors anyway."""
    edges: list[tuple[str, str]] = []
    for mirrors in lists:
        edges += itertools.pairwise(mirrors)
        if source not in mirrors:
            edges.append((mirrors[-1], source))
    ordered = topological_order(edges)
    if ordered and ordered[-1] == source:
        ordered.pop()
    return tuple(ordered)


def topological_order(edges: Iterable[tuple[str, str]]) -> list[str]:
    """Every node, each after its predecessors where the edges allow (runtime-utils `topoGraph.Sorted`): nodes
    without predecessors in name order, their successors as they are freed (each batch in name order); a loop is
    broken by taking the first unused node in name order."""
    incoming: dict[str, set[str]] = {}
    outgoing: dict[str, set[str]] = {}
    for before, after in edges:
        for node in (before, after):
            incoming.setdefault(node, set())
            outgoing.setdefault(node, set())
        outgoing[before].add(after)
        incoming[after].add(before)
    nodes = sorted(incoming)
    free = deque(node for node in nodes if not incoming[node])
    used: set[str] = set()
    ordered: list[str] = []
    next_unused = 0
    while free or next_unused < len(nodes):
        if free:
            node = free.popleft()
        else:
            node = nodes[next_unused]
            next_unused += 1
            if node in used:
                continue
        used.add(node)
        ordered.append(node)
        freed = []
        for successor in outgoing[node]:
            incoming[successor].discard(node)
            if not incoming[successor] and successor not in used:
                freed.append(successor)
        free.extend(sorted(freed))
    return ordered

"""Looks up the sources of a stream's tags: registries for DockerImage tags, other streams for the rest."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lightkube import AsyncClient
from pydantic import ValidationError

from imagestreams.api.imagestream import ImageManifestSummary, ImageStream, ImageSummary, TagReference
from imagestreams.api.mirrorsets import DIGEST_MIRROR_SETS, ImageDigestMirrorSet, ImageTagMirrorSet, MirrorSetKind
from imagestreams.controller.freshreads import FreshReads
from imagestreams.controller.metrics import Metrics
from imagestreams.core.caches import TTLCache
from imagestreams.core.fairness import Demand
from imagestreams.core.keyring import KeyringEntry, lookup
from imagestreams.core.mirrors import (
    Lookup,
    MirrorConfig,
    Place,
    Plan,
    entries_of_digest_sets,
    entries_of_tag_sets,
    mirror_config,
)
from imagestreams.core.references import ImageReference, InvalidReference, parse_reference
from imagestreams.core.registrypolicy import RegistryPolicy, split_host_port
from imagestreams.core.tagorder import prioritize_tags
from imagestreams.core.tags import (
    Failure,
    Outcome,
    RepositoryResult,
    Resolved,
    SourceType,
    classify_source,
    repository_tags_to_import,
    tag_states,
)
from imagestreams.kube.access import AccessCheckFailed, PullAccess, pull_denied_message
from imagestreams.kube.secrets import pull_secret_entries
from imagestreams.registry import (
    Credentials,
    ImportMode,
    Platform,
    RegistryClient,
    RegistryError,
    ResolvedImage,
    SingleFlight,
    on_behalf_of,
)

logger = logging.getLogger(__name__)

INSECURE_REPOSITORY_ANNOTATION = "openshift.io/image.insecureRepository"
PREFER_ARCH_ANNOTATION = "importer.image.openshift.io/prefer-arch"
PREFER_OS_ANNOTATION = "importer.image.openshift.io/prefer-os"

ADDRESS_CACHE_SECONDS = 60.0
KEYRING_CACHE_SECONDS = 60.0
# Entries the importer's caches keep at most (lookups, namespaces' keyrings, registry hosts): far more than one
# operator's streams need within a scheduling interval; the bound only keeps memory flat when names flood in, the
# least recently used entries going first.
MAX_REMEMBERED_LOOKUPS = 10_000
MAX_REMEMBERED_KEYRINGS = 10_000
MAX_REMEMBERED_HOSTS = 10_000
# An overall bound per tag lookup, over the client's per-request timeouts and retries and its wait for a turn in
# the registry's request budget.
RESOLVE_DEADLINE_SECONDS = 120.0

StreamLookup = Callable[[str, str], ImageStream | None]
Idle = Callable[[], AbstractAsyncContextManager[None]]
LookupKey = tuple[object, ...]
T = TypeVar("T")


@dataclass
class Importer:
    registry: RegistryClient
    kube: AsyncClient
    policy: RegistryPolicy
    streams: StreamLookup  # (namespace, name) -> the cached stream, if any
    access: PullAccess  # checks cross-namespace sources
    # Scheduled checks reuse a lookup of the same source made within this many seconds (one scheduling
    # interval), so streams sharing a source cost one registry lookup per round between them.
    reuse_seconds: float = 0.0
    # Entered around the registry lookups of a pass: the work queue's worker slot is given up meanwhile, so a stream
    # waiting on a registry (one that never answers, or its turn in a busy registry's budget) holds no worker that
    # streams on other registries need.
    idle: Idle = contextlib.nullcontext
    lookups: int = 0  # registry lookups made, for metrics and tests
    clock: Callable[[], float] = time.monotonic  # injectable, so tests move time instead of sleeping
    metrics: Metrics | None = None  # lookup latency
    # The cluster's registry mirrors as they are now (MirrorSets.config): read at each lookup, so a changed mirror
    # set applies from the next import on and re-imports nothing by itself.
    mirrors: Callable[[], MirrorConfig] = MirrorConfig
    # Each lookup for reuse_seconds from when it started (see _remember).
    _recent: TTLCache[LookupKey, ResolvedImage] = field(init=False)
    # Shared by every stream that needs the same lookup, and cancelled when none of them waits for it any more.
    _flights: SingleFlight[LookupKey, ResolvedImage] = field(default_factory=SingleFlight)
    _addresses: TTLCache[str, list[str]] = field(init=False)
    _keyrings: TTLCache[str, list[KeyringEntry]] = field(init=False)
    # Fresh reads of a namespace's pull secrets, shared by the passes that ask at about the same time.
    _secret_reads: FreshReads[str, list[KeyringEntry]] = field(init=False)

    def __post_init__(self) -> None:
        self._secret_reads = FreshReads(functools.partial(pull_secret_entries, self.kube))
        self._recent = TTLCache(MAX_REMEMBERED_LOOKUPS, clock=self.clock)
        self._addresses = TTLCache(MAX_REMEMBERED_HOSTS, ttl=ADDRESS_CACHE_SECONDS, clock=self.clock)
        self._keyrings = TTLCache(MAX_REMEMBERED_KEYRINGS, ttl=KEYRING_CACHE_SECONDS, clock=self.clock)

    async def outcomes(
        self, stream: ImageStream, tag_names: list[str], scheduled_only: frozenset[str] = frozenset()
    ) -> dict[str, Outcome]:
        """Look up every named tag's source concurrently; failures become Failure outcomes.

        Tags in `scheduled_only` are looked up for their schedule alone and may reuse a recent lookup.
        """
        namespace = stream.metadata.get("namespace", "")
        spec_tags = {tag.name: tag for tag in stream.spec.tags or []}
        needs_secrets = any(
            classify_source(namespace, stream.metadata.get("name", ""), spec_tags[name]).type is SourceType.IMPORT
            for name in tag_names
        )
        keyring = await self._keyring(namespace, fresh=bool(set(tag_names) - scheduled_only)) if needs_secrets else []
        async with self.idle():
            results = await asyncio.gather(
                *(self._outcome(stream, spec_tags[name], keyring, reuse=name in scheduled_only) for name in tag_names)
            )
        return {name: result for name, result in zip(tag_names, results, strict=True) if result is not None}

    async def _keyring(self, namespace: str, *, fresh: bool) -> list[KeyringEntry]:
        """The namespace's pull secrets: read after this call for imports someone asked for (a read shared with
        the passes asking at about the same time), else at most a minute old."""
        cached = None if fresh else self._keyrings.get(namespace)
        if cached is None:
            cached = await self._secret_reads.get(namespace)
            self._keyrings.put(namespace, cached)
        return cached

    async def _outcome(
        self, stream: ImageStream, tag: TagReference, keyring: list[KeyringEntry], *, reuse: bool
    ) -> Outcome | None:
        """The tag's outcome, or None when there is nothing to record yet (another stream's tag without an image)."""
        namespace = stream.metadata.get("namespace", "")
        source = classify_source(namespace, stream.metadata.get("name", ""), tag)
        if source.type is SourceType.IMPORT:
            return await self._import(stream, tag, source.target, keyring, reuse=reuse)
        if source.type in (SourceType.OTHER_STREAM_TAG, SourceType.STREAM_IMAGE):
            try:
                allowed = await self.access.namespace_may_pull(namespace, source.namespace)
            except AccessCheckFailed as error:
                return Failure("Forbidden", str(error))
            if not allowed:
                return Failure("Forbidden", pull_denied_message(namespace, source.namespace))
            if source.type is SourceType.OTHER_STREAM_TAG:
                return self._copy_tag(source.namespace, source.stream, source.target)
            return self._copy_image(source.namespace, source.stream, source.target)
        return Failure("InvalidSource", f"tag {tag.name} has no source to look up")

    async def _import(
        self, stream: ImageStream, tag: TagReference, pull_spec: str, keyring: list[KeyringEntry], *, reuse: bool
    ) -> Outcome:
        try:
            reference = parse_reference(pull_spec)
        except InvalidReference as error:
            return Failure("InvalidSource", str(error))
        state = tag_states(stream).get(tag.name)
        mode = (tag.import_policy.import_mode if tag.import_policy else None) or ImportMode.LEGACY
        return await self._resolve(
            stream.metadata.get("namespace", ""),
            reference,
            reference.manifest_reference,
            keyring,
            reuse=reuse,
            # Only the tag's own policy: handleImageStream (openshift-controller-manager image/controller/
            # imagestream_controller.go) applies the insecureRepository annotation to the repository import alone.
            insecure=bool(tag.import_policy and tag.import_policy.insecure),
            mode=ImportMode(mode),
            preferred=_preferred_platform(tag.annotations or {}),
            known=frozenset(item.image for item in (state.items if state else None) or []),
        )

    async def repository(self, stream: ImageStream, limit: int) -> RepositoryResult:
        """Import the tags of spec.dockerImageRepository, most relevant first, up to `limit`."""
        spec = stream.spec.docker_image_repository or ""
        try:
            reference = parse_reference(spec)
        except InvalidReference as error:
            return RepositoryResult(spec, {}, failure=Failure("InvalidSource", str(error)))
        # OpenShift lists the tags at the source alone (importRepositoryFromDocker); here the tag mirrors are asked
        # first, so that a disconnected cluster, or a NeverContactSource policy, can import a repository too.
        plan = self.mirrors().plan(reference, Lookup.TAG)
        refusal = None if plan.mirrored else self._name_refusal(reference)  # (each place is checked as it is tried)
        if refusal:
            return RepositoryResult(spec, {}, failure=Failure("Forbidden", refusal))
        namespace = stream.metadata.get("namespace", "")
        keyring = await pull_secret_entries(self.kube, namespace)
        insecure = _insecure_stream(stream)
        async with self.idle():  # from here on the pass waits on DNS and the registry: no worker held
            available = await self._at_each_place(
                reference, plan, lambda place: self._list_tags_at(namespace, place, keyring, insecure)
            )
            if isinstance(available, Failure):
                return RepositoryResult(spec, {}, failure=available)
            spec_tags = [tag.name for tag in stream.spec.tags or []]
            chosen, additional = repository_tags_to_import(prioritize_tags(available), spec_tags, limit)
            states = tag_states(stream)
            results = await asyncio.gather(
                *(
                    self._resolve(
                        namespace,
                        reference,
                        name,
                        keyring,
                        insecure=insecure,
                        mode=ImportMode.LEGACY,
                        preferred=None,
                        known=frozenset(item.image for item in (states[name].items if name in states else None) or []),
                    )
                    for name in chosen
                )
            )
        return RepositoryResult(spec, dict(zip(chosen, results, strict=True)), tuple(additional))

    async def _resolve(
        self,
        namespace: str,
        reference: ImageReference,
        tag_or_digest: str,
        keyring: list[KeyringEntry],
        *,
        insecure: bool,
        mode: ImportMode,
        preferred: Platform | None,
        known: frozenset[str],
        reuse: bool = False,
    ) -> Outcome:
        """Look the image up at each place the mirror sets give for it, in order, until one has it (openshift-apiserver
        importer.getManifest): the whole lookup (manifest, index child, config) at that one place."""
        plan = self.mirrors().plan(reference, Lookup.of(tag_or_digest))
        return await self._at_each_place(
            reference,
            plan,
            lambda place: self._resolve_at(
                namespace,
                reference,
                place,
                tag_or_digest,
                keyring,
                insecure=insecure,
                mode=mode,
                preferred=preferred,
                known=known,
                reuse=reuse,
            ),
        )

    async def _at_each_place(
        self, reference: ImageReference, plan: Plan, attempt: Callable[[Place], Awaitable[T | Failure]]
    ) -> T | Failure:
        """The first place's answer that is not a Failure; else every failure, in one."""
        failures: list[tuple[Place, Failure]] = []
        for place in plan.places:
            answer = await attempt(place)
            if not isinstance(answer, Failure):
                if failures:
                    logger.debug("%s: found at %s after %d failed place(s)", reference, place.repository, len(failures))
                return answer
            failures.append((place, answer))
        return plan_failure(reference, plan, failures)

    async def _resolve_at(
        self,
        namespace: str,
        source: ImageReference,
        place: Place,
        tag_or_digest: str,
        keyring: list[KeyringEntry],
        *,
        insecure: bool,
        mode: ImportMode,
        preferred: Platform | None,
        known: frozenset[str],
        reuse: bool,
    ) -> Outcome:
        """The lookup at one place, with that place's pull secrets and the registry policy for its host. Status keeps
        the source's spelling with the digest, as OpenShift records dockerImageReference; the mirror goes to the
        image's summary."""
        target = place.reference
        refusal = self._name_refusal(target) or await self._address_refusal(target.api_host)
        if refusal:
            return Failure("Forbidden", refusal)
        credentials = pull_credentials(keyring, target)
        # Shared per place: streams naming different sources that lead to the same mirror repository share its lookup.
        key = (
            target.api_host,
            target.normalized_repository,
            tag_or_digest,
            tuple(candidate.identity for candidate in credentials),
            insecure,
            mode,
            preferred,
        )
        mirror = place.repository if place.mirror is not None else None
        started = self.clock()
        cached = self._recent.get(key) if reuse else None
        if cached is not None and (cached.complete or cached.digest in known):
            return Resolved(source.with_digest(cached.digest), cached.digest, image_summary(cached, mirror))
        # The namespace's requests wait in its own lane of the registry's queue (flights.on_behalf_of).
        with on_behalf_of(namespace) as demand, self._timed() as timing:
            try:
                async with asyncio.timeout(RESOLVE_DEADLINE_SECONDS):
                    resolved = await self._shared_lookup(
                        key,
                        lambda: self.registry.resolve(
                            target.api_host,
                            target.normalized_repository,
                            tag_or_digest,
                            credentials=credentials,
                            insecure=insecure,
                            import_mode=mode,
                            preferred=preferred,
                            known_digests=known,
                            never_imported=not known,
                        ),
                        known,
                    )
            except TimeoutError:
                return self._timed_out(namespace, target, demand)
            except RegistryError as error:
                return Failure(error.reason, error.message)
            except ValueError as error:
                return Failure("InvalidSource", f"{target.exact()}: {error}")
            timing.succeeded = True
        self._remember(key, started, resolved)
        return Resolved(source.with_digest(resolved.digest), resolved.digest, image_summary(resolved, mirror))

    async def _list_tags_at(
        self, namespace: str, place: Place, keyring: list[KeyringEntry], insecure: bool
    ) -> list[str] | Failure:
        target = place.reference
        refusal = self._name_refusal(target) or await self._address_refusal(target.api_host)
        if refusal:
            return Failure("Forbidden", refusal)
        try:
            with on_behalf_of(namespace):
                return await self.registry.list_tags(
                    target.api_host,
                    target.normalized_repository,
                    credentials=pull_credentials(keyring, target),
                    insecure=insecure,
                )
        except RegistryError as error:
            return Failure(error.reason, error.message)

    @contextlib.contextmanager
    def _timed(self) -> Iterator[_Timing]:
        """Observe a lookup's latency (real time, whatever the injected clock) unless it was cancelled."""
        timing = _Timing(time.monotonic())
        yield timing
        if self.metrics is not None:
            self.metrics.lookup_done(time.monotonic() - timing.started, succeeded=timing.succeeded)

    def _name_refusal(self, reference: ImageReference) -> str | None:
        """The policy by name: the registry as users name it (docker.io) and the host contacted
        (registry-1.docker.io). Denied if either is denied; allowed if either is allowed."""
        return self.policy.refusal_for_names(list(dict.fromkeys([reference.registry_host, reference.api_host])))

    async def _address_refusal(self, registry: str) -> str | None:
        """Check the addresses a registry name resolves to, so a DNS name cannot lead into a denied range."""
        host, port = split_host_port(registry)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return None  # a literal address was already checked by name
        addresses = self._addresses.get(host)
        if addresses is None:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, int(port or 443))
            except (OSError, ValueError):
                return None  # unresolvable: the registry client reports the failure in its own words
            addresses = sorted({str(info[4][0]) for info in infos})
            self._addresses.put(host, addresses)
        return self.policy.address_refusal(registry, addresses)

    def _timed_out(self, namespace: str, reference: ImageReference, demand: Demand) -> Failure:
        """The deadline passed: say whether the lookup was kept waiting by this operator's own request budget for the
        registry (its fair share of it) or by the registry itself."""
        waited = demand.waited(asyncio.get_running_loop().time())
        host = reference.api_host
        if waited >= RESOLVE_DEADLINE_SECONDS / 2:
            settings = self.registry.settings
            namespaces = len(self.registry.namespaces_waiting(host) | {namespace})
            return Failure(
                "Timeout",
                f"{reference.exact()}: waited {waited:.0f}s of {RESOLVE_DEADLINE_SECONDS:.0f}s for a turn in this "
                f"operator's request budget for {host} ({settings.per_registry_rate:g} requests per second, "
                f"{settings.per_registry_concurrency} at a time, shared fairly by {namespaces} namespace(s) with "
                "requests waiting), not for the registry; the import is retried on schedule or on request "
                "(IMAGESTREAMS_REGISTRY_RATE raises the budget)",
            )
        return Failure(
            "Timeout",
            f"{reference.exact()}: no answer within {RESOLVE_DEADLINE_SECONDS:.0f}s; the registry is slow or "
            "unreachable, the import is retried on schedule or on request",
        )

    async def _shared_lookup(
        self,
        key: LookupKey,
        lookup: Callable[[], Coroutine[Any, Any, ResolvedImage]],
        known: frozenset[str],
    ) -> ResolvedImage:
        """Join an identical lookup already in flight (from any stream), or start one. A lookup that every stream
        waiting for it has left (deadline, cancellation, a deleted stream) is cancelled."""
        joined = self._flights.running(key)
        if not joined:
            self.lookups += 1
        resolved = await self._flights.run(key, lookup)
        if not joined or resolved.complete or resolved.digest in known:
            return resolved
        # The joined lookup skipped reading an image this stream has not seen: look it up again, fully.
        self.lookups += 1
        return await self._flights.run(key, lookup, fresh=True)

    def _remember(self, key: LookupKey, started: float, resolved: ResolvedImage) -> None:
        """Keep a lookup for reuse_seconds counted from when it started: its answer may be that old, and a slow
        lookup must not be reused into the next scheduling interval."""
        self._recent.put(key, resolved, ttl=self.reuse_seconds - (self.clock() - started))

    def _copy_tag(self, namespace: str, stream_name: str, tag_name: str) -> Outcome | None:
        source = self.streams(namespace, stream_name)
        if source is None:
            # OpenShift refuses the write instead (tagsChanged: field.NotFound); GitOps applies in any order, so the
            # stream is accepted and the tag says what it waits for.
            return Failure("NotFound", f"image stream {namespace}/{stream_name} does not exist")
        state = tag_states(source).get(tag_name)
        if state is None or not state.items:
            # tagsChanged: "referenced tag or ID doesn't exist, which is ok": no entry, no condition.
            return None
        newest = state.items[0]
        return Resolved(newest.docker_image_reference, newest.image, _summary_in(source, newest.image))

    def _copy_image(self, namespace: str, stream_name: str, digest: str) -> Outcome:
        source = self.streams(namespace, stream_name)
        if source is None:
            return Failure("NotFound", f"image stream {namespace}/{stream_name} does not exist")
        found = {
            item.image: item
            for state in tag_states(source).values()
            for item in state.items or []
            if item.image and item.image.startswith(digest)
        }
        if not found:
            return Failure(
                "NotFound", f"image {digest} is not in the history of image stream {namespace}/{stream_name}"
            )
        if len(found) > 1:
            return Failure("Conflict", f"{digest} matches {len(found)} images in {namespace}/{stream_name}; give more")
        item = next(iter(found.values()))
        return Resolved(item.docker_image_reference, item.image, _summary_in(source, item.image))


class MirrorSets:
    """The cluster's ImageDigestMirrorSets and ImageTagMirrorSets as the watches last delivered them, and the mirror
    configuration they make, built again at each change (a handful of objects)."""

    def __init__(self) -> None:
        self._digest_sets: dict[str, ImageDigestMirrorSet] = {}
        self._tag_sets: dict[str, ImageTagMirrorSet] = {}
        self._config = MirrorConfig()

    def config(self) -> MirrorConfig:
        return self._config

    def seen(self, kind: MirrorSetKind, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event: a set added, changed, listed again or deleted."""
        name = str((body.get("metadata") or {}).get("name") or "")
        self._forget(kind, name)
        if event_type != "DELETED":
            self._take(kind, name, body)
        self._rebuild()

    def replace(self, kind: MirrorSetKind, bodies: Sequence[Mapping[str, Any]]) -> None:
        """Every set of the kind, from a fresh list: sets deleted while no watch said so are forgotten."""
        (self._digest_sets if kind is DIGEST_MIRROR_SETS else self._tag_sets).clear()
        for body in bodies:
            self._take(kind, str((body.get("metadata") or {}).get("name") or ""), body)
        self._rebuild()

    def _forget(self, kind: MirrorSetKind, name: str) -> None:
        (self._digest_sets if kind is DIGEST_MIRROR_SETS else self._tag_sets).pop(name, None)

    def _take(self, kind: MirrorSetKind, name: str, body: Mapping[str, Any]) -> None:
        # The API server checks the fields against OpenShift's patterns; a set that still does not parse (a CRD
        # other than ours) is left out whole rather than half applied.
        try:
            if kind is DIGEST_MIRROR_SETS:
                self._digest_sets[name] = ImageDigestMirrorSet.model_validate(body)
            else:
                self._tag_sets[name] = ImageTagMirrorSet.model_validate(body)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
            logger.warning("%s %s is ignored: %s", kind.kind, name, problems)

    def _rebuild(self) -> None:
        config = mirror_config(
            entries_of_digest_sets(self._digest_sets[name] for name in sorted(self._digest_sets)),
            entries_of_tag_sets(self._tag_sets[name] for name in sorted(self._tag_sets)),
        )
        if config != self._config:
            logger.info("registry mirrors: %s", describe_mirrors(config))
        self._config = config


def describe_mirrors(config: MirrorConfig) -> str:
    """One line for the log: each mirrored source, how many mirrors of each kind, and its policy."""
    if not config.scopes:
        return "none"
    described = []
    for scope in config.scopes:
        counts = {lookup: sum(mirror.serves is lookup for mirror in scope.mirrors) for lookup in Lookup}
        parts = [
            f"{counts[lookup]} {lookup.value} mirror(s)" for lookup in (Lookup.DIGEST, Lookup.TAG) if counts[lookup]
        ]
        if scope.blocked:
            parts.append("source never contacted")
        described.append(f"{scope.source} ({', '.join(parts)})")
    return "; ".join(described)


@dataclass
class _Timing:
    started: float
    succeeded: bool = False


MAX_LABELS = 32
MAX_LABEL_VALUE = 256


def image_summary(resolved: ResolvedImage, mirror: str | None = None) -> ImageSummary | None:
    """What status keeps about a newly read image, and the mirror repository it was read from (None: its source);
    None when the client read nothing new."""
    if not resolved.complete:
        return None
    metadata = resolved.metadata
    children = (
        [
            ImageManifestSummary(
                digest=child.digest,
                media_type=child.media_type,
                size=child.size,
                architecture=child.architecture or None,
                os=child.os or None,
                variant=child.variant,
            )
            for child in resolved.manifests
        ]
        if metadata is None
        else None
    )
    if metadata is None:
        return ImageSummary(
            image=resolved.digest, media_type=resolved.media_type, manifests=children or None, mirror=mirror
        )
    labels = dict(sorted(metadata.labels.items())[:MAX_LABELS])
    return ImageSummary(
        image=resolved.digest,
        media_type=metadata.media_type,
        architecture=metadata.architecture or None,
        os=metadata.os or None,
        variant=metadata.variant,
        created=metadata.created,
        size=metadata.size,
        layer_count=len(metadata.layers),
        labels={key: value[:MAX_LABEL_VALUE] for key, value in labels.items()} or None,
        entrypoint=list(metadata.entrypoint) if metadata.entrypoint is not None else None,
        cmd=list(metadata.cmd) if metadata.cmd is not None else None,
        working_dir=metadata.working_dir,
        user=metadata.user,
        exposed_ports=list(metadata.exposed_ports) or None,
        mirror=mirror,
    )


def _summary_in(stream: ImageStream, digest: str) -> ImageSummary | None:
    for summary in (stream.status.images if stream.status else None) or []:
        if summary.image == digest:
            return summary
    return None


def plan_failure(reference: ImageReference, plan: Plan, failures: list[tuple[Place, Failure]]) -> Failure:
    """Why no place had the image. Without a mirror set the one place's failure as it is; with one, each place's
    failure in order (and why places were left out), with the reason of the last place tried."""
    if not plan.mirrored and len(failures) == 1:
        return failures[0][1]
    said = [
        f"{'mirror' if place.mirror else 'source'} {place.repository}: {failure.message}" for place, failure in failures
    ]
    said += [f"left out {why}" for why in plan.left_out]
    if not failures:
        return Failure("Forbidden", f"{reference.exact()}: no registry may be asked for it ({'; '.join(said)})")
    return Failure(failures[-1][1].reason, f"{reference.exact()}, mirrored under {plan.scope}: {'; '.join(said)}")


def pull_credentials(keyring: list[KeyringEntry], reference: ImageReference) -> tuple[Credentials, ...]:
    """Every pull-secret credential for the reference's registry and path, in the order the kubelet tries them
    (`keyring.lookup`). The registry client tries them in turn; none means anonymous access."""
    matches = lookup(keyring, reference.registry_host, reference.normalized_repository)
    return tuple(Credentials(match.username, match.password) for match in matches)


def _insecure_stream(stream: ImageStream) -> bool:
    return (stream.metadata.get("annotations") or {}).get(INSECURE_REPOSITORY_ANNOTATION) == "true"


def _preferred_platform(annotations: Mapping[str, str]) -> Platform | None:
    arch, os_name = annotations.get(PREFER_ARCH_ANNOTATION, ""), annotations.get(PREFER_OS_ANNOTATION, "")
    if not arch and not os_name:
        return None
    return Platform(os_name, arch)

# Written here because no maintained async registry client fits: aioregistry disables TLS verification by
# default, and python-dxf and oras are synchronous.
"""The operator's async client for the registry HTTP API v2 (OCI distribution), on aiohttp.

It resolves a tag or digest to a digest (HEAD first, GET only for what it has not seen), reads image metadata from
config blobs, picks a platform from multi-arch indexes, and lists tags. It answers Basic and Bearer (Docker token)
challenges, retries transient failures, honours 429 Retry-After, and limits concurrency and rate per registry, the
turns shared fairly by the namespaces it works for (`flights.on_behalf_of`).

Security rules kept here: TLS is verified unless the caller says `insecure`; credentials go only to the registry
that challenged for them (or its token realm) and are dropped on redirects to another origin; a challenge (and so a
token realm) is learned only from an answer of the registry's own origin, never from where a redirect led; they never
appear in logs or exception messages. Several candidate credentials are tried in the order given, the next only when
the registry refused the previous one (401 or 403), and anonymous access only when none is given, as the kubelet
pulls. Cached manifests and image metadata are keyed by registry, repository and digest: a registry that merely
names a digest gets nothing read from another registry or repository.

Pure pieces live in sibling modules (challenges, platforms, retry, links, errors, manifests, limits) and in
core.fairness (the request budget and its fair queue); shared work in flights.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar, cast

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from imagestreams.core.fairness import Admission, Demand
from imagestreams.core.jsonlimits import load_json
from imagestreams.registry import errors
from imagestreams.registry.challenges import Challenge, pick_challenge
from imagestreams.registry.errors import Operation, RegistryError, TransportKind
from imagestreams.registry.flights import SingleFlight, current_demand
from imagestreams.registry.limits import LRUCache
from imagestreams.registry.links import parse_link_next
from imagestreams.registry.manifests import (
    IMAGE_TYPES,
    INDEX_TYPES,
    MANIFEST_ACCEPT,
    ManifestError,
    ParsedImage,
    ParsedIndex,
    ParsedManifest,
    compute_digest,
    digest_matches,
    image_metadata,
    image_name,
    is_digest,
    is_supported_digest,
    media_type_of,
    parse_manifest,
    validate_reference,
    validate_registry,
    validate_repository,
)
from imagestreams.registry.models import (
    ClientSettings,
    Credentials,
    ImageMetadata,
    ImportMode,
    ManifestChild,
    Platform,
    ResolvedImage,
)
from imagestreams.registry.platforms import select_child
from imagestreams.registry.retry import backoff_delay, is_retryable_status, parse_retry_after

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_ERROR_BODY = 64 * 1024
MAX_TOKEN_BODY = 1024 * 1024
DEFAULT_TOKEN_LIFETIME = 60.0  # seconds, when the token server gives no expires_in (token spec default)
# OpenSSL's words for "the server answered the TLS handshake with something else", i.e. plain HTTP.
_HTTP_ONLY_MARKERS = ("wrong_version_number", "wrong version number", "record layer failure", "http request")


class _TransportError(Exception):
    """A failure below HTTP; turned into a RegistryError (with the caller's image name) at the public boundary."""

    def __init__(self, kind: TransportKind, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.retryable = retryable
        self.attempts = 1


class _CredentialsRejected(Exception):
    """The token server refused the given credentials."""


@dataclass(frozen=True)
class _Call:
    """One public call's context: where, what, as whom."""

    registry: str
    repository: str
    image: str  # how messages name the image
    credentials: Credentials | None
    insecure: bool

    @property
    def identity(self) -> str:
        return self.credentials.identity if self.credentials else ""

    def content_key(self, digest: str) -> _ContentKey:
        return (self.registry, self.repository, digest)


# (registry, repository, digest): where a manifest or a config blob was read, and what it is.
_ContentKey = tuple[str, str, str]

# Answers after which the next candidate credential is tried (the kubelet moves on after any failed pull; here a
# not-found, a timeout or a server error would be the same with other credentials, so only a refusal moves on).
_REFUSED_STATUSES = frozenset({401, 403})


@dataclass
class _Endpoint:
    """What a ping taught about a registry: the scheme that works, TLS settings, and its auth challenge."""

    base: URL
    ssl: ssl.SSLContext | bool
    challenge: Challenge | None
    expires_at: float


@dataclass(frozen=True)
class _Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: URL  # after redirects
    attempts: int = 1


@dataclass(frozen=True)
class _Token:
    value: str
    valid_until: float


@dataclass(eq=False)
class _Ticket:
    """A request waiting for its turn at a registry."""

    granted: asyncio.Future[None]


class _RegistryGate:
    """One registry's request budget: concurrency, rate and a pause after a 429 with Retry-After, with the turns
    shared fairly across namespaces (`core.fairness.Admission`; the pure rules live there, the waiting here).

    Nothing is booked ahead: a request that stops waiting (its lookup's deadline passed, its stream was deleted)
    simply leaves the queue, and one that got its turn but was cancelled before sending gives the token back.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self._admission: Admission[_Ticket] = Admission(
            settings.per_registry_rate, settings.per_registry_burst, settings.per_registry_concurrency
        )
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")

    def pause(self, seconds: float) -> None:
        self._admission.pause_until(asyncio.get_running_loop().time() + seconds)

    def namespaces_waiting(self) -> frozenset[str]:
        return self._admission.tenants_waiting()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, float("inf")

    @contextlib.asynccontextmanager
    async def turn(self, demand: Demand) -> AsyncIterator[None]:
        """Wait for this request's turn in the lanes of `demand`'s namespaces, then hold a slot while it runs."""
        loop = asyncio.get_running_loop()
        ticket = _Ticket(loop.create_future())
        self._admission.enqueue(ticket, demand.tenants)
        unfollow = demand.follow(lambda tenants: self._admission.also_for(ticket, tenants))
        demand.queued(loop.time())
        try:
            self._dispatch()
            await ticket.granted
        except asyncio.CancelledError:
            if ticket.granted.done() and not ticket.granted.cancelled():
                self._admission.refund()  # granted, but cancelled before it could be sent
                self._dispatch()
            else:
                self._admission.withdraw(ticket)
            raise
        finally:
            unfollow()
            demand.unqueued(loop.time())
        try:
            yield
        finally:
            self._admission.finished()
            self._dispatch()

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while (ticket := self._admission.admit(now)) is not None:
            if ticket.granted.done():  # its waiter was cancelled and has not withdrawn yet
                self._admission.refund()
                continue
            ticket.granted.set_result(None)
        wake = self._admission.wake_at(now)
        if wake is not None and wake < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = wake
            self._timer = loop.call_at(wake, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        self._dispatch()


def candidate_identities(credentials: Credentials | Sequence[Credentials] | None) -> list[Credentials | None]:
    """Who to try, in order: the credentials given (without repeats, in the kubelet's order), then anonymous.

    Anonymous comes last even when credentials match: OpenShift's import retries anonymously after the registry
    refused the credentials (openshift-apiserver imagestreamimport rest.go, the retry on a 401 "username or
    password"), so a public image behind a stale pull secret still imports. The kubelet would not retry, but a
    workload that pulls by digest never depends on this operator's credentials.
    """
    if credentials is None:
        return [None]
    given: list[Credentials | None] = (
        [credentials] if isinstance(credentials, Credentials) else list(dict.fromkeys(credentials))
    )
    return [*given, None]


def _basic(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return f"Basic {base64.b64encode(raw).decode()}"


def _verifying_context(extra_ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if extra_ca_file:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


def _copy(metadata: ImageMetadata) -> ImageMetadata:
    """Cached metadata is shared; hand out a result whose labels dict the caller may not corrupt the cache with."""
    return replace(metadata, labels=dict(metadata.labels))


def _safe_url(url: URL) -> str:
    """A URL for logs: no query (signed storage URLs carry secrets there) and no user info."""
    return str(url.with_query(None).with_user(None))


async def _read_body(response: aiohttp.ClientResponse, limit: int, *, truncate: bool) -> bytes:
    length = response.content_length
    if not truncate and length is not None and length > limit:
        raise _TransportError(TransportKind.TOO_LARGE, f"{length} bytes, more than {limit} allowed", retryable=False)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        total += len(chunk)
        if total > limit:
            if truncate:
                chunks.append(chunk[: len(chunk) - (total - limit)])
                break
            raise _TransportError(TransportKind.TOO_LARGE, f"more than {limit} bytes", retryable=False)
        chunks.append(chunk)
    return b"".join(chunks)


class _AddressRefused(OSError):
    """The registry policy refused the addresses a name resolved to."""


class _GuardedResolver(aiohttp.abc.AbstractResolver):
    """Resolves names as aiohttp does, then refuses addresses the operator's policy denies, at connect time
    (a name checked earlier could resolve differently now)."""

    def __init__(self, guard: Callable[[str, list[str]], str | None]) -> None:
        self._inner = aiohttp.DefaultResolver()
        self._guard = guard

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[aiohttp.abc.ResolveResult]:
        results = await self._inner.resolve(host, port, family)  # type: ignore[arg-type]
        refusal = self._guard(host, [str(result["host"]) for result in results])
        if refusal:
            raise _AddressRefused(refusal)
        return results

    async def close(self) -> None:
        await self._inner.close()


class RegistryClient:
    """Async registry client; one per operator, shared by all imports. Use as an async context manager or close()."""

    def __init__(
        self, settings: ClientSettings | None = None, *, trace_configs: Sequence[aiohttp.TraceConfig] = ()
    ) -> None:
        self.settings = settings or ClientSettings()
        self._trace_configs = list(trace_configs)
        self._verify_context = _verifying_context(self.settings.extra_ca_file)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._random = random.Random()  # noqa: S311 - jitter, not cryptography
        self._endpoints: dict[tuple[str, bool], _Endpoint] = {}
        self._gates: dict[str, _RegistryGate] = {}
        size = self.settings.cache_size
        self._tokens: LRUCache[tuple[str, str, str, str, str], _Token] = LRUCache(size)
        # Keyed by (registry, repository, digest), never by digest alone: content is immutable, but who may read it
        # is not. A registry that names a digest in a HEAD answer proves nothing about having it, so what was read
        # from one repository (with one namespace's credentials) is never handed out for another.
        self._manifests: LRUCache[_ContentKey, ParsedManifest] = LRUCache(size)
        self._metadata: LRUCache[_ContentKey, ImageMetadata] = LRUCache(size)
        self._flights: SingleFlight[Hashable, Any] = SingleFlight()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        for gate in self._gates.values():
            gate.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- public API --------------------------------------------------------------------------------------------

    async def resolve(
        self,
        registry: str,
        repository: str,
        reference: str,
        *,
        credentials: Credentials | Sequence[Credentials] | None = None,
        insecure: bool = False,
        import_mode: ImportMode = ImportMode.LEGACY,
        preferred: Platform | None = None,
        known_digests: frozenset[str] = frozenset(),
    ) -> ResolvedImage:
        """Resolve a tag or digest. Raises RegistryError; ValueError for a malformed registry, repository or reference.

        `credentials`: one credential, or the candidates in the order to try them (see `_each_credential`).
        `known_digests`: digests the caller has already imported. When the reference's HEAD digest (the index digest
        for a multi-arch tag) is among them and this client has nothing cached, no GET is made and the result has
        `complete=False`. Legacy mode still reads an index it has not cached, to pick the child.
        """
        validate_registry(registry)
        validate_repository(repository)
        validate_reference(reference)
        return await self._each_credential(
            _Call(registry, repository, image_name(registry, repository, reference), None, insecure),
            credentials,
            lambda call: self._resolve(call, reference, import_mode, preferred, known_digests),
        )

    async def list_tags(
        self,
        registry: str,
        repository: str,
        *,
        credentials: Credentials | Sequence[Credentials] | None = None,
        insecure: bool = False,
    ) -> list[str]:
        """All tags of a repository in the registry's order, following Link pagination."""
        validate_registry(registry)
        validate_repository(repository)
        return await self._each_credential(
            _Call(registry, repository, f"{registry}/{repository}", None, insecure), credentials, self._list_tags
        )

    # --- resolution ----------------------------------------------------------------------------------------------

    async def _each_credential(
        self,
        anonymous: _Call,
        credentials: Credentials | Sequence[Credentials] | None,
        operation: Callable[[_Call], Awaitable[T]],
    ) -> T:
        """Run `operation` as each candidate in turn, as the kubelet pulls an image with the credentials that match it.

        The next candidate is tried only when the registry (or its token server) refused the previous one with 401 or
        403; any other answer ends the attempts. Anonymous access is tried only when no candidate is given: never
        after credentials were refused. The caller matched the candidates to this registry; each is sent only where
        `_authed` sends credentials.
        """
        candidates = candidate_identities(credentials)
        refused: RegistryError | None = None
        for number, identity in enumerate(candidates, start=1):
            call = replace(anonymous, credentials=identity)
            try:
                return await self._guarded(call, operation(call))
            except RegistryError as error:
                if error.status not in _REFUSED_STATUSES:
                    raise
                if identity is None:  # anonymous, last: report what the credentials got, if any were tried
                    if refused is None:
                        raise
                    raise errors.all_refused(refused, number - 1, call.registry) from error
                refused = error
                log.info(
                    "%s refused credential %d of %d for %s (%d); trying the next",
                    call.registry,
                    number,
                    len(candidates) - 1,  # the credentials; anonymous comes last
                    call.image,
                    error.status,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _guarded(self, call: _Call, operation: Awaitable[T]) -> T:
        try:
            return await operation
        except _TransportError as exc:
            raise errors.transport_failure(
                exc.kind, exc.detail, image=call.image, registry=call.registry, attempts=exc.attempts
            ) from exc
        except ManifestError as exc:
            raise errors.invalid_content(call.image, str(exc)) from exc

    async def _resolve(
        self,
        call: _Call,
        reference: str,
        import_mode: ImportMode,
        preferred: Platform | None,
        known_digests: frozenset[str],
    ) -> ResolvedImage:
        digest, media_type = await self._head(call, reference)
        if digest is not None:
            cached_metadata = self._metadata.get(call.content_key(digest))
            if cached_metadata is not None:
                return ResolvedImage(digest, cached_metadata.media_type, (), _copy(cached_metadata))
        parsed = self._manifests.get(call.content_key(digest)) if digest is not None else None
        if parsed is None:
            if digest is not None and digest in known_digests:
                if media_type in IMAGE_TYPES:
                    return ResolvedImage(digest, media_type, (), None, complete=False)
                if media_type in INDEX_TYPES and import_mode is ImportMode.PRESERVE_ORIGINAL:
                    return ResolvedImage(digest, media_type, (), None, index_digest=digest, complete=False)
            parsed = await self._get_manifest(call, digest or reference, expected=digest)

        if isinstance(parsed, ParsedIndex):
            if import_mode is ImportMode.PRESERVE_ORIGINAL:
                return ResolvedImage(
                    parsed.digest, parsed.media_type, parsed.children, None, index_digest=parsed.digest
                )
            child = select_child(parsed.children, preferred, self.settings.default_platform)
            if child is None:
                raise errors.invalid_content(call.image, "the index lists no manifests")
            metadata = await self._child_metadata(call, child, known_digests)
            return ResolvedImage(
                child.digest,
                child.media_type or (metadata.media_type if metadata else ""),
                parsed.children,
                metadata,
                index_digest=parsed.digest,
                complete=metadata is not None,
            )
        metadata = await self._image_metadata(call, parsed)
        return ResolvedImage(parsed.digest, parsed.media_type, (), metadata)

    async def _head(self, call: _Call, reference: str) -> tuple[str | None, str]:
        """HEAD the manifest: its digest (None when the registry does not say) and media type."""
        requested = reference if is_digest(reference) else None
        path = f"/v2/{call.repository}/manifests/{reference}"
        head = await self._authed(call, "HEAD", path, {"Accept": MANIFEST_ACCEPT}, max_body=0)
        if head.status in (405, 501):  # HEAD not supported: the caller falls back to GET
            return requested, ""
        if head.status != 200:
            raise self._status_error(call, head, Operation.MANIFEST)
        header = (head.headers.get("Docker-Content-Digest") or "").strip()
        digest = header if is_supported_digest(header) else None
        media_type = media_type_of(head.headers.get("Content-Type"))
        if requested is None:
            return digest, media_type
        # A registry may name the same content with another algorithm; only a same-algorithm mismatch is an error.
        if digest is not None and digest.partition(":")[0] == requested.partition(":")[0] and digest != requested:
            raise errors.integrity_error(call.image, requested, digest)
        return requested, media_type

    async def _get_manifest(self, call: _Call, reference: str, *, expected: str | None) -> ParsedManifest:
        """GET a manifest (by digest whenever the digest is known), verify its digest, parse and cache it."""

        async def fetch() -> ParsedManifest:
            path = f"/v2/{call.repository}/manifests/{reference}"
            response = await self._authed(
                call, "GET", path, {"Accept": MANIFEST_ACCEPT}, max_body=self.settings.max_manifest_bytes
            )
            if response.status != 200:
                raise self._status_error(call, response, Operation.MANIFEST)
            claimed = (response.headers.get("Docker-Content-Digest") or "").strip()
            wanted = expected or (claimed if is_supported_digest(claimed) else None)
            if wanted is not None:
                matches, actual = digest_matches(response.body, wanted)
                if not matches:
                    raise errors.integrity_error(call.image, wanted, actual)
                digest = wanted
            else:
                digest = compute_digest(response.body)
            parsed = parse_manifest(response.body, response.headers.get("Content-Type"), digest)
            self._manifests.put(call.content_key(digest), parsed)
            return parsed

        key = ("manifest", call.registry, call.repository, reference, call.identity, call.insecure)
        return await self._single_flight(key, fetch)

    async def _child_metadata(
        self, call: _Call, child: ManifestChild, known_digests: frozenset[str]
    ) -> ImageMetadata | None:
        cached = self._metadata.get(call.content_key(child.digest))
        if cached is not None:
            return _copy(cached)
        if child.digest in known_digests:
            return None
        parsed = self._manifests.get(call.content_key(child.digest)) or await self._get_manifest(
            call, child.digest, expected=child.digest
        )
        if not isinstance(parsed, ParsedImage):
            raise errors.invalid_content(
                call.image, f"the index entry {child.digest} is itself an index; nested indexes are not supported"
            )
        return await self._image_metadata(call, parsed)

    async def _image_metadata(self, call: _Call, manifest: ParsedImage) -> ImageMetadata:
        cached = self._metadata.get(call.content_key(manifest.digest))
        if cached is not None:
            return _copy(cached)

        async def fetch() -> ImageMetadata:
            path = f"/v2/{call.repository}/blobs/{manifest.config.digest}"
            response = await self._authed(call, "GET", path, {}, max_body=self.settings.max_config_bytes)
            if response.status != 200:
                raise self._status_error(call, response, Operation.BLOB)
            matches, actual = digest_matches(response.body, manifest.config.digest)
            if not matches:
                raise errors.integrity_error(call.image, manifest.config.digest, actual)
            metadata = image_metadata(manifest, response.body)
            self._metadata.put(call.content_key(manifest.digest), metadata)
            return metadata

        key = ("config", call.registry, call.repository, manifest.digest, call.identity, call.insecure)
        return _copy(await self._single_flight(key, fetch))

    async def _list_tags(self, call: _Call) -> list[str]:
        endpoint = await self._endpoint(call)
        target: str | URL = f"/v2/{call.repository}/tags/list"
        tags: list[str] = []
        seen: set[str] = set()
        for _ in range(self.settings.max_tag_pages):
            response = await self._authed(
                call, "GET", target, {"Accept": "application/json"}, max_body=self.settings.max_manifest_bytes
            )
            if response.status != 200:
                raise self._status_error(call, response, Operation.TAGS)
            try:
                document = load_json(response.body)
            except (ValueError, UnicodeDecodeError):
                raise errors.invalid_content(call.image, "the tag list is not valid JSON") from None
            page = document.get("tags") if isinstance(document, dict) else None
            if page is None:
                page = []
            if not isinstance(page, list) or not all(isinstance(tag, str) for tag in page):
                raise errors.invalid_content(call.image, "the tag list is not a list of strings")
            for tag in page:
                if tag not in seen:
                    seen.add(tag)
                    tags.append(tag)
            link = parse_link_next(response.headers.get("Link"))
            if not link:
                return tags
            try:
                next_url = response.url.join(URL(link, encoded=True))
            except ValueError:
                raise errors.invalid_content(call.image, "the tag list's next-page link is not a URL") from None
            if next_url.origin() != endpoint.base.origin():
                raise errors.invalid_content(call.image, "the tag list's next page is on another host; refused")
            target = next_url
        raise errors.invalid_content(call.image, f"the tag list has more than {self.settings.max_tag_pages} pages")

    def _status_error(self, call: _Call, response: _Response, operation: Operation) -> RegistryError:
        return errors.error_for_status(
            response.status,
            operation=operation,
            image=call.image,
            registry=call.registry,
            body=response.body,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            attempts=response.attempts,
            credentials_given=call.credentials is not None,
        )

    # --- ping and auth -------------------------------------------------------------------------------------------

    async def _endpoint(self, call: _Call) -> _Endpoint:
        endpoint = self._endpoints.get((call.registry, call.insecure))
        if endpoint is not None and endpoint.expires_at > asyncio.get_running_loop().time():
            return endpoint
        return await self._single_flight(("ping", call.registry, call.insecure), lambda: self._ping(call))

    async def _ping(self, call: _Call) -> _Endpoint:
        """GET /v2/ over https (verified, or unverified when insecure), then plain http when insecure."""
        candidates: list[tuple[str, ssl.SSLContext | bool]] = (
            [("https", False), ("http", False)] if call.insecure else [("https", self._verify_context)]
        )
        for number, (scheme, ssl_param) in enumerate(candidates, start=1):
            last = number == len(candidates)
            base = URL.build(scheme=scheme, authority=call.registry)
            try:
                response = await self._fetch(
                    call, "GET", base.with_path("/v2/"), {}, ssl_param=ssl_param, max_body=MAX_ERROR_BODY,
                    attempts=None if last else 1,
                )  # fmt: skip
            except _TransportError as exc:
                if last:
                    raise
                log.debug("ping %s over %s failed (%s); trying the next scheme", call.registry, scheme, exc.kind)
                continue
            return self._learn_endpoint(call, base, ssl_param, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _learn_endpoint(
        self, call: _Call, base: URL, ssl_param: ssl.SSLContext | bool, response: _Response
    ) -> _Endpoint:
        status = response.status
        speaks_v2 = "Docker-Distribution-API-Version" in response.headers
        if not (200 <= status < 300 or status in (401, 403) or speaks_v2):
            if status == 429 or is_retryable_status(status):
                raise errors.error_for_status(
                    status,
                    operation=Operation.PING,
                    image=call.registry,
                    registry=call.registry,
                    body=response.body,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    attempts=response.attempts,
                )
            raise errors.not_v2_registry(call.registry, status)
        challenge = None
        if status == 401:
            if response.url.origin() == base.origin():
                challenge = pick_challenge(response.headers.getall("WWW-Authenticate", ()))
            else:
                # A redirect led the ping to another origin: its challenge names that origin's token realm, and
                # adopting it would send this registry's credentials there. Only the registry's own answers count.
                log.warning(
                    "the ping of %s was redirected to %s; its auth challenge is ignored",
                    call.registry,
                    _safe_url(response.url.origin()),
                )
        endpoint = _Endpoint(
            base=base,
            ssl=ssl_param,
            challenge=challenge.without_request_params() if challenge else None,
            expires_at=asyncio.get_running_loop().time() + self.settings.ping_ttl,
        )
        self._endpoints[(call.registry, call.insecure)] = endpoint
        return endpoint

    async def _authed(
        self, call: _Call, method: str, target: str | URL, headers: Mapping[str, str], *, max_body: int
    ) -> _Response:
        """A request to the registry as `call.credentials` (anonymous when None), answering auth challenges.

        The cached or pre-fetched authorization first; on 401 a fresh token once (if the token came from the cache or
        the challenge changed). Never anonymously after credentials were refused: that is `_each_credential`'s
        decision, made as the kubelet makes it.
        """
        endpoint = await self._endpoint(call)
        url = endpoint.base.with_path(target, encoded=True) if isinstance(target, str) else target
        identity = call.credentials
        scope, fresh = f"repository:{call.repository}:pull", False
        for _ in range(2):
            challenge = endpoint.challenge
            try:
                authorization, cached = await self._authorization(
                    call, endpoint, challenge, scope, identity, fresh=fresh
                )
            except _CredentialsRejected:
                log.info("the token server for %s refused the credentials given for it", call.registry)
                break
            request_headers = dict(headers)
            if authorization:
                request_headers["Authorization"] = authorization
            response = await self._fetch(call, method, url, request_headers, ssl_param=endpoint.ssl, max_body=max_body)
            if response.status != 401:
                return response
            new = None
            if response.url.origin() == endpoint.base.origin():  # a challenge from another host is not ours
                new = pick_challenge(response.headers.getall("WWW-Authenticate", ()))
            if new is not None:
                endpoint.challenge = new.without_request_params()
                if new.scheme == "bearer" and new.scope:
                    scope = new.scope
            if fresh or not (cached or (new is not None and not new.same_authority(challenge))):
                break
            fresh = True
        raise errors.unauthorized(call.image, call.registry, credentials_given=identity is not None)

    async def _authorization(
        self,
        call: _Call,
        endpoint: _Endpoint,
        challenge: Challenge | None,
        scope: str,
        identity: Credentials | None,
        *,
        fresh: bool,
    ) -> tuple[str | None, bool]:
        """The Authorization value answering `challenge` as `identity`, and whether it came from the token cache."""
        if challenge is None:
            return None, False
        if challenge.scheme == "basic":
            return (_basic(identity) if identity else None), False
        if challenge.scheme != "bearer" or not challenge.realm:
            return None, False
        key = (call.registry, challenge.realm, challenge.service or "", scope, identity.identity if identity else "")
        if not fresh:
            token = self._tokens.get(key)
            if token is not None and token.valid_until > asyncio.get_running_loop().time():
                return f"Bearer {token.value}", True
        self._tokens.pop(key)
        value = await self._single_flight(
            ("token", *key),
            lambda: self._fetch_token(
                call, endpoint=endpoint, challenge=challenge, scope=scope, identity=identity, key=key
            ),
        )
        return f"Bearer {value}", False

    async def _fetch_token(
        self,
        call: _Call,
        *,
        endpoint: _Endpoint,
        challenge: Challenge,
        scope: str,
        identity: Credentials | None,
        key: tuple[str, str, str, str, str],
    ) -> str:
        where = f"{call.registry}/{call.repository}"
        realm = challenge.realm or ""
        try:
            url = URL(realm)
        except ValueError:
            raise errors.invalid_content(where, "the registry's token realm is not a URL") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise errors.invalid_content(where, f"the registry's token realm {realm!r} is not an http(s) URL")
        if url.scheme == "http" and not (call.insecure or endpoint.base.scheme == "http"):
            raise errors.invalid_content(
                where, f"refused the token realm {realm!r}: a registry reached over https must use an https realm"
            )
        query = {"scope": scope}
        if challenge.service:
            query["service"] = challenge.service
        url = url.with_user(None).update_query(query)
        headers = {"Accept": "application/json"}
        if identity is not None:
            headers["Authorization"] = _basic(identity)
        ssl_param: ssl.SSLContext | bool = False if call.insecure else self._verify_context
        response = await self._fetch(call, "GET", url, headers, ssl_param=ssl_param, max_body=MAX_TOKEN_BODY)
        if response.status in (401, 403) and identity is not None:
            raise _CredentialsRejected
        if response.status != 200:
            raise errors.error_for_status(
                response.status,
                operation=Operation.TOKEN,
                image=where,
                registry=call.registry,
                body=response.body,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                attempts=response.attempts,
                credentials_given=call.credentials is not None,
            )
        try:
            document = load_json(response.body)
        except (ValueError, UnicodeDecodeError):
            raise errors.invalid_content(where, "the token server's answer is not JSON") from None
        token = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise errors.invalid_content(where, "the token server's answer holds no token")
        expires_in = document.get("expires_in")
        lifetime = DEFAULT_TOKEN_LIFETIME
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            lifetime = float(expires_in)
        margin = min(self.settings.token_expiry_margin, lifetime / 2)
        self._tokens.put(key, _Token(token, asyncio.get_running_loop().time() + lifetime - margin))
        return token

    # --- HTTP: retries, redirects, limits ------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the registry client is closed")
        if self._session is None:
            settings = self.settings
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
                ),
                connector=aiohttp.TCPConnector(
                    limit=100,
                    ttl_dns_cache=300,
                    resolver=_GuardedResolver(settings.address_guard) if settings.address_guard else None,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": settings.user_agent},
                trust_env=settings.trust_env,
                trace_configs=self._trace_configs or None,
            )
        return self._session

    def _gate_for(self, registry: str) -> _RegistryGate:
        gate = self._gates.get(registry)
        if gate is None:
            gate = self._gates[registry] = _RegistryGate(self.settings)
        return gate

    def namespaces_waiting(self, registry: str) -> frozenset[str]:
        """The namespaces with requests waiting for a turn at `registry` now (see `flights.on_behalf_of`)."""
        gate = self._gates.get(registry)
        return gate.namespaces_waiting() if gate else frozenset()

    def _backoff(self, attempt: int) -> float:
        settings = self.settings
        return backoff_delay(attempt, settings.backoff_base, settings.backoff_max, self._random.random())

    async def _fetch(
        self,
        call: _Call,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        *,
        ssl_param: ssl.SSLContext | bool,
        max_body: int,
        attempts: int | None = None,
    ) -> _Response:
        """One logical request: redirects followed by hand, retries on network errors, 5xx and 429."""
        settings = self.settings
        limit = attempts or settings.max_attempts
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._follow(call, method, url, headers, ssl_param=ssl_param, max_body=max_body)
            except _TransportError as exc:
                exc.attempts = attempt
                if not exc.retryable or attempt >= limit:
                    raise
                delay = self._backoff(attempt)
                log.info("%s %s failed (%s); retry %d in %.2f s", method, _safe_url(url), exc.kind, attempt, delay)
                await asyncio.sleep(delay)
                continue
            response = replace(response, attempts=attempt)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.status == 429:
                if attempt >= limit or (retry_after is not None and retry_after > settings.max_retry_after):
                    return response
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                log.info("%s answered 429; pausing its requests for %.2f s", call.registry, delay)
                self._gate_for(call.registry).pause(delay)  # every request to this registry waits
                continue
            if is_retryable_status(response.status) and attempt < limit:
                if retry_after is not None and retry_after <= settings.max_retry_after:
                    delay = retry_after
                else:
                    delay = self._backoff(attempt)
                log.info("%s %s answered %d; retry in %.2f s", method, _safe_url(url), response.status, delay)
                await asyncio.sleep(delay)
                continue
            return response

    async def _follow(
        self,
        call: _Call,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        *,
        ssl_param: ssl.SSLContext | bool,
        max_body: int,
    ) -> _Response:
        """Send, following up to MAX_REDIRECTS redirects; Authorization is dropped once the origin changes."""
        origin = url.origin()
        current, current_method, current_headers = url, method, dict(headers)
        for hop in range(MAX_REDIRECTS + 1):
            response = await self._send(
                call, current_method, current, current_headers, ssl_param=ssl_param, max_body=max_body
            )
            location = response.headers.get("Location")
            if response.status not in REDIRECT_STATUSES or not location:
                return response
            if hop == MAX_REDIRECTS:
                raise _TransportError(TransportKind.REDIRECT, f"more than {MAX_REDIRECTS} redirects", retryable=False)
            try:
                target = current.join(URL(location, encoded=True))
            except ValueError:
                raise _TransportError(TransportKind.REDIRECT, "the Location is not a URL", retryable=False) from None
            if target.scheme not in ("http", "https") or not target.host:
                raise _TransportError(TransportKind.REDIRECT, "to a URL that is not http(s)", retryable=False)
            if current.scheme == "https" and target.scheme == "http" and not call.insecure:
                raise _TransportError(TransportKind.REDIRECT, "from https to plain http", retryable=False)
            if target.origin() != origin:
                current_headers.pop("Authorization", None)
            if response.status == 303 and current_method != "HEAD":
                current_method = "GET"
            log.debug("%s %s redirected to %s", current_method, _safe_url(current), _safe_url(target))
            current = target
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_host(self, url: URL) -> None:
        """The operator's policy for every host contacted: a redirect or a token realm may name a host the
        registry itself would not be allowed to be."""
        guard = self.settings.host_guard
        refusal = guard(f"{url.host}:{url.port}" if url.port else str(url.host)) if guard else None
        if refusal:
            raise RegistryError(errors.Reason.FORBIDDEN, refusal)

    async def _send(
        self,
        call: _Call,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        *,
        ssl_param: ssl.SSLContext | bool,
        max_body: int,
    ) -> _Response:
        """One HTTP exchange under the registry's limits; the body is read (bounded) before the limits are left."""
        self._check_host(url)
        try:
            async with (
                self._gate_for(call.registry).turn(current_demand()),
                self._http().request(method, url, headers=headers, ssl=ssl_param, allow_redirects=False) as response,
            ):
                if method == "HEAD" or response.status in REDIRECT_STATUSES:
                    body = b""
                elif response.status >= 400:
                    body = await _read_body(response, MAX_ERROR_BODY, truncate=True)
                else:
                    body = await _read_body(response, max_body, truncate=False)
                log.debug("%s %s -> %d", method, _safe_url(url), response.status)
                return _Response(response.status, response.headers, body, url)
        except _TransportError:
            raise
        except TimeoutError as exc:
            raise _TransportError(TransportKind.TIMEOUT, "timed out", retryable=True) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise _TransportError(TransportKind.TLS_VERIFY, str(exc.certificate_error), retryable=False) from exc
        except aiohttp.ClientSSLError as exc:
            text = str(exc)
            if any(marker in text.lower() for marker in _HTTP_ONLY_MARKERS):
                raise _TransportError(TransportKind.HTTP_ONLY, text, retryable=False) from exc
            raise _TransportError(TransportKind.TLS, text, retryable=False) from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, _AddressRefused):
                raise RegistryError(errors.Reason.FORBIDDEN, str(exc.os_error)) from None
            raise _TransportError(TransportKind.NETWORK, str(exc) or type(exc).__name__, retryable=True) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _TransportError(TransportKind.NETWORK, str(exc) or type(exc).__name__, retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise _TransportError(TransportKind.NETWORK, str(exc) or type(exc).__name__, retryable=False) from exc

    async def _single_flight(self, key: Hashable, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run `factory` once for concurrent callers with the same key; all get its result or its exception. It acts
        for every caller's namespace, and stops when no caller waits for it any more (flights.SingleFlight)."""
        return cast(T, await self._flights.run(key, factory))

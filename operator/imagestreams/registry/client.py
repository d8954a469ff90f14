# Written here because no maintained async registry client fits: aioregistry disables TLS verification by
# default, and python-dxf and oras are synchronous.
"""The operator's async client for the registry HTTP API v2 (OCI distribution), on aiohttp.

It resolves a tag or digest to a digest (HEAD first, GET only for what it has not seen; a tag never imported is
read with a GET at once, except where GETs count against a quota), reads image metadata from
config blobs, picks a platform from multi-arch indexes, and lists tags. Three layers, each on the one below:

- `client` (here): what to ask for and what the answers mean; caches and shared lookups.
- `auth`: which credentials to try in which order, ping and auth challenges, Basic and Bearer (Docker token).
- `transport`: the HTTP session, TLS, redirects with host checks, retries, 429 pauses, per-registry limits whose
  turns are shared fairly by the namespaces the client works for (`flights.on_behalf_of`).

Cached manifests and image metadata are keyed by registry, repository and digest: a registry that merely names a
digest gets nothing read from another registry or repository.

Pure pieces live in sibling modules (challenges, platforms, retry, links, errors, manifests), in core.fairness (the
request budget and its fair queue) and core.caches; shared work in flights.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar, cast

import aiohttp
from yarl import URL

from imagestreams.core.caches import TTLCache
from imagestreams.core.jsonlimits import load_json
from imagestreams.registry import errors
from imagestreams.registry.auth import Authenticator, Call, each_credential
from imagestreams.registry.errors import Operation, RegistryError
from imagestreams.registry.flights import SingleFlight
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
from imagestreams.registry.retry import parse_retry_after
from imagestreams.registry.transport import Response, Transport, TransportError

log = logging.getLogger(__name__)

T = TypeVar("T")

# (registry, repository, digest): where a manifest or a config blob was read, and what it is.
_ContentKey = tuple[str, str, str]


def _content_key(call: Call, digest: str) -> _ContentKey:
    return (call.registry, call.repository, digest)


def _copy(metadata: ImageMetadata) -> ImageMetadata:
    """Cached metadata is shared; hand out a result whose labels dict the caller may not corrupt the cache with."""
    return replace(metadata, labels=dict(metadata.labels))


class RegistryClient:
    """Async registry client; one per operator, shared by all imports. Use as an async context manager or close()."""

    def __init__(
        self, settings: ClientSettings | None = None, *, trace_configs: Sequence[aiohttp.TraceConfig] = ()
    ) -> None:
        self.settings = settings or ClientSettings()
        self._flights: SingleFlight[Hashable, Any] = SingleFlight()
        self._transport = Transport(self.settings, trace_configs)
        self._auth = Authenticator(self.settings, self._transport, self._flights)
        size = self.settings.cache_size
        # Keyed by (registry, repository, digest), never by digest alone: content is immutable, but who may read it
        # is not. A registry that names a digest in a HEAD answer proves nothing about having it, so what was read
        # from one repository (with one namespace's credentials) is never handed out for another. Content never
        # changes, so entries never expire; the least recently used go first.
        self._manifests: TTLCache[_ContentKey, ParsedManifest] = TTLCache(size)
        self._metadata: TTLCache[_ContentKey, ImageMetadata] = TTLCache(size)

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    def namespaces_waiting(self, registry: str) -> frozenset[str]:
        """The namespaces with requests waiting for a turn at `registry` now (see `flights.on_behalf_of`)."""
        return self._transport.namespaces_waiting(registry)

    def request_limits(self, registry: str) -> tuple[float, int]:
        """`registry`'s request limits now, as they adapted to its answers: requests per second (math.inf: no rate
        limit) and requests in flight."""
        return self._transport.request_limits(registry)

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
        never_imported: bool = False,
    ) -> ResolvedImage:
        """Resolve a tag or digest. Raises RegistryError; ValueError for a malformed registry, repository or reference.

        `credentials`: one credential, or the candidates in the order to try them (see `auth.each_credential`).
        `known_digests`: digests the caller has already imported. When the reference's HEAD digest (the index digest
        for a multi-arch tag) is among them and this client has nothing cached, no GET is made and the result has
        `complete=False`. Legacy mode still reads an index it has not cached, to pick the child.
        `never_imported`: the caller has no image for this tag yet, so the manifest is read with a GET at once and
        no HEAD is sent first, unless the registry counts GETs against a quota (Docker Hub): there the HEAD may find
        the digest cached and save a pull. A new tag then costs two requests rather than three (bench/throughput.py).
        """
        validate_registry(registry)
        validate_repository(repository)
        validate_reference(reference)
        return await self._each_credential(
            Call(registry, repository, image_name(registry, repository, reference), None, insecure),
            credentials,
            lambda call: self._resolve(
                call, reference, import_mode, preferred, known_digests, never_imported=never_imported
            ),
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
            Call(registry, repository, f"{registry}/{repository}", None, insecure), credentials, self._list_tags
        )

    # --- resolution ----------------------------------------------------------------------------------------------

    async def _each_credential(
        self,
        anonymous: Call,
        credentials: Credentials | Sequence[Credentials] | None,
        operation: Callable[[Call], Awaitable[T]],
    ) -> T:
        """Run `operation` as each credential attempt in turn (`auth.each_credential`), failing with RegistryError."""
        return await each_credential(anonymous, credentials, lambda call: self._guarded(call, operation(call)))

    async def _guarded(self, call: Call, operation: Awaitable[T]) -> T:
        try:
            return await operation
        except TransportError as exc:
            raise errors.transport_failure(
                exc.kind, exc.detail, image=call.image, registry=call.registry, attempts=exc.attempts
            ) from exc
        except ManifestError as exc:
            raise errors.invalid_content(call.image, str(exc)) from exc

    async def _resolve(
        self,
        call: Call,
        reference: str,
        import_mode: ImportMode,
        preferred: Platform | None,
        known_digests: frozenset[str],
        *,
        never_imported: bool,
    ) -> ResolvedImage:
        if never_imported and not is_digest(reference) and not self._transport.counts_pulls(call.registry):
            manifest = await self._get_manifest(call, reference, expected=None)
            return await self._resolved(call, manifest, import_mode, preferred, known_digests)
        digest, media_type = await self._head(call, reference)
        if digest is not None:
            cached_metadata = self._metadata.get(_content_key(call, digest))
            if cached_metadata is not None:
                return ResolvedImage(digest, cached_metadata.media_type, (), _copy(cached_metadata))
        parsed = self._manifests.get(_content_key(call, digest)) if digest is not None else None
        if parsed is None:
            if digest is not None and digest in known_digests:
                if media_type in IMAGE_TYPES:
                    return ResolvedImage(digest, media_type, (), None, complete=False)
                if media_type in INDEX_TYPES and import_mode is ImportMode.PRESERVE_ORIGINAL:
                    return ResolvedImage(digest, media_type, (), None, index_digest=digest, complete=False)
            parsed = await self._get_manifest(call, digest or reference, expected=digest)
        return await self._resolved(call, parsed, import_mode, preferred, known_digests)

    async def _resolved(
        self,
        call: Call,
        parsed: ParsedManifest,
        import_mode: ImportMode,
        preferred: Platform | None,
        known_digests: frozenset[str],
    ) -> ResolvedImage:
        """The result for the manifest a reference named: an image, or an index and (Legacy mode) its child."""
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

    async def _head(self, call: Call, reference: str) -> tuple[str | None, str]:
        """HEAD the manifest: its digest (None when the registry does not say) and media type."""
        requested = reference if is_digest(reference) else None
        path = f"/v2/{call.repository}/manifests/{reference}"
        head = await self._auth.request(call, "HEAD", path, {"Accept": MANIFEST_ACCEPT}, max_body=0)
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

    async def _get_manifest(self, call: Call, reference: str, *, expected: str | None) -> ParsedManifest:
        """GET a manifest (by digest whenever the digest is known), verify its digest, parse and cache it."""

        async def fetch() -> ParsedManifest:
            path = f"/v2/{call.repository}/manifests/{reference}"
            response = await self._auth.request(
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
            self._manifests.put(_content_key(call, digest), parsed)
            return parsed

        key = ("manifest", call.registry, call.repository, reference, call.identity, call.insecure)
        return await self._single_flight(key, fetch)

    async def _child_metadata(
        self, call: Call, child: ManifestChild, known_digests: frozenset[str]
    ) -> ImageMetadata | None:
        cached = self._metadata.get(_content_key(call, child.digest))
        if cached is not None:
            return _copy(cached)
        if child.digest in known_digests:
            return None
        parsed = self._manifests.get(_content_key(call, child.digest)) or await self._get_manifest(
            call, child.digest, expected=child.digest
        )
        if not isinstance(parsed, ParsedImage):
            raise errors.invalid_content(
                call.image, f"the index entry {child.digest} is itself an index; nested indexes are not supported"
            )
        return await self._image_metadata(call, parsed)

    async def _image_metadata(self, call: Call, manifest: ParsedImage) -> ImageMetadata:
        cached = self._metadata.get(_content_key(call, manifest.digest))
        if cached is not None:
            return _copy(cached)

        async def fetch() -> ImageMetadata:
            path = f"/v2/{call.repository}/blobs/{manifest.config.digest}"
            response = await self._auth.request(call, "GET", path, {}, max_body=self.settings.max_config_bytes)
            if response.status != 200:
                raise self._status_error(call, response, Operation.BLOB)
            matches, actual = digest_matches(response.body, manifest.config.digest)
            if not matches:
                raise errors.integrity_error(call.image, manifest.config.digest, actual)
            metadata = image_metadata(manifest, response.body)
            self._metadata.put(_content_key(call, manifest.digest), metadata)
            return metadata

        key = ("config", call.registry, call.repository, manifest.digest, call.identity, call.insecure)
        return _copy(await self._single_flight(key, fetch))

    async def _list_tags(self, call: Call) -> list[str]:
        endpoint = await self._auth.endpoint(call)
        target: str | URL = f"/v2/{call.repository}/tags/list"
        tags: list[str] = []
        seen: set[str] = set()
        for _ in range(self.settings.max_tag_pages):
            response = await self._auth.request(
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

    def _status_error(self, call: Call, response: Response, operation: Operation) -> RegistryError:
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

    async def _single_flight(self, key: Hashable, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run `factory` once for concurrent callers with the same key; all get its result or its exception. It acts
        for every caller's namespace, and stops when no caller waits for it any more (flights.SingleFlight)."""
        return cast(T, await self._flights.run(key, factory))

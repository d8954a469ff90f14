"""The client's HTTP policy against small local aiohttp servers on 127.0.0.1.

These servers misbehave on purpose (503, 429, redirects, slow answers, bad digests) to test the client's retry,
redirect and auth policy. They make no claim about how real registries behave; the integration tests use the real
registry for that.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import re
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from imagestreams.api.settings import DEFAULT_DENIED_REGISTRIES
from imagestreams.core.registrypolicy import RegistryPolicy
from imagestreams.localcluster.certs import CertificateAuthority, loopback_server_pair
from imagestreams.localcluster.images import (
    Image,
    ImageFormat,
    build_index,
    sha256_digest,
    unique_image,
)
from imagestreams.localcluster.images import (
    Platform as PushPlatform,
)
from imagestreams.registry import (
    ClientSettings,
    Credentials,
    Platform,
    Reason,
    RegistryClient,
    RegistryError,
    on_behalf_of,
)

FAST = ClientSettings(backoff_base=0.01, backoff_max=0.05, read_timeout=2.0, connect_timeout=2.0, per_registry_rate=0)
PATH = re.compile(r"^/v2/(?P<repo>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$")
TAGS = re.compile(r"^/v2/(?P<repo>.+)/tags/list$")
PASSWORD = "correct-horse-battery"
READER = Credentials("reader", PASSWORD)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


def _errors(code: str, message: str) -> str:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]})


@dataclass
class FakeRegistry:
    """An in-memory registry (manifests, blobs, tags) with switchable auth and injectable faults."""

    auth: str | None = None  # None, "basic" or "bearer"
    anonymous_read: bool = False  # with auth: anonymous may read, wrong credentials still get 401
    realm: str = ""
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    faults: dict[tuple[str, str], list[Handler]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    omit_digest: bool = False
    corrupt: bool = False
    blob_redirect: str | None = None  # base URL blobs redirect to
    page_size: int | None = None
    delay: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0

    def push(self, repository: str, tag: str, image: Image) -> str:
        for blob in (image.config, *image.layers):
            self.blobs[blob.digest] = blob.data
        self._put(repository, tag, image.manifest, image.media_type)
        return image.digest

    def push_index(self, repository: str, tag: str, images: list[Image], image_format: ImageFormat) -> str:
        index = build_index(images, image_format)
        for image in images:
            self.push(repository, image.digest, image)
        self._put(repository, tag, index.manifest, index.media_type)
        return index.digest

    def _put(self, repository: str, reference: str, body: bytes, media_type: str) -> None:
        self.manifests[(repository, reference)] = (body, media_type)
        self.manifests[(repository, sha256_digest(body))] = (body, media_type)
        if not reference.startswith("sha256:"):
            self.tags.setdefault(repository, []).append(reference)

    def fail(self, method: str, path: str, *responses: Handler) -> None:
        self.faults.setdefault((method, path), []).extend(responses)

    def count(self, method: str, fragment: str) -> int:
        return sum(1 for s in self.seen if s.method == method and fragment in s.path)

    def pings(self) -> int:
        return sum(1 for s in self.seen if s.path == "/v2/")

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization")
        if self.auth is None:
            return True
        if header is None:
            return self.anonymous_read and request.path != "/v2/"  # like distribution: the ping always challenges
        if self.auth == "basic" and header.startswith("Basic "):
            return base64.b64decode(header[6:]).decode() == f"reader:{PASSWORD}"
        if self.auth == "bearer" and header.startswith("Bearer "):
            return header[7:] in self.tokens
        return False

    def _challenge(self, repository: str | None) -> str:
        if self.auth == "basic":
            return 'Basic realm="fake registry"'
        scope = f',scope="repository:{repository}:pull"' if repository else ""
        return f'Bearer realm="{self.realm}",service="fake"{scope}'

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path, dict(request.query), request.headers.get("Authorization")))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            queued = self.faults.get((request.method, request.path))
            if queued:
                return await queued.pop(0)(request)
            return self._answer(request)
        finally:
            self.in_flight -= 1

    def _answer(self, request: web.Request) -> web.StreamResponse:
        match = PATH.match(request.path) or TAGS.match(request.path)
        repository = match["repo"] if match else None
        if not self._authorized(request):
            return web.Response(
                status=401,
                text=_errors("UNAUTHORIZED", "authentication required"),
                headers={"WWW-Authenticate": self._challenge(repository)},
                content_type="application/json",
            )
        if request.path == "/v2/":
            return web.json_response({}, headers={"Docker-Distribution-API-Version": "registry/2.0"})
        if match is None or repository is None:
            return web.Response(status=404, text=_errors("NOT_FOUND", "no route"), content_type="application/json")
        if "kind" not in match.groupdict():
            return self._tags(request, repository)
        if match["kind"] == "blobs":
            return self._blob(match["ref"])
        return self._manifest(repository, match["ref"])

    def _manifest(self, repository: str, reference: str) -> web.Response:
        found = self.manifests.get((repository, reference))
        if found is None:
            return web.Response(
                status=404, text=_errors("MANIFEST_UNKNOWN", "manifest unknown"), content_type="application/json"
            )
        body, media_type = found
        headers = {} if self.omit_digest else {"Docker-Content-Digest": sha256_digest(body)}
        if self.corrupt:
            body = body.replace(b"schemaVersion", b"schemaVersion ")
        return web.Response(body=body, headers={**headers, "Content-Type": media_type})

    def _blob(self, digest: str) -> web.Response:
        if self.blob_redirect:
            raise web.HTTPTemporaryRedirect(f"{self.blob_redirect}/storage/{digest}")
        if digest not in self.blobs:
            return web.Response(
                status=404, text=_errors("BLOB_UNKNOWN", "blob unknown"), content_type="application/json"
            )
        return web.Response(body=self.blobs[digest], content_type="application/octet-stream")

    def _tags(self, request: web.Request, repository: str) -> web.Response:
        tags = sorted(self.tags.get(repository, []))
        if repository not in self.tags:
            return web.Response(status=404, text=_errors("NAME_UNKNOWN", "unknown"), content_type="application/json")
        last = request.query.get("last")
        if last:
            tags = [tag for tag in tags if tag > last]
        headers = {}
        if self.page_size and len(tags) > self.page_size:
            tags = tags[: self.page_size]
            headers["Link"] = f'</v2/{repository}/tags/list?n={self.page_size}&last={tags[-1]}>; rel="next"'
        return web.json_response({"name": repository, "tags": tags}, headers=headers)


@dataclass
class TokenServer:
    registry: FakeRegistry
    field_name: str = "token"
    expires_in: int | None = 300
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization")
        self.seen.append(Seen(request.method, request.path, dict(request.query), header))
        if header is not None and base64.b64decode(header[6:]).decode() != f"reader:{PASSWORD}":
            return web.json_response({"details": "invalid username/password"}, status=401)
        token = uuid.uuid4().hex
        if header is not None or self.registry.anonymous_read:
            self.registry.tokens.add(token)
        body: dict[str, Any] = {self.field_name: token}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return web.json_response(body)


@dataclass
class Storage:
    """Another origin that blobs redirect to; records whether credentials leaked to it."""

    registry: FakeRegistry
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.method, request.path, dict(request.query), request.headers.get("Authorization")))
        digest = request.path.rsplit("/", 1)[-1]
        return web.Response(body=self.registry.blobs[digest])


def _app(handler: Handler) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@dataclass
class Servers:
    registry: FakeRegistry
    tokens: TokenServer
    storage: Storage
    host: str
    token_url: str
    storage_url: str
    started: list[TestServer]


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    registry = FakeRegistry()
    tokens, storage = TokenServer(registry), Storage(registry)
    started = []
    for handler in (registry.handle, tokens.handle, storage.handle):
        server = TestServer(_app(handler), host="127.0.0.1")
        await server.start_server()
        started.append(server)
    registry_server, token_server, storage_server = started
    registry.realm = f"http://127.0.0.1:{token_server.port}/token"
    yield Servers(
        registry,
        tokens,
        storage,
        f"127.0.0.1:{registry_server.port}",
        registry.realm,
        f"http://127.0.0.1:{storage_server.port}",
        started,
    )
    for server in started:
        await server.close()


def respond(status: int, **headers: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, headers=headers, text=_errors("X", "injected") if status >= 400 else "")

    return handler


# --- resolution and caching ---------------------------------------------------------------------------------------


async def test_resolves_a_tag_and_reads_metadata(servers: Servers) -> None:
    image = unique_image("one", labels={"a": "b"})
    digest = servers.registry.push("team/app", "v1", image)
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(servers.host, "team/app", "v1", insecure=True)
        assert resolved.digest == digest
        assert resolved.metadata is not None
        assert resolved.metadata.labels == {"a": "b"}
        assert resolved.complete
        assert servers.registry.count("GET", f"/manifests/{digest}") == 1  # GET by digest, not by tag
        assert servers.registry.count("GET", "/blobs/") == 1
        resolved.metadata.labels["mutated"] = "yes"
        again = await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert again.metadata is not None and again.metadata.labels == {"a": "b"}  # the cache was not mutated
    assert servers.registry.count("HEAD", "/manifests/") == 2
    assert servers.registry.count("GET", "/manifests/") == 1  # second time: HEAD only, metadata cached by digest
    assert servers.registry.pings() == 1  # one ping per client


async def test_known_digest_stops_after_head(servers: Servers) -> None:
    digest = servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(
            servers.host, "team/app", "v1", insecure=True, known_digests=frozenset({digest})
        )
    assert (resolved.digest, resolved.complete, resolved.metadata) == (digest, False, None)
    assert servers.registry.count("GET", "/manifests/") == 0
    assert servers.registry.count("GET", "/blobs/") == 0


async def test_a_tag_never_imported_is_read_with_a_get_and_no_head(servers: Servers) -> None:
    image = unique_image("new", labels={"a": "b"})
    digest = servers.registry.push("team/app", "v1", image)
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(servers.host, "team/app", "v1", insecure=True, never_imported=True)
    assert resolved.digest == digest
    assert resolved.complete and resolved.metadata is not None and resolved.metadata.labels == {"a": "b"}
    assert servers.registry.count("HEAD", "/manifests/") == 0
    assert servers.registry.count("GET", "/manifests/v1") == 1  # by tag: the digest is not known before
    assert servers.registry.count("GET", "/blobs/") == 1


async def test_a_tag_never_imported_whose_body_does_not_match_the_named_digest_is_refused(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    servers.registry.corrupt = True
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError, match="content integrity error"):
            await client.resolve(servers.host, "team/app", "v1", insecure=True, never_imported=True)


async def test_a_tag_never_imported_on_a_registry_that_counts_pulls_is_looked_up_with_a_head_first(
    servers: Servers,
) -> None:
    # As on Docker Hub (KNOWN_PULL_LIMITS): the HEAD finds the digest whose metadata another tag already read,
    # and no GET (no pull) is spent on the new tag.
    image = unique_image("shared")
    digest = servers.registry.push("team/app", "v1", image)
    servers.registry.push("team/app", "v2", image)
    counted = dataclasses.replace(FAST, pull_limits={servers.host: (100, 21600.0)})
    async with RegistryClient(counted) as client:
        await client.resolve(servers.host, "team/app", "v1", insecure=True, never_imported=True)
        again = await client.resolve(servers.host, "team/app", "v2", insecure=True, never_imported=True)
    assert again.digest == digest
    assert servers.registry.count("HEAD", "/manifests/") == 2
    assert servers.registry.count("GET", "/manifests/") == 1


async def test_missing_digest_header_falls_back_to_get_and_hashes_the_body(servers: Servers) -> None:
    digest = servers.registry.push("team/app", "v1", unique_image())
    servers.registry.omit_digest = True
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert resolved.digest == digest
    assert servers.registry.count("GET", "/manifests/v1") == 1


async def test_body_that_does_not_match_its_digest_is_refused(servers: Servers) -> None:
    digest = servers.registry.push("team/app", "v1", unique_image())
    servers.registry.corrupt = True
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError, match="content integrity error") as caught:
            await client.resolve(servers.host, "team/app", digest, insecure=True)
    assert caught.value.reason == Reason.INTERNAL_ERROR


async def test_legacy_uses_known_child_without_reading_it(servers: Servers) -> None:
    images = [unique_image(arch, platform=PushPlatform("linux", arch)) for arch in ("amd64", "arm64")]
    index_digest = servers.registry.push_index("team/app", "multi", images, ImageFormat.OCI)
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(
            servers.host,
            "team/app",
            "multi",
            insecure=True,
            preferred=Platform("linux", "arm64"),
            known_digests=frozenset({images[1].digest}),
        )
    assert (resolved.digest, resolved.index_digest, resolved.complete) == (images[1].digest, index_digest, False)
    assert len(resolved.manifests) == 2
    assert servers.registry.count("GET", f"/manifests/{images[1].digest}") == 0


async def test_concurrent_resolves_of_one_tag_share_the_fetches(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    servers.registry.delay = 0.05
    async with RegistryClient(FAST) as client:
        results = await asyncio.gather(
            *(client.resolve(servers.host, "team/app", "v1", insecure=True) for _ in range(5))
        )
    assert len({r.digest for r in results}) == 1
    assert servers.registry.pings() == 1
    assert servers.registry.count("GET", "/manifests/") == 1
    assert servers.registry.count("GET", "/blobs/") == 1


async def test_a_digest_named_by_another_repository_or_registry_is_read_there(servers: Servers) -> None:
    """Cached metadata is keyed by registry, repository and digest: naming a digest in a HEAD answer proves nothing."""
    servers.registry.auth = "basic"
    image = unique_image("private", labels={"secret-label": "only for readers"})
    digest = servers.registry.push("private/app", "v1", image)

    async def claims(request: web.Request) -> web.Response:
        return web.Response(headers={"Docker-Content-Digest": digest, "Content-Type": image.media_type})

    servers.registry.fail("HEAD", "/v2/team/evil/manifests/v1", claims)
    async with RegistryClient(FAST) as client:
        private = await client.resolve(servers.host, "private/app", "v1", insecure=True, credentials=READER)
        assert private.metadata is not None and private.metadata.labels == {"secret-label": "only for readers"}
        with pytest.raises(RegistryError) as caught:  # anonymous, another repository: the claim must be backed
            await client.resolve(servers.host, "team/evil", "v1", insecure=True)
    assert caught.value.reason == Reason.UNAUTHORIZED
    assert servers.registry.count("GET", f"/v2/team/evil/manifests/{digest}") == 1  # read there, not from the cache


# --- retries, 429, timeouts -----------------------------------------------------------------------------------------


async def test_5xx_is_retried_with_backoff(servers: Servers) -> None:
    digest = servers.registry.push("team/app", "v1", unique_image())
    servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", respond(503), respond(502))
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert resolved.digest == digest
    assert servers.registry.count("HEAD", "/manifests/v1") == 3


async def test_5xx_gives_up_after_max_attempts(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", *[respond(503)] * 5)
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError) as caught:
            await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert (caught.value.reason, caught.value.status) == (Reason.INTERNAL_ERROR, 503)
    assert "after 3 attempts" in caught.value.message
    assert servers.registry.count("HEAD", "/manifests/v1") == 3


async def test_429_waits_for_retry_after(servers: Servers) -> None:
    digest = servers.registry.push("team/app", "v1", unique_image())
    servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", respond(429, **{"Retry-After": "1"}))
    async with RegistryClient(FAST) as client:
        started = time.monotonic()
        resolved = await client.resolve(servers.host, "team/app", "v1", insecure=True)
        elapsed = time.monotonic() - started
    assert resolved.digest == digest
    assert 0.9 <= elapsed < 5


async def test_429_pauses_every_request_to_that_registry(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    servers.registry.push("team/app", "v2", unique_image())
    async with RegistryClient(FAST) as client:
        await client.resolve(servers.host, "team/app", "v1", insecure=True)  # ping done, caches warm
        servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", respond(429, **{"Retry-After": "1"}))
        started = time.monotonic()
        first = asyncio.create_task(client.resolve(servers.host, "team/app", "v1", insecure=True))
        await asyncio.sleep(0.2)
        await client.resolve(servers.host, "team/app", "v2", insecure=True)
        other_elapsed = time.monotonic() - started
        await first
    assert other_elapsed >= 0.9


async def test_429_beyond_the_cap_fails_at_once_with_retry_after(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", respond(429, **{"Retry-After": "3600"}))
    async with RegistryClient(FAST) as client:
        started = time.monotonic()
        with pytest.raises(RegistryError) as caught:
            await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert time.monotonic() - started < 1
    assert caught.value.reason == Reason.TOO_MANY_REQUESTS
    assert caught.value.retry_after == 3600
    assert servers.registry.count("HEAD", "/manifests/v1") == 1


async def test_429_without_retry_after_backs_off_then_reports(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", *[respond(429)] * 3)
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError) as caught:
            await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert (caught.value.reason, caught.value.retry_after) == (Reason.TOO_MANY_REQUESTS, None)
    assert servers.registry.count("HEAD", "/manifests/v1") == 3


async def test_slow_registry_times_out(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response()

    servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", slow, slow)
    settings = ClientSettings(read_timeout=0.2, max_attempts=2, backoff_base=0.01, per_registry_rate=0)
    async with RegistryClient(settings) as client:
        with pytest.raises(RegistryError) as caught:
            await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert caught.value.reason == Reason.TIMEOUT
    assert "after 2 attempts" in caught.value.message


async def test_connection_refused_is_reported_as_unreachable() -> None:
    server = TestServer(_app(respond(200)), host="127.0.0.1")
    await server.start_server()
    host = f"127.0.0.1:{server.port}"
    await server.close()
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError, match="cannot reach") as caught:
            await client.resolve(host, "team/app", "v1", insecure=True)
    assert caught.value.reason == Reason.INTERNAL_ERROR


async def test_concurrency_and_rate_are_limited_per_registry(servers: Servers) -> None:
    for n in range(6):
        servers.registry.push("team/app", f"v{n}", unique_image())
    servers.registry.delay = 0.05
    settings = ClientSettings(per_registry_concurrency=2, per_registry_rate=20, per_registry_burst=1)
    async with RegistryClient(settings) as client:
        started = time.monotonic()
        await asyncio.gather(
            *(
                client.resolve(servers.host, "team/app", f"v{n}", insecure=True, known_digests=frozenset())
                for n in range(6)
            )
        )
        elapsed = time.monotonic() - started
    requests = len(servers.registry.seen)  # 1 ping + 6 x (HEAD, GET manifest, GET config)
    assert requests == 19
    assert servers.registry.max_in_flight == 2
    assert elapsed >= (requests - 1) / 20  # burst 1 at 20/s


async def _queue_heads(client: RegistryClient, host: str, namespace: str, digests: dict[str, str]) -> list[Any]:
    """One HEAD per tag (the digests are known), all queued at once on behalf of `namespace`."""

    async def head(tag: str) -> Any:
        with on_behalf_of(namespace):
            return await client.resolve(host, "team/big", tag, insecure=True, known_digests=frozenset(digests.values()))

    return [asyncio.create_task(head(tag)) for tag in digests]


async def test_a_namespace_with_many_requests_waiting_does_not_delay_another(servers: Servers) -> None:
    image = unique_image("shared")
    digests = {f"t{n}": servers.registry.push("team/big", f"t{n}", image) for n in range(40)}
    servers.registry.push("team/small", "v1", unique_image("small"))
    settings = dataclasses.replace(FAST, per_registry_rate=20, per_registry_burst=1)
    async with RegistryClient(settings) as client:
        with on_behalf_of("big"):
            await client.resolve(servers.host, "team/big", "t0", insecure=True)  # ping; the image is cached
        big = await _queue_heads(client, servers.host, "big", digests)  # 40 requests: 2 s at 20 a second
        await asyncio.sleep(0.1)
        assert client.namespaces_waiting(servers.host) == {"big"}
        started = time.monotonic()
        with on_behalf_of("small"):
            await client.resolve(servers.host, "team/small", "v1", insecure=True)  # HEAD, GET manifest, GET config
        elapsed = time.monotonic() - started
        remaining = sum(1 for task in big if not task.done())
        await asyncio.gather(*big)
    # Three requests, each waiting at most one turn of "big": about 6 tokens at 20 a second, not 40.
    assert elapsed < 0.8, elapsed
    assert remaining > 10


async def test_requests_that_stop_waiting_give_their_turns_back(servers: Servers) -> None:
    image = unique_image("shared")
    digests = {f"t{n}": servers.registry.push("team/big", f"t{n}", image) for n in range(40)}
    settings = dataclasses.replace(FAST, per_registry_rate=20, per_registry_burst=1)
    async with RegistryClient(settings) as client:
        await client.resolve(servers.host, "team/big", "t0", insecure=True)
        big = await _queue_heads(client, servers.host, "big", digests)
        await asyncio.sleep(0.1)
        for task in big:  # the streams were deleted, or their deadline passed
            task.cancel()
        await asyncio.gather(*big, return_exceptions=True)
        assert client.namespaces_waiting(servers.host) == frozenset()
        heads = servers.registry.count("HEAD", "/manifests/")
        started = time.monotonic()
        await client.resolve(servers.host, "team/big", "t1", insecure=True)  # the same namespace, even
        elapsed = time.monotonic() - started
    assert elapsed < 0.5, elapsed  # not behind 40 booked turns (2 s)
    # The resolve's own HEAD, plus at most the one that had its turn and was on the wire when the waiters were
    # cancelled (under load it reaches the server after `heads` was read); the ~37 booked turns never went out.
    assert heads + 1 <= servers.registry.count("HEAD", "/manifests/") <= heads + 2


# --- ping --------------------------------------------------------------------------------------------------------


async def test_not_a_registry(servers: Servers) -> None:
    servers.registry.fail("GET", "/v2/", respond(404))
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError) as caught:
            await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert caught.value.reason == Reason.NOT_V2_REGISTRY


async def test_plain_http_registry_needs_insecure(servers: Servers) -> None:
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError, match="is HTTP only and requires the insecure flag") as caught:
            await client.resolve(servers.host, "team/app", "v1")
    assert caught.value.reason == Reason.INTERNAL_ERROR


async def test_missing_tag_is_not_found(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError) as caught:
            await client.resolve(servers.host, "team/app", "nope", insecure=True)
    assert (caught.value.reason, caught.value.status) == (Reason.NOT_FOUND, 404)


# --- redirects ------------------------------------------------------------------------------------------------------


async def test_redirect_to_another_origin_drops_credentials(servers: Servers) -> None:
    servers.registry.auth = "basic"
    digest = servers.registry.push("team/app", "v1", unique_image())
    servers.registry.blob_redirect = servers.storage_url
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=READER)
    assert resolved.digest == digest
    assert resolved.metadata is not None
    assert [s.authorization for s in servers.storage.seen] == [None]
    blob_requests = [s for s in servers.registry.seen if "/blobs/" in s.path]
    assert blob_requests and all(s.authorization for s in blob_requests)  # the registry itself did get them


async def test_ping_never_learns_a_challenge_from_another_origin(servers: Servers) -> None:
    """A registry whose /v2/ redirects elsewhere cannot route its credentials to the other host's token realm."""
    servers.registry.auth = "basic"
    digest = servers.registry.push("team/app", "v1", unique_image())
    elsewhere = TestServer(
        _app(respond(401, **{"WWW-Authenticate": f'Bearer realm="{servers.token_url}",service="elsewhere"'})),
        host="127.0.0.1",
    )
    await elsewhere.start_server()
    servers.started.append(elsewhere)

    async def away(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{elsewhere.port}/v2/")

    servers.registry.fail("GET", "/v2/", away)
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=READER)
    assert resolved.digest == digest  # the registry's own 401 taught its Basic challenge
    assert servers.tokens.seen == []  # the other origin's realm was never asked for a token
    heads = [s.authorization for s in servers.registry.seen if s.method == "HEAD"]
    assert heads == [None, _basic_of(READER)]


async def test_redirect_within_the_origin_keeps_credentials(servers: Servers) -> None:
    servers.registry.auth = "basic"
    servers.registry.push("team/app", "v1", unique_image())

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/v2/team/app/manifests/v1")

    servers.registry.fail("HEAD", "/v2/team/app/manifests/latest", moved)
    async with RegistryClient(FAST) as client:
        await client.resolve(servers.host, "team/app", "latest", insecure=True, credentials=READER)
    heads = [s for s in servers.registry.seen if s.method == "HEAD"]
    assert [s.path.rsplit("/", 1)[-1] for s in heads] == ["latest", "v1"]
    assert all(s.authorization and s.authorization.startswith("Basic ") for s in heads)


async def test_redirect_to_a_denied_host_is_refused_before_connecting(servers: Servers) -> None:
    digest = servers.registry.push("team/app", "v1", unique_image())
    servers.registry.blob_redirect = "http://169.254.169.254"
    # The fake registry is on loopback, which a local cluster allows; the metadata address stays denied.
    policy = RegistryPolicy(denied=DEFAULT_DENIED_REGISTRIES, loopback_allowed=True)
    settings = dataclasses.replace(FAST, host_guard=policy.denial)
    async with RegistryClient(settings) as client:
        with pytest.raises(RegistryError) as refused:
            await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert refused.value.reason == "Forbidden"
    assert "169.254.169.254:80 is denied" in refused.value.message
    assert digest


async def test_addresses_are_checked_when_connecting(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())

    def deny_loopback(host: str, addresses: list[str]) -> str | None:
        return f"{host} resolves to loopback" if any(a.startswith("127.") for a in addresses) else None

    port = servers.host.rsplit(":", 1)[1]
    settings = dataclasses.replace(FAST, address_guard=deny_loopback, max_attempts=1)
    async with RegistryClient(settings) as client:
        with pytest.raises(RegistryError) as refused:
            await client.resolve(f"localhost:{port}", "team/app", "v1", insecure=True)
    assert "resolves to loopback" in refused.value.message


async def test_redirect_loops_are_cut(servers: Servers) -> None:
    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/v2/team/app/manifests/v1")

    servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", *[loop] * 10)
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError, match="more than 5 redirects"):
            await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert servers.registry.count("HEAD", "/manifests/v1") == 6


# --- auth -----------------------------------------------------------------------------------------------------------


async def test_basic_credentials_only_after_a_basic_challenge(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(FAST) as client:
        await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=READER)
    assert all(s.authorization is None for s in servers.registry.seen)  # an open registry never sees them


async def test_bearer_token_flow_and_cache(servers: Servers) -> None:
    servers.registry.auth = "bearer"
    servers.tokens.field_name = "access_token"
    servers.registry.push("team/app", "v1", unique_image())
    servers.registry.push("team/app", "v2", unique_image())
    async with RegistryClient(FAST) as client:
        await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=READER)
        await client.resolve(servers.host, "team/app", "v2", insecure=True, credentials=READER)
    assert len(servers.tokens.seen) == 1
    [request] = servers.tokens.seen
    assert request.query == {"scope": "repository:team/app:pull", "service": "fake"}
    assert request.authorization == "Basic " + base64.b64encode(f"reader:{PASSWORD}".encode()).decode()
    # the token was fetched before the first resource request: no 401 round trip after the ping
    assert servers.registry.count("HEAD", "/manifests/") == 2


async def test_rejected_cached_token_is_refetched_once(servers: Servers) -> None:
    servers.registry.auth = "bearer"
    servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(FAST) as client:
        await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=READER)
        servers.registry.tokens.clear()  # the registry forgets every token (key rotation)
        await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=READER)
    assert len(servers.tokens.seen) == 2


async def test_token_expiry_is_honoured(servers: Servers) -> None:
    servers.registry.auth = "bearer"
    servers.tokens.expires_in = 1  # valid 0.5 s after the margin
    servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(FAST) as client:
        await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=READER)
        await asyncio.sleep(0.6)
        await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=READER)
    assert len(servers.tokens.seen) == 2


@pytest.mark.parametrize("auth", ["basic", "bearer"])
async def test_wrong_password_falls_back_to_anonymous_for_public_images(
    servers: Servers, auth: str, caplog: pytest.LogCaptureFixture
) -> None:
    """As OpenShift's importer does: after the credentials are refused, anonymous access once (public images
    answer 401 to wrong credentials)."""
    servers.registry.auth = auth
    servers.registry.anonymous_read = True
    digest = servers.registry.push("team/app", "v1", unique_image())
    caplog.set_level(logging.DEBUG)
    wrong = Credentials("reader", "wrong-password-123")
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=wrong)
    assert resolved.digest == digest
    if auth == "basic":
        assert [s.authorization is None for s in servers.registry.seen if s.method == "HEAD"] == [False, True]
    else:  # the refused token request, then the anonymous one
        assert [s.authorization is None for s in servers.tokens.seen] == [False, True]
    assert "wrong-password-123" not in caplog.text
    assert base64.b64encode(b"reader:wrong-password-123").decode() not in caplog.text


@pytest.mark.parametrize("auth", ["basic", "bearer"])
async def test_wrong_password_on_a_private_image_is_unauthorized(
    servers: Servers, auth: str, caplog: pytest.LogCaptureFixture
) -> None:
    servers.registry.auth = auth
    servers.registry.push("team/app", "v1", unique_image())
    caplog.set_level(logging.DEBUG)
    wrong = Credentials("reader", "wrong-password-123")
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError) as caught:
            await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=wrong)
    error = caught.value
    assert error.reason == Reason.UNAUTHORIZED
    assert error.message == (
        f'you may not have access to the container image "{servers.host}/team/app:v1": the registry refused the '
        f"credentials and anonymous access; check the pull secret for {servers.host}"
    )
    for text in (caplog.text, error.message, repr(error)):
        assert "wrong-password-123" not in text
    if auth == "basic":  # with the credentials, then once anonymously
        assert [s.authorization is None for s in servers.registry.seen if s.method == "HEAD"] == [False, True]


def _basic_of(credentials: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()


@pytest.mark.parametrize("auth", ["basic", "bearer"])
async def test_several_credentials_are_tried_in_order_until_one_is_accepted(
    servers: Servers, auth: str, caplog: pytest.LogCaptureFixture
) -> None:
    servers.registry.auth = auth
    digest = servers.registry.push("team/app", "v1", unique_image())
    caplog.set_level(logging.DEBUG)
    stale, other = Credentials("reader", "stale-password-1"), Credentials("someone", "other-password-2")
    after = Credentials("later", "never-tried-3")
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(
            servers.host, "team/app", "v1", insecure=True, credentials=[stale, other, READER, after]
        )
    assert resolved.digest == digest
    sent = servers.registry.seen if auth == "basic" else servers.tokens.seen
    tried = list(
        dict.fromkeys(s.authorization for s in sent if s.authorization and s.authorization.startswith("Basic"))
    )
    assert tried == [_basic_of(stale), _basic_of(other), _basic_of(READER)]  # in order, the last one never
    assert all(s.authorization is not None for s in servers.registry.seen if s.path != "/v2/")  # never anonymous
    for secret in ("stale-password-1", "other-password-2", PASSWORD, "never-tried-3"):
        assert secret not in caplog.text
    assert "refused credential 1 of 4" in caplog.text  # of the four credentials; anonymous would come last


async def test_a_403_moves_on_to_the_next_credential(servers: Servers) -> None:
    servers.registry.auth = "basic"
    digest = servers.registry.push("team/app", "v1", unique_image())
    other = Credentials("other", "may-not-pull")
    servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", respond(403))  # the answer to the first credential
    async with RegistryClient(FAST) as client:
        resolved = await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=[other, READER])
    assert resolved.digest == digest
    assert [s.authorization for s in servers.registry.seen if s.method == "HEAD"] == [
        _basic_of(other),
        _basic_of(READER),
    ]


async def test_every_credential_refused_says_so_and_names_no_secret(servers: Servers) -> None:
    servers.registry.auth = "bearer"  # private: anonymous is refused too
    servers.registry.push("team/app", "v1", unique_image())
    first, second = Credentials("a", "secret-one"), Credentials("b", "secret-two")
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError) as caught:
            await client.resolve(servers.host, "team/app", "v1", insecure=True, credentials=[first, second, first])
    error = caught.value
    assert (error.reason, error.status) == (Reason.UNAUTHORIZED, 401)
    assert error.message.endswith(
        f"(each of the 2 credentials that match {servers.host} was tried in turn, then anonymous access)"
    )
    # each credential once, then anonymous
    assert [s.authorization for s in servers.tokens.seen] == [_basic_of(first), _basic_of(second), None]
    for text in (error.message, repr(error)):
        assert "secret-one" not in text and "secret-two" not in text


async def test_a_not_found_ends_the_attempts(servers: Servers) -> None:
    servers.registry.auth = "basic"
    other = Credentials("other", "x")
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError) as caught:
            await client.resolve(servers.host, "team/none", "v1", insecure=True, credentials=[READER, other])
    assert caught.value.reason == Reason.NOT_FOUND
    assert [s.authorization for s in servers.registry.seen if s.method == "HEAD"] == [_basic_of(READER)]


async def test_anonymous_on_a_private_registry_is_unauthorized(servers: Servers) -> None:
    servers.registry.auth = "basic"
    servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError, match="none were given") as caught:
            await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert caught.value.reason == Reason.UNAUTHORIZED
    assert servers.registry.count("HEAD", "/manifests/") == 1


# --- tags -----------------------------------------------------------------------------------------------------------


async def test_list_tags_follows_link_pagination(servers: Servers) -> None:
    for tag in ("a", "b", "c", "d", "e"):
        servers.registry.push("team/app", tag, unique_image())
    servers.registry.page_size = 2
    async with RegistryClient(FAST) as client:
        tags = await client.list_tags(servers.host, "team/app", insecure=True)
    assert tags == ["a", "b", "c", "d", "e"]
    assert servers.registry.count("GET", "/tags/list") == 3


async def test_list_tags_refuses_a_next_page_on_another_host(servers: Servers) -> None:
    async def elsewhere(request: web.Request) -> web.Response:
        return web.json_response({"tags": ["a"]}, headers={"Link": '<http://evil.example/v2/x/tags/list>; rel="next"'})

    servers.registry.fail("GET", "/v2/team/app/tags/list", elsewhere)
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError, match="another host"):
            await client.list_tags(servers.host, "team/app", insecure=True)


async def test_list_tags_of_a_missing_repository(servers: Servers) -> None:
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError) as caught:
            await client.list_tags(servers.host, "team/none", insecure=True)
    assert caught.value.reason == Reason.NOT_FOUND


# --- TLS ------------------------------------------------------------------------------------------------------------


@pytest.fixture
async def tls_servers(servers: Servers, tmp_path: Path) -> AsyncIterator[tuple[Servers, Path]]:
    """The same fake registry served over TLS with a throw-away CA."""
    ca = CertificateAuthority("fake-registry-ca")
    cert, key = loopback_server_pair(ca, "fake-registry").write(tmp_path, "server")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = TestServer(_app(servers.registry.handle), host="127.0.0.1")
    await server.start_server(ssl=context)
    yield (
        Servers(
            servers.registry, servers.tokens, servers.storage, f"127.0.0.1:{server.port}", servers.token_url,
            servers.storage_url, [server],
        ),
        ca_file,
    )  # fmt: skip
    await server.close()


async def test_tls_is_verified_and_an_extra_ca_can_be_trusted(tls_servers: tuple[Servers, Path]) -> None:
    servers, ca_file = tls_servers
    digest = servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(FAST) as client:
        with pytest.raises(RegistryError, match="could not be verified"):
            await client.resolve(servers.host, "team/app", "v1")
        insecure = await client.resolve(servers.host, "team/app", "v1", insecure=True)  # https without verification
    async with RegistryClient(ClientSettings(extra_ca_file=str(ca_file))) as client:
        verified = await client.resolve(servers.host, "team/app", "v1")
    assert insecure.digest == verified.digest == digest


async def test_https_registry_may_not_use_a_plain_http_token_realm(tls_servers: tuple[Servers, Path]) -> None:
    servers, ca_file = tls_servers
    servers.registry.auth = "bearer"  # its realm is the http token server
    servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(ClientSettings(extra_ca_file=str(ca_file))) as client:
        with pytest.raises(RegistryError, match="must use an https realm"):
            await client.resolve(servers.host, "team/app", "v1", credentials=READER)
    assert servers.tokens.seen == []


async def test_https_to_http_redirect_is_refused(tls_servers: tuple[Servers, Path]) -> None:
    servers, ca_file = tls_servers
    servers.registry.push("team/app", "v1", unique_image())
    servers.registry.blob_redirect = servers.storage_url  # http
    async with RegistryClient(ClientSettings(extra_ca_file=str(ca_file))) as client:
        with pytest.raises(RegistryError, match="from https to plain http"):
            await client.resolve(servers.host, "team/app", "v1")
    assert servers.storage.seen == []


# --- client lifecycle -----------------------------------------------------------------------------------------------


async def test_closed_client_refuses_work(servers: Servers) -> None:
    client = RegistryClient(FAST)
    await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        await client.resolve(servers.host, "team/app", "v1", insecure=True)


async def test_invalid_names_are_value_errors() -> None:
    async with RegistryClient(FAST) as client:
        with pytest.raises(ValueError, match="repository"):
            await client.resolve("127.0.0.1:1", "../etc", "v1")
        with pytest.raises(ValueError, match="tag"):
            await client.resolve("127.0.0.1:1", "a", "bad/tag")


async def test_trace_configs_see_requests(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    seen: list[str] = []

    async def on_start(session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams) -> None:
        seen.append(params.method)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with RegistryClient(FAST, trace_configs=[trace]) as client:
        await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert seen == ["GET", "GET", "HEAD", "GET", "GET"]  # insecure: https ping first, then http

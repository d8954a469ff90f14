"""The async registry client against the real local registries (Debian's docker-registry, distribution 2.8).

plain: HTTP, anonymous. tls-basic: HTTPS from the cluster CA with htpasswd. token: HTTP with Docker token auth.
Images are pushed with the synchronous test push client, then read back with the operator's client.
"""

from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from imagestreams.localcluster import Registry, RegistryKind
from imagestreams.localcluster.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageFormat,
    build_index,
    unique_image,
)
from imagestreams.localcluster.images import Platform as PushPlatform
from imagestreams.registry import (
    ClientSettings,
    Credentials,
    ImportMode,
    Platform,
    Reason,
    RegistryClient,
    RegistryError,
)
from imagestreams.registry.challenges import pick_challenge
from tests.helpers import pusher_for

PLATFORMS = [PushPlatform("linux", "amd64"), PushPlatform("linux", "arm64", "v8"), PushPlatform("linux", "s390x")]


def settings_for(registry: Registry) -> ClientSettings:
    return ClientSettings(extra_ca_file=str(registry.ca_file) if registry.ca_file else None)


def reader_of(registry: Registry) -> Credentials | None:
    return Credentials(registry.reader.username, registry.reader.password) if registry.reader else None


def insecure_for(registry: Registry) -> bool:
    return registry.scheme == "http"


class RequestCounter:
    """Counts (method, kind) of every request the client sends, via an aiohttp trace config."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._on_start)

    async def _on_start(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        path = params.url.path
        kind = next((k for k in ("manifests", "blobs", "tags") if f"/{k}/" in path), "other")
        self.counts[(params.method, kind)] += 1


@pytest.fixture
def counter() -> RequestCounter:
    return RequestCounter()


@dataclass(frozen=True)
class Sent:
    method: str
    url: URL
    authorization: str | None


class RequestRecorder:
    """Every request the client sends, with its Authorization header, via an aiohttp trace config."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._on_start)

    async def _on_start(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        self.sent.append(Sent(params.method, params.url, params.headers.get("Authorization")))

    def basic_sent(self) -> list[tuple[str, Credentials]]:
        """(origin, credentials) of every Basic Authorization sent, in order, without consecutive repeats."""
        found: list[tuple[str, Credentials]] = []
        for sent in self.sent:
            if sent.authorization and sent.authorization.startswith("Basic "):
                username, _, password = base64.b64decode(sent.authorization[6:]).decode().partition(":")
                item = (str(sent.url.origin()), Credentials(username, password))
                if not found or found[-1] != item:
                    found.append(item)
        return found


def basic_origin(registry: Registry) -> str:
    """Where Basic credentials for `registry` go: the registry itself (htpasswd) or its token server's realm."""
    return f"http://127.0.0.1:{token_realm(registry).port}" if registry.kind is RegistryKind.TOKEN else registry.url


def token_realm(registry: Registry) -> URL:
    """The token realm the registry's own /v2/ challenge names."""
    try:
        urllib.request.urlopen(f"{registry.url}/v2/", timeout=10)
    except urllib.error.HTTPError as error:
        challenge = pick_challenge(error.headers.get_all("WWW-Authenticate") or [])
        assert challenge is not None and challenge.realm
        return URL(challenge.realm)
    raise AssertionError(f"{registry.url}/v2/ did not challenge")


@pytest.mark.parametrize(
    ("image_format", "media_type"), [(ImageFormat.OCI, OCI_MANIFEST), (ImageFormat.DOCKER, DOCKER_MANIFEST)]
)
async def test_tag_resolves_to_the_pushed_digest_with_metadata(
    any_registry: Registry, repository: str, image_format: ImageFormat, media_type: str
) -> None:
    image = unique_image(
        "meta", image_format=image_format, platform=PushPlatform("linux", "arm64", "v8"), labels={"team": "blue"}
    )
    with pusher_for(any_registry) as pusher:
        pushed = pusher.push_image(repository, "v1", image)
    async with RegistryClient(settings_for(any_registry)) as client:
        resolved = await client.resolve(
            any_registry.host,
            repository,
            "v1",
            credentials=reader_of(any_registry),
            insecure=insecure_for(any_registry),
        )
    assert resolved.digest == pushed == image.digest  # not a schema 1 rewrite, not a 404 for OCI
    assert resolved.media_type == media_type
    assert resolved.manifests == ()
    assert resolved.index_digest is None
    metadata = resolved.metadata
    assert metadata is not None
    assert (metadata.os, metadata.architecture, metadata.variant) == ("linux", "arm64", "v8")
    assert metadata.labels == {"team": "blue"}
    assert metadata.config_digest == image.config.digest
    assert [layer.digest for layer in metadata.layers] == [layer.digest for layer in image.layers]
    assert metadata.layers[0].size == len(image.layers[0].data)
    assert metadata.size == len(image.config.data) + sum(len(layer.data) for layer in image.layers)
    assert metadata.created == "1970-01-01T00:00:00Z"


async def test_repush_changes_the_digest_and_old_digest_still_resolves(
    plain_registry: Registry, repository: str
) -> None:
    first, second = unique_image("first"), unique_image("second")
    async with RegistryClient() as client:
        with pusher_for(plain_registry) as pusher:
            pusher.push_image(repository, "latest", first)
            before = await client.resolve(plain_registry.host, repository, "latest", insecure=True)
            pusher.push_image(repository, "latest", second)
        after = await client.resolve(plain_registry.host, repository, "latest", insecure=True)
        by_digest = await client.resolve(plain_registry.host, repository, first.digest, insecure=True)
    assert (before.digest, after.digest) == (first.digest, second.digest)
    assert by_digest.digest == first.digest


@pytest.mark.parametrize(
    ("image_format", "index_type"), [(ImageFormat.OCI, OCI_INDEX), (ImageFormat.DOCKER, DOCKER_LIST)]
)
async def test_multi_arch_import_modes(
    plain_registry: Registry, repository: str, image_format: ImageFormat, index_type: str
) -> None:
    images = [unique_image(p.architecture, platform=p, image_format=image_format) for p in PLATFORMS]
    index = build_index(images, image_format)
    with pusher_for(plain_registry) as pusher:
        assert pusher.push_index(repository, "multi", index) == index.digest
    async with RegistryClient() as client:
        arm = await client.resolve(
            plain_registry.host, repository, "multi", insecure=True, preferred=Platform("linux", "arm64")
        )
        default = await client.resolve(plain_registry.host, repository, "multi", insecure=True)
        preserved = await client.resolve(
            plain_registry.host, repository, "multi", insecure=True, import_mode=ImportMode.PRESERVE_ORIGINAL
        )
    # Legacy: the tag resolves to the chosen child, whose metadata comes from its own config.
    assert arm.digest == images[1].digest
    assert arm.index_digest == index.digest
    assert arm.metadata is not None and arm.metadata.architecture == "arm64"
    assert default.digest == images[0].digest  # no preference: linux/amd64
    # PreserveOriginal: the index digest, with every child recorded.
    assert preserved.digest == index.digest
    assert preserved.media_type == index_type
    assert preserved.metadata is None
    assert [(c.digest, c.architecture, c.variant) for c in preserved.manifests] == [
        (image.digest, p.architecture, p.variant) for image, p in zip(images, PLATFORMS, strict=True)
    ]
    assert arm.manifests == preserved.manifests


async def test_plain_http_registry_needs_insecure(plain_registry: Registry, repository: str) -> None:
    with pusher_for(plain_registry) as pusher:
        pusher.push_image(repository, "v1", unique_image())
    async with RegistryClient() as client:
        with pytest.raises(RegistryError) as caught:
            await client.resolve(plain_registry.host, repository, "v1")
    assert caught.value.reason == Reason.INTERNAL_ERROR
    assert "is HTTP only and requires the insecure flag" in caught.value.message


async def test_tls_registry_needs_its_ca_unless_insecure(tls_registry: Registry, repository: str) -> None:
    with pusher_for(tls_registry) as pusher:
        pushed = pusher.push_image(repository, "v1", unique_image())
    credentials = reader_of(tls_registry)
    async with RegistryClient() as client:
        with pytest.raises(RegistryError, match="could not be verified") as caught:
            await client.resolve(tls_registry.host, repository, "v1", credentials=credentials)
        assert caught.value.reason == Reason.INTERNAL_ERROR
        unverified = await client.resolve(tls_registry.host, repository, "v1", credentials=credentials, insecure=True)
    async with RegistryClient(settings_for(tls_registry)) as client:
        verified = await client.resolve(tls_registry.host, repository, "v1", credentials=credentials)
    assert unverified.digest == verified.digest == pushed


@pytest.mark.parametrize("kind", [RegistryKind.TLS_BASIC, RegistryKind.TOKEN])
async def test_private_registries_refuse_anonymous_and_wrong_passwords(
    tls_registry: Registry, token_registry: Registry, repository: str, kind: RegistryKind
) -> None:
    registry = tls_registry if kind is RegistryKind.TLS_BASIC else token_registry
    with pusher_for(registry) as pusher:
        pushed = pusher.push_image(repository, "v1", unique_image())
    assert registry.reader is not None
    wrong = Credentials(registry.reader.username, "not-the-password-42")
    insecure = insecure_for(registry)
    async with RegistryClient(settings_for(registry)) as client:
        resolved = await client.resolve(
            registry.host, repository, "v1", credentials=reader_of(registry), insecure=insecure
        )
        with pytest.raises(RegistryError) as anonymous:
            await client.resolve(registry.host, repository, "v1", insecure=insecure)
        with pytest.raises(RegistryError) as refused:
            await client.resolve(registry.host, repository, "v1", credentials=wrong, insecure=insecure)
    assert resolved.digest == pushed
    image = f"{registry.host}/{repository}:v1"
    assert anonymous.value.reason == Reason.UNAUTHORIZED
    assert anonymous.value.message == (
        f'you may not have access to the container image "{image}": the registry requires credentials and none '
        f"were given; check the pull secret for {registry.host}"
    )
    assert refused.value.reason == Reason.UNAUTHORIZED
    assert refused.value.message == (
        f'you may not have access to the container image "{image}": the registry refused the credentials and '
        f"anonymous access; check the pull secret for {registry.host}"
    )
    assert "not-the-password-42" not in refused.value.message + repr(refused.value)


async def test_wrong_password_is_retried_anonymously(
    tls_registry: Registry, repository: str, counter: RequestCounter
) -> None:
    """As OpenShift imports (openshift-apiserver imagestreamimport rest.go): anonymous once after a refusal."""
    with pusher_for(tls_registry) as pusher:
        pusher.push_image(repository, "v1", unique_image())
    assert tls_registry.reader is not None
    wrong = Credentials(tls_registry.reader.username, "nope")
    async with RegistryClient(settings_for(tls_registry), trace_configs=[counter.trace]) as client:
        with pytest.raises(RegistryError, match="refused the credentials"):
            await client.resolve(tls_registry.host, repository, "v1", credentials=wrong)
    assert counter.counts[("HEAD", "manifests")] == 2  # with the credentials, then once anonymously


@pytest.mark.parametrize("kind", [RegistryKind.TLS_BASIC, RegistryKind.TOKEN])
async def test_a_refused_credential_moves_on_to_the_next_in_order(
    tls_registry: Registry,
    token_registry: Registry,
    repository: str,
    kind: RegistryKind,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stale pull secret listed first no longer fails the import: each credential is tried in turn, as the kubelet
    tries them, and each goes only where the registry sends credentials (itself, or its token realm)."""
    registry = tls_registry if kind is RegistryKind.TLS_BASIC else token_registry
    with pusher_for(registry) as pusher:
        pushed = pusher.push_image(repository, "v1", unique_image())
    reader = reader_of(registry)
    assert reader is not None
    stale, unknown = Credentials(reader.username, "stale-password-1"), Credentials("nobody", "unknown-password-2")
    insecure = insecure_for(registry)
    caplog.set_level(logging.DEBUG)
    first, second, third = RequestRecorder(), RequestRecorder(), RequestRecorder()
    async with RegistryClient(settings_for(registry), trace_configs=[first.trace]) as client:
        resolved = await client.resolve(
            registry.host, repository, "v1", credentials=[stale, unknown, reader], insecure=insecure
        )
    async with RegistryClient(settings_for(registry), trace_configs=[second.trace]) as client:
        await client.resolve(registry.host, repository, "v1", credentials=[reader, stale], insecure=insecure)
    async with RegistryClient(settings_for(registry), trace_configs=[third.trace]) as client:
        with pytest.raises(RegistryError) as refused:
            await client.resolve(registry.host, repository, "v1", credentials=[stale, unknown], insecure=insecure)

    assert resolved.digest == pushed
    where = basic_origin(registry)
    assert first.basic_sent() == [(where, stale), (where, unknown), (where, reader)]
    assert second.basic_sent() == [(where, reader)]  # the first worked: the stale one is never sent
    assert third.basic_sent() == [(where, stale), (where, unknown)]
    # Anonymously only after every credential was refused (the third lookup), never before one that works.
    for recorder in (first, second):
        for sent in recorder.sent:
            if "/manifests/" in sent.url.path or sent.url.path == "/token":
                assert sent.authorization is not None, sent
    assert refused.value.reason == Reason.UNAUTHORIZED
    assert refused.value.message.endswith(
        f"(each of the 2 credentials that match {registry.host} was tried in turn, then anonymous access)"
    )
    for secret in ("stale-password-1", "unknown-password-2", reader.password):
        assert secret not in caplog.text
        assert secret not in refused.value.message


async def test_ping_redirected_to_another_origin_never_learns_its_challenge(
    token_registry: Registry, repository: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A registry whose /v2/ redirects to another origin cannot route its credentials to that origin's token realm.

    The redirecting origin is a stand-in on 127.0.0.1 (distribution cannot be made to redirect its /v2/); the other
    origin is the real token registry, whose challenge names its real token server.
    """
    with pusher_for(token_registry) as pusher:
        pusher.push_image(repository, "v1", unique_image())
    realm = token_realm(token_registry)

    async def away(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{token_registry.url}{request.path_qs}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", away)
    stand_in = TestServer(app, host="127.0.0.1")
    await stand_in.start_server()
    stand_in_host = f"127.0.0.1:{stand_in.port}"
    issued_for_stand_in = Credentials("stand-in-user", "stand-in-password-3")
    recorder = RequestRecorder()
    caplog.set_level(logging.DEBUG)
    try:
        async with RegistryClient(trace_configs=[recorder.trace]) as client:
            with pytest.raises(RegistryError) as caught:
                await client.resolve(stand_in_host, repository, "v1", credentials=issued_for_stand_in, insecure=True)
    finally:
        await stand_in.close()

    assert caught.value.reason == Reason.UNAUTHORIZED
    contacted = {f"{sent.url.host}:{sent.url.port}" for sent in recorder.sent}
    assert contacted == {stand_in_host, token_registry.host}  # never the other origin's token realm
    assert f"{realm.host}:{realm.port}" not in contacted
    assert all(sent.authorization is None for sent in recorder.sent)  # no credentials to anyone: none asked for
    assert "its auth challenge is ignored" in caplog.text
    assert "stand-in-password-3" not in caplog.text


async def test_metadata_is_cached_per_registry_and_repository(
    plain_registry: Registry, token_registry: Registry, repository: str, counter: RequestCounter
) -> None:
    """The same digest in another repository or registry is read there: the cache is keyed by registry, repository
    and digest, so naming a digest never yields what another namespace read with its own credentials."""
    image = unique_image("shared", labels={"read": "with credentials"})
    with pusher_for(token_registry) as pusher:
        pusher.push_image(repository, "v1", image)
    with pusher_for(plain_registry) as pusher:
        pusher.push_image(repository, "v1", image)
        pusher.push_image(f"{repository}-copy", "v1", image)
    async with RegistryClient(trace_configs=[counter.trace]) as client:
        private = await client.resolve(
            token_registry.host, repository, "v1", credentials=reader_of(token_registry), insecure=True
        )
        assert counter.counts[("GET", "manifests")] == counter.counts[("GET", "blobs")] == 1
        same = await client.resolve(
            token_registry.host, repository, "v1", credentials=reader_of(token_registry), insecure=True
        )
        assert counter.counts[("GET", "manifests")] == counter.counts[("GET", "blobs")] == 1  # cached here
        elsewhere = await client.resolve(plain_registry.host, repository, "v1", insecure=True)
        assert counter.counts[("GET", "manifests")] == counter.counts[("GET", "blobs")] == 2  # another registry
        copy = await client.resolve(plain_registry.host, f"{repository}-copy", "v1", insecure=True)
        assert counter.counts[("GET", "manifests")] == counter.counts[("GET", "blobs")] == 3  # another repository
    assert private.digest == same.digest == elsewhere.digest == copy.digest == image.digest
    assert private.metadata == elsewhere.metadata == copy.metadata


@pytest.mark.parametrize(("reference", "words"), [("missing", "not found"), ("sha256:" + "0" * 64, "not found")])
async def test_missing_tag_or_digest_is_not_found(
    any_registry: Registry, repository: str, reference: str, words: str
) -> None:
    with pusher_for(any_registry) as pusher:
        pusher.push_image(repository, "v1", unique_image())
    async with RegistryClient(settings_for(any_registry)) as client:
        with pytest.raises(RegistryError, match=words) as caught:
            await client.resolve(
                any_registry.host,
                repository,
                reference,
                credentials=reader_of(any_registry),
                insecure=insecure_for(any_registry),
            )
    assert (caught.value.reason, caught.value.status) == (Reason.NOT_FOUND, 404)


async def test_list_tags(any_registry: Registry, repository: str) -> None:
    with pusher_for(any_registry) as pusher:
        for tag in ("v1", "v2", "latest"):
            pusher.push_image(repository, tag, unique_image(tag))
    async with RegistryClient(settings_for(any_registry)) as client:
        tags = await client.list_tags(
            any_registry.host, repository, credentials=reader_of(any_registry), insecure=insecure_for(any_registry)
        )
        with pytest.raises(RegistryError) as missing:
            await client.list_tags(
                any_registry.host,
                f"{repository}-none",
                credentials=reader_of(any_registry),
                insecure=insecure_for(any_registry),
            )
    assert sorted(tags) == ["latest", "v1", "v2"]
    assert missing.value.reason == Reason.NOT_FOUND


async def test_known_digests_cost_one_head_and_no_get(
    token_registry: Registry, repository: str, counter: RequestCounter
) -> None:
    image = unique_image("known")
    with pusher_for(token_registry) as pusher:
        pushed = pusher.push_image(repository, "v1", image)
    credentials = reader_of(token_registry)
    async with RegistryClient(trace_configs=[counter.trace]) as client:
        known = await client.resolve(
            token_registry.host,
            repository,
            "v1",
            credentials=credentials,
            insecure=True,
            known_digests=frozenset({pushed}),
        )
        assert (known.digest, known.complete, known.metadata) == (pushed, False, None)
        assert counter.counts[("HEAD", "manifests")] == 1
        assert counter.counts[("GET", "manifests")] == counter.counts[("GET", "blobs")] == 0

        fresh = await client.resolve(token_registry.host, repository, "v1", credentials=credentials, insecure=True)
        assert fresh.metadata is not None and fresh.complete
        assert counter.counts[("GET", "manifests")] == counter.counts[("GET", "blobs")] == 1

        again = await client.resolve(token_registry.host, repository, "v1", credentials=credentials, insecure=True)
    assert again == fresh  # served from the digest cache after one HEAD
    assert counter.counts[("HEAD", "manifests")] == 3
    assert counter.counts[("GET", "manifests")] == counter.counts[("GET", "blobs")] == 1
    assert counter.counts[("GET", "other")] == 3  # https probe + http ping + one token, reused for every request

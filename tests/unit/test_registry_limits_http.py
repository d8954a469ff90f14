"""The adaptive request limit and pull quotas as the client applies them, against the small local aiohttp registry of
test_registry_client_http.py (it answers 429 and RateLimit headers on demand; the policy itself is
test_adaptivelimit.py's, and tests/integration/test_registry_limits.py meets a real registry behind a fault proxy)."""

from __future__ import annotations

import asyncio
import dataclasses
import math

import pytest
from aiohttp import web

from imagestreams.localcluster.images import unique_image
from imagestreams.registry import RegistryClient, RegistryError, on_behalf_of
from tests.unit import test_registry_client_http as http_tests
from tests.unit.test_registry_client_http import FAST, Servers, respond

servers = http_tests.servers  # the fixture: the small registry, its token server and storage
LIMITED = dataclasses.replace(FAST, per_registry_rate=100, per_registry_concurrency=8)


def quota_headers(limit: int, remaining: int) -> dict[str, str]:
    return {"RateLimit-Limit": f"{limit};w=21600", "RateLimit-Remaining": f"{remaining};w=21600"}


def with_quota(servers: Servers, limit: int, remaining: list[int]) -> None:
    """Manifest answers carry RateLimit headers, `remaining` counting down with each manifest GET."""
    registry = servers.registry
    plain = registry._manifest  # wrapped, not replaced

    def manifest(repository: str, reference: str) -> web.Response:
        answer = plain(repository, reference)
        left = remaining[0]
        if registry.seen[-1].method == "GET":
            remaining[0] = left = max(0, left - 1)
        answer.headers.update(quota_headers(limit, left))
        return answer

    registry._manifest = manifest  # type: ignore[method-assign]


async def test_a_429_lowers_the_registrys_limits_and_only_its_own(servers: Servers) -> None:
    digest = servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(LIMITED) as client:
        assert client.request_limits(servers.host) == (100, 8)
        servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", respond(429, **{"Retry-After": "0"}))
        resolved = await client.resolve(servers.host, "team/app", "v1", insecure=True)
        rate, concurrency = client.request_limits(servers.host)
        assert resolved.digest == digest
        assert rate < 60 and concurrency == 4  # halved, and climbing back since
        assert client.request_limits("elsewhere.example") == (100, 8)


async def test_a_5xx_lowers_the_limits_too(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(LIMITED) as client:
        servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", respond(503))
        await client.resolve(servers.host, "team/app", "v1", insecure=True)
        rate, concurrency = client.request_limits(servers.host)
    assert rate < 80 and concurrency == 6


async def test_a_registry_that_never_pushes_back_keeps_its_ceiling(servers: Servers) -> None:
    for n in range(20):
        servers.registry.push("team/app", f"v{n}", unique_image())
    servers.registry.delay = 0.02  # answers overlap
    async with RegistryClient(LIMITED) as client:
        await asyncio.gather(*(client.resolve(servers.host, "team/app", f"v{n}", insecure=True) for n in range(20)))
        assert client.request_limits(servers.host) == (100, 8)
    assert servers.registry.max_in_flight > 1


async def test_pulls_stop_where_the_advertised_quota_ends(servers: Servers) -> None:
    for n in range(3):
        servers.registry.push("team/app", f"v{n}", unique_image())
    with_quota(servers, limit=100, remaining=[2])
    async with RegistryClient(LIMITED) as client:
        await client.resolve(servers.host, "team/app", "v0", insecure=True)  # HEAD, GET manifest (1 left), config
        await client.resolve(servers.host, "team/app", "v1", insecure=True)  # GET manifest: none left
        third = asyncio.create_task(client.resolve(servers.host, "team/app", "v2", insecure=True))
        await asyncio.sleep(0.5)
        assert not third.done()  # its HEAD went out (not a pull); its GET waits for the quota to refill
        third.cancel()
        with pytest.raises(asyncio.CancelledError):
            await third
    assert servers.registry.count("GET", "/manifests/") == 2
    assert servers.registry.count("HEAD", "/manifests/v2") == 1


async def test_heads_are_not_pulls(servers: Servers) -> None:
    image = unique_image()
    digests = {servers.registry.push("team/app", f"v{n}", image) for n in range(10)}
    with_quota(servers, limit=100, remaining=[0])
    async with RegistryClient(LIMITED) as client:
        for n in range(10):  # the digest is known: a HEAD each, no GET
            await client.resolve(servers.host, "team/app", f"v{n}", insecure=True, known_digests=frozenset(digests))
    assert servers.registry.count("HEAD", "/manifests/") == 10


async def test_a_known_quota_applies_before_the_first_answer_and_is_lifted_by_one_without_headers(
    servers: Servers,
) -> None:
    for n in range(3):
        servers.registry.push("team/app", f"v{n}", unique_image())
    settings = dataclasses.replace(LIMITED, pull_limits={servers.host: (1, 21600.0)})
    async with RegistryClient(settings) as client:
        # One pull allowed; its answer has no RateLimit headers (no quota for this user): the others go too.
        for n in range(3):
            await client.resolve(servers.host, "team/app", f"v{n}", insecure=True)
    assert servers.registry.count("GET", "/manifests/") == 3


async def test_a_pull_waiting_for_the_quota_waits_for_this_operators_budget(servers: Servers) -> None:
    servers.registry.push("team/app", "v0", unique_image())
    with_quota(servers, limit=100, remaining=[0])
    async with RegistryClient(LIMITED) as client:
        with on_behalf_of("team-a") as demand:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await client.resolve(servers.host, "team/app", "v0", insecure=True)
            # Told apart from a slow registry: the lookup's deadline message says it waited for a turn.
            assert demand.waited(asyncio.get_running_loop().time()) > 0.25
    assert servers.registry.count("GET", "/manifests/") == 0


async def test_limits_are_reported_to_the_observer(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    seen: list[tuple[str, float, int]] = []
    settings = dataclasses.replace(LIMITED, limit_observer=lambda *limits: seen.append(limits))
    async with RegistryClient(settings) as client:
        servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", respond(429, **{"Retry-After": "0"}))
        await client.resolve(servers.host, "team/app", "v1", insecure=True)
    assert seen and seen[0][0] == servers.host and seen[0][1] < 100 and seen[0][2] == 4


async def test_without_a_rate_ceiling_there_is_no_rate_limit(servers: Servers) -> None:
    servers.registry.push("team/app", "v1", unique_image())
    async with RegistryClient(FAST) as client:
        servers.registry.fail("HEAD", "/v2/team/app/manifests/v1", *[respond(429)] * 3)
        with pytest.raises(RegistryError):
            await client.resolve(servers.host, "team/app", "v1", insecure=True)
        rate, concurrency = client.request_limits(servers.host)
    assert math.isinf(rate) and concurrency == 2


async def test_a_registry_that_advertised_a_quota_gets_a_head_before_a_new_tags_get(servers: Servers) -> None:
    image = unique_image("shared")
    servers.registry.push("team/app", "v1", image)
    servers.registry.push("team/app", "v2", image)
    with_quota(servers, 100, [100])
    async with RegistryClient(LIMITED) as client:
        # Nothing known about the registry yet: the new tag is read with a GET, whose answer advertises the quota.
        await client.resolve(servers.host, "team/app", "v1", insecure=True, never_imported=True)
        assert servers.registry.count("HEAD", "/manifests/") == 0
        # From then on a new tag costs a HEAD, and no pull when its image is known.
        await client.resolve(servers.host, "team/app", "v2", insecure=True, never_imported=True)
    assert servers.registry.count("HEAD", "/manifests/") == 1
    assert servers.registry.count("GET", "/manifests/") == 1

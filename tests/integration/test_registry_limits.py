"""The adaptive per-registry request limit against the real plain registry behind a fault proxy (FaultProxy): a 429
slows the operator's requests to that registry down, and to no other."""

from __future__ import annotations

import asyncio
import dataclasses
import math

import pytest

from imagestreams.localcluster import Registry
from imagestreams.localcluster.faults import Fault, FaultProxy
from imagestreams.localcluster.images import unique_image
from imagestreams.registry import ClientSettings, RegistryClient
from tests.helpers import pusher_for

# Long recovery: the limits read after the lookups are still the ones the 429 set.
SETTINGS = ClientSettings(
    per_registry_rate=200, per_registry_concurrency=8, limit_recovery_seconds=3600, backoff_base=0.01
)


async def test_a_429_halves_the_limits_of_that_registry_only(plain_registry: Registry, repository: str) -> None:
    image = unique_image("limits")
    with pusher_for(plain_registry) as pusher:
        pusher.push_image(repository, "t0", image)
        for n in range(1, 20):
            pusher.push_manifest(repository, f"t{n}", image.manifest, image.media_type)
    with FaultProxy(plain_registry.url) as proxy:
        async with RegistryClient(SETTINGS) as client:
            assert client.request_limits(proxy.host) == (200, 8)
            proxy.inject(Fault.status(429, retry_after="1").on("/manifests/t", "HEAD", times=1))
            resolved = await asyncio.gather(
                *(client.resolve(proxy.host, repository, f"t{n}", insecure=True) for n in range(20))
            )
            rate, concurrency = client.request_limits(proxy.host)
            direct = await client.resolve(plain_registry.host, repository, "t0", insecure=True)
            assert client.request_limits(plain_registry.host) == (200, 8)
    assert {r.digest for r in resolved} == {image.digest} == {direct.digest}
    assert [seen.answer for seen in proxy.requests("/manifests/t")].count("status") == 1
    assert (rate, concurrency) == (pytest.approx(100, abs=1), 4)  # halved (and climbing back, slowly)


async def test_errors_lower_the_limits_and_the_lookups_still_succeed(plain_registry: Registry, repository: str) -> None:
    digest = None
    with pusher_for(plain_registry) as pusher:
        digest = pusher.push_image(repository, "v1", unique_image("errors"))
    with FaultProxy(plain_registry.url) as proxy:
        async with RegistryClient(SETTINGS) as client:
            proxy.inject(Fault.status(503).on("/manifests/v1", "HEAD", times=1))
            resolved = await client.resolve(proxy.host, repository, "v1", insecure=True)
            rate, concurrency = client.request_limits(proxy.host)
    assert resolved.digest == digest
    assert (rate, concurrency) == (pytest.approx(150, abs=1), 6)  # a quarter off


async def test_without_a_rate_ceiling_only_the_concurrency_adapts(plain_registry: Registry, repository: str) -> None:
    with pusher_for(plain_registry) as pusher:
        pusher.push_image(repository, "v1", unique_image("unlimited"))
    settings = dataclasses.replace(SETTINGS, per_registry_rate=0)
    with FaultProxy(plain_registry.url) as proxy:
        async with RegistryClient(settings) as client:
            proxy.inject(Fault.status(429, retry_after="0").on("/manifests/v1", "HEAD", times=1))
            await client.resolve(proxy.host, repository, "v1", insecure=True)
            rate, concurrency = client.request_limits(proxy.host)
    assert math.isinf(rate) and concurrency == 4

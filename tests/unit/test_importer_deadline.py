"""A lookup past its deadline says what kept it: this operator's request budget for the registry, or the registry."""

from __future__ import annotations

import asyncio

from imagestreams.controller.importer import RESOLVE_DEADLINE_SECONDS, Importer
from imagestreams.core.fairness import Demand
from imagestreams.core.references import parse_reference
from imagestreams.core.registrypolicy import RegistryPolicy
from imagestreams.registry import ClientSettings, RegistryClient


def importer(settings: ClientSettings) -> Importer:
    return Importer(
        registry=RegistryClient(settings),
        kube=None,  # type: ignore[arg-type]
        policy=RegistryPolicy((), ()),
        streams=lambda namespace, name: None,
        access=None,  # type: ignore[arg-type]
    )


async def test_a_lookup_that_waited_for_its_turn_blames_the_budget_not_the_registry() -> None:
    now = asyncio.get_running_loop().time()
    demand = Demand(["team-a"])
    demand.queued(now - 100)  # still waiting for a turn when the deadline passed
    reference = parse_reference("registry.example/team/app:v1")
    failure = importer(ClientSettings(per_registry_rate=20, per_registry_concurrency=4))._timed_out(
        "team-a", reference, demand
    )
    assert failure.reason == "Timeout"
    assert "registry.example/team/app:v1: waited 100s of 120s for a turn" in failure.message
    assert "this operator's request budget for registry.example" in failure.message
    assert "20 requests per second, 4 at a time, shared fairly by 1 namespace(s)" in failure.message
    assert "slow or unreachable" not in failure.message


async def test_a_lookup_kept_waiting_by_the_registry_says_so() -> None:
    now = asyncio.get_running_loop().time()
    demand = Demand(["team-a"])
    demand.queued(now - RESOLVE_DEADLINE_SECONDS)
    demand.unqueued(now - RESOLVE_DEADLINE_SECONDS + 0.5)  # its turn came at once; then the registry did not answer
    failure = importer(ClientSettings())._timed_out("team-a", parse_reference("registry.example/a:v1"), demand)
    assert failure.reason == "Timeout"
    assert "no answer within 120s; the registry is slow or unreachable" in failure.message

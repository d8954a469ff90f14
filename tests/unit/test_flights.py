"""Shared registry work: one run per key, on behalf of every caller's namespace, cancelled when nobody waits.

No clock and no timed sleeps: the work waits on futures the test resolves, and `settle()` only lets the event loop
run what is ready.
"""

from __future__ import annotations

import asyncio

import pytest

from imagestreams.registry.flights import ANONYMOUS_TENANT, SingleFlight, current_demand, on_behalf_of


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


class Work:
    """Work that waits for the test to finish it, and records who it was done for and whether it was cancelled."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.release: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.tenants: list[frozenset[str]] = []

    async def __call__(self) -> str:
        self.started += 1
        self.tenants.append(current_demand().tenants)
        try:
            return await asyncio.shield(self.release)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def call(flights: SingleFlight[str, str], work: Work, tenant: str, key: str = "k") -> str:
    with on_behalf_of(tenant):
        return await flights.run(key, work)


async def test_concurrent_callers_share_one_run_and_its_result() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    callers = [asyncio.create_task(call(flights, work, tenant)) for tenant in ("team-a", "team-b", "team-a")]
    await settle()
    assert work.started == 1 and flights.running("k")
    work.release.set_result("digest")
    assert await asyncio.gather(*callers) == ["digest"] * 3
    assert not flights.running("k") and len(flights) == 0


async def test_the_run_acts_for_every_callers_namespace_also_those_that_join_later() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    seen: list[frozenset[str]] = []

    async def work() -> str:
        demand = current_demand()
        seen.append(demand.tenants)
        joined = asyncio.get_running_loop().create_future()
        demand.follow(lambda tenants: joined.set_result(tenants) if not joined.done() else None)
        return ",".join(sorted(await joined))

    first = asyncio.create_task(call(flights, work, "team-a"))  # type: ignore[arg-type]
    await settle()
    second = asyncio.create_task(call(flights, work, "team-b"))  # type: ignore[arg-type]
    assert await first == await second == "team-b"
    assert seen == [{"team-a"}]


async def test_the_run_is_cancelled_when_its_last_caller_leaves() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    first = asyncio.create_task(call(flights, work, "team-a"))
    second = asyncio.create_task(call(flights, work, "team-b"))
    await settle()
    first.cancel()
    await settle()
    assert work.cancelled == 0  # team-b still waits for it
    second.cancel()
    await settle()
    assert work.cancelled == 1 and not flights.running("k")
    for task in (first, second):
        with pytest.raises(asyncio.CancelledError):
            await task
    # A caller arriving afterwards starts a new run.
    third = asyncio.create_task(call(flights, work, "team-c"))
    await settle()
    assert work.started == 2
    work.release.set_result("digest")
    assert await third == "digest"


async def test_a_deadline_on_the_only_caller_cancels_the_run() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()

    async def with_deadline() -> str:
        async with asyncio.timeout(0):  # already passed: no waiting
            return await call(flights, work, "team-a")

    with pytest.raises(TimeoutError):
        await with_deadline()
    await settle()
    assert work.cancelled == 1 and not flights.running("k")


async def test_a_failure_reaches_every_caller_and_a_fresh_run_replaces_a_running_one() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    failing = Work()
    callers = [asyncio.create_task(call(flights, failing, "team-a")) for _ in range(2)]
    await settle()
    failing.release.set_exception(ValueError("bad manifest"))
    for caller in callers:
        with pytest.raises(ValueError, match="bad manifest"):
            await caller
    old, new = Work(), Work()
    first = asyncio.create_task(call(flights, old, "team-a"))
    await settle()

    async def fresh() -> str:
        with on_behalf_of("team-b"):
            return await flights.run("k", new, fresh=True)

    second = asyncio.create_task(fresh())
    await settle()
    assert (old.started, new.started) == (1, 1)
    new.release.set_result("new")
    old.release.set_result("old")
    assert (await first, await second) == ("old", "new")


async def test_requests_outside_any_namespace_share_one_anonymous_tenant() -> None:
    assert current_demand().tenants == {ANONYMOUS_TENANT}
    with on_behalf_of("team-a") as demand:
        assert current_demand() is demand and demand.tenants == {"team-a"}
    assert current_demand().tenants == {ANONYMOUS_TENANT}

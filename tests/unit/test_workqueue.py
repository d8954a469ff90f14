"""The work queue: one pass per key at a time, a slot given up while a pass waits, passes cancelled by key.

No clock and no timed sleeps: passes wait on events the test sets, and `settle()` only lets the event loop run what
is ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from imagestreams.controller.workqueue import WorkQueue, retry_delay


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class Passes:
    """A process function whose passes wait (idle or holding their slot) until the test lets them finish."""

    def __init__(self, queue: WorkQueue[str]) -> None:
        self.queue = queue
        self.started: list[tuple[str, frozenset[str]]] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.idle_keys: set[str] = set()

    def gate(self, key: str) -> asyncio.Event:
        return self.gates.setdefault(key, asyncio.Event())

    async def __call__(self, key: str, tags: frozenset[str]) -> None:
        self.started.append((key, tags))
        try:
            if key in self.idle_keys:
                async with self.queue.idle():
                    await self.gate(key).wait()
            else:
                await self.gate(key).wait()
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        self.gate(key).clear()
        self.finished.append(key)


@pytest.fixture
async def running() -> AsyncIterator[tuple[WorkQueue[str], Passes]]:
    queue: WorkQueue[str] = WorkQueue(2, name="test")
    passes = Passes(queue)
    task = asyncio.create_task(queue.run(passes))
    yield queue, passes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def started(passes: Passes) -> list[str]:
    return [key for key, _ in passes.started]


async def test_passes_waiting_idle_hold_no_slot(running: tuple[WorkQueue[str], Passes]) -> None:
    """Eight streams wait on a registry that never answers; two slots; a ninth stream still runs at once."""
    queue, passes = running
    hanging = [f"hang-{n}" for n in range(8)]
    passes.idle_keys.update(hanging)
    for key in hanging:
        queue.add(key)
    await settle()
    # In progress, but holding no slot: the runtime's Events do not wait for them (Runtime.events.writing).
    assert started(passes) == hanging and queue.in_progress == 8 and queue.holding == 0
    queue.add("healthy")
    await settle()
    assert started(passes)[-1] == "healthy" and queue.holding == 1
    passes.gate("healthy").set()
    await settle()
    assert passes.finished == ["healthy"] and queue.holding == 0


async def test_passes_holding_their_slot_bound_the_work(running: tuple[WorkQueue[str], Passes]) -> None:
    queue, passes = running
    for key in ("a", "b", "c"):
        queue.add(key)
    await settle()
    assert started(passes) == ["a", "b"]  # two slots
    passes.gate("a").set()
    await settle()
    assert started(passes) == ["a", "b", "c"]


async def test_an_idle_pass_takes_a_slot_again_before_it_goes_on(running: tuple[WorkQueue[str], Passes]) -> None:
    queue, passes = running
    passes.idle_keys.add("idle")
    queue.add("idle")
    await settle()
    queue.add("x")
    queue.add("y")
    await settle()
    assert started(passes) == ["idle", "x", "y"]  # both slots taken by x and y
    passes.gate("idle").set()
    await settle()
    assert passes.finished == []  # done waiting, but no slot free to go on with
    passes.gate("x").set()
    await settle()
    assert passes.finished == ["x", "idle"]


async def test_one_pass_per_key_and_changes_meanwhile_get_one_more(running: tuple[WorkQueue[str], Passes]) -> None:
    queue, passes = running
    queue.add("k", {"t1"})
    await settle()
    queue.add("k", {"t2"})
    queue.add("k", {"t3"})
    await settle()
    assert passes.started == [("k", frozenset({"t1"}))]
    passes.gate("k").set()
    await settle()
    assert passes.started == [("k", frozenset({"t1"})), ("k", frozenset({"t2", "t3"}))]


async def test_a_pass_cancelled_before_its_first_step_gives_its_slot_and_key_back(
    running: tuple[WorkQueue[str], Passes],
) -> None:
    """A stream deleted right after its pass was dispatched: the task is cancelled before it ever runs, so its own
    `finally` never does. Without the queue's done-callback the slot and the key stayed taken for good."""
    queue, passes = running
    queue.add("early")
    await asyncio.sleep(0)  # run() dispatches the pass; its first step is still to come
    assert queue.in_progress == 1 and passes.started == []
    assert queue.cancel("early") is True
    await settle()
    assert passes.started == [] and queue.in_progress == 0 and queue.holding == 0
    for key in ("early", "a", "b"):  # the key runs again, and both slots are free
        queue.add(key)
    await settle()
    assert sorted(started(passes)) == ["a", "early"] and queue.holding == 2


async def test_cancel_stops_the_pass_of_a_key_and_forgets_it(running: tuple[WorkQueue[str], Passes]) -> None:
    queue, passes = running
    passes.idle_keys.add("deleted")
    queue.add("deleted")
    await settle()
    queue.add("deleted", {"again"})  # a change while it runs: would get another pass
    assert queue.cancel("deleted") is True
    await settle()
    assert passes.cancelled == ["deleted"] and queue.in_progress == 0 and len(queue) == 0
    assert started(passes) == ["deleted"]  # no second pass
    assert queue.cancel("deleted") is False
    queue.add("waiting-1")
    queue.add("waiting-2")
    queue.add("never")
    queue.cancel("never")  # still queued: dropped before it starts
    passes.gate("waiting-1").set()
    passes.gate("waiting-2").set()
    await settle()
    assert "never" not in started(passes)


async def test_stopping_the_queue_cancels_its_passes() -> None:
    queue: WorkQueue[str] = WorkQueue(1, name="test")
    passes = Passes(queue)
    passes.idle_keys.update({"a", "b"})
    task = asyncio.create_task(queue.run(passes))
    queue.add("a")
    queue.add("b")
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(passes.cancelled) == ["a", "b"]


async def test_idle_outside_a_pass_does_nothing() -> None:
    queue: WorkQueue[str] = WorkQueue(1)
    async with queue.idle():
        pass


# --- retries: rate-limited add, forget --------------------------------------------------------------------------


def test_retry_delays_double_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    low = [retry_delay(n, base=1.0, cap=300.0, draw=lambda: 0.0) for n in range(1, 12)]
    high = [retry_delay(n, base=1.0, cap=300.0, draw=lambda: 1.0) for n in range(1, 12)]
    assert low[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert high[:5] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert low[-1] == 150.0 and high[-1] == 300.0
    assert retry_delay(10_000, base=1.0, cap=300.0, draw=lambda: 1.0) == 300.0  # no overflow after many failures


async def test_a_failed_key_comes_back_after_its_delay_and_forget_resets_the_count() -> None:
    queue: WorkQueue[str] = WorkQueue(1, retry_base=0.01, draw=lambda: 1.0)
    seen: list[tuple[str, frozenset[str]]] = []

    async def process(key: str, tags: frozenset[str]) -> None:
        seen.append((key, tags))

    runner = asyncio.create_task(queue.run(process))
    try:
        assert queue.add_rate_limited("a", {"v1"}) == pytest.approx(0.02)
        assert queue.add_rate_limited("a", {"v2"}) == pytest.approx(0.04)  # merged, one retry waits
        assert queue.failures("a") == 2 and queue.waiting == 1
        await asyncio.sleep(0.1)
        assert seen == [("a", frozenset({"v1", "v2"}))]
        assert queue.waiting == 0
        assert queue.forget("a") == 2
        assert queue.add_rate_limited("a") == pytest.approx(0.02)  # afresh
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_a_plain_add_runs_a_waiting_key_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue(1, retry_base=100.0)
    seen: list[tuple[str, frozenset[str]]] = []

    async def process(key: str, tags: frozenset[str]) -> None:
        seen.append((key, tags))

    runner = asyncio.create_task(queue.run(process))
    try:
        queue.add_rate_limited("a", {"due"})
        queue.add("a")  # the object changed: no reason to wait
        await settle()
        assert seen == [("a", frozenset({"due"}))]
        assert queue.waiting == 0
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_retry_waiting_now_runs_every_waiting_key() -> None:
    queue: WorkQueue[str] = WorkQueue(2, retry_base=100.0)
    seen: list[str] = []

    async def process(key: str, tags: frozenset[str]) -> None:
        seen.append(key)

    runner = asyncio.create_task(queue.run(process))
    try:
        for key in ("a", "b", "c"):
            queue.add_rate_limited(key)
        assert queue.retry_waiting_now() == 3
        await settle()
        assert sorted(seen) == ["a", "b", "c"]
        assert queue.failures("a") == 1  # still counted until a pass succeeds
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_cancel_drops_a_waiting_retry_and_its_count() -> None:
    queue: WorkQueue[str] = WorkQueue(1, retry_base=0.01)
    seen: list[str] = []

    async def process(key: str, tags: frozenset[str]) -> None:
        seen.append(key)

    runner = asyncio.create_task(queue.run(process))
    try:
        queue.add_rate_limited("gone")
        queue.cancel("gone")
        await asyncio.sleep(0.1)
        assert seen == []
        assert queue.failures("gone") == 0 and queue.waiting == 0
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

"""FreshReads: every caller gets a read that started after it asked, and callers arriving together share one."""

from __future__ import annotations

import asyncio

import pytest

from imagestreams.controller.freshreads import FreshReads


class Source:
    """A value that changes, read slowly: each read returns the value as it was when the read started."""

    def __init__(self) -> None:
        self.value = 0
        self.release = asyncio.Event()
        self.started: list[str] = []
        self.fail = False

    async def read(self, key: str) -> int:
        seen = self.value
        self.started.append(key)
        await self.release.wait()
        if self.fail:
            raise RuntimeError(f"cannot read {key}")
        return seen


async def test_each_caller_sees_what_changed_before_it_asked_and_callers_arriving_together_share_a_read() -> None:
    source = Source()
    reads = FreshReads(source.read)
    first = asyncio.create_task(reads.get("ns"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert source.started == ["ns"]  # the first read runs, and saw value 0
    source.value = 1  # a change (a pull secret created) after the first read started
    later = [asyncio.create_task(reads.get("ns")) for _ in range(50)]
    await asyncio.sleep(0.01)
    assert source.started == ["ns"]  # they wait for the read after the running one, not for a read each
    source.release.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [1] * 50  # all saw the change they came after
    assert reads.reads == 2


async def test_keys_are_read_independently() -> None:
    source = Source()
    source.release.set()
    reads = FreshReads(source.read)
    assert await asyncio.gather(reads.get("a"), reads.get("b"), reads.get("a")) == [0, 0, 0]
    assert sorted(source.started) == ["a", "b"]


async def test_a_failed_read_fails_its_callers_only_and_the_next_read_runs() -> None:
    source = Source()
    source.fail = True
    reads = FreshReads(source.read)
    callers = [asyncio.create_task(reads.get("ns")) for _ in range(3)]
    await asyncio.sleep(0)
    source.release.set()
    for caller in callers:
        with pytest.raises(RuntimeError, match="cannot read ns"):
            await caller
    source.fail = False
    assert await reads.get("ns") == 0


async def test_a_caller_that_stops_waiting_leaves_the_read_to_the_others() -> None:
    source = Source()
    reads = FreshReads(source.read)
    leaving = asyncio.create_task(reads.get("ns"))
    staying = asyncio.create_task(reads.get("ns"))
    await asyncio.sleep(0)
    leaving.cancel()
    source.release.set()
    assert await staying == 0
    assert leaving.cancelled()
    assert reads.reads == 1

"""Freed memory handed back once the start-up burst is over (controller.memory)."""

from __future__ import annotations

import asyncio

import pytest

from imagestreams.controller import memory


def test_the_heap_is_trimmed_on_glibc() -> None:
    assert memory.release_freed_memory() is True  # the development machine and the operator image use glibc


async def test_release_waits_for_the_start_up_and_for_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    released: list[str] = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda: released.append("now") or True)
    started = asyncio.Event()
    busy = [True]
    task = asyncio.create_task(memory.release_after_start_up(started, lambda: busy[0]))
    await asyncio.sleep(0.1)
    assert not released  # the initial listing is not done
    started.set()
    await asyncio.sleep(memory.QUIET_SECONDS + 1)
    assert not released  # work is still queued or running
    busy[0] = False
    await asyncio.wait_for(task, memory.QUIET_SECONDS + 2)
    assert released == ["now"]

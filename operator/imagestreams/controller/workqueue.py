"""A de-duplicating work queue: a key is processed by one worker at a time, and changes that arrive
while it is being processed are picked up by one more pass afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._pending: dict[K, set[str]] = {}  # key -> extra reasons (e.g. due tags), merged
        self._active: set[K] = set()
        self._again: set[K] = set()

    def add(self, key: K, tags: set[str] | frozenset[str] = frozenset()) -> None:
        if key in self._pending:
            self._pending[key] |= tags
            return
        self._pending[key] = set(tags)
        if key in self._active:
            self._again.add(key)  # queued again once the current pass finishes
        else:
            self._queue.put_nowait(key)

    def __len__(self) -> int:
        return len(self._pending)

    async def run_worker(self, process: Callable[[K, frozenset[str]], Awaitable[None]]) -> None:
        while True:
            key = await self._queue.get()
            tags = frozenset(self._pending.pop(key, set()))
            self._active.add(key)
            try:
                await process(key, tags)
            finally:
                self._active.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self._queue.put_nowait(key)

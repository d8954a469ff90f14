"""Reads that must be fresh, shared by the callers that ask for one at about the same time (`FreshReads`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class FreshReads(Generic[K, V]):
    """A caller of `get(key)` gets the result of a read of `key` that started after it called, so it sees every
    change made before it asked (a pull secret created just before its image stream, say). Callers share reads: at
    most one read of a key runs, and the callers that arrive meanwhile all wait for the one read that starts when it
    ends. A hundred streams created at once in one namespace cost a few reads of its pull secrets, not a hundred.

    A read's exception goes to each of its callers. A read runs to its end even when its callers stop waiting (it is
    short, and one read at a time per key keeps the API server's load bounded).
    """

    def __init__(self, read: Callable[[K], Awaitable[V]]) -> None:
        self._read = read
        self._running: dict[K, asyncio.Future[V]] = {}
        self._waiting: dict[K, asyncio.Future[V]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references to tasks
        self.reads = 0  # reads started, for tests

    async def get(self, key: K) -> V:
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = asyncio.get_running_loop().create_future()
            waiting.add_done_callback(_retrieve)
            task = asyncio.get_running_loop().create_task(self._start_after_running(key, waiting))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(waiting)

    async def _start_after_running(self, key: K, result: asyncio.Future[V]) -> None:
        running = self._running.get(key)
        if running is not None:
            await asyncio.wait([running])
        # From here on, a new caller cannot be sure this read sees what it wants seen: it waits for the next one.
        del self._waiting[key]
        self._running[key] = result
        self.reads += 1
        try:
            result.set_result(await self._read(key))
        except asyncio.CancelledError:
            result.cancel()
            raise
        except Exception as error:  # every failure goes to the callers, who handle it
            result.set_exception(error)
        finally:
            del self._running[key]


def _retrieve(future: asyncio.Future[V]) -> None:
    # Callers that stopped waiting must not leave "exception was never retrieved" behind.
    if not future.cancelled():
        future.exception()

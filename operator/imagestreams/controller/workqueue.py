"""A de-duplicating work queue served by a fixed number of worker slots.

A key is processed by one pass at a time, and changes that arrive while it is being processed are picked up by one
more pass afterwards. A pass may give its slot up while it waits on something slow (`idle()`, around registry
lookups), so a stream waiting on a registry that never answers holds no slot that streams on other registries need;
the slots bound the passes that are deciding or writing, not those waiting. A pass is cancelled by key (`cancel`)
when its object is deleted.

Retries belong here, as in client-go's rate-limited queue: a pass that failed calls `add_rate_limited(key)`, which
adds the key again after a jittered delay that doubles with each consecutive failure of that key (capped), and a pass
that succeeded calls `forget(key)` to reset the count. A plain `add` (the object changed) runs a waiting key at once.
`retry_waiting_now()` runs every waiting key at once (the API server is back after an outage).

For metrics, `on_wait` is told how long each key waited from its add (or its retry coming due) to the start of its
pass, and `on_retry` of each failed pass queued again.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from imagestreams.core.backoff import backoff_delay

K = TypeVar("K", bound=Hashable)
Process = Callable[[K, frozenset[str]], Awaitable[None]]  # one pass over a key, with the tags it was added with

logger = logging.getLogger(__name__)


class _Slot:
    """One pass's hold on a worker slot; `holding` counts the passes of its queue that hold one."""

    def __init__(self, slots: asyncio.Semaphore, holding: Callable[[int], None]) -> None:
        self.slots = slots
        self._holding = holding
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._holding(-1)
            self.slots.release()

    async def acquire(self) -> None:
        await self.slots.acquire()
        self.held = True
        self._holding(1)


_current_slot: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar("workqueue_slot", default=None)


def retry_delay(failures: int, *, base: float, cap: float, draw: Callable[[], float]) -> float:
    """The delay before retrying a key that failed `failures` times in a row: core.backoff's policy, starting one
    doubling up (1-2 s after the first failure with base 1), so many keys failing at once spread out."""
    return backoff_delay(failures + 1, base, cap, draw())


class WorkQueue(Generic[K]):
    def __init__(
        self,
        workers: int = 1,
        name: str = "work",
        *,
        retry_base: float = 1.0,
        retry_cap: float = 300.0,
        draw: Callable[[], float] = random.random,
        on_wait: Callable[[float], None] | None = None,
        on_retry: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workers = workers
        self.name = name
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._draw = draw
        self._failures: dict[K, int] = {}  # consecutive failed passes per key, until forget()
        self._waiting: dict[K, tuple[asyncio.TimerHandle, set[str]]] = {}  # keys waiting for their retry
        self._slots = asyncio.Semaphore(workers)
        self._ready: deque[K] = deque()
        self._wakeup = asyncio.Event()
        self._pending: dict[K, set[str]] = {}  # key -> extra reasons (e.g. due tags), merged
        self._passes: dict[K, asyncio.Task[None]] = {}  # keys being processed (holding a slot or idle)
        self.holding = 0  # passes holding a slot (working, not waiting idle on something slow)
        self._again: set[K] = set()
        self._added: dict[K, float] = {}  # when each pending key was added, for on_wait
        self._on_wait = on_wait
        self._on_retry = on_retry
        self._clock = clock

    def add(self, key: K, tags: set[str] | frozenset[str] = frozenset()) -> None:
        waiting = self._waiting.pop(key, None)
        if waiting is not None:  # runs now instead, with what the retry would have carried
            waiting[0].cancel()
            tags = set(tags) | waiting[1]
        if key in self._pending:
            self._pending[key] |= tags
            return
        self._pending[key] = set(tags)
        self._added[key] = self._clock()
        if key in self._passes:
            self._again.add(key)  # queued again once the current pass finishes
        else:
            self._ready.append(key)
            self._wakeup.set()

    def add_rate_limited(self, key: K, tags: set[str] | frozenset[str] = frozenset()) -> float:
        """A pass over `key` failed: add it again after a growing, jittered delay. Returns the delay."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        if self._on_retry is not None:
            self._on_retry()
        delay = retry_delay(failures, base=self.retry_base, cap=self.retry_cap, draw=self._draw)
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            waiting[0].cancel()
            tags = set(tags) | waiting[1]
        handle = asyncio.get_running_loop().call_later(delay, self._retry, key)
        self._waiting[key] = (handle, set(tags))
        return delay

    def forget(self, key: K) -> int:
        """A pass over `key` succeeded: its next failure starts the backoff afresh. Returns the failures forgotten."""
        return self._failures.pop(key, 0)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    @property
    def waiting(self) -> int:
        """Keys waiting for a retry."""
        return len(self._waiting)

    def retry_waiting_now(self) -> int:
        """Run every key that waits for a retry now. Returns how many."""
        keys = list(self._waiting)
        for key in keys:
            self._retry(key)
        return len(keys)

    def _retry(self, key: K) -> None:
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            waiting[0].cancel()
            self.add(key, waiting[1])

    async def drained(self, poll: float = 0.01) -> None:
        """Wait until nothing is pending or running (keys waiting for a retry do not count). For tests."""
        while self._pending or self._passes:
            await asyncio.sleep(poll)

    def cancel(self, key: K) -> bool:
        """Forget `key`: drop it if it waits, and cancel its pass if one runs (True then)."""
        self._pending.pop(key, None)  # a stale entry in the ready queue is skipped
        self._added.pop(key, None)
        self._failures.pop(key, None)
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            waiting[0].cancel()
        self._again.discard(key)
        task = self._passes.get(key)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def in_progress(self) -> int:
        """Passes running, whether they hold a slot or wait idle."""
        return len(self._passes)

    async def run(self, process: Process[K]) -> None:
        """Start a pass of `process` for each key, at most `workers` of them holding a slot at once. Runs until
        cancelled, and then cancels the passes it started."""
        try:
            while True:
                key = await self._next()
                await self._slots.acquire()  # not held while waiting for work: idle passes may need it back
                if key not in self._pending:  # cancelled meanwhile
                    self._slots.release()
                    continue
                tags = frozenset(self._pending.pop(key))
                added = self._added.pop(key, None)
                if added is not None and self._on_wait is not None:
                    self._on_wait(self._clock() - added)
                slot = _Slot(self._slots, self._count_holding)  # the slot just taken, for this pass
                self.holding += 1
                task = asyncio.create_task(self._pass(key, tags, process, slot), name=f"{self.name} {key}")
                # A pass cancelled before its first step never runs its `finally`: this gives its slot and key back.
                task.add_done_callback(functools.partial(self._pass_ended, key, slot))
                self._passes[key] = task
        finally:
            for handle, _ in self._waiting.values():
                handle.cancel()
            self._waiting.clear()
            passes = list(self._passes.values())
            for task in passes:
                task.cancel()
            await asyncio.gather(*passes, return_exceptions=True)

    async def _next(self) -> K:
        while True:
            while self._ready:
                key = self._ready.popleft()
                if key in self._pending and key not in self._passes:
                    return key
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _pass(self, key: K, tags: frozenset[str], process: Process[K], slot: _Slot) -> None:
        _current_slot.set(slot)  # this task's own context: idle() finds it
        try:
            await process(key, tags)
        except asyncio.CancelledError:
            logger.debug("%s pass for %s cancelled", self.name, key)
            raise
        except Exception:  # process() handles its failures; this is a safety net, never a reason to stop
            logger.exception("%s pass for %s failed", self.name, key)
        finally:
            current = asyncio.current_task()
            assert current is not None
            self._pass_ended(key, slot, current)

    def _pass_ended(self, key: K, slot: _Slot, task: asyncio.Task[None]) -> None:
        """Give the pass's slot back and let its key run again; the second call for one pass does nothing."""
        slot.release()
        if self._passes.get(key) is task:
            del self._passes[key]
            if key in self._again:
                self._again.discard(key)
                self._ready.append(key)
                self._wakeup.set()

    def _count_holding(self, change: int) -> None:
        self.holding += change

    @contextlib.asynccontextmanager
    async def idle(self) -> AsyncIterator[None]:
        """Give the current pass's slot up while waiting inside (another key's pass may use it), and take a slot
        again afterwards. Outside a pass of this queue, or when the slot is already given up, it does nothing."""
        slot = _current_slot.get()
        if slot is None or slot.slots is not self._slots or not slot.held:
            yield
            return
        slot.release()
        try:
            yield
        except asyncio.CancelledError:
            raise  # the pass ends: no slot needed
        except BaseException:
            await slot.acquire()
            raise
        await slot.acquire()

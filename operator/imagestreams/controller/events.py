"""Events posted after the writes they describe (`DeferredEvents`), so that a burst of work is not slowed by its
own Events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

EventPoster = Callable[[dict[str, Any], str, str, str], Awaitable[None]]


class DeferredEvents:
    """Events, posted after the writes they describe: a fan-out to a thousand Deployments is a thousand Events too,
    and so are a thousand new tags; posting each before the next write would double the time until the last
    Deployment has its image. `post` only queues the Event; `run` posts them `workers` at a time while no write is
    waiting or working (`writing`, which the runtime gives: imports or workload writes queued or holding a worker),
    or once the oldest has waited `max_delay` seconds (a steady stream of writes does not hold them back for ever).
    Posting an Event costs the operator and the API server as much as the write it describes (bench/fanout.py: a
    thousand Events posted during a fan-out of 1,000 made its last write come 1.6x later), so `max_delay` is well
    beyond a large fan-out's length. A queue beyond `limit` drops the newest, with a warning: Events are advisory.
    """

    def __init__(
        self,
        post: EventPoster,
        *,
        workers: int = 4,
        max_delay: float = 60.0,
        limit: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._post = post
        self.workers = workers
        self.max_delay = max_delay
        self.limit = limit
        self._clock = clock
        self.writing: Callable[[], bool] = lambda: False  # the runtime says when workload writes are waiting
        self._queue: deque[tuple[float, dict[str, Any], str, str, str]] = deque()
        self._arrived = asyncio.Event()
        self._in_flight = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._queue)

    async def post(self, body: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """Queue an Event about `body` (an EventPoster: the caller goes on at once)."""
        if len(self._queue) >= self.limit:
            if not self.dropped:
                logger.warning("over %d Events waiting to be posted; dropping new ones until they drain", self.limit)
            self.dropped += 1
            return
        self._queue.append((self._clock(), _event_subject(body), event_type, reason, message))
        self._arrived.set()

    async def run(self) -> None:
        """Post queued Events until cancelled."""
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def drained(self, poll: float = 0.01) -> None:
        """Wait until every queued Event is posted (at a stop, and for tests)."""
        while self._queue or self._in_flight:
            await asyncio.sleep(poll)

    async def _worker(self) -> None:
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            # Writes first: wait while any are queued or running, unless the oldest Event has waited long enough.
            while self._queue and self.writing() and self._clock() - self._queue[0][0] < self.max_delay:
                await asyncio.sleep(0.05)
            if not self._queue:
                continue
            _, subject, event_type, reason, message = self._queue.popleft()
            if not self._queue:
                self.dropped = 0
            self._in_flight += 1
            try:
                await self._post(subject, event_type, reason, message)
            except Exception:  # post_event logs refusals itself; anything else must not end the worker
                logger.exception("posting a %s Event %s failed", event_type, reason)
            finally:
                self._in_flight -= 1


def _event_subject(body: dict[str, Any]) -> dict[str, Any]:
    """What an Event needs of the object it is about (its reference), without holding on to the whole body."""
    metadata = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {key: metadata.get(key) for key in ("name", "namespace", "uid", "resourceVersion")},
    }

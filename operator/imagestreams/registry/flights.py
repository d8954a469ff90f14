"""Registry work shared by concurrent callers, done on behalf of the namespaces that asked for it.

`on_behalf_of(namespace)` marks the registry requests made inside it as that namespace's: each registry's fair queue
(`core.fairness.Admission`) serves them in that namespace's turn. `SingleFlight` runs one piece of work for all
concurrent callers with the same key; the work acts for every caller's namespace (its requests take the earliest of
their turns), and it is cancelled as soon as no caller waits for it any more (a deadline passed, a stream was
deleted), so abandoned work leaves the registry's queue at once instead of holding a turn, a slot or a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Callable, Coroutine, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from imagestreams.core.fairness import Demand

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Requests made outside any on_behalf_of() share one anonymous tenant.
ANONYMOUS_TENANT = ""

_demand: contextvars.ContextVar[Demand | None] = contextvars.ContextVar("imagestreams_registry_demand", default=None)


def current_demand() -> Demand:
    """Who the registry requests made here are for."""
    demand = _demand.get()
    return demand if demand is not None else Demand((ANONYMOUS_TENANT,))


@contextlib.contextmanager
def on_behalf_of(tenant: str) -> Iterator[Demand]:
    """Registry requests made inside are `tenant`'s (a namespace): they wait in its lane of each registry's queue.
    Yields the demand, whose `waited()` tells how long they waited for a turn."""
    demand = Demand((tenant,))
    token = _demand.set(demand)
    try:
        yield demand
    finally:
        _demand.reset(token)


@dataclass(eq=False)
class _Flight(Generic[V]):
    task: asyncio.Task[V]
    demand: Demand
    callers: int = 0


class SingleFlight(Generic[K, V]):
    """One run of the work per key for concurrent callers; every caller gets its result or its exception.

    The run is cancelled once every caller has stopped waiting (each caller's own cancellation or deadline), and a
    caller that arrives after that starts a new run.
    """

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[V]] = {}

    def running(self, key: K) -> bool:
        """Whether a run for `key` is in flight that a new caller would join."""
        return key in self._flights

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: K, factory: Callable[[], Coroutine[Any, Any, V]], *, fresh: bool = False) -> V:
        """Join the run for `key`, or start one with `factory()`; `fresh` starts a new one whatever runs (callers
        arriving later join the new one)."""
        flight = None if fresh else self._flights.get(key)
        if flight is None:
            demand = Demand()
            context = contextvars.copy_context()
            context.run(_demand.set, demand)
            task = asyncio.get_running_loop().create_task(factory(), context=context)
            flight = self._flights[key] = _Flight(task, demand)
            task.add_done_callback(functools.partial(self._finished, key, flight))
        flight.demand.include(current_demand())
        flight.callers += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.callers -= 1
            if flight.callers == 0 and not flight.task.done():
                # Nobody waits for it any more: stop it, so its requests give their turns and connections back.
                self._drop(key, flight)
                flight.task.cancel()

    def _drop(self, key: K, flight: _Flight[V]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    def _finished(self, key: K, flight: _Flight[V], _: object = None) -> None:
        self._drop(key, flight)
        if not flight.task.cancelled():
            flight.task.exception()  # retrieved: callers that left must not cause "never retrieved" noise

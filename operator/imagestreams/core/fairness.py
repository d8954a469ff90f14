"""Fair shares of a limited budget among tenants (namespaces). Pure: time is passed in, nothing waits here.

- `TokenBucket`: `rate` tokens a second, at most `burst` saved up. A token is taken only when it is there: nothing is
  booked ahead, so a waiter that gives up has cost nothing, and a queue of waiters never pushes a newcomer back.
- `FairQueue`: waiting items served round-robin across tenants, first come first served within one tenant.
- `Admission`: one registry's request budget (concurrency, rate, a pause after a 429) handing the next turn to the
  tenant whose turn it is; its rate and concurrency may change at any time (`core.adaptivelimit` decides them).
- `Demand`: the tenants a piece of shared work is done for, and how long its requests waited for a turn.
- `share_fairly`: a number of turns handed out round-robin across tenants (the scheduled-import budget).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)
V = TypeVar("V")

_EPSILON = 1e-9  # float slack, so a wake-up computed for "one token" finds the token there


class TokenBucket:
    """`rate` tokens per second, bursts up to `burst`. A rate <= 0 means unlimited."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(1.0, float(burst))
        self._level = self.burst
        self._updated: float | None = None

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self, now: float) -> None:
        if self._updated is not None and now > self._updated:
            self._level = min(self.burst, self._level + (now - self._updated) * self.rate)
        if self._updated is None or now > self._updated:
            self._updated = now

    def available(self, now: float) -> float:
        """Tokens there now (infinite when unlimited)."""
        if self.unlimited:
            return float("inf")
        self._refill(now)
        return self._level

    def take_up_to(self, now: float, count: int) -> int:
        """Take as many whole tokens as are there, at most `count`; how many were taken."""
        if self.unlimited:
            return max(0, count)
        self._refill(now)
        taken = max(0, min(count, int(self._level + _EPSILON)))
        self._level -= taken
        return taken

    def try_take(self, now: float) -> bool:
        return self.take_up_to(now, 1) == 1

    def delay(self, now: float) -> float:
        """Seconds until a token is there (0.0 when one is)."""
        if self.unlimited:
            return 0.0
        self._refill(now)
        return max(0.0, (1.0 - self._level) / self.rate)

    def give_back(self) -> None:
        """Return a token taken for something that was then not done."""
        if not self.unlimited:
            self._level = min(self.burst, self._level + 1.0)

    def set_rate(self, now: float, rate: float, burst: float) -> None:
        """Refill at `rate` from now on, up to `burst`; what was saved up so far stays (within the new burst)."""
        self._refill(now)
        self.rate = rate
        self.burst = max(1.0, float(burst))
        self._level = min(self._level, self.burst)

    def set_level(self, now: float, level: float) -> None:
        """There are `level` tokens now (someone who keeps the true count said so)."""
        self._refill(now)
        self._level = max(0.0, min(self.burst, level))


class FairQueue(Generic[T]):
    """Items waiting for a turn: one tenant's item per turn, the tenant served least recently first (a tenant not
    served yet, or not for longer than any other waiting one, first of all), each tenant's items in order.

    With N tenants waiting, a tenant's next item waits for at most N - 1 turns of the others, however many items they
    have queued, and a tenant that was just served and queues again waits for the others' turns. An item may wait in
    several tenants' lanes (work done for several tenants) and is served at the first of their turns. Each item is
    pushed once; `remove` takes it out wherever it waits.
    """

    def __init__(self) -> None:
        self._lanes: dict[str, deque[T]] = {}  # tenant -> its waiting items (in the order the lanes opened)
        self._waiting: dict[T, set[str]] = {}  # item -> the tenants whose lanes hold it
        self._served: dict[str, int] = {}  # tenant -> the turn it was last served in
        self._turn = 0

    def push(self, item: T, tenants: Iterable[str]) -> None:
        """Queue `item` in each tenant's lane (once per tenant); also for an item already waiting."""
        lanes = self._waiting.setdefault(item, set())
        for tenant in tenants:
            if tenant not in lanes:
                lanes.add(tenant)
                self._lanes.setdefault(tenant, deque()).append(item)

    def remove(self, item: T) -> bool:
        """Take a waiting item out (it gave up); False if it was not waiting."""
        return self._waiting.pop(item, None) is not None  # left in its lanes, skipped when reached

    def pop(self) -> T | None:
        """The item whose turn it is, or None."""
        while self._lanes:
            # min() keeps the first of equals: among tenants never served, the one that has waited longest.
            tenant = min(self._lanes, key=lambda name: self._served.get(name, -1))
            lane = self._lanes[tenant]
            while lane and tenant not in self._waiting.get(lane[0], ()):
                lane.popleft()  # removed, or already served from another lane
            if not lane:
                del self._lanes[tenant]
                continue
            item = lane.popleft()
            del self._waiting[item]
            if not lane:
                del self._lanes[tenant]
            self._turn += 1
            self._served[tenant] = self._turn
            self._forget_old_turns()
            return item
        return None

    def _forget_old_turns(self) -> None:
        """A tenant with nothing waiting whose last turn is older than that of every waiting tenant once served is
        ordered as one never served (before those, after the waiting ones never served, whose lanes are older):
        forget its turn, so the memory stays bounded by the tenants recently served."""
        if len(self._served) <= 2 * len(self._lanes) + 64:
            return
        floor = min((self._served[tenant] for tenant in self._lanes if tenant in self._served), default=self._turn + 1)
        self._served = {tenant: turn for tenant, turn in self._served.items() if tenant in self._lanes or turn >= floor}

    def tenants(self) -> frozenset[str]:
        """Tenants with an item waiting."""
        return frozenset(tenant for lanes in self._waiting.values() for tenant in lanes)

    def waiting(self, tenant: str) -> int:
        return sum(1 for lanes in self._waiting.values() if tenant in lanes)

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, item: object) -> bool:
        return item in self._waiting


class Admission(Generic[T]):
    """One registry's request budget: at most `concurrency` requests in flight, `rate` a second (bursts of
    `burst`), none while paused (a 429 asked for a wait), and the next turn to the tenant whose turn it is.

    Waiting costs nothing: a token and a slot are taken only when a request is admitted, so a request that gives up
    (`withdraw`) leaves no debt behind, and one admitted but never sent returns both (`refund`).
    """

    def __init__(self, rate: float, burst: float, concurrency: int) -> None:
        self.bucket = TokenBucket(rate, burst)
        self.concurrency = max(1, concurrency)
        self.in_flight = 0
        self.paused_until = float("-inf")
        self.queue: FairQueue[T] = FairQueue()

    def enqueue(self, item: T, tenants: Iterable[str]) -> None:
        self.queue.push(item, tenants)

    def also_for(self, item: T, tenants: Iterable[str]) -> None:
        """A waiting item is now wanted by more tenants too: it also waits in their lanes."""
        if item in self.queue:
            self.queue.push(item, tenants)

    def withdraw(self, item: T) -> None:
        self.queue.remove(item)

    def pause_until(self, moment: float) -> None:
        self.paused_until = max(self.paused_until, moment)

    def set_limits(self, now: float, rate: float, burst: float, concurrency: int) -> None:
        """The budget changed (it adapts to the registry's answers): `rate` a second in bursts of `burst` (rate <= 0
        or infinite: unlimited), `concurrency` in flight. Requests in flight above a lowered concurrency finish."""
        self.bucket.set_rate(now, rate if math.isfinite(rate) else 0.0, burst)
        self.concurrency = max(1, concurrency)

    def admit(self, now: float) -> T | None:
        """The next item that may start now (its token and slot taken), or None."""
        if not self.queue or self.in_flight >= self.concurrency or now < self.paused_until:
            return None
        if not self.bucket.try_take(now):
            return None
        item = self.queue.pop()
        if item is None:  # pragma: no cover - the queue's length counts waiting items only
            self.bucket.give_back()
            return None
        self.in_flight += 1
        return item

    def wake_at(self, now: float) -> float | None:
        """When `admit` may succeed again with nothing finishing first; None when nothing waits or every slot is
        taken (a finishing request makes room)."""
        if not self.queue or self.in_flight >= self.concurrency:
            return None
        if now < self.paused_until:
            return self.paused_until
        return now + self.bucket.delay(now)

    def finished(self) -> None:
        """An admitted request is done: its slot is free."""
        self.in_flight = max(0, self.in_flight - 1)

    def refund(self) -> None:
        """An admitted request was abandoned before it was sent: its slot and its token come back."""
        self.finished()
        self.bucket.give_back()

    def tenants_waiting(self) -> frozenset[str]:
        return self.queue.tenants()


class Demand:
    """Who a piece of registry work is for, and how long its requests have waited for a turn.

    A lookup made for one stream has its namespace. Work shared by several callers (one lookup for several streams,
    one token fetch for several lookups) has a demand that `include`s each caller's: it has all their tenants, also
    those that join later, and passes them on to the work it starts in turn and to its `follow`ers (a request waiting
    for a turn, which then also waits in the new tenant's lane). `waited` adds up the time its own requests and the
    work it started spent waiting for a turn, so a deadline can tell a budget wait from a slow registry.
    """

    def __init__(self, tenants: Iterable[str] = ()) -> None:
        self._tenants: set[str] = set(tenants)
        self._started: list[Demand] = []  # work started or joined on this demand's behalf
        self._followers: list[Callable[[frozenset[str]], None]] = []
        self._queued = 0
        self._queued_since = 0.0
        self._waited = 0.0

    @property
    def tenants(self) -> frozenset[str]:
        return frozenset(self._tenants)

    def include(self, caller: Demand) -> None:
        """This work is (also) done for `caller`: it takes the caller's tenants, now and whenever they grow."""
        if not any(started is self for started in caller._started):
            caller._started.append(self)
        self._learn(frozenset(caller._tenants))

    def _learn(self, tenants: frozenset[str]) -> None:
        new = tenants - self._tenants
        if not new:
            return  # also ends a walk around a cycle
        self._tenants |= new
        for follower in list(self._followers):
            follower(new)
        for started in list(self._started):
            started._learn(new)

    def follow(self, callback: Callable[[frozenset[str]], None]) -> Callable[[], None]:
        """Call `callback(new tenants)` whenever tenants are added; returns the function that stops it."""
        self._followers.append(callback)

        def unfollow() -> None:
            if callback in self._followers:
                self._followers.remove(callback)

        return unfollow

    def queued(self, now: float) -> None:
        """One of this demand's requests starts waiting for a turn."""
        if self._queued == 0:
            self._queued_since = now
        self._queued += 1

    def unqueued(self, now: float) -> None:
        """One of this demand's requests got its turn, or gave up."""
        self._queued = max(0, self._queued - 1)
        if self._queued == 0:
            self._waited += now - self._queued_since

    def waited(self, now: float) -> float:
        """Seconds this demand's requests, and those of the work started for it, have waited for a turn."""
        total, seen, stack = 0.0, set[int](), [self]
        while stack:
            demand = stack.pop()
            if id(demand) in seen:
                continue
            seen.add(id(demand))
            total += demand._waited + (now - demand._queued_since if demand._queued else 0.0)
            stack.extend(demand._started)
        return total


def share_fairly(queues: Mapping[str, Sequence[V]], count: int, turns: Mapping[str, int]) -> list[tuple[str, V]]:
    """Up to `count` items, handed out round-robin: one item of each tenant in turn, each tenant's in their order.

    `turns[tenant]` says when the tenant last got an item (a counter; higher is later): the tenants served least
    recently go first, so a budget smaller than one round still reaches every tenant over successive calls.
    Returns (tenant, item) in the order handed out.
    """
    order = sorted(queues, key=lambda tenant: (turns.get(tenant, -1), tenant))
    taken = dict.fromkeys(order, 0)
    picked: list[tuple[str, V]] = []
    while len(picked) < count:
        progressed = False
        for tenant in order:
            if len(picked) >= count:
                break
            position = taken[tenant]
            if position < len(queues[tenant]):
                picked.append((tenant, queues[tenant][position]))
                taken[tenant] = position + 1
                progressed = True
        if not progressed:
            break
    return picked

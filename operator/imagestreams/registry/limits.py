"""Small synchronous building blocks: a token bucket and an LRU cache. The client adds the waiting."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. `reserve` books a token and says how long to wait.

    Reservations may drive the level negative: each caller gets its own slot in the queue, so waiters are served in
    order and the long-run rate holds. A rate <= 0 means unlimited.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._level = float(self.burst)
        self._updated: float | None = None

    def reserve(self, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        if self._updated is not None:
            self._level = min(float(self.burst), self._level + (now - self._updated) * self.rate)
        self._updated = now
        self._level -= 1.0
        return 0.0 if self._level >= 0 else -self._level / self.rate


class LRUCache(Generic[K, V]):
    """A bounded mapping that forgets the least recently used entry first."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        try:
            self._data.move_to_end(key)
        except KeyError:
            return None
        return self._data[key]

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

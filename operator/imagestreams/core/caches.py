"""The operator's in-memory helpers for caches and indexes, written once and used everywhere.

- `TTLCache`: a bounded mapping whose entries expire; least recently used entries go first when it is full.
- `ReverseIndex`: which keys refer to which targets, both ways, so that a change to a target finds its referrers and a
  change to a referrer touches only its own entries.

Pure: the clock is passed in (a callable returning seconds), so tests drive time and core does no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar, cast

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T", bound=Hashable)

Clock = Callable[[], float]


def _never() -> float:
    return 0.0


class TTLCache(Generic[K, V]):
    """A bounded mapping whose entries expire `ttl` seconds after they were put (never when ttl is None).

    When full, the least recently used entry is forgotten first. Expired entries are dropped when they are looked at
    and whenever a put finds the cache full, so memory stays bounded by `maxsize`.
    """

    def __init__(self, maxsize: int, ttl: float | None = None, clock: Clock | None = None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if ttl is not None and clock is None:
            raise ValueError("a cache whose entries expire needs a clock")
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock or _never
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()  # key -> (expiry time, value)

    def get(self, key: K) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V, ttl: float | None = None) -> None:
        """Remember `value`; `ttl` overrides the cache's lifetime for this entry (e.g. a token's own expiry)."""
        lifetime = ttl if ttl is not None else self.ttl
        expires = self._clock() + lifetime if lifetime is not None else float("inf")
        self._data[key] = (expires, value)
        self._data.move_to_end(key)
        if len(self._data) > self.maxsize:
            self._drop_expired()
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        entry = self._data.pop(key, None)
        return entry[1] if entry is not None else None

    def clear(self) -> None:
        self._data.clear()

    def _drop_expired(self) -> None:
        now = self._clock()
        for key in [key for key, (expires, _) in self._data.items() if expires <= now]:
            del self._data[key]

    def __contains__(self, key: object) -> bool:
        entry = self._data.get(cast(K, key))
        return entry is not None and entry[0] > self._clock()

    def __len__(self) -> int:
        return len(self._data)


class ReverseIndex(Generic[K, T]):
    """Each key refers to a set of targets; `referrers(target)` answers the reverse question in O(answer)."""

    def __init__(self) -> None:
        self._targets: dict[K, frozenset[T]] = {}
        self._referrers: dict[T, set[K]] = {}

    def assign(self, key: K, targets: Iterable[T]) -> None:
        """Make `key` refer to exactly `targets` (none: the key is forgotten)."""
        self.discard(key)
        wanted = frozenset(targets)
        if not wanted:
            return
        self._targets[key] = wanted
        for target in wanted:
            self._referrers.setdefault(target, set()).add(key)

    def discard(self, key: K) -> None:
        for target in self._targets.pop(key, frozenset()):
            members = self._referrers.get(target)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._referrers[target]

    def referrers(self, target: T) -> set[K]:
        """The keys that refer to `target` (a copy: safe to keep while the index changes)."""
        return set(self._referrers.get(target, ()))

    def targets(self, key: K) -> frozenset[T]:
        return self._targets.get(key, frozenset())

    def keys(self) -> set[K]:
        return set(self._targets)

    def __contains__(self, key: object) -> bool:
        return key in self._targets

    def __len__(self) -> int:
        return len(self._targets)

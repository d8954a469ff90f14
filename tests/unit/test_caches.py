"""core.caches: the one TTL cache and the one two-way index the operator uses."""

from __future__ import annotations

import pytest

from imagestreams.core.caches import ReverseIndex, TTLCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    cache: TTLCache[str, int] = TTLCache(10, ttl=30, clock=clock)
    cache.put("a", 1)
    clock.now += 29.9
    assert cache.get("a") == 1
    clock.now += 0.1
    assert cache.get("a") is None
    assert "a" not in cache
    assert len(cache) == 0  # dropped when looked at


def test_a_put_may_set_its_own_lifetime() -> None:
    clock = FakeClock()
    cache: TTLCache[str, int] = TTLCache(10, ttl=300, clock=clock)
    cache.put("token", 1, ttl=5)
    clock.now += 6
    assert cache.get("token") is None


def test_least_recently_used_goes_first_when_full() -> None:
    cache: TTLCache[str, int] = TTLCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1
    assert cache.get("c") == 3


def test_expired_entries_make_room_before_live_ones_are_evicted() -> None:
    clock = FakeClock()
    cache: TTLCache[str, int] = TTLCache(2, ttl=10, clock=clock)
    cache.put("old", 1, ttl=1)
    cache.put("live", 2)
    clock.now += 2
    cache.put("new", 3)
    assert cache.get("live") == 2
    assert cache.get("new") == 3


def test_expiring_entries_need_a_clock_and_room() -> None:
    with pytest.raises(ValueError, match="clock"):
        TTLCache(1, ttl=1)
    with pytest.raises(ValueError, match="maxsize"):
        TTLCache(0)


def test_pop_and_clear() -> None:
    cache: TTLCache[str, int] = TTLCache(3)
    cache.put("a", 1)
    assert cache.pop("a") == 1
    assert cache.pop("a") is None
    cache.put("b", 2)
    cache.clear()
    assert len(cache) == 0


def test_reverse_index_answers_both_ways() -> None:
    index: ReverseIndex[str, str] = ReverseIndex()
    index.assign("web", {"ns/app", "ns/base"})
    index.assign("worker", {"ns/app"})
    assert index.referrers("ns/app") == {"web", "worker"}
    assert index.referrers("ns/base") == {"web"}
    assert index.targets("web") == frozenset({"ns/app", "ns/base"})
    index.assign("web", {"ns/other"})  # re-pointing drops the old entries
    assert index.referrers("ns/base") == set()
    assert index.referrers("ns/app") == {"worker"}
    index.discard("worker")
    assert index.referrers("ns/app") == set()
    assert index.keys() == {"web"}
    assert "worker" not in index and len(index) == 1


def test_reverse_index_forgets_a_key_set_to_nothing() -> None:
    index: ReverseIndex[str, str] = ReverseIndex()
    index.assign("web", {"ns/app"})
    index.assign("web", ())
    assert "web" not in index
    assert index.referrers("ns/app") == set()


def test_referrers_is_a_copy() -> None:
    index: ReverseIndex[str, str] = ReverseIndex()
    index.assign("web", {"ns/app"})
    referrers = index.referrers("ns/app")
    index.discard("web")
    assert referrers == {"web"}

"""Token bucket and LRU cache."""

from __future__ import annotations

from imagestreams.registry.limits import LRUCache, TokenBucket


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=5.0, burst=10)
    waits = [bucket.reserve(0.0) for _ in range(12)]
    assert waits[:10] == [0.0] * 10
    assert waits[10:] == [0.2, 0.4]  # queued callers get successive slots


def test_bucket_refills_up_to_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=2)
    assert [bucket.reserve(0.0), bucket.reserve(0.0)] == [0.0, 0.0]
    assert bucket.reserve(0.0) == 0.5
    assert bucket.reserve(100.0) == 0.0  # long idle: refilled, but only to the burst
    assert bucket.reserve(100.0) == 0.0
    assert bucket.reserve(100.0) == 0.5


def test_non_positive_rate_means_unlimited() -> None:
    bucket = TokenBucket(rate=0, burst=1)
    assert all(bucket.reserve(0.0) == 0.0 for _ in range(100))


def test_lru_evicts_least_recently_used() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert "b" not in cache
    assert (cache.get("a"), cache.get("c"), len(cache)) == (1, 3, 2)
    assert cache.pop("a") == 1
    assert cache.pop("a") is None
    assert cache.get("missing") is None

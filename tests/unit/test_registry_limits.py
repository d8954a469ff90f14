"""The client's LRU cache (the request budget is tested in test_fairness.py)."""

from __future__ import annotations

from imagestreams.registry.limits import LRUCache


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

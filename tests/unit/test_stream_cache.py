"""The stream cache knows which streams copy from which, so a change wakes only those."""

from __future__ import annotations

from typing import Any

from imagestreams.controller.reconciler import StreamCache


def body(namespace: str, name: str, sources: list[dict[str, Any]]) -> dict[str, Any]:
    tags = [{"name": f"t{i}", "from": source} for i, source in enumerate(sources)]
    return {"metadata": {"namespace": namespace, "name": name}, "spec": {"tags": tags}}


def test_referrers_follow_puts_and_removes() -> None:
    cache = StreamCache()
    cache.put(("a", "base"), body("a", "base", [{"kind": "DockerImage", "name": "x:1"}]))
    cache.put(("a", "copy"), body("a", "copy", [{"kind": "ImageStreamTag", "name": "base:t0"}]))
    cache.put(("b", "far"), body("b", "far", [{"kind": "ImageStreamImage", "name": "base@sha256:1", "namespace": "a"}]))
    cache.put(("a", "alias"), body("a", "alias", [{"kind": "ImageStreamTag", "name": "t1"}]))  # same stream
    assert cache.dependents("a", "base") == [("a", "copy"), ("b", "far")]
    assert cache.dependents("a", "alias") == []

    cache.put(("a", "copy"), body("a", "copy", [{"kind": "DockerImage", "name": "y:1"}]))
    assert cache.dependents("a", "base") == [("b", "far")]
    cache.remove(("b", "far"))
    assert cache.dependents("a", "base") == []
    assert cache.stream("a", "base") is not None
    assert cache.stream("b", "far") is None

"""Events are posted after the writes they describe (controller.events.DeferredEvents). The
poster here records what it is given; the real one is tests/integration/test_fanout.py's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from imagestreams.controller.events import DeferredEvents

Posted = list[tuple[str, str, str, str]]


def body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "team", "uid": f"uid-{name}", "resourceVersion": "9", "labels": {}},
        "spec": {"replicas": 1},
    }


@contextlib.asynccontextmanager
async def running(events: DeferredEvents) -> AsyncIterator[None]:
    task = asyncio.create_task(events.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def recorder(posted: Posted, subjects: list[dict[str, Any]] | None = None) -> Any:
    async def post(subject: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        posted.append((subject["metadata"]["name"], event_type, reason, message))
        if subjects is not None:
            subjects.append(subject)

    return post


async def test_post_returns_at_once_and_the_event_follows() -> None:
    posted: Posted = []
    events = DeferredEvents(recorder(posted))
    await events.post(body("web"), "Normal", "ImageChangeTriggered", "container web: image a -> b")
    assert posted == [] and len(events) == 1
    async with running(events):
        await asyncio.wait_for(events.drained(), 5)
    assert posted == [("web", "Normal", "ImageChangeTriggered", "container web: image a -> b")]


async def test_events_wait_while_writes_do() -> None:
    posted: Posted = []
    writing = True
    events = DeferredEvents(recorder(posted), max_delay=60)
    events.writing = lambda: writing
    async with running(events):
        for n in range(3):
            await events.post(body(f"d{n}"), "Normal", "ImageChangeTriggered", "")
        await asyncio.sleep(0.3)
        assert posted == []  # the writes go first
        writing = False
        await asyncio.wait_for(events.drained(), 5)
    assert sorted(name for name, *_ in posted) == ["d0", "d1", "d2"]


async def test_a_steady_stream_of_writes_holds_events_back_no_longer_than_max_delay() -> None:
    posted: Posted = []
    events = DeferredEvents(recorder(posted), max_delay=0.2)
    events.writing = lambda: True
    async with running(events):
        await events.post(body("web"), "Warning", "InvalidImageTrigger", "bad")
        await asyncio.wait_for(events.drained(), 5)
    assert posted == [("web", "Warning", "InvalidImageTrigger", "bad")]


async def test_only_the_reference_of_the_object_is_kept() -> None:
    posted: Posted = []
    subjects: list[dict[str, Any]] = []
    events = DeferredEvents(recorder(posted, subjects))
    await events.post(body("web"), "Normal", "ImageChangeTriggered", "")
    async with running(events):
        await asyncio.wait_for(events.drained(), 5)
    assert subjects == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "team", "uid": "uid-web", "resourceVersion": "9"},
        }
    ]


async def test_beyond_the_limit_new_events_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    posted: Posted = []
    events = DeferredEvents(recorder(posted), limit=2)
    for n in range(5):
        await events.post(body(f"d{n}"), "Normal", "ImageChangeTriggered", "")
    assert (len(events), events.dropped) == (2, 3)
    assert sum("dropping new ones" in record.getMessage() for record in caplog.records) == 1  # said once
    async with running(events):
        await asyncio.wait_for(events.drained(), 5)
    assert [name for name, *_ in posted] == ["d0", "d1"]


async def test_a_failing_poster_does_not_stop_the_others() -> None:
    posted: Posted = []

    async def flaky(subject: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        if subject["metadata"]["name"] == "bad":
            raise RuntimeError("boom")
        posted.append((subject["metadata"]["name"], event_type, reason, message))

    events = DeferredEvents(flaky, workers=1)
    for name in ("bad", "good"):
        await events.post(body(name), "Normal", "ImageChangeTriggered", "")
    async with running(events):
        await asyncio.wait_for(events.drained(), 5)
    assert [name for name, *_ in posted] == ["good"]

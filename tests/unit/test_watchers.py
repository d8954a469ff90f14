"""The workload watch loop (controller/watchers.py): what it delivers, and how it goes on after an expiry, a failure
and the end of a watch. The listing and the watch are played here; tests/integration/test_workload_watch.py runs
them against the API server, and tests/faults/test_watch_gaps.py a real expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from imagestreams.controller.watchers import ListWatch, watched_namespaces, workload_collections
from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.kube.watch import Collection, WatchExpired, WatchFailed


def body(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": version}}


class Script:
    """Listings and watches to play, in order; each watch is a list of events or an exception to raise after them."""

    def __init__(self, listings: list[list[dict[str, Any]]], watches: list[tuple[list[Any], Exception | None]]):
        self.listings, self.watches = listings, watches
        self.watched_from: list[str] = []
        self.done = asyncio.Event()

    async def list_pages(self, http: Any, collection: Collection) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        items = self.listings.pop(0)
        yield items, f"list-{len(self.listings)}"

    async def watch_events(
        self, http: Any, collection: Collection, since: str
    ) -> AsyncIterator[tuple[str, dict[str, Any], str]]:
        self.watched_from.append(since)
        if not self.watches:
            self.done.set()
            await asyncio.Event().wait()  # the last watch stays open
        events, error = self.watches.pop(0)
        for event_type, event_body in events:
            yield event_type, event_body, event_body["metadata"]["resourceVersion"]
        if error is not None:
            raise error


async def play(script: Script, refused: str = "") -> tuple[list[tuple[str | None, str]], int]:
    """Run the loop until the script's last watch; what it delivered, and how often it said it listed again. The
    receiver raises for the object named `refused`."""
    seen: list[tuple[str | None, str]] = []
    relisted: list[str] = []

    def take(event_type: str | None, obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == refused:
            raise ValueError("cannot take this one")
        seen.append((event_type, obj["metadata"]["name"]))

    watch = ListWatch(
        httpx2.AsyncClient(),
        Collection("apps", "v1", "deployments", "ns"),
        take,
        lambda: relisted.append("relisted"),
        list_pages=script.list_pages,
        watch_events=script.watch_events,
    )
    task = watch.start()
    try:
        async with asyncio.timeout(10):
            await script.done.wait()
    finally:
        task.cancel()
    return seen, len(relisted)


async def test_listed_objects_then_events_bookmarks_moving_the_version_only() -> None:
    script = Script(
        [[body("a", "1"), body("b", "2")]],
        [([("ADDED", body("c", "3")), ("BOOKMARK", body("", "7"))], None)],  # then the API server ends the watch
    )
    seen, relisted = await play(script)
    assert seen == [(None, "a"), (None, "b"), ("ADDED", "c")]
    # The watch the server ended is opened again from the bookmark's version; nothing is listed again.
    assert script.watched_from == ["list-0", "7"]
    assert relisted == 0


async def test_a_watch_that_ends_at_once_without_an_event_is_opened_again_after_a_delay() -> None:
    script = Script([[body("a", "1")]], [([], None), ([], None), ([], None)])
    started = time.monotonic()
    seen, relisted = await play(script)
    # 0.25, 0.5 and 1 s before the second, third and fourth watch: not a loop of requests at full speed.
    assert time.monotonic() - started >= 1.7
    assert script.watched_from == ["list-0"] * 4
    assert (seen, relisted) == ([(None, "a")], 0)


async def test_an_expired_watch_lists_again_and_says_so() -> None:
    script = Script(
        [[body("a", "1")], [body("b", "5")]],
        [([("MODIFIED", body("a", "2"))], WatchExpired("gone"))],
    )
    seen, relisted = await play(script)
    assert seen == [(None, "a"), ("MODIFIED", "a"), (None, "b")]
    assert script.watched_from == ["list-1", "list-0"]
    assert relisted == 1  # only the second listing is a re-list


async def test_a_failed_watch_is_opened_again_from_the_last_version_without_listing(caplog: Any) -> None:
    script = Script(
        [[body("a", "1")]],
        [([("MODIFIED", body("a", "4"))], WatchFailed("refused (500)")), ([], httpx2.ReadError("reset"))],
    )
    seen, relisted = await play(script)
    assert seen == [(None, "a"), ("MODIFIED", "a")]
    assert script.watched_from == ["list-0", "4", "4"]
    assert relisted == 0
    failures = [record.getMessage() for record in caplog.records if "failed" in record.getMessage()]
    assert len(failures) == 1, failures  # one line for the streak, not one per attempt


async def test_a_refused_first_listing_is_tried_again_and_is_not_a_relist() -> None:
    script = Script([[body("a", "1")]], [])
    calls = 0
    original = script.list_pages

    async def refused_once(http: Any, collection: Collection) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise WatchFailed("the listing was refused (403)")
        async for page in original(http, collection):
            yield page

    script.list_pages = refused_once  # type: ignore[method-assign]
    seen, relisted = await play(script)
    assert seen == [(None, "a")]
    assert relisted == 0


async def test_an_object_the_runtime_cannot_take_is_skipped_and_the_others_still_arrive(caplog: Any) -> None:
    script = Script([[body("a", "1"), body("odd", "2"), body("b", "3")]], [([("ADDED", body("odd", "4"))], None)])
    seen, relisted = await play(script, refused="odd")
    assert seen == [(None, "a"), (None, "b")]
    assert script.watched_from == ["list-0", "4"] and relisted == 0  # the watch went on past the odd object
    assert sum("ns/odd" in record.getMessage() for record in caplog.records) == 2


@pytest.mark.parametrize(
    ("namespaces", "watched"),
    [((), [None]), (("a", "b"), ["a", "b"]), (("a", "team-*", "b?"), ["a"]), (("x[0]",), [])],
)
def test_watched_namespaces_are_the_named_ones_or_all(namespaces: tuple[str, ...], watched: list[str | None]) -> None:
    assert watched_namespaces(namespaces) == watched


def test_every_workload_kind_is_watched_in_every_watched_namespace() -> None:
    collections = workload_collections(("a", "b"))
    assert len(collections) == 2 * len(WorkloadKind)
    assert (WorkloadKind.CRONJOB, Collection("batch", "v1", "cronjobs", "b")) in collections


def test_a_collection_path_names_the_group_version_namespace_and_plural() -> None:
    assert Collection("apps", "v1", "deployments", "ns").path == "/apis/apps/v1/namespaces/ns/deployments"
    assert Collection("batch", "v1", "cronjobs", None).path == "/apis/batch/v1/cronjobs"
    assert Collection("", "v1", "pods", "ns").path == "/api/v1/namespaces/ns/pods"

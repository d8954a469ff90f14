"""The watches of image streams and workloads: one list-and-watch loop (kube/watch.py) per resource and watched
namespace, feeding the runtime.

A loop never ends by itself: a refused or broken watch is opened again from the last version seen, after a short
delay that grows to 2 s (as Kopf's watches do here, controller/handlers.CappedBackoff); an expired one is listed
afresh at once, and the runtime is told, since deletions in the gap were never announced. The loop's task is named
as Kopf names its watch tasks, so /healthz counts it with them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2

from imagestreams.controller.health import WATCHER_TASK_PREFIX
from imagestreams.core.workloadkinds import WORKLOAD_TYPES, WorkloadKind
from imagestreams.kube.watch import Collection, WatchExpired, list_pages, watch_events

logger = logging.getLogger(__name__)

Seen = Callable[[str | None, dict[str, Any]], None]  # event type (None: an object of a listing), object


def retry_delays() -> Iterator[float]:
    """Delays between the attempts of a failing watch: short at first, then every 2 s, never giving up."""
    yield from (0.25, 0.5, 1.0)
    yield from itertools.repeat(2.0)


def watched_namespaces(namespaces: Sequence[str]) -> list[str | None]:
    """Where to watch: every namespace (None) when none is named, else each named one. A glob pattern is not
    watched, as Kopf (which watches the streams) does not watch one without namespace scanning, which is off."""
    if not namespaces:
        return [None]
    return [name for name in namespaces if not set(name) & set("!*?,[")]


@dataclass
class ListWatch:
    """The list-and-watch loop of one resource in one namespace (or all)."""

    http: httpx2.AsyncClient
    collection: Collection
    seen: Seen
    relisted: Callable[[], None]  # a listing after the first: the watch had expired
    # kube/watch.py's I/O, replaceable so that tests can play expiries and failures at chosen points.
    list_pages: Callable[[httpx2.AsyncClient, Collection], AsyncIterator[tuple[list[dict[str, Any]], str]]] = list_pages
    watch_events: Callable[[httpx2.AsyncClient, Collection, str], AsyncIterator[tuple[str, dict[str, Any], str]]] = (
        watch_events
    )

    def start(self) -> asyncio.Task[None]:
        collection = self.collection
        name = f"{WATCHER_TASK_PREFIX}{collection.plural}.{collection.group}@{collection.namespace}"
        return asyncio.create_task(self.run(), name=name)

    async def run(self) -> None:
        collection = self.collection
        since: str | None = None  # the version the watch goes on from; None: list first
        listed_before = False
        delays = retry_delays()
        failing = ""
        while True:
            try:
                if since is None:
                    since = await self._list(collection)
                    if listed_before:
                        self.relisted()
                    listed_before = True
                events = 0
                async for event_type, body, version in self.watch_events(self.http, collection, since):
                    events += 1
                    since = version
                    if event_type != "BOOKMARK":
                        self._deliver(event_type, body)
                    if failing:
                        logger.info("watching %s again after: %s", collection, failing)
                        failing, delays = "", retry_delays()
                if not events:
                    # Ended by the server before a single event or bookmark (the API server sends a bookmark within
                    # a minute): something between closes watches at once. Not again at once, or the loop would
                    # hammer the API server.
                    await asyncio.sleep(next(delays))
            except WatchExpired as expired:  # rare with bookmarks: the API server restarted, or the watch fell behind
                logger.info("%s; listing again", expired)
                since = None
            except asyncio.CancelledError:
                raise
            except Exception as error:  # refused, broken off, silent: try again, from `since`
                delay = next(delays)
                if not failing:
                    logger.warning(
                        "watching %s failed: %s; trying again in %.2f s, and then every 2 s "
                        "(not logged until it recovers)",
                        collection,
                        error or type(error).__name__,
                        delay,
                    )
                failing = str(error) or type(error).__name__
                await asyncio.sleep(delay)

    async def _list(self, collection: Collection) -> str:
        """Deliver every object the collection holds now (type None); the listing's version."""
        listed_version = ""
        async for page, page_version in self.list_pages(self.http, collection):
            listed_version = page_version
            for body in page:
                self._deliver(None, body)
        return listed_version

    def _deliver(self, event_type: str | None, body: dict[str, Any]) -> None:
        """One object to the runtime. Anyone who may create an object can make it odd: a failure to take it is that
        object's alone, and never stops the listing or the watch for the others."""
        try:
            self.seen(event_type, body)
        except Exception:
            metadata = body.get("metadata") or {}
            where = f"{metadata.get('namespace', '')}/{metadata.get('name', '?')}"
            what = event_type or "listed object"
            logger.exception("taking %s %s from the watch of %s failed; skipped", what, where, self.collection)


def workload_collections(namespaces: Sequence[str]) -> list[tuple[WorkloadKind, Collection]]:
    """Each workload kind in each watched namespace."""
    return [
        (kind, Collection(workload.group, workload.version, workload.plural, namespace))
        for kind, workload in WORKLOAD_TYPES.items()
        for namespace in watched_namespaces(namespaces)
    ]

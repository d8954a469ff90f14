"""List and watch one resource in one namespace (or all), as plain dicts: the I/O of the stream and workload watches.

Written here rather than left to Kopf (which still watches the mirror sets): Kopf spends about 1 to 2 ms of CPU on
each event it dispatches (its per-object worker, causes, handler kwargs), and every Deployment a fan-out writes comes
back as two events (the operator's own apply, then kube-controller-manager's status update). On the 2 cores the
operator shares with the API server that was the fan-out's largest cost after the applies themselves
(docs/benchmarks.md). Here an event costs its JSON decoding. lightkube's own watch cannot serve: it asks for no
bookmarks, so a quiet namespace's watch would expire (410) and re-list every time it reconnects.

What a caller gets is what Kopf gave the handlers: the objects of a listing (type None), then the watch's events,
and a fresh listing whenever the watch has expired. The caller decides what to do with a re-listing (the runtime
compares its caches with fresh lists, for deletions that no event announced).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2

LIST_PAGE_SIZE = 500
# The API server sends a bookmark about once a minute on a watch that asked for them; a watch silent for longer than
# this is taken for a lost connection and opened again (Kopf's inactivity timeout is the same).
INACTIVITY_SECONDS = 70.0


class WatchExpired(Exception):
    """The watch's resourceVersion is no longer served (410 Gone): only a new listing can go on from here."""


class WatchFailed(Exception):
    """The API server refused the listing or the watch (or broke off): try again later."""


@dataclass(frozen=True)
class Collection:
    """Where a resource's objects are listed and watched: `/apis/apps/v1/namespaces/NS/deployments`."""

    group: str
    version: str
    plural: str
    namespace: str | None  # None: every namespace

    @property
    def path(self) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        where = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{root}{where}/{self.plural}"

    def __str__(self) -> str:
        return f"{self.plural}.{self.group or 'core'} in {self.namespace or 'all namespaces'}"


async def list_pages(
    http: httpx2.AsyncClient, collection: Collection
) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    """The collection's objects, a page at a time, each page with the listing's resourceVersion (the same for
    every page of one listing: the version to watch from)."""
    params = {"limit": str(LIST_PAGE_SIZE)}
    while True:
        response = await http.get(collection.path, params=params)
        if response.status_code != 200:
            raise _refusal(response.status_code, response.content, collection, "listing")
        document = json.loads(response.content)
        metadata = document.get("metadata") or {}
        items = list(document.get("items") or [])
        # A list's items carry no kind and apiVersion (the list does): Events about them need both.
        kind, api_version = str(document.get("kind") or "").removesuffix("List"), document.get("apiVersion")
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
        yield items, str(metadata.get("resourceVersion") or "")
        continuation = metadata.get("continue")
        if not continuation:
            return
        params = {"limit": str(LIST_PAGE_SIZE), "continue": str(continuation)}


async def watch_events(
    http: httpx2.AsyncClient, collection: Collection, since: str, *, inactivity: float = INACTIVITY_SECONDS
) -> AsyncIterator[tuple[str, dict[str, Any], str]]:
    """(type, object, resourceVersion) of each event after `since`, bookmarks included (type BOOKMARK, the object
    carries only the version), until the API server ends the watch. Raises WatchExpired on 410 Gone, WatchFailed
    on another refusal or a watch silent for `inactivity` seconds.

    The silence is timed by a deadline moved at each line, which cancels whatever the consuming task awaits: the
    consumer must not await between events (the runtime's delivery is synchronous)."""
    params = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": since}
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(loop.time() + inactivity) as silence:
            async with http.stream("GET", collection.path, params=params, timeout=_WATCH_TIMEOUT) as response:
                if response.status_code != 200:
                    raise _refusal(response.status_code, await response.aread(), collection, "watch")
                async for line in response.aiter_lines():
                    silence.reschedule(loop.time() + inactivity)
                    if not line:
                        continue
                    event = json.loads(line)
                    kind, body = str(event.get("type") or ""), event.get("object") or {}
                    if kind == "ERROR":
                        raise _status_error(body, collection, "watch")
                    yield kind, body, str((body.get("metadata") or {}).get("resourceVersion") or since)
    except TimeoutError:
        raise WatchFailed(f"the watch of {collection} was silent for {inactivity:.0f} s") from None


# No read timeout on the stream itself: its silence is timed above, and a watch may rightly last for many minutes.
_WATCH_TIMEOUT = httpx2.Timeout(10.0, read=None)


def _refusal(code: int, content: bytes, collection: Collection, what: str) -> Exception:
    """The error for an answer other than 200, from the Status the API server sends with it."""
    try:
        status = json.loads(content)
    except ValueError:
        status = None
    if not isinstance(status, dict):
        status = {}
    status.setdefault("code", code)
    return _status_error(status, collection, what)


def _status_error(status: dict[str, Any], collection: Collection, what: str) -> Exception:
    code = status.get("code")
    message = status.get("message") or status.get("reason") or f"HTTP {code}"
    if code == 410:
        return WatchExpired(f"the {what} of {collection} expired: {message}")
    return WatchFailed(f"the {what} of {collection} was refused ({code}): {message}")

"""The operator's runtime: the watches, caches, work queues and controllers.

Built once in `main()`'s start-up handler and reached through Kopf's memo. The watches (controller/watchers.py) only
deliver events (`stream_seen`, `workload_seen`); the queues' workers reconcile; retries live in the queues. A watch
that lists again after a gap never announces what was deleted in it, so after each re-list (and at each resync) the
caches are compared with fresh lists (`compare_with_api`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient

from imagestreams.api.imagestream import GROUP, PLURAL, VERSION
from imagestreams.api.mirrorsets import MIRROR_SET_KINDS, MirrorSetKind
from imagestreams.api.settings import OperatorSettings
from imagestreams.controller import logs
from imagestreams.controller.events import DeferredEvents
from imagestreams.controller.importer import Importer, MirrorSets
from imagestreams.controller.metrics import Metrics
from imagestreams.controller.reconciler import Reconciler, Scheduler, StreamCache, StreamKey
from imagestreams.controller.triggers import TriggerController, WorkloadKey, WriteRefused
from imagestreams.controller.watchers import ListWatch, watched_namespaces, workload_collections
from imagestreams.controller.workqueue import WorkQueue
from imagestreams.core.notifications import PushTarget
from imagestreams.core.registrypolicy import RegistryPolicy
from imagestreams.core.slimbodies import slim_stream
from imagestreams.core.triggers import TRIGGERS_ANNOTATION
from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.kube.access import PullAccess
from imagestreams.kube.client import operator_client
from imagestreams.kube.events import post_event
from imagestreams.kube.health import api_answers, api_server_endpoints
from imagestreams.kube.mirrorsets import list_mirror_sets
from imagestreams.kube.streams import StaleStream, list_stream_keys, list_streams
from imagestreams.kube.watch import Collection
from imagestreams.kube.workloads import list_workloads
from imagestreams.registry import ClientSettings, Platform, RegistryClient

logger = logging.getLogger(__name__)
RETRY_MAX_SECONDS = 300.0
EVENTS_AT_STOP_SECONDS = 2.0
OUTAGE_PROBE_SECONDS = 1.0
INITIAL_STREAMS_TIMEOUT_SECONDS = 60.0
RELIST_SETTLE_SECONDS = 2.0
STREAM_KIND = "ImageStream"  # the stream watch's kind in metrics; workload watches go by their WorkloadKind


class Runtime:
    """Everything the handlers share, created at start-up.

    `kube` and `clock` are injectable so that tests can build a runtime in-process against the real API server and
    drive its schedule without sleeping. `metrics` is the process's (main() builds it); a fresh one otherwise.
    """

    def __init__(
        self,
        settings: OperatorSettings,
        *,
        kube: AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = metrics = metrics if metrics is not None else Metrics()
        self.cache = StreamCache()
        # import_workers slots for streams being decided or written; a stream waiting on a registry gives its slot up.
        self.queue: WorkQueue[StreamKey] = WorkQueue(
            settings.import_workers,
            name="import",
            retry_cap=RETRY_MAX_SECONDS,
            on_wait=functools.partial(metrics.queue_waited, "import"),
            on_retry=functools.partial(metrics.queue_retried, "import"),
        )
        self.scheduler = Scheduler(settings, clock=clock)
        self._owns_kube = kube is None
        self._watch_http: httpx2.AsyncClient | None = None
        self.kube = kube or operator_client("imagestream-operator")
        self.access = PullAccess(self.kube)
        policy = RegistryPolicy(
            settings.allowed_registries,
            settings.denied_registries,
            loopback_allowed=settings.loopback_registries,
            api_server=api_server_endpoints(self.kube, os.environ),
            private_denied=settings.deny_private_registries,
            private_allowed=settings.private_registries,
        )
        self.registry = RegistryClient(
            ClientSettings(
                per_registry_concurrency=settings.registry_concurrency,
                per_registry_rate=settings.registry_rate,
                per_registry_min_rate=settings.registry_rate_min,
                default_platform=Platform(settings.platform_os, settings.platform_architecture),
                extra_ca_file=settings.extra_ca_file,
                host_guard=policy.denial,
                address_guard=policy.address_refusal,
                request_observer=metrics.registry_request,
                limit_observer=metrics.registry_limits,
            )
        )
        self.mirror_sets = MirrorSets()
        importer = Importer(
            registry=self.registry,
            kube=self.kube,
            policy=policy,
            streams=self.cache.stream,
            access=self.access,
            reuse_seconds=settings.scheduled_interval_seconds * 0.9,
            idle=self.queue.idle,
            clock=clock,
            metrics=metrics,
            mirrors=self.mirror_sets.config,
        )
        # Events wait while imports and workload writes do: a fan-out's last write, or the last of a thousand new
        # tags, comes no later for them (posting one costs as much as the write it describes).
        self.events = DeferredEvents(functools.partial(post_event, self.kube))
        self.reconciler = Reconciler(
            cache=self.cache,
            importer=importer,
            kube=self.kube,
            settings=settings,
            scheduler=self.scheduler,
            post_event=self.events.post,
            clock=clock,
            metrics=metrics,
        )
        self.triggers = TriggerController(
            kube=self.kube,
            streams=self.cache,
            access=self.access,
            post_event=self.events.post,
            metrics=metrics,
        )
        self.workload_queue: WorkQueue[WorkloadKey] = WorkQueue(
            settings.trigger_workers,
            name="trigger",
            retry_cap=RETRY_MAX_SECONDS,
            on_wait=functools.partial(metrics.queue_waited, "trigger"),
            on_retry=functools.partial(metrics.queue_retried, "trigger"),
        )
        # Passes waiting idle on a slow registry do not count: another namespace's registry that never answers must
        # not hold Events back for a minute.
        self.events.writing = lambda: any(len(queue) or queue.holding for queue in (self.queue, self.workload_queue))
        metrics.watch_queue(self.queue)
        metrics.watch_queue(self.workload_queue)
        metrics.watch_caches(self.cache.bodies, self.triggers.workloads)
        self.tasks: list[asyncio.Task[None]] = []
        self.streams_listed = asyncio.Event()
        self.deleted_at_start: set[StreamKey] = set()  # deleted before the initial listing was matched
        self.failure_kinds: dict[Any, str] = {}  # the kind of the last failure per key, logged once
        self.relisted = asyncio.Event()  # a watch listed its objects again (see relist_seen)
        # Comparing the caches with fresh lists (after a re-list, and at each resync), one comparison at a time.
        self._comparing = asyncio.Lock()
        self._touched: set[Any] = set()  # stream and workload keys the watches delivered since a comparison began
        self.vanished = 0  # streams and workloads forgotten because a fresh list no longer had them
        self.missed = 0  # streams and workloads a fresh list showed changed while no watch event had said so

    # --- watch events ------------------------------------------------------------------------------

    def stream_seen(self, event_type: str | None, key: StreamKey, body: dict[str, Any]) -> None:
        """A stream watch event (or a stream a fresh list showed): cache it, queue it, wake what follows it."""
        self._touched.add(key)
        if event_type == "DELETED":
            cached = self.cache.bodies.get(key)
            if cached is not None and uid_of(cached) != uid_of(body):
                return  # the deletion of an earlier object of the same name: the cached one lives on
            self.forget_stream(key, "was deleted")
            if not self.streams_listed.is_set():
                self.deleted_at_start.add(key)
        else:
            self.cache.put(key, body)
            self.queue.add(key)
        self._wake_followers(key)

    def workload_seen(self, kind: WorkloadKind, event_type: str | None, body: dict[str, Any]) -> None:
        metadata = body.get("metadata") or {}
        self._touched.add((kind, metadata.get("namespace", ""), metadata.get("name", "")))
        key = self.triggers.observe(kind, event_type or "", body)
        if key is not None:
            self.workload_queue.add(key)

    def watch(self, http: httpx2.AsyncClient) -> None:
        """Start the watches of image streams and workloads on `http` (kube/client.watch_client): one list-and-watch
        loop per resource and watched namespace (controller/watchers.py). The client is closed when the runtime
        stops."""
        self._watch_http = http
        for namespace in watched_namespaces(self.settings.namespaces):
            streams = Collection(GROUP, VERSION, PLURAL, namespace)
            relisted = functools.partial(self.watch_relisted, STREAM_KIND)
            self.tasks.append(ListWatch(http, streams, self._stream_watched, relisted).start())
        for kind, collection in workload_collections(self.settings.namespaces):
            seen = functools.partial(self._workload_watched, kind)
            relisted = functools.partial(self.watch_relisted, kind.value)
            self.tasks.append(ListWatch(http, collection, seen, relisted).start())

    def _stream_watched(self, event_type: str | None, body: dict[str, Any]) -> None:
        metadata = body.get("metadata") or {}
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        if namespace and name and not self.settings.ignores(namespace):
            self.stream_seen(event_type, (namespace, name), slim_stream(body))

    def _workload_watched(self, kind: WorkloadKind, event_type: str | None, body: dict[str, Any]) -> None:
        if not self.settings.ignores((body.get("metadata") or {}).get("namespace", "")):
            self.workload_seen(kind, event_type, body)

    def watch_relisted(self, kind: str) -> None:
        """A watch expired (410 Gone: the API server restarted, or the watch fell too far behind) and listed its
        objects again. Deletions in the gap were never announced: compare the caches with fresh lists soon, once for
        all the watches that list again together. Counted in imagestreams_watch_restarts_total."""
        self.metrics.watch_restarted(kind)
        if self.streams_listed.is_set():
            self.relisted.set()

    def mirror_set_seen(self, kind: MirrorSetKind, event_type: str | None, body: dict[str, Any]) -> None:
        """A mirror set watch event. Nothing is imported again for it: the next scheduled or requested import of an
        image under its sources uses it (a mirror holds the same images, so what was imported stays right)."""
        self.mirror_sets.seen(kind, event_type, body)

    def pushed(self, targets: tuple[PushTarget, ...]) -> int | None:
        """A push notification (controller/notifications.py): the scheduled tags that follow these pushes are due now
        and their streams are queued; their pass looks them up as a scheduled check does (a HEAD, and a GET only for
        a new digest), so nothing the notification says is believed. Returns how many tags, or None before the
        initial listing of streams is done (the sender is told to retry: some followers may not be known yet)."""
        if not self.streams_listed.is_set():
            return None
        following = self.cache.following(targets)
        for key, tags in following.items():
            self.scheduler.push_seen(key, tags)
            self.queue.add(key, tags)
        return sum(len(tags) for tags in following.values())

    def _wake_followers(self, key: StreamKey) -> None:
        # Streams that copy a tag from this one may now find it; workloads that follow it may need a new image.
        for dependent in self.cache.dependents(*key):
            self.queue.add(dependent)
        for workload in self.triggers.workloads_for(*key):
            self.workload_queue.add(workload)

    def start(self) -> None:
        self.tasks.append(asyncio.create_task(self.queue.run(self._process), name="import-workers"))
        self.tasks.append(asyncio.create_task(self._schedule(), name="import-scheduler"))
        self.tasks.append(asyncio.create_task(self._revive_after_outage(), name="api-outage-watch"))
        if self.settings.resync_interval_seconds > 0:
            self.tasks.append(asyncio.create_task(self._resync(), name="resync"))
        self.tasks.append(asyncio.create_task(self._check_after_relists(), name="relist-check"))
        self.tasks.append(asyncio.create_task(self._wait_for_initial_streams(), name="initial-streams"))
        self.tasks.append(asyncio.create_task(self._trigger_workers(), name="trigger-workers"))
        self.tasks.append(asyncio.create_task(self.events.run(), name="events"))

    async def _trigger_workers(self) -> None:
        # A workload seen before its stream would get a false "does not exist (yet)" Warning at every restart.
        await self.streams_listed.wait()
        await self.workload_queue.run(self._trigger)

    def busy(self) -> bool:
        """Work queued or running in either queue."""
        return any(len(queue) or queue.in_progress for queue in (self.queue, self.workload_queue))

    def forget_stream(self, key: StreamKey, why: str) -> None:
        """A stream is gone: drop it from the cache and the schedule, and cancel its import pass, and with it the
        registry lookups that no other stream shares (their turns and connections are given back at once)."""
        self.cache.remove(key)
        self.scheduler.forget(key)
        self.reconciler.forget(key)
        if self.queue.cancel(key):
            logger.info("image stream %s/%s %s: its import and registry lookups in flight are cancelled", *key, why)

    async def _wait_for_initial_streams(self) -> None:
        """Let triggers run only once every stream that exists now is in the cache (or was deleted since).

        The cache is fed by the watch alone; this only lists which keys the watch has yet to deliver.
        """
        started = self.clock()
        attempt = 0
        while True:
            try:
                expected = await list_stream_keys(self.kube, self.settings.namespaces)
                break
            except Exception as error:  # the API server not there yet, or no right to list
                if isinstance(error, ApiError) and error.status.code == 403:  # a glob in namespaced mode: don't wait
                    logger.warning("cannot list image streams at start-up (%s); triggers start at once", error)
                    self.streams_listed.set()
                    return
                attempt += 1
                delay = min(30.0, 0.25 * 2.0**attempt)
                logger.warning("listing image streams at start-up failed (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
        expected = {key for key in expected if not self.settings.ignores(key[0])}
        while True:
            missing = expected - self.cache.bodies.keys() - self.deleted_at_start
            if not missing:
                break
            if self.clock() - started > INITIAL_STREAMS_TIMEOUT_SECONDS:
                logger.warning("%d image stream(s) not yet seen by the watch; starting triggers anyway", len(missing))
                break
            await asyncio.sleep(0.05)
        self.deleted_at_start.clear()
        self.streams_listed.set()
        logger.info("%d image stream(s) in the cache; triggers start", len(expected))

    async def _process(self, key: StreamKey, due: frozenset[str]) -> None:
        try:
            await self.reconciler.reconcile(key, due)
        except StaleStream:
            # The stream changed under this pass; the watch event of its newer version queues it at once (a plain
            # add ends this wait). Retrying now would find the same stale cache and hammer the API server with
            # refused writes until that event arrives; the backoff is only the safety net for a lost event.
            self.queue.add_rate_limited(key, due)
        except Exception:
            self._retry_later(self.queue, key, due, "reconciling image stream")
        else:
            self._succeeded(self.queue, key)

    async def _trigger(self, key: WorkloadKey, due: frozenset[str]) -> None:
        try:
            await self.triggers.reconcile(key)
        except WriteRefused as refused:
            # Already a Warning on the workload; retried until it lands or the workload changes.
            self._retry_later(self.workload_queue, key, due, "applying image triggers to", refused)
        except Exception:
            self._retry_later(self.workload_queue, key, due, "applying image triggers to")
        else:
            self._succeeded(self.workload_queue, key)

    def _retry_later(
        self, queue: WorkQueue[Any], key: Any, due: frozenset[str], what: str, known: Exception | None = None
    ) -> None:
        """A failure (the API server briefly unavailable, a write refused): the queue tries again with a growing,
        jittered delay, until the pass succeeds or the object changes (a plain add runs it at once)."""
        delay = queue.add_rate_limited(key, due)
        attempt = queue.failures(key)
        where = "/".join(map(str, key))
        error = known or sys.exc_info()[1]
        kind = failure_kind(error)
        # One line per kind of failure per object (with a traceback only for an unexpected error); its repeats
        # go to the debug log, and the recovery line says how many attempts it took.
        first = self.failure_kinds.get(key) != kind
        self.failure_kinds[key] = kind
        extra = {"object": object_fields(key), "attempt": attempt}
        if not first:
            logger.debug("%s %s failed (attempt %d); retrying in %.1f s", what, where, attempt, delay, extra=extra)
        elif known is not None or isinstance(error, (ApiError, httpx2.HTTPError, OSError)):
            logger.warning(
                "%s %s failed (attempt %d): %s; retrying in %.1f s, and again with a growing delay (not logged "
                "until it recovers)", what, where, attempt, error, delay, extra=extra,
            )  # fmt: skip
        else:
            logger.exception("%s %s failed (attempt %d); retrying in %.1f s", what, where, attempt, delay, extra=extra)

    def _succeeded(self, queue: WorkQueue[Any], key: Any) -> None:
        attempts = queue.forget(key)
        kind = self.failure_kinds.pop(key, None)
        if attempts and kind is not None:  # not after a stale stream: nothing failed there
            logger.info(
                "%s recovered after %d failed attempt(s) (%s)",
                "/".join(map(str, key)),
                attempts,
                kind,
                extra={"object": object_fields(key)},
            )

    async def _revive_after_outage(self) -> None:
        """While work waits for a retry, watch the API server: when it answers again after failing, run all
        waiting work at once instead of at each key's next backoff step (up to RETRY_MAX_SECONDS away)."""
        was_down = False
        while True:
            await asyncio.sleep(OUTAGE_PROBE_SECONDS)
            if not self.queue.waiting and not self.workload_queue.waiting:
                was_down = False
                continue
            if not await api_answers(self.kube, self.settings.namespaces):
                was_down = True
                continue
            if was_down:
                was_down = False
                logger.info(
                    "the API server answers again: retrying %d waiting item(s) now (%d repeated lines of failed "
                    "requests were not logged)",
                    self.queue.waiting + self.workload_queue.waiting,
                    logs.quiet.recovered(),
                )
                self.queue.retry_waiting_now()
                self.workload_queue.retry_waiting_now()

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_interval_seconds)
            await self.resync()

    async def resync(self) -> None:
        """The safety net for anything missed: compare the caches with fresh lists, then queue every stream and
        triggered workload (cheap: a stream pass contacts a registry only for tags that are due)."""
        await self.compare_with_api()
        for stream_key in list(self.cache.bodies):
            self.queue.add(stream_key)
        for workload_key in list(self.triggers.workloads):
            self.workload_queue.add(workload_key)

    async def _check_after_relists(self) -> None:
        while True:
            await self.relisted.wait()
            await asyncio.sleep(RELIST_SETTLE_SECONDS)  # one comparison for the watches that list again together
            self.relisted.clear()
            await self.compare_with_api()

    async def compare_with_api(self) -> None:
        """Make the caches match fresh lists: forget what the lists lack (deleted while no watch said so) and take
        what they show changed or new. A key a watch delivered while the lists were read is left to the watch:
        its event is at least as new as the list."""
        async with self._comparing:
            self._touched.clear()
            await self._compare_streams()
            for kind in WorkloadKind:
                await self._compare_workloads(kind)
            for mirror_kind in MIRROR_SET_KINDS:
                await self._compare_mirror_sets(mirror_kind)

    async def _compare_mirror_sets(self, kind: MirrorSetKind) -> None:
        try:
            listed = await list_mirror_sets(self.kube, kind)
        except Exception as error:  # the next comparison tries again
            logger.warning("listing %s objects to compare with the cache failed: %s", kind.kind, error)
            return
        if listed is not None:  # None: the CRD is not installed (Kopf said so once at start-up)
            self.mirror_sets.replace(kind, listed)

    async def _compare_streams(self) -> None:
        before = {key: version_of(body) for key, body in self.cache.bodies.items()}
        try:
            # Whole only where the cache has another version (the others are compared by identity alone).
            listed = await list_streams(
                self.kube, self.settings.namespaces, whole=lambda key, meta: before.get(key) != meta_version(meta)
            )
        except Exception as error:  # the next comparison tries again
            logger.warning("listing image streams to compare with the cache failed: %s", error)
            return
        for key, body in listed.items():
            if key in self._touched or self.settings.ignores(key[0]) or before.get(key) == version_of(body):
                continue
            logger.info("image stream %s/%s changed without a watch event; taking the listed version", *key)
            self.missed += 1
            self.stream_seen("MODIFIED" if key in before else "ADDED", key, body)
        for key in before.keys() - listed.keys() - self._touched:
            logger.info("image stream %s/%s is gone (missing from a fresh list); forgetting it", *key)
            self.vanished += 1
            self.forget_stream(key, "is gone")
            self._wake_followers(key)

    async def _compare_workloads(self, kind: WorkloadKind) -> None:
        before = {key: version_of(body) for key, body in self.triggers.workloads.items() if key[0] is kind}
        try:
            # Whole only when triggered and not the version the index has (most workloads have no trigger at all).
            listed = await list_workloads(
                self.kube,
                kind,
                self.settings.namespaces,
                whole=lambda key, meta: (
                    TRIGGERS_ANNOTATION in (meta.annotations or {}) and before.get(key) != meta_version(meta)
                ),
            )
        except Exception as error:  # the next comparison tries again
            logger.warning("listing %s objects to compare with the trigger index failed: %s", kind.value, error)
            return
        for key, body in listed.items():
            if key in self._touched or self.settings.ignores(key[1]) or before.get(key) == version_of(body):
                continue
            if key in before or TRIGGERS_ANNOTATION in ((body.get("metadata") or {}).get("annotations") or {}):
                logger.info("%s %s/%s changed without a watch event; taking the listed version", *key)
                self.missed += 1
                self.workload_seen(kind, "MODIFIED", body)
        for key in before.keys() - listed.keys() - self._touched:
            logger.info("%s %s/%s is gone (missing from a fresh list); forgetting it", *key)
            self.vanished += 1
            self.triggers.observe(kind, "DELETED", self.triggers.workloads[key])
            self.workload_queue.cancel(key)

    async def _schedule(self) -> None:
        tick = min(5.0, self.settings.scheduled_interval_seconds / 10)
        while True:
            await asyncio.sleep(tick)
            self.schedule_due()

    def schedule_due(self) -> int:
        """Queue the scheduled tags that are due now. Returns how many streams were queued."""
        try:
            due = self.scheduler.due(self.cache, self.clock())
        except Exception:
            logger.exception("the import scheduler failed this round; it carries on with the next")
            return 0
        scheduler = self.scheduler
        self.metrics.schedule_round(scheduler.scheduled, scheduler.overdue, scheduler.oldest_overdue)
        for key, tags in due.items():
            self.queue.add(key, tags)
        return len(due)

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):  # Events still queued are posted, briefly
            async with asyncio.timeout(EVENTS_AT_STOP_SECONDS):
                await self.events.drained()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.registry.close()
        if self._owns_kube:
            await self.kube.close()
        if self._watch_http is not None:
            await self._watch_http.aclose()


def uid_of(body: Any) -> str | None:
    uid = (body.get("metadata") or {}).get("uid")
    return str(uid) if uid else None


def version_of(body: Any) -> tuple[str | None, str | None]:
    """An object's identity and version: a different uid is another object of the same name."""
    metadata = body.get("metadata") or {}
    return uid_of(body), metadata.get("resourceVersion")


def meta_version(metadata: Any) -> tuple[str | None, str | None]:
    """`version_of` for a listed object's metadata (lightkube's ObjectMeta)."""
    return (str(metadata.uid) if metadata.uid else None), metadata.resourceVersion


def failure_kind(error: BaseException | None) -> str:
    """A failure's kind for logging once: the exception class, with the HTTP status of an API error."""
    if isinstance(error, ApiError):
        return f"ApiError {error.status.code}"
    return type(error).__name__ if error is not None else "unknown"


def object_fields(key: Any) -> dict[str, str]:
    """A stream key (namespace, name) or workload key (kind, namespace, name) as JSON-log fields."""
    if len(key) == 3:
        return {"kind": str(getattr(key[0], "value", key[0])), "namespace": key[1], "name": key[2]}
    return {"kind": "ImageStream", "namespace": key[0], "name": key[1]}

"""Kopf handlers. Thin: they feed the stream cache and the work queue; workers do the rest.

Only watch events are used for ImageStreams: no Kopf state annotations or finalizers are
written, and a status is written only when it differs from what is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import random
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import kopf
from lightkube import ApiError, AsyncClient

from imagestreams.api.imagestream import GROUP, PLURAL, VERSION
from imagestreams.api.settings import OperatorSettings
from imagestreams.controller import logs
from imagestreams.controller.importer import Importer
from imagestreams.controller.reconciler import Reconciler, Scheduler, StreamCache, StreamKey
from imagestreams.controller.triggers import TriggerController, WorkloadKey, WriteRefused
from imagestreams.controller.workqueue import WorkQueue
from imagestreams.core.registrypolicy import RegistryPolicy
from imagestreams.core.workloadkinds import KIND_OF_RESOURCE
from imagestreams.kube.access import PullAccess
from imagestreams.kube.events import post_event
from imagestreams.kube.health import api_answers, api_server_endpoints
from imagestreams.kube.streams import StaleStream, list_stream_keys
from imagestreams.registry import ClientSettings, Platform, RegistryClient

logger = logging.getLogger(__name__)
PREFIX = "imagestreams.dev"
TRIGGER_WORKERS = 4
RETRY_MAX_SECONDS = 300.0
OUTAGE_PROBE_SECONDS = 1.0
INITIAL_STREAMS_TIMEOUT_SECONDS = 60.0


class Runtime:
    """Everything the handlers share, created at start-up."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.cache = StreamCache()
        # import_workers slots for streams being decided or written; a stream waiting on a registry gives its slot up.
        self.queue: WorkQueue[StreamKey] = WorkQueue(settings.import_workers, name="import")
        self.scheduler = Scheduler(settings)
        self.kube = AsyncClient(field_manager="imagestream-operator")
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
                default_platform=Platform(settings.platform_os, settings.platform_architecture),
                extra_ca_file=settings.extra_ca_file,
                host_guard=policy.denial,
                address_guard=policy.address_refusal,
            )
        )
        importer = Importer(
            registry=self.registry,
            kube=self.kube,
            policy=policy,
            streams=self.cache.stream,
            access=self.access,
            reuse_seconds=settings.scheduled_interval_seconds * 0.9,
            idle=self.queue.idle,
        )
        self.reconciler = Reconciler(
            cache=self.cache,
            importer=importer,
            kube=self.kube,
            settings=settings,
            scheduler=self.scheduler,
            post_event=functools.partial(post_event, self.kube),
        )
        self.triggers = TriggerController(
            kube=self.kube,
            streams=self.cache,
            access=self.access,
            post_event=functools.partial(post_event, self.kube),
        )
        self.workload_queue: WorkQueue[WorkloadKey] = WorkQueue(TRIGGER_WORKERS, name="trigger")
        self.tasks: list[asyncio.Task[None]] = []
        self.streams_listed = asyncio.Event()
        self.deleted_at_start: set[StreamKey] = set()  # deleted before the initial listing was matched
        self.failures: dict[Any, int] = {}  # consecutive failures per stream or workload key
        self.failure_kinds: dict[Any, str] = {}  # the kind of the last failure per key, logged once
        # Keys waiting for a retry after a failure, so they can all run at once when the API server is back.
        self.waiting: dict[tuple[int, Any], tuple[WorkQueue[Any], frozenset[str]]] = {}

    def start(self) -> None:
        self.tasks.append(asyncio.create_task(self.queue.run(self._process), name="import-workers"))
        self.tasks.append(asyncio.create_task(self._schedule(), name="import-scheduler"))
        self.tasks.append(asyncio.create_task(self._revive_after_outage(), name="api-outage-watch"))
        if self.settings.resync_interval_seconds > 0:
            self.tasks.append(asyncio.create_task(self._resync(), name="resync"))
        self.tasks.append(asyncio.create_task(self._wait_for_initial_streams(), name="initial-streams"))
        self.tasks.append(asyncio.create_task(self._trigger_workers(), name="trigger-workers"))

    async def _trigger_workers(self) -> None:
        # A workload seen before its stream would get a false "does not exist (yet)" Warning at every restart.
        await self.streams_listed.wait()
        await self.workload_queue.run(self._trigger)

    def forget_stream(self, key: StreamKey, why: str) -> None:
        """A stream is gone: drop it from the cache and the schedule, and cancel its import pass, and with it the
        registry lookups that no other stream shares (their turns and connections are given back at once)."""
        self.cache.remove(key)
        self.scheduler.forget(key)
        if self.queue.cancel(key):
            logger.info("image stream %s/%s %s: its import and registry lookups in flight are cancelled", *key, why)

    async def _wait_for_initial_streams(self) -> None:
        """Let triggers run only once every stream that exists now is in the cache (or was deleted since).

        The cache is fed by the watch alone; this only lists which keys the watch has yet to deliver.
        """
        started = time.monotonic()
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
            if time.monotonic() - started > INITIAL_STREAMS_TIMEOUT_SECONDS:
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
            self.queue.add(key, due)  # at once: the stream changed under this pass, nothing failed
        except Exception:
            self._retry_later(self.queue, key, due, "reconciling image stream")
        else:
            self._succeeded(key)

    async def _trigger(self, key: WorkloadKey, due: frozenset[str]) -> None:
        try:
            await self.triggers.reconcile(key)
        except WriteRefused as refused:
            # Already a Warning on the workload; retried until it lands or the workload changes.
            self._retry_later(self.workload_queue, key, due, "applying image triggers to", refused)
        except Exception:
            self._retry_later(self.workload_queue, key, due, "applying image triggers to")
        else:
            self._succeeded(key)

    def _retry_later(
        self, queue: WorkQueue[Any], key: Any, due: frozenset[str], what: str, known: Exception | None = None
    ) -> None:
        """A failure (the API server briefly unavailable, a write refused): try again with a growing, jittered
        delay, so that many keys failing at once do not all come back at the same moment."""
        attempt = self.failures.get(key, 0) + 1
        self.failures[key] = attempt
        ceiling = min(RETRY_MAX_SECONDS, 2.0**attempt)
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not secrecy
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
        self.waiting[(id(queue), key)] = (queue, due)
        asyncio.get_running_loop().call_later(delay, self._retry_now, queue, key)

    def _succeeded(self, key: Any) -> None:
        attempts = self.failures.pop(key, 0)
        kind = self.failure_kinds.pop(key, None)
        if attempts:
            logger.info(
                "%s recovered after %d failed attempt(s) (%s)",
                "/".join(map(str, key)),
                attempts,
                kind,
                extra={"object": object_fields(key)},
            )

    def _retry_now(self, queue: WorkQueue[Any], key: Any) -> None:
        waiting = self.waiting.pop((id(queue), key), None)
        if waiting is not None:
            queue.add(key, waiting[1])

    async def _revive_after_outage(self) -> None:
        """While work waits for a retry, watch the API server: when it answers again after failing, run all
        waiting work at once instead of at each key's next backoff step (up to RETRY_MAX_SECONDS away)."""
        was_down = False
        while True:
            await asyncio.sleep(OUTAGE_PROBE_SECONDS)
            if not self.waiting:
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
                    len(self.waiting),
                    logs.quiet.recovered(),
                )
                for queue_id, key in list(self.waiting):
                    self._retry_now(self.waiting[(queue_id, key)][0], key)

    async def _resync(self) -> None:
        """A safety net for a missed watch event: now and then, check every stream and triggered workload
        against the cache. Cheap: a stream pass contacts a registry only for tags that are due."""
        while True:
            await asyncio.sleep(self.settings.resync_interval_seconds)
            await self._drop_vanished_streams()
            for stream_key in list(self.cache.bodies):
                self.queue.add(stream_key)
            for workload_key in list(self.triggers.workloads):
                self.workload_queue.add(workload_key)

    async def _schedule(self) -> None:
        tick = min(5.0, self.settings.scheduled_interval_seconds / 10)
        while True:
            await asyncio.sleep(tick)
            try:
                for key, tags in self.scheduler.due(self.cache, time.monotonic()).items():
                    self.queue.add(key, tags)
            except Exception:
                logger.exception("the import scheduler failed this round; it carries on with the next")

    async def _drop_vanished_streams(self) -> None:
        """A watch that expired (410) and re-listed never announces the objects deleted in the gap: compare the
        cache with a fresh list, forget what is gone, and wake whatever followed it."""
        # Only what was cached before the list started: a stream created meanwhile may be missing from the list.
        before = {key: _uid(body) for key, body in self.cache.bodies.items()}
        try:
            present = await list_stream_keys(self.kube, self.settings.namespaces)
        except Exception as error:  # the next resync tries again
            logger.warning("resync: listing image streams failed: %s", error)
            return
        vanished = [
            key
            for key, uid in before.items()
            if key not in present and key in self.cache.bodies and _uid(self.cache.bodies[key]) == uid
        ]
        for key in vanished:
            logger.info("resync: image stream %s/%s is gone; forgetting it", *key)
            self.forget_stream(key, "is gone")
            for workload in self.triggers.workloads_for(*key):
                self.workload_queue.add(workload)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.registry.close()


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


class CappedBackoff:
    """Delays between retries of a failed Kopf API request: short at first, then every 2 s, never giving up.

    Re-iterable (Kopf iterates it afresh for every request) and unsized (so Kopf sets no attempt limit).
    """

    def __iter__(self) -> Iterator[float]:
        yield from (0.25, 0.5, 1.0)
        yield from itertools.repeat(2.0)


# The runtime is built once at start-up from the settings main() parsed, and reaches every handler through Kopf's
# memo (kopf.run(memo=...)): no module global, no settings passed through the environment.
RUNTIME = "runtime"
SETTINGS = "settings"


def _runtime_of(memo: kopf.Memo) -> Runtime | None:
    runtime: Runtime | None = memo.get(RUNTIME)
    return runtime


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Set on day one: changing Kopf's storage keys later would make it re-handle every object.
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    # Kopf's default backoff between retries of a failed API request grows to 21 s and then gives up: after a 35 s
    # outage the watches came back 17 s late. Retry every request (the watches above all) at most 2 s apart.
    settings.networking.error_backoffs = CappedBackoff()
    # No run-time scanning of CRDs and namespaces: it needs cluster-wide list rights on both, and the
    # resources watched here are fixed (discovery once at start-up needs no rights).
    settings.scanning.disabled = True
    operator_settings: OperatorSettings = memo.get(SETTINGS) or OperatorSettings()
    runtime = memo[RUNTIME] = Runtime(operator_settings)
    runtime.start()
    logger.info("image stream operator started with %d import workers", runtime.settings.import_workers)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    runtime = _runtime_of(memo)
    if runtime is not None:
        await runtime.stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def stream_event(type: str, body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    # Async, so Kopf runs it on the event loop that owns the work queues (a plain function would run in an
    # executor thread, where touching asyncio objects is unsafe and events of one object may be reordered).
    runtime = _runtime_of(memo)
    if runtime is None or namespace is None or runtime.settings.ignores(namespace):
        return
    key = (namespace, name)
    if type == "DELETED":
        cached = runtime.cache.bodies.get(key)
        if cached is not None and _uid(cached) != _uid(body):
            return  # the deletion of an earlier object of the same name: the cached one lives on
        runtime.forget_stream(key, "was deleted")
        if not runtime.streams_listed.is_set():
            runtime.deleted_at_start.add(key)
    else:
        runtime.cache.put(key, dict(body))
        runtime.queue.add(key)
    # Streams that copy a tag from this one may now find it; workloads that follow it may need a new image.
    for dependent in runtime.cache.dependents(namespace, name):
        runtime.queue.add(dependent)
    for workload in runtime.triggers.workloads_for(namespace, name):
        runtime.workload_queue.add(workload)


def _uid(body: Any) -> str | None:
    uid = (body.get("metadata") or {}).get("uid")
    return str(uid) if uid else None


async def workload_event(type: str, body: kopf.Body, resource: kopf.Resource, memo: kopf.Memo, **_: Any) -> None:
    runtime = _runtime_of(memo)
    if runtime is None or runtime.settings.ignores(body.get("metadata", {}).get("namespace", "")):
        return
    kind = KIND_OF_RESOURCE[(resource.group, resource.version, resource.plural)]
    key = runtime.triggers.observe(kind, type or "", dict(body))
    if key is not None:
        runtime.workload_queue.add(key)


# Watch events only: Kopf writes no state annotations or finalizers on user workloads this way.
for _group, _version, _plural in KIND_OF_RESOURCE:
    kopf.on.event(_group, _version, _plural)(workload_event)

"""Kopf handlers. Thin: they feed the stream cache and the work queue; workers do the rest.

Only watch events are used for ImageStreams: no Kopf state annotations or finalizers are
written, and a status is written only when it differs from what is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

import kopf
from lightkube import AsyncClient

from imagestreams.api.imagestream import GROUP, PLURAL, VERSION
from imagestreams.api.settings import OperatorSettings
from imagestreams.controller.importer import Importer
from imagestreams.controller.reconciler import Reconciler, Scheduler, StreamCache, StreamKey
from imagestreams.controller.triggers import TriggerController, WorkloadKey
from imagestreams.controller.workqueue import WorkQueue
from imagestreams.core.registrypolicy import RegistryPolicy
from imagestreams.core.triggers import WorkloadKind
from imagestreams.kube.access import PullAccess
from imagestreams.kube.events import post_event
from imagestreams.kube.streams import StaleStream
from imagestreams.registry import ClientSettings, Platform, RegistryClient

logger = logging.getLogger(__name__)
PREFIX = "imagestreams.dev"
TRIGGER_WORKERS = 4
RETRY_MAX_SECONDS = 300.0


class Runtime:
    """Everything the handlers share, created at start-up."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.cache = StreamCache()
        self.queue: WorkQueue[StreamKey] = WorkQueue()
        self.scheduler = Scheduler(settings)
        self.kube = AsyncClient(field_manager="imagestream-operator")
        self.access = PullAccess(self.kube)
        policy = RegistryPolicy(settings.allowed_registries, settings.denied_registries)
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
        self.workload_queue: WorkQueue[WorkloadKey] = WorkQueue()
        self.tasks: list[asyncio.Task[None]] = []
        self.failures: dict[Any, int] = {}  # consecutive failures per stream or workload key

    def start(self) -> None:
        for number in range(self.settings.import_workers):
            self.tasks.append(asyncio.create_task(self.queue.run_worker(self._process), name=f"import-worker-{number}"))
        self.tasks.append(asyncio.create_task(self._schedule(), name="import-scheduler"))
        for number in range(TRIGGER_WORKERS):
            self.tasks.append(
                asyncio.create_task(self.workload_queue.run_worker(self._trigger), name=f"trigger-worker-{number}")
            )

    async def _process(self, key: StreamKey, due: frozenset[str]) -> None:
        try:
            await self.reconciler.reconcile(key, due)
        except StaleStream:
            self.queue.add(key, due)  # at once: the stream changed under this pass, nothing failed
        except Exception:
            self._retry_later(self.queue, key, due, "reconciling image stream")
        else:
            self.failures.pop(key, None)

    async def _trigger(self, key: WorkloadKey, due: frozenset[str]) -> None:
        try:
            await self.triggers.reconcile(key)
        except Exception:
            self._retry_later(self.workload_queue, key, due, "applying image triggers to")
        else:
            self.failures.pop(key, None)

    def _retry_later(self, queue: WorkQueue[Any], key: Any, due: frozenset[str], what: str) -> None:
        """An unexpected error (e.g. the API server briefly unavailable): try again with a growing delay."""
        attempt = self.failures.get(key, 0) + 1
        self.failures[key] = attempt
        delay = min(RETRY_MAX_SECONDS, 2.0**attempt)
        logger.exception("%s %s failed (attempt %d); retrying in %.0f s", what, "/".join(map(str, key)), attempt, delay)
        asyncio.get_running_loop().call_later(delay, queue.add, key, due)

    async def _schedule(self) -> None:
        tick = min(5.0, self.settings.scheduled_interval_seconds / 10)
        while True:
            await asyncio.sleep(tick)
            try:
                for key, tags in self.scheduler.due(self.cache, time.monotonic()).items():
                    self.queue.add(key, tags)
            except Exception:
                logger.exception("the import scheduler failed this round; it carries on with the next")

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.registry.close()


_runtime: Runtime | None = None


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _runtime  # noqa: PLW0603 - one runtime per operator process
    # Set on day one: changing Kopf's storage keys later would make it re-handle every object.
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    # No run-time scanning of CRDs and namespaces: it needs cluster-wide list rights on both, and the
    # resources watched here are fixed (discovery once at start-up needs no rights).
    settings.scanning.disabled = True
    _runtime = Runtime(OperatorSettings.from_env())
    _runtime.start()
    logger.info("image stream operator started with %d import workers", _runtime.settings.import_workers)


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    if _runtime is not None:
        await _runtime.stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
def stream_event(type: str, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    if _runtime is None or namespace is None or _runtime.settings.ignores(namespace):
        return
    key = (namespace, name)
    if type == "DELETED":
        _runtime.cache.remove(key)
        _runtime.scheduler.forget(key)
    else:
        _runtime.cache.put(key, dict(body))
        _runtime.queue.add(key)
    # Streams that copy a tag from this one may now find it; workloads that follow it may need a new image.
    for dependent in _runtime.cache.dependents(namespace, name):
        _runtime.queue.add(dependent)
    for workload in _runtime.triggers.workloads_for(namespace, name):
        _runtime.workload_queue.add(workload)


WORKLOAD_RESOURCES = {
    ("apps", "v1", "deployments"): WorkloadKind.DEPLOYMENT,
    ("apps", "v1", "statefulsets"): WorkloadKind.STATEFULSET,
    ("apps", "v1", "daemonsets"): WorkloadKind.DAEMONSET,
    ("batch", "v1", "cronjobs"): WorkloadKind.CRONJOB,
    ("batch", "v1", "jobs"): WorkloadKind.JOB,
}


def workload_event(type: str, body: kopf.Body, resource: kopf.Resource, **_: Any) -> None:
    if _runtime is None or _runtime.settings.ignores(body.get("metadata", {}).get("namespace", "")):
        return
    kind = WORKLOAD_RESOURCES[(resource.group, resource.version, resource.plural)]
    key = _runtime.triggers.observe(kind, type or "", dict(body))
    if key is not None:
        _runtime.workload_queue.add(key)


# Watch events only: Kopf writes no state annotations or finalizers on user workloads this way.
for _group, _version, _plural in WORKLOAD_RESOURCES:
    kopf.on.event(_group, _version, _plural)(workload_event)

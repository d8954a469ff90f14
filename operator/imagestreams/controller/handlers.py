"""Kopf handlers: the operator's start-up and clean-up, the API server login, and the mirror sets' watch events.

Image streams and workloads are watched without Kopf, by the runtime's own list-and-watch loops
(controller/watchers.py): Kopf's dispatch cost 1 to 2 ms of CPU per event, the largest cost of a fan-out after the
applies and a tenth of an import's. Only watch events are used for the mirror sets: no Kopf state annotations or
finalizers are written anywhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import kopf

from imagestreams.api import mirrorsets
from imagestreams.api.settings import OperatorSettings
from imagestreams.controller import memory
from imagestreams.controller.health import Health
from imagestreams.controller.login import login
from imagestreams.controller.metrics import Metrics
from imagestreams.controller.notifications import NotificationServer
from imagestreams.controller.runtime import Runtime
from imagestreams.controller.watchers import retry_delays
from imagestreams.kube.client import watch_client
from imagestreams.kube.watch import LIST_PAGE_SIZE

logger = logging.getLogger(__name__)
PREFIX = "imagestreams.dev"
WORKER_IDLE_SECONDS = 0.5


class CappedBackoff:
    """Delays between retries of a failed Kopf API request: short at first, then every 2 s, never giving up.

    Re-iterable (Kopf iterates it afresh for every request) and unsized (so Kopf sets no attempt limit).
    """

    def __iter__(self) -> Iterator[float]:
        return retry_delays()  # the same delays as the operator's own watches


class WatchOnlyDiffBase(kopf.AnnotationsDiffBaseStorage):
    """Kopf's diff base (where it keeps an object's last handled state) for an operator with watch-event handlers
    only: no handler detects changes, so no one reads an object's "essence", yet Kopf builds one for every event
    of every watched object, a deep copy of the whole body (a third of the operator's CPU in a fan-out to 1,000
    Deployments, when Kopf watched them). This one builds none. A change-detecting handler (on.create, on.update,
    a timer or a daemon) would need the real one back: tests/unit/test_kopf_settings.py checks that none is
    registered."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


# The runtime is built once at start-up from the settings main() parsed, and reaches every handler through Kopf's
# memo (kopf.run(memo=...)): no module global, no settings passed through the environment.
RUNTIME = "runtime"
SETTINGS = "settings"
METRICS = "metrics"  # the process's Metrics, built by main() before leader election
HEALTH = "health"  # what /healthz and /readyz answer, told here when the runtime runs and when it stops
NOTIFICATIONS = "notifications"  # the push notification endpoint, when served: deliveries reach the runtime


# The API server lightkube uses, KUBERNETES_SERVICE_HOST/PORT in a pod, rather than Kopf's kubernetes.default.svc.
kopf.on.login()(login)


def _runtime_of(memo: kopf.Memo) -> Runtime | None:
    runtime: Runtime | None = memo.get(RUNTIME)
    return runtime


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Set on day one: changing Kopf's storage keys later would make it re-handle every object.
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = WatchOnlyDiffBase(prefix=PREFIX, key="last-handled-configuration")
    settings.posting.level = logging.INFO
    # Kopf's default backoff between retries of a failed API request grows to 21 s and then gives up: after a 35 s
    # outage the watches came back 17 s late. Retry every request (the watches above all) at most 2 s apart.
    settings.networking.error_backoffs = CappedBackoff()
    # No run-time scanning of CRDs and namespaces: it needs cluster-wide list rights on both, and the
    # resources watched here are fixed (discovery once at start-up needs no rights).
    settings.scanning.disabled = True
    # What Kopf holds of the watched objects at once (the mirror sets now; the streams and workloads until the
    # operator watched them itself, when 15,000 objects came at a restart): each initial listing is read in pages
    # rather than as one document, and each object's worker, which keeps the object's last event, ends soon after it
    # (Kopf's default keeps it 5 s: the whole listing was alive at once, at the restart's peak).
    settings.watching.chunk_size = LIST_PAGE_SIZE
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    operator_settings: OperatorSettings = memo.get(SETTINGS) or OperatorSettings()
    metrics: Metrics | None = memo.get(METRICS)
    runtime = memo[RUNTIME] = Runtime(operator_settings, metrics=metrics)
    runtime.start()
    runtime.watch(watch_client())
    runtime.tasks.append(
        asyncio.create_task(memory.release_after_start_up(runtime.streams_listed, runtime.busy), name="memory")
    )
    health: Health | None = memo.get(HEALTH)
    if health is not None:
        health.running(asyncio.get_running_loop(), runtime.streams_listed.is_set)
    notifications: NotificationServer | None = memo.get(NOTIFICATIONS)
    if notifications is not None:
        notifications.attach(asyncio.get_running_loop(), runtime.pushed)
    logger.info("image stream operator started with %d import workers", runtime.settings.import_workers)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    health: Health | None = memo.get(HEALTH)
    if health is not None:
        health.stopping()
    notifications: NotificationServer | None = memo.get(NOTIFICATIONS)
    if notifications is not None:
        notifications.detach()  # deliveries are answered 503 from now on: the next leader takes them
    runtime = _runtime_of(memo)
    if runtime is not None:
        await runtime.stop()


_MIRROR_SET_OF_PLURAL = {kind.plural: kind for kind in mirrorsets.MIRROR_SET_KINDS}


async def mirror_set_event(type: str, body: kopf.Body, resource: kopf.Resource, memo: kopf.Memo, **_: Any) -> None:
    # Cluster-scoped: watched whatever namespaces the operator serves. Without the CRDs (a cluster where nobody
    # installed them) Kopf logs once at start-up that it cannot serve them, and imports run without mirrors;
    # CRDs installed later are watched from the operator's next start.
    runtime = _runtime_of(memo)
    if runtime is not None:
        runtime.mirror_set_seen(_MIRROR_SET_OF_PLURAL[resource.plural], type, dict(body))


for _kind in mirrorsets.MIRROR_SET_KINDS:
    kopf.on.event(mirrorsets.GROUP, mirrorsets.VERSION, _kind.plural)(mirror_set_event)

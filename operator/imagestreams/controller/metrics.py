"""The operator's Prometheus metrics (prometheus-client), served at /metrics by the health server (health.py).

One `Metrics` per operator process, with its own CollectorRegistry (never the library's global one), built in
`main()` and handed to the runtime through Kopf's memo; a runtime built without one (tests) gets a fresh one. The
services update it through the small methods below; the registry layer reports its requests through the
`ClientSettings.request_observer` callback, so it imports neither this module nor prometheus-client.

Labels are bounded: no namespace, stream or workload names; registry hosts (never paths, queries or credentials) are
capped at MAX_REGISTRY_LABELS distinct values, the rest counted as "other", since anyone who may create a stream
chooses the registry it names. docs/operations.md lists every metric.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from imagestreams.core.tags import Failure, Outcome, RepositoryResult

MAX_REGISTRY_LABELS = 100
OTHER = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
SUCCEEDED = "succeeded"
FAILED = "failed"

# Tag lookups take from a few milliseconds (one HEAD to a nearby registry) to the 120 s bound per lookup.
LOOKUP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# From an add to the start of its pass: nothing when a worker is free, up to minutes in a backlog.
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class Sized(Protocol):
    def __len__(self) -> int: ...


class Queue(Protocol):
    """What the depth gauges read of a work queue (workqueue.WorkQueue)."""

    name: str

    def __len__(self) -> int: ...

    @property
    def waiting(self) -> int: ...

    @property
    def in_progress(self) -> int: ...


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """Every metric of the operator, in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = False) -> None:
        """`process`: also the process, platform and garbage-collector metrics (the operator process; not tests)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        self.build = Info(
            "imagestreams_build", "The operator's version, its Python and Kopf versions, and its revision.", registry=r
        )
        self.imports = Counter(
            "imagestreams_imports",
            "Tags looked up by import passes (registry imports and copies from other streams), by result and, "
            "for failures, the condition reason (NotFound, Unauthorized, Timeout...).",
            ["result", "reason"],
            registry=r,
        )
        self.status_writes = Counter("imagestreams_stream_status_writes", "Status writes to image streams.", registry=r)
        self.registry_requests = Counter(
            "imagestreams_registry_requests",
            "HTTP requests sent to registries (each attempt and redirect hop), by the registry they were made for, "
            "method and HTTP status, or the kind of failure when no answer came (timeout, network, tls...).",
            ["registry", "method", "status"],
            registry=r,
        )
        self.lookups = Histogram(
            "imagestreams_registry_lookup_duration_seconds",
            "Time to resolve one tag at a registry (HEAD first, more when the image is new), from the lookup's start "
            "to its answer or failure, waiting for a turn in the registry's request budget included.",
            ["result"],
            buckets=LOOKUP_BUCKETS,
            registry=r,
        )
        self.scheduled_tags = Gauge(
            "imagestreams_scheduled_tags",
            "Tags with importPolicy.scheduled, at the scheduler's last round.",
            registry=r,
        )
        self.overdue_tags = Gauge(
            "imagestreams_scheduled_tags_overdue",
            "Scheduled tags past their slot that the scheduler's last round left waiting (the per-minute budget "
            "was spent).",
            registry=r,
        )
        self.oldest_overdue = Gauge(
            "imagestreams_scheduled_tags_oldest_overdue_seconds",
            "How long past its slot the longest-waiting overdue scheduled tag is (0 when none).",
            registry=r,
        )
        self.trigger_writes = Counter(
            "imagestreams_trigger_writes",
            "Writes made for image change triggers: workload images applied, Job runs created; by workload kind.",
            ["kind"],
            registry=r,
        )
        self.trigger_failures = Counter(
            "imagestreams_trigger_write_failures",
            "Trigger writes the API server refused or could not take (retried with backoff), by workload kind.",
            ["kind"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "imagestreams_workqueue_depth",
            "Keys waiting in a work queue: pending a pass, or waiting for a retry.",
            ["queue"],
            registry=r,
        )
        self.queue_retrying = Gauge(
            "imagestreams_workqueue_retry_waiting",
            "Keys of a work queue waiting for a retry after a failed pass (part of the depth).",
            ["queue"],
            registry=r,
        )
        self.queue_running = Gauge(
            "imagestreams_workqueue_in_progress", "Passes running in a work queue.", ["queue"], registry=r
        )
        self.queue_wait = Histogram(
            "imagestreams_workqueue_wait_seconds",
            "Time from a key's add (or its retry coming due) to the start of its pass.",
            ["queue"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.queue_retries = Counter(
            "imagestreams_workqueue_retries", "Failed passes queued again with backoff.", ["queue"], registry=r
        )
        self.watch_restarts = Counter(
            "imagestreams_watch_restarts",
            "Watches that listed their objects again after start-up (a 410 Gone after an outage or a long gap), "
            "by kind.",
            ["kind"],
            registry=r,
        )
        self.leader = Gauge(
            "imagestreams_leader",
            "1 while this process acts (holds the Lease with leader election, or runs without it), else 0.",
            registry=r,
        )
        self.admission_requests = Counter(
            "imagestreams_admission_requests",
            "Admission reviews answered, by webhook path and result (allowed, patched, denied, error).",
            ["path", "result"],
            registry=r,
        )
        self.admission_seconds = Histogram(
            "imagestreams_admission_seconds",
            "Time to answer an admission review, by webhook path.",
            ["path"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.image_lookups = Counter(
            "imagestreams_image_lookups",
            "Container images examined by the image lookup webhook, by result: resolved (to a stream's image), left "
            "(as written: not a local name, no such stream or image, no local lookup) or failed (the stream could not "
            "be read).",
            ["result"],
            registry=r,
        )
        self.notifications = Counter(
            "imagestreams_notifications",
            "Registry push notifications received, by format (distribution, dockerhub, quay, harbor, github) and "
            "result (accepted, bad_request, unauthorized, too_large, rate_limited, standby, error).",
            ["format", "result"],
            registry=r,
        )
        self.notified_tags = Counter(
            "imagestreams_notification_scheduled_tags",
            "Scheduled tags made due at once by accepted push notifications, by format.",
            ["format"],
            registry=r,
        )
        self.registry_rate_limit = Gauge(
            "imagestreams_registry_rate_limit",
            "Requests per second the operator allows itself per registry now, as the limit adapted to the "
            "registry's answers (+Inf: none).",
            ["registry"],
            registry=r,
        )
        self.registry_concurrency_limit = Gauge(
            "imagestreams_registry_concurrency_limit",
            "Requests in flight the operator allows itself per registry now, as the limit adapted.",
            ["registry"],
            registry=r,
        )
        self.streams = Gauge("imagestreams_image_streams", "Image streams in the operator's cache.", registry=r)
        self.workloads = Gauge(
            "imagestreams_triggered_workloads", "Workloads with an image trigger annotation.", registry=r
        )
        self._registries: set[str] = set()

    # --- set once ------------------------------------------------------------------------------------------------

    def set_build_info(self, revision: str = "") -> None:
        self.build.info(
            {
                "version": package_version("imagestreams"),
                "python_version": platform.python_version(),
                "kopf_version": package_version("kopf"),
                "revision": revision,
            }
        )

    def watch_queue(self, queue: Queue) -> None:
        """Read the queue's depth at each scrape (len() of the queue's dicts: safe from the server's thread)."""
        self.queue_depth.labels(queue.name).set_function(lambda: len(queue) + queue.waiting)
        self.queue_retrying.labels(queue.name).set_function(lambda: queue.waiting)
        self.queue_running.labels(queue.name).set_function(lambda: queue.in_progress)
        self.queue_wait.labels(queue.name)  # shown from the start, before the first pass
        self.queue_retries.labels(queue.name)

    def watch_caches(self, streams: Sized, workloads: Sized) -> None:
        self.streams.set_function(lambda: len(streams))
        self.workloads.set_function(lambda: len(workloads))

    # --- updates -------------------------------------------------------------------------------------------------

    def count_imports(self, outcomes: Iterable[Outcome], repository: RepositoryResult | None = None) -> None:
        """One import pass's outcomes: each tag looked up, and a spec.dockerImageRepository listing that failed."""
        every = list(outcomes)
        if repository is not None:
            every.extend(repository.outcomes.values())
            if repository.failure is not None:
                every.append(repository.failure)
        for outcome in every:
            if isinstance(outcome, Failure):
                self.imports.labels(FAILED, outcome.reason).inc()
            else:
                self.imports.labels(SUCCEEDED, "").inc()

    def registry_request(self, registry: str, method: str, status: str) -> None:
        """The registry client's request observer (ClientSettings.request_observer)."""
        method = method.upper() if method.upper() in METHODS else OTHER
        self.registry_requests.labels(self._registry_label(registry), method, status).inc()

    def registry_limits(self, registry: str, rate: float, concurrency: int) -> None:
        """The registry client's limit observer (ClientSettings.limit_observer)."""
        label = self._registry_label(registry)
        self.registry_rate_limit.labels(label).set(rate)
        self.registry_concurrency_limit.labels(label).set(concurrency)

    def _registry_label(self, registry: str) -> str:
        host = registry.lower()
        if host in self._registries:
            return host
        if len(self._registries) < MAX_REGISTRY_LABELS:
            self._registries.add(host)
            return host
        return OTHER

    def lookup_done(self, seconds: float, *, succeeded: bool) -> None:
        self.lookups.labels(SUCCEEDED if succeeded else FAILED).observe(max(0.0, seconds))

    def schedule_round(self, scheduled: int, overdue: int, oldest_overdue: float) -> None:
        self.scheduled_tags.set(scheduled)
        self.overdue_tags.set(overdue)
        self.oldest_overdue.set(oldest_overdue)

    def trigger_written(self, kind: str) -> None:
        self.trigger_writes.labels(kind).inc()

    def trigger_refused(self, kind: str) -> None:
        self.trigger_failures.labels(kind).inc()

    def queue_waited(self, queue: str, seconds: float) -> None:
        self.queue_wait.labels(queue).observe(max(0.0, seconds))

    def queue_retried(self, queue: str) -> None:
        self.queue_retries.labels(queue).inc()

    def watch_restarted(self, kind: str) -> None:
        self.watch_restarts.labels(kind).inc()

    def admission_answered(self, path: str, result: str, seconds: float) -> None:
        self.admission_requests.labels(path, result).inc()
        self.admission_seconds.labels(path).observe(seconds)

    def image_looked_up(self, result: str) -> None:
        """The image lookup's observer (admission.lookup.ImageLookup(observe=...))."""
        self.image_lookups.labels(result).inc()

    def notification_received(self, notification_format: str, result: str, scheduled_tags: int) -> None:
        """The push notification endpoint's observer (controller/notifications.py)."""
        self.notifications.labels(notification_format, result).inc()
        if scheduled_tags:
            self.notified_tags.labels(notification_format).inc(scheduled_tags)

    def set_leader(self, leading: bool) -> None:
        self.leader.set(1 if leading else 0)

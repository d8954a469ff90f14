"""Image change triggers: workloads whose image.openshift.io/triggers annotation names a stream tag
follow that tag's current image.

Workloads are known only from watch events (no Kopf state or finalizers on them); an in-memory index
maps each (namespace, stream) to the workloads that name it, so a stream change touches only those.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

from lightkube import ApiError, AsyncClient

from imagestreams.api.events import IGNORED_IMAGE_TRIGGER, INVALID_IMAGE_TRIGGER
from imagestreams.controller.events import EventPoster
from imagestreams.controller.metrics import Metrics
from imagestreams.controller.reconciler import StreamCache
from imagestreams.core import jobruns
from imagestreams.core.caches import ReverseIndex
from imagestreams.core.fieldowners import gitops_owners, image_owners
from imagestreams.core.slimbodies import CompactMap, decode, slim_workload
from imagestreams.core.triggers import (
    POD_SPEC_PATHS,
    TRIGGERS_ANNOTATION,
    ContainerChange,
    Trigger,
    TriggerError,
    desired_changes,
    ignored_summary,
    parse_triggers,
    stream_tag_image,
    trigger_index_keys,
)
from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.kube.access import AccessCheckFailed, PullAccess, pull_denied_message
from imagestreams.kube.workloads import FIELD_MANAGER, apply_images, create_job, delete_job, job_runs

logger = logging.getLogger(__name__)

WorkloadKey = tuple[WorkloadKind, str, str]  # kind, namespace, name


class WriteRefused(Exception):
    """The API server refused or could not take a workload write (admission denial, quota, 5xx...).

    Reported once as a Warning; the work queue retries the workload with backoff until the write
    lands or the workload changes, so an update is never dropped.
    """


@dataclass
class TriggerController:
    kube: AsyncClient
    streams: StreamCache
    access: PullAccess
    post_event: EventPoster
    # What is kept of each workload with a trigger annotation (core.slimbodies: no status, compact JSON).
    workloads: CompactMap[WorkloadKey] = field(default_factory=CompactMap)
    # (namespace, stream) <-> the workloads that name it; both ways, so a workload event touches only its own
    # entries (every Deployment event in the cluster passes here, annotated or not).
    index: ReverseIndex[WorkloadKey, tuple[str, str]] = field(default_factory=ReverseIndex)
    problems: dict[WorkloadKey, str] = field(default_factory=dict)  # the InvalidImageTrigger Warning last posted
    ignored: dict[WorkloadKey, str] = field(default_factory=dict)  # the IgnoredImageTrigger Warning last posted
    writes: int = 0  # workload writes (applies and Job runs), for tests and metrics
    metrics: Metrics | None = None
    _indexed: dict[WorkloadKey, str] = field(default_factory=dict)  # the annotation each index entry was made from
    _versions: dict[WorkloadKey, tuple[str, int]] = field(default_factory=dict)  # uid and generation kept

    # --- the index -------------------------------------------------------------------------------

    def observe(self, kind: WorkloadKind, event_type: str, body: dict[str, Any]) -> WorkloadKey | None:
        """Record a workload watch event; returns the key when the workload should be reconciled."""
        metadata = body.get("metadata") or {}
        key = (kind, metadata.get("namespace", ""), metadata.get("name", ""))
        annotation = (metadata.get("annotations") or {}).get(TRIGGERS_ANNOTATION)
        known = self._versions.get(key)
        if event_type == "DELETED":
            if known is None or not known[0] or not metadata.get("uid") or known[0] == metadata["uid"]:
                self._forget(key)
            # else an earlier object of the same name went away; the one we know lives on
            return None
        if annotation is None:
            self._forget(key)
            return None
        if self._is_job_run(kind, body):
            return None
        return key if self._take(key, body, annotation, known) else None

    def _take(self, key: WorkloadKey, body: dict[str, Any], annotation: str, known: tuple[str, int] | None) -> bool:
        """Keep the workload's body as this event has it; whether a pass should decide about it again."""
        version = _version(body)
        if known is not None and known[0] == version[0] and version[1] < known[1]:
            # An event from before this operator's own write, which the watch delivers late (kube-controller-manager
            # wrote the status in between): the write's answer, known already, is newer. Taking this one would make
            # the next pass write the same images again.
            return False
        self.workloads[key] = slim_workload(body)
        self._versions[key] = version
        if self._indexed.get(key) != annotation:
            self._reindex(key, annotation)
            return True
        # The same spec (the generation counts its changes) and the same triggers: a status update, or the watch
        # delivering this operator's own write. Nothing to decide again; a stream change wakes it.
        return known != version

    def workloads_for(self, namespace: str, stream: str) -> set[WorkloadKey]:
        return self.index.referrers((namespace, stream))

    def _forget(self, key: WorkloadKey) -> None:
        self.workloads.pop(key, None)
        self._indexed.pop(key, None)
        self._versions.pop(key, None)
        self.problems.pop(key, None)
        self.ignored.pop(key, None)
        self.index.discard(key)

    def _reindex(self, key: WorkloadKey, annotation: str) -> None:
        try:
            streams = trigger_index_keys(parse_triggers(annotation, key[0], key[1]).triggers)
        except TriggerError:
            streams = set()  # reported when reconciled
        self.index.assign(key, streams)
        self._indexed[key] = annotation

    @staticmethod
    def _is_job_run(kind: WorkloadKind, body: dict[str, Any]) -> bool:
        labels = (body.get("metadata") or {}).get("labels") or {}
        return kind is WorkloadKind.JOB and jobruns.SOURCE_JOB_LABEL in labels

    # --- reconciling one workload --------------------------------------------------------------

    async def reconcile(self, key: WorkloadKey) -> None:
        raw = self.workloads.raw(key)
        if raw is None:
            return
        body = decode(raw)
        kind, namespace, _ = key
        annotation = ((body.get("metadata") or {}).get("annotations") or {}).get(TRIGGERS_ANNOTATION, "")
        try:
            annotation_triggers = parse_triggers(annotation, kind, namespace)
        except TriggerError as error:
            await self._ignored_entries(key, body, [])
            await self._problem(key, body, f"invalid {TRIGGERS_ANNOTATION} annotation: {error}")
            return
        ignored = ignored_summary(annotation_triggers.ignored)
        resolved: dict[Trigger, str] = {}
        problems: list[str] = []
        for trigger in annotation_triggers.triggers:
            if trigger.paused:
                continue
            image, problem = await self._resolve(namespace, trigger)
            if problem:
                problems.append(problem)
            elif image:
                resolved[trigger] = image
        try:
            plan = desired_changes(body, kind, resolved)
        except TriggerError as error:
            await self._ignored_entries(key, body, ignored)
            # As UpdateObjectFromImages: one such trigger with an image to apply stops them all.
            await self._problem(
                key,
                body,
                f"invalid {TRIGGERS_ANNOTATION} annotation: {error}\nno trigger of this workload is applied until "
                "this is fixed (as on OpenShift)",
            )
            return
        await self._ignored_entries(key, body, ignored + list(plan.overridden))
        if problems:
            await self._problem(key, body, "; ".join(problems))
        if plan.changes:
            changes = list(plan.changes)
            if kind is WorkloadKind.JOB:
                await self._start_run(key, body, changes)
            else:
                await self._apply(key, body, raw, changes)
        if not problems:
            # Only now: a refused write keeps its problem, so its retries do not repeat the Warning.
            self.problems.pop(key, None)

    async def _resolve(self, namespace: str, trigger: Trigger) -> tuple[str | None, str | None]:
        """The tag's current image, or a problem to report (None, None: no image yet, nothing to do)."""
        where = f"{trigger.namespace}/{trigger.stream}:{trigger.tag}"
        if trigger.namespace != namespace:
            try:
                allowed = await self.access.namespace_may_pull(namespace, trigger.namespace)
            except AccessCheckFailed as error:
                return None, f"trigger for {where}: {error}"
            if not allowed:
                return None, f"trigger for {where}: {pull_denied_message(namespace, trigger.namespace)}"
        stream = self.streams.stream(trigger.namespace, trigger.stream)
        if stream is None:
            return None, (
                f"image stream {trigger.namespace}/{trigger.stream} does not exist (yet); "
                "the trigger applies as soon as it does"
            )
        return stream_tag_image(stream, trigger.tag), None

    async def _apply(self, key: WorkloadKey, body: dict[str, Any], raw: bytes, changes: list[ContainerChange]) -> None:
        """Write `changes` to the workload `body` (decoded from the cache's `raw`)."""
        kind, namespace, name = key
        images = {(change.container_list, change.container_name): change.new_image for change in changes}
        # Server-side apply drops fields a manager stops sending; keep every image field this operator
        # already owns at its current value, so a paused or unresolved trigger never loses its image.
        managed = (body.get("metadata") or {}).get("managedFields")
        # Every container whose image this operator owns, triggered now or not: a trigger removed from the
        # annotation must not make the next apply drop (and so delete) that container's image.
        for container_list, container_name in _all_containers(body, kind):
            if (container_list, container_name) in images:
                continue
            owners = image_owners(managed, POD_SPEC_PATHS[kind], container_list, container_name)
            current = _container_image(body, kind, container_list, container_name)
            if FIELD_MANAGER in owners and current:
                images[(container_list, container_name)] = current
        try:
            written = await apply_images(self.kube, kind, namespace, name, images)
        except ApiError as error:
            self._count(kind, written=False)
            message = f"could not update the workload: {error.status.message}"
            await self._problem(key, body, message)
            raise WriteRefused(message) from error
        self.writes += 1
        self._count(kind, written=True)
        self.keep_written(key, raw, written)
        logger.info("write: set %d image(s) of %s %s/%s", len(changes), kind.value, namespace, name)
        for change in changes:
            trigger = change.trigger
            await self.post_event(
                body,
                "Normal",
                "ImageChangeTriggered",
                f"{change.container_list[:-1]} {change.container_name}: image {change.old_image} -> "
                f"{change.new_image} (image stream tag {trigger.namespace}/{trigger.stream}:{trigger.tag})",
            )
            others = gitops_owners(
                image_owners(managed, POD_SPEC_PATHS[kind], change.container_list, change.container_name)
            )
            if others:
                await self.post_event(
                    body,
                    "Warning",
                    "ImageFieldSharedWithGitOps",
                    f"the image of {change.container_name} is also managed by {', '.join(others)}; they will "
                    "undo each other's changes: see docs/gitops.md for the settings that avoid it",
                )

    def keep_written(self, key: WorkloadKey, raw: bytes, written: dict[str, Any]) -> None:
        """Know the workload as the API server answered a write to it, which a pass made from the kept `raw`
        (unless a watch event of the written generation or later came meanwhile), so a pass that runs before the
        watch delivers this write does not write the same images again."""
        known = self._versions.get(key)
        version = _version(written)
        if self.workloads.raw(key) is raw or (known is not None and known[0] == version[0] and known[1] < version[1]):
            self.workloads[key] = slim_workload(written)
            self._versions[key] = version

    async def _start_run(self, key: WorkloadKey, body: dict[str, Any], changes: list[ContainerChange]) -> None:
        _, namespace, name = key
        images = {(change.container_list, change.container_name): change.new_image for change in changes}
        started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        manifest = jobruns.run_manifest(body, images, TRIGGERS_ANNOTATION, started)
        uid = (body.get("metadata") or {}).get("uid")
        # The label finds candidates; only Jobs this source owns count (anyone may set a label).
        runs = [
            run
            for run in await job_runs(self.kube, namespace, name)
            if any(ref.get("uid") == uid for ref in (run.get("metadata") or {}).get("ownerReferences") or [])
        ]
        if any(run["metadata"]["name"] == manifest["metadata"]["name"] for run in runs):
            return  # this image's run exists already (also after a restart)
        try:
            created = await create_job(self.kube, manifest)
        except ApiError as error:
            self._count(WorkloadKind.JOB, written=False)
            message = f"could not start a run of the Job: {error.status.message}"
            await self._problem(key, body, message)
            raise WriteRefused(message) from error
        if created:
            self.writes += 1
            self._count(WorkloadKind.JOB, written=True)
            logger.info("write: started Job %s/%s", namespace, manifest["metadata"]["name"])
            described = ", ".join(f"{c.container_name}={c.new_image}" for c in changes)
            await self.post_event(
                body, "Normal", "JobRunStarted", f"started Job {manifest['metadata']['name']} with {described}"
            )
            runs.append(manifest)
        for old in jobruns.runs_beyond_limit(runs, jobruns.runs_to_keep(body)):
            await delete_job(self.kube, namespace, old)

    def _count(self, kind: WorkloadKind, *, written: bool) -> None:
        if self.metrics is None:
            return
        if written:
            self.metrics.trigger_written(kind.value)
        else:
            self.metrics.trigger_refused(kind.value)

    async def _problem(self, key: WorkloadKey, body: dict[str, Any], message: str) -> None:
        """A Warning event, once per distinct problem."""
        if self.problems.get(key) == message:
            return
        self.problems[key] = message
        logger.warning("%s %s/%s: %s", key[0].value, key[1], key[2], message)
        await self.post_event(body, "Warning", INVALID_IMAGE_TRIGGER, message)

    async def _ignored_entries(self, key: WorkloadKey, body: dict[str, Any], messages: list[str]) -> None:
        """One Warning event for the entries OpenShift would skip silently, again only when they change."""
        message = "; ".join(messages)
        if self.ignored.get(key, "") == message:
            return
        if not message:
            del self.ignored[key]
            return
        self.ignored[key] = message
        logger.warning("%s %s/%s: %s", key[0].value, key[1], key[2], message)
        await self.post_event(body, "Warning", IGNORED_IMAGE_TRIGGER, message)


def _version(body: dict[str, Any]) -> tuple[str, int]:
    """A workload's uid and generation: the generation grows with every change of its spec, so of two bodies of
    one object the one with the lower generation is the older (resourceVersions may not be compared)."""
    metadata = body.get("metadata") or {}
    generation = metadata.get("generation")
    return str(metadata.get("uid") or ""), generation if isinstance(generation, int) else 0


def _all_containers(body: dict[str, Any], kind: WorkloadKind) -> list[tuple[str, str]]:
    node: Any = body
    for part in POD_SPEC_PATHS[kind]:
        node = (node or {}).get(part)
    return [
        (container_list, str(container.get("name", "")))
        for container_list in ("initContainers", "containers")
        for container in (node or {}).get(container_list) or []
    ]


def _container_image(body: dict[str, Any], kind: WorkloadKind, container_list: str, name: str) -> str | None:
    node: Any = body
    for part in POD_SPEC_PATHS[kind]:
        node = (node or {}).get(part)
    for container in (node or {}).get(container_list) or []:
        if container.get("name") == name:
            image = container.get("image")
            return str(image) if image else None
    return None

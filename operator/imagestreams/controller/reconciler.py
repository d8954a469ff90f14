"""One pass over one ImageStream: decide what to look up, look it up, write the status difference."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from lightkube import ApiError, AsyncClient

from imagestreams.api.imagestream import ImageStream, NamedTagEventList
from imagestreams.api.settings import OperatorSettings
from imagestreams.controller.importer import Importer
from imagestreams.controller.metrics import Metrics
from imagestreams.core.caches import ReverseIndex, TTLCache
from imagestreams.core.fairness import TokenBucket, share_fairly
from imagestreams.core.notifications import PushTarget, scheduled_targets, tags_following
from imagestreams.core.schedule import next_due
from imagestreams.core.slimbodies import CompactMap, spec_view, without_managed_fields
from imagestreams.core.statusbudget import (
    CONDITION_ROOM_BYTES,
    fit_status,
    status_budget,
    with_completeness,
    without_completeness,
)
from imagestreams.core.tags import (
    Failure,
    SourceType,
    alias_problems,
    classify_source,
    next_status,
    repository_check_changed,
    repository_needs_import,
    summarize,
    tags_needing_resolution,
    tags_updated_message,
)
from imagestreams.kube.events import MAX_MESSAGE
from imagestreams.kube.streams import StaleStream, too_large, write_status

logger = logging.getLogger(__name__)

IMPORT_REQUEST_ANNOTATION = "imagestreams.dev/import-request"
StreamKey = tuple[str, str]
EventPoster = Callable[[dict[str, Any], str, str, str], Awaitable[None]]


def rfc3339_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


PARSED_STREAMS = 256  # whole streams kept parsed, the most recently asked for (a fan-out asks for one a thousand times)


@dataclass
class StreamCache:
    """The latest body of every watched stream, fed by watch events."""

    # Kept small (core.slimbodies; a parsed stream costs about 8 KiB): each stream's body as compact JSON, decoded
    # by each pass, and its spec parsed (the schedule reads every spec every few seconds). `stream()` parses the
    # whole stream when asked and keeps the PARSED_STREAMS asked for last.
    bodies: CompactMap[StreamKey] = field(default_factory=CompactMap)
    parsed: dict[StreamKey, ImageStream] = field(default_factory=dict)  # metadata and spec, no status
    _whole: TTLCache[StreamKey, ImageStream] = field(default_factory=lambda: TTLCache(PARSED_STREAMS))
    # stream <-> the streams with a tag copied from it, so a change wakes only those.
    sources: ReverseIndex[StreamKey, StreamKey] = field(default_factory=ReverseIndex)
    # stream <-> the pushes its scheduled tags follow, so a push notification finds them (core/notifications.py).
    pushes: ReverseIndex[StreamKey, PushTarget] = field(default_factory=ReverseIndex)

    def put(self, key: StreamKey, body: dict[str, Any]) -> None:
        self.bodies[key] = body
        stream = self.parsed[key] = ImageStream.model_validate(spec_view(body))
        self._whole.pop(key)
        copied_from = []
        for tag in stream.spec.tags or []:
            source = classify_source(key[0], key[1], tag)
            if source.type in (SourceType.OTHER_STREAM_TAG, SourceType.STREAM_IMAGE):
                copied_from.append((source.namespace, source.stream))
        self.sources.assign(key, copied_from)
        self.pushes.assign(key, scheduled_targets(*key, stream).values())

    def remove(self, key: StreamKey) -> None:
        self.bodies.pop(key, None)
        self.parsed.pop(key, None)
        self._whole.pop(key)
        self.sources.discard(key)
        self.pushes.discard(key)

    def following(self, pushed: tuple[PushTarget, ...]) -> dict[StreamKey, set[str]]:
        """The scheduled tags, by stream, that follow one of the `pushed` targets."""
        found: dict[StreamKey, set[str]] = {}
        for key in {key for target in pushed for key in self.pushes.referrers(target)}:
            stream = self.parsed.get(key)
            tags = tags_following(scheduled_targets(*key, stream), pushed) if stream is not None else set()
            if tags:
                found[key] = tags
        return found

    def stream(self, namespace: str, name: str) -> ImageStream | None:
        """The stream as last seen, status included (callers must not modify it)."""
        key = (namespace, name)
        stream = self._whole.get(key)
        if stream is None:
            body = self.bodies.get(key)
            if body is None:
                return None
            stream = ImageStream.model_validate(without_managed_fields(body))
            self._whole.put(key, stream)
        return stream

    def dependents(self, namespace: str, name: str) -> list[StreamKey]:
        """Streams with a tag copied from (namespace, name)."""
        return sorted(self.sources.referrers((namespace, name)))


@dataclass
class Scheduler:
    """In-memory schedule of scheduled tags: when each was last checked, and a budget for checks.

    The budget is shared fairly across namespaces: each round hands the checks it allows out round-robin, one due
    tag of each namespace in turn (the longest due first), starting with the namespaces served least recently, so a
    namespace with thousands of scheduled tags cannot starve another's.
    """

    settings: OperatorSettings
    clock: Callable[[], float] = time.monotonic
    started: float = -1.0  # when the schedule started (the clock's time at creation unless given)
    last_checked: dict[tuple[str, str, str], float] = field(default_factory=dict)
    budget: TokenBucket = field(init=False)
    _turns: dict[str, int] = field(default_factory=dict)  # namespace -> when it last got a check (a counter)
    # Tags a push notification made due, until the pass that looks them up takes them (take_pushed).
    _pushed: dict[StreamKey, set[str]] = field(default_factory=dict)
    _turn: int = 0
    # What the last round saw, for metrics: scheduled tags, those it left waiting past their slot (the budget was
    # spent), and how long past its slot the longest-waiting of them was.
    scheduled: int = field(default=0, init=False)
    overdue: int = field(default=0, init=False)
    oldest_overdue: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()
        per_minute = self.settings.max_scheduled_imports_per_minute
        self.budget = TokenBucket(rate=per_minute / 60.0, burst=2 * max(per_minute, 1))

    def checked(self, key: StreamKey, tags: list[str], now: float) -> None:
        for tag in tags:
            self.last_checked[(*key, tag)] = now

    def forget(self, key: StreamKey) -> None:
        for entry in [entry for entry in self.last_checked if entry[:2] == key]:
            del self.last_checked[entry]
        self._pushed.pop(key, None)

    def push_seen(self, key: StreamKey, tags: set[str]) -> None:
        """A push notification named these scheduled tags: their next pass must look them up afresh. They are due
        at once, outside the scheduled budget (the endpoint's per-source limit bounds them), and their next
        scheduled check stays where the grid puts it."""
        self._pushed.setdefault(key, set()).update(tags)

    def take_pushed(self, key: StreamKey) -> frozenset[str]:
        """The stream's tags named by push notifications since its last pass (forgotten once taken)."""
        return frozenset(self._pushed.pop(key, ()))

    def due(self, cache: StreamCache, now: float) -> dict[StreamKey, set[str]]:
        """Scheduled tags whose time has come and that fit in the budget, shared fairly across namespaces."""
        interval = self.settings.scheduled_interval_seconds
        waiting: dict[str, list[tuple[float, StreamKey, str]]] = {}  # namespace -> (due since, stream, tag)
        scheduled_tags = 0
        for key, stream in list(cache.parsed.items()):
            for tag in stream.spec.tags or []:
                scheduled = bool(tag.import_policy and tag.import_policy.scheduled)
                if not scheduled or classify_source(*key, tag).type is not SourceType.IMPORT:
                    continue
                scheduled_tags += 1
                entry = (*key, tag.name)
                due_at = next_due(self.last_checked.get(entry), "/".join(entry), interval, self.started)
                if now >= due_at:
                    waiting.setdefault(key[0], []).append((due_at, key, tag.name))
        allowed = self.budget.take_up_to(now, sum(len(tags) for tags in waiting.values()))
        queues = {namespace: sorted(tags) for namespace, tags in waiting.items()}
        result: dict[StreamKey, set[str]] = {}
        for namespace, (_, key, tag_name) in share_fairly(queues, allowed, self._turns):
            result.setdefault(key, set()).add(tag_name)
            self.last_checked[(*key, tag_name)] = now  # counted as checked now, so it is not due again at once
            self._turn += 1
            self._turns[namespace] = self._turn
        late = [
            now - due_at for tags in waiting.values() for due_at, key, tag in tags if tag not in result.get(key, ())
        ]
        self.scheduled, self.overdue, self.oldest_overdue = scheduled_tags, len(late), max(late, default=0.0)
        if len(self._turns) > 2 * len(waiting) + 100:  # forget namespaces that no longer have anything due
            self._turns = {namespace: turn for namespace, turn in self._turns.items() if namespace in waiting}
        return result


@dataclass
class Reconciler:
    cache: StreamCache
    importer: Importer
    kube: AsyncClient
    settings: OperatorSettings
    scheduler: Scheduler
    post_event: EventPoster
    clock: Callable[[], float] = time.monotonic
    writes: int = 0  # status writes made, for tests and metrics
    size_reports: dict[StreamKey, str] = field(default_factory=dict)  # the last StatusTooLarge per stream
    alias_reports: dict[StreamKey, dict[str, str]] = field(
        default_factory=dict
    )  # aliases reported as following nothing
    metrics: Metrics | None = None

    async def reconcile(self, key: StreamKey, due: frozenset[str]) -> None:
        body = self.cache.bodies.get(key)
        if body is None:
            return
        stream = ImageStream.model_validate(body)
        annotations = stream.metadata.get("annotations") or {}
        request = annotations.get(IMPORT_REQUEST_ANNOTATION)
        old_status = stream.status
        requested = bool(request) and request != (old_status.import_request if old_status else None)
        # A changed dockerRepositoryCheck re-imports the repository and every importable tag, as OpenShift does
        # when the annotation is removed.
        rechecked = repository_check_changed(stream)
        wanted = tags_needing_resolution(stream, requested=requested or rechecked, due=due)
        # A scheduled check may reuse another stream's recent lookup of the same source; a pushed tag may not, since
        # the push came after that lookup.
        scheduled_only = (
            frozenset(wanted)
            - set(tags_needing_resolution(stream, requested=requested or rechecked))
            - self.scheduler.take_pushed(key)
        )
        outcomes = await self.importer.outcomes(stream, wanted, scheduled_only) if wanted else {}
        repository = (
            await self.importer.repository(stream, self.settings.max_repository_tags)
            if repository_needs_import(stream, requested=requested)
            else None
        )
        if self.metrics is not None:
            self.metrics.count_imports(outcomes.values(), repository)
        imported = [name for name in wanted if name in outcomes]
        self.scheduler.checked(key, imported, self.clock())
        status = next_status(
            stream,
            outcomes,
            now=rfc3339_now(),
            history_limit=self.settings.history_limit,
            import_request=request if requested else None,
            repository=repository,
        )
        await self._report_aliases(key, body, stream.model_copy(update={"status": status}))
        old = old_status.dump() if old_status else {}
        fitted = fit_status(without_completeness(status.dump()), status_budget(body) - CONDITION_ROOM_BYTES)
        if fitted.dropped_tags:
            # The TAGS and UPDATED columns describe what is stored: a left-out tag (re-created at every pass,
            # with a new time) must not change them, or every pass would write again.
            _summarize_stored(fitted.status)
        new = with_completeness(fitted, old, rfc3339_now())
        if new == old:
            return
        try:
            await write_status(
                self.kube,
                key[0],
                key[1],
                resource_version=stream.metadata.get("resourceVersion", ""),
                old=old,
                new=new,
            )
        except StaleStream:
            # The newer version arrives as an event; the scheduled checks of this pass must not be lost.
            logger.info("image stream %s/%s changed meanwhile; its newer version is reconciled instead", *key)
            raise
        except ApiError as error:
            if not too_large(error):
                raise
            # Retrying the same write cannot help: say so once, and wait for the next change.
            await self._report_size(key, body, f"the status could not be stored: {error.status.message}")
            return
        self.writes += 1
        if self.metrics is not None:
            self.metrics.status_writes.inc()
        logger.info("write: status of image stream %s/%s", *key)
        if fitted.trimmed:
            await self._report_size(
                key, body, f"the status exceeds the API server's object size limit: {fitted.summary()}"
            )
        else:
            self.size_reports.pop(key, None)
        await self._announce(body, stream, status.model_dump(by_alias=True), outcomes)
        if repository and repository.failure:
            await self.post_event(
                body, "Warning", "ImportFailed", f"{repository.repository}: {repository.failure.message}"
            )
        elif repository and repository.additional_tags:
            await self.post_event(
                body,
                "Normal",
                "RepositoryLimit",
                f"imported {len(repository.outcomes)} tags of {repository.repository}; "
                f"{len(repository.additional_tags)} more were left out by the limit of "
                f"{self.settings.max_repository_tags}: {', '.join(repository.additional_tags[:10])}",
            )

    def forget(self, key: StreamKey) -> None:
        """The stream is gone: forget what was reported about it."""
        self.size_reports.pop(key, None)
        self.alias_reports.pop(key, None)

    async def _report_aliases(self, key: StreamKey, body: dict[str, Any], stream: ImageStream) -> None:
        """A Warning for each alias that loops or names a missing tag, once per problem: OpenShift leaves such a
        tag alone without a word (tagsChanged), and so does the status here."""
        problems = alias_problems(stream)
        reported = self.alias_reports.get(key, {})
        for tag, message in sorted(problems.items()):
            if reported.get(tag) != message:
                await self.post_event(body, "Warning", "TagReferenceIgnored", message)
        if problems:
            self.alias_reports[key] = problems
        else:
            self.alias_reports.pop(key, None)

    async def _report_size(self, key: StreamKey, body: dict[str, Any], message: str) -> None:
        if self.size_reports.get(key) == message:
            return
        self.size_reports[key] = message
        logger.warning("image stream %s/%s: %s", *key, message)
        await self.post_event(body, "Warning", "StatusTooLarge", message)

    async def _announce(
        self, body: dict[str, Any], stream: ImageStream, status: dict[str, Any], outcomes: dict[str, Any]
    ) -> None:
        """Events for what changed: a new image per tag (Normal), a failed import (Warning)."""
        before = {entry.tag: entry for entry in (stream.status.tags if stream.status else None) or []}
        updated: list[tuple[str, str]] = []
        for entry in status.get("tags") or []:
            previous = before.get(entry["tag"])
            newest = (entry.get("items") or [None])[0]
            old_newest = previous.items[0].image if previous and previous.items else None
            if newest and newest.get("image") and newest["image"] != old_newest:
                updated.append((entry["tag"], newest["dockerImageReference"]))
        if updated:
            # One Event per pass: a thousand new tags were a thousand Events, each costing the API server and the
            # operator about what the import of its tag cost (bench/throughput.py).
            await self.post_event(body, "Normal", "TagUpdated", tags_updated_message(updated, MAX_MESSAGE))
        for tag, outcome in outcomes.items():
            if isinstance(outcome, Failure):
                old_conditions = before[tag].conditions if tag in before else None
                if not old_conditions or old_conditions[0].message != outcome.message:
                    await self.post_event(body, "Warning", "ImportFailed", f"tag {tag}: {outcome.message}")


def _summarize_stored(status: dict[str, Any]) -> None:
    summary, updated = summarize([NamedTagEventList.model_validate(entry) for entry in status.get("tags") or []])
    for key, value in (("tagsSummary", summary), ("updated", updated)):
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value

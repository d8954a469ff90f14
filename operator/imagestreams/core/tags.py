"""Tag decisions for one ImageStream: sources, generations, the history rule, conditions.

Pure functions over the API models. The controller gathers registry answers and
other streams' tags, then asks `next_status` for the status to write; when that
equals the current status, nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from imagestreams.api.imagestream import (
    ImageStream,
    ImageStreamStatus,
    ImageSummary,
    NamedTagEventList,
    RepositoryImportState,
    SourceKind,
    TagEvent,
    TagEventCondition,
    TagReference,
    TagSourceState,
)

IMPORT_SUCCESS = "ImportSuccess"
DEFAULT_TAG = "latest"
REPOSITORY_CHECK_ANNOTATION = "openshift.io/image.dockerRepositoryCheck"
# 250 bytes a history entry: 50 tags (the bulk-import maximum) x 10 entries is about 125 KB,
# under a tenth of etcd's 1.5 MiB object limit. OpenShift keeps everything and prunes later.
DEFAULT_HISTORY_LIMIT = 10


class SourceType(StrEnum):
    NONE = "None"  # no `from`: the tag only records what is pushed to it
    IMPORT = "Import"  # DockerImage, imported from a registry
    REFERENCE = "Reference"  # DockerImage with reference: true, recorded as written
    ALIAS = "Alias"  # ImageStreamTag in this same stream: follows its target
    OTHER_STREAM_TAG = "OtherStreamTag"  # ImageStreamTag in another stream: copied when the spec changes
    STREAM_IMAGE = "StreamImage"  # ImageStreamImage: one image of a stream's history, copied once
    INVALID = "Invalid"


@dataclass(frozen=True)
class TagSource:
    type: SourceType
    namespace: str = ""
    stream: str = ""
    target: str = ""  # tag name (ImageStreamTag), digest (ImageStreamImage) or pull spec (DockerImage)
    problem: str = ""


def classify_source(namespace: str, stream_name: str, tag: TagReference) -> TagSource:  # noqa: PLR0911 - one return per kind
    """What kind of source a spec tag has, with its target parsed."""
    source = tag.from_
    if source is None or not source.kind:
        return TagSource(SourceType.NONE)
    name = source.name or ""
    if not name:
        return TagSource(SourceType.INVALID, problem="from.name is required")
    source_namespace = source.namespace or namespace
    if source.kind == SourceKind.DOCKER_IMAGE:
        return TagSource(SourceType.REFERENCE if tag.reference else SourceType.IMPORT, target=name)
    if source.kind == SourceKind.IMAGE_STREAM_TAG:
        # parseFromReference (openshift-apiserver registry/imagestream/strategy.go) splits on every ":": one part is
        # a tag of this stream, two are <stream>:<tag>, more are refused; LatestTaggedImage reads an empty tag as
        # "latest".
        parts = name.split(":")
        if len(parts) == 1:
            stream, target = stream_name, name
        elif len(parts) == 2 and parts[0]:
            stream, target = parts[0], parts[1] or DEFAULT_TAG
        else:
            return TagSource(SourceType.INVALID, problem=f"from.name {name!r} must be <stream>:<tag> or <tag>")
        same_stream = stream == stream_name and source_namespace == namespace
        kind = SourceType.ALIAS if same_stream else SourceType.OTHER_STREAM_TAG
        return TagSource(kind, source_namespace, stream, target)
    if source.kind == SourceKind.IMAGE_STREAM_IMAGE:
        # parseFromReference (openshift-apiserver registry/imagestream/strategy.go): a name without "@" is an
        # image of this stream, as a name without ":" is a tag of it.
        stream, sep, digest = name.partition("@")
        if not sep:
            stream, digest = stream_name, name
        if not stream or not digest or "@" in digest:
            return TagSource(SourceType.INVALID, problem=f"from.name {name!r} must be <stream>@<digest> or <digest>")
        return TagSource(SourceType.STREAM_IMAGE, source_namespace, stream, digest)
    return TagSource(SourceType.INVALID, problem=f"unknown from.kind {source.kind!r}")


def source_fingerprint(tag: TagReference) -> str:
    """A hash of what defines where the tag's image comes from.

    These are the fields whose change makes OpenShift assign the tag a new generation
    (and so import again): from, reference, importMode, and the generation value the
    user wrote (setting it, e.g. to 0, is how a user asks for a new import).
    """
    source = tag.from_
    import_mode = tag.import_policy.import_mode if tag.import_policy else None
    material = {
        "kind": source.kind if source else None,
        "name": source.name if source else None,
        "namespace": source.namespace if source else None,
        "reference": bool(tag.reference),
        "importMode": import_mode or "",
        "generation": tag.generation,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def add_tag_event(history: Sequence[TagEvent], event: TagEvent, limit: int) -> list[TagEvent] | None:
    """OpenShift's history rule; returns the new history, or None when nothing changes.

    Compared with the newest entry: all equal, no change; only the generation differs,
    update it; only the image or only the reference differs, replace that field in place;
    both differ, the event becomes the new newest entry. The list is cut to `limit`.
    """
    if not history:
        return [event]
    newest = history[0]
    same_reference = newest.docker_image_reference == event.docker_image_reference
    same_image = newest.image == event.image
    if same_reference and same_image:
        if newest.generation == event.generation:
            return None
        updated = newest.model_copy(update={"generation": event.generation})
    elif same_reference:
        updated = newest.model_copy(update={"image": event.image, "generation": event.generation})
    elif same_image:
        updated = newest.model_copy(
            update={"docker_image_reference": event.docker_image_reference, "generation": event.generation}
        )
    else:
        return [event, *history][:limit]
    return [updated, *history[1:]][:limit]


def failure_conditions(
    existing: Sequence[TagEventCondition], reason: str, message: str, generation: int, now: str
) -> list[TagEventCondition]:
    """ImportSuccess=False, replacing the tag's conditions unless the same failure is already recorded."""
    for condition in existing:
        if (condition.type, condition.status, condition.reason, condition.message) == (
            IMPORT_SUCCESS,
            "False",
            reason,
            message,
        ):
            return list(existing)
    return [
        TagEventCondition(
            type=IMPORT_SUCCESS,
            status="False",
            reason=reason,
            message=message,
            generation=generation,
            last_transition_time=now,
        )
    ]


class AliasProblem(Exception):
    """An alias chain that loops or leads nowhere."""


def follow_aliases(
    namespace: str,
    stream_name: str,
    tags: Mapping[str, TagReference],
    start: str,
    status_tags: Collection[str] = (),
) -> str:
    """The tag at the end of a chain of same-stream ImageStreamTag references.

    A chain may end at a tag that lives in status only (imported through spec.dockerImageRepository, or kept
    after its spec tag was removed): OpenShift's tagsChanged resolves an alias with LatestTaggedImage, which reads
    status, not spec.
    """
    seen = [start]
    current = start
    while True:
        spec = tags.get(current)
        if spec is None:
            if current != start and current in status_tags:
                return current
            raise AliasProblem(f"tag {current!r} does not exist in this stream")
        source = classify_source(namespace, stream_name, spec)
        if source.type is not SourceType.ALIAS:
            return current
        if source.target in seen:
            chain = " -> ".join([*seen, source.target])
            raise AliasProblem(f"circular tag reference: {chain}")
        seen.append(source.target)
        current = source.target


@dataclass(frozen=True)
class Resolved:
    """A tag's image as found by an import or in another stream, with its metadata when newly read."""

    docker_image_reference: str
    image: str
    summary: ImageSummary | None = None


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str


Outcome = Resolved | Failure


@dataclass(frozen=True)
class RepositoryResult:
    """The import of spec.dockerImageRepository: per-tag outcomes, tags left out by the limit, or why it failed."""

    repository: str
    outcomes: Mapping[str, Outcome]
    additional_tags: tuple[str, ...] = ()
    failure: Failure | None = None


def repository_check(stream: ImageStream) -> str:
    """The stream's openshift.io/image.dockerRepositoryCheck annotation ("" when absent)."""
    return str((stream.metadata.get("annotations") or {}).get(REPOSITORY_CHECK_ANNOTATION) or "")


def repository_check_changed(stream: ImageStream) -> bool:
    """True when the dockerRepositoryCheck annotation differs from the one seen at the last repository import.

    On OpenShift, removing the annotation re-imports the repository and every importable tag (needsImport in
    openshift-controller-manager image/controller/imagestream_controller.go), and the import writes it back. The
    operator never writes a stream's metadata, so it acts on any change of the value instead, removal included.
    """
    state = stream.status.repository_import if stream.status else None
    if not stream.spec.docker_image_repository or state is None:
        return False
    return (state.docker_repository_check or "") != repository_check(stream)


def repository_needs_import(stream: ImageStream, *, requested: bool) -> bool:
    """True when spec.dockerImageRepository is set and was not imported as it is now (or an import is requested)."""
    repository = stream.spec.docker_image_repository
    if not repository:
        return False
    state = stream.status.repository_import if stream.status else None
    return requested or state is None or state.repository != repository or repository_check_changed(stream)


def repository_tags_to_import(
    repository_tags: Sequence[str], spec_tags: Sequence[str], limit: int
) -> tuple[list[str], list[str]]:
    """Split a repository's tags (already in priority order) into those to import and those left out.

    Tags named in spec are imported through their spec tag instead. A limit of 0 or less means no limit.
    """
    named = set(spec_tags)  # built once: a repository can list tens of thousands of tags
    candidates = [tag for tag in repository_tags if tag not in named]
    if limit <= 0:
        return candidates, []
    return candidates[:limit], candidates[limit:]


def tag_states(stream: ImageStream) -> dict[str, NamedTagEventList]:
    status = stream.status or ImageStreamStatus()
    return {entry.tag: entry for entry in status.tags or []}


def source_changed(stream: ImageStream, tag: TagReference) -> bool:
    """True when the tag's source differs from the one the status recorded (or none is recorded)."""
    state = tag_states(stream).get(tag.name)
    return state is None or state.source is None or state.source.source_fingerprint != source_fingerprint(tag)


def tags_needing_resolution(stream: ImageStream, *, requested: bool, due: frozenset[str] = frozenset()) -> list[str]:
    """The spec tags whose source must be looked up now (registry import or another stream).

    Importable tags: when the source changed or has never produced anything, when the
    user requested an import, or when their schedule is due. Tags copied from another
    stream: when the source changed, or while the source could not yet be found.
    """
    namespace = stream.metadata.get("namespace", "")
    name = stream.metadata.get("name", "")
    states = tag_states(stream)
    wanted = []
    for tag in stream.spec.tags or []:
        source = classify_source(namespace, name, tag)
        state = states.get(tag.name)
        never_resolved = state is None or not state.items
        changed = source_changed(stream, tag)
        if source.type is SourceType.IMPORT:
            if changed or requested or tag.name in due or (never_resolved and not (state and state.conditions)):
                wanted.append(tag.name)
        elif source.type in (SourceType.OTHER_STREAM_TAG, SourceType.STREAM_IMAGE) and (
            changed or (never_resolved and state is not None and state.conditions)
        ):
            wanted.append(tag.name)
    return wanted


class _StatusBuilder:
    """Per-tag state being edited by next_status."""

    def __init__(self, stream: ImageStream, now: str, history_limit: int) -> None:
        self.now = now
        self.history_limit = history_limit
        self.generation = int(stream.metadata.get("generation") or 1)
        self.states = {tag: entry.model_copy(deep=True) for tag, entry in tag_states(stream).items()}

    def state(self, tag_name: str) -> NamedTagEventList:
        if tag_name not in self.states:
            self.states[tag_name] = NamedTagEventList(tag=tag_name)
        return self.states[tag_name]

    def note_source(self, tag: TagReference) -> None:
        """Remember the tag's source and the stream generation at which it appeared."""
        state = self.state(tag.name)
        fingerprint = source_fingerprint(tag)
        if state.source is None or state.source.source_fingerprint != fingerprint:
            state.source = TagSourceState(source_fingerprint=fingerprint, spec_generation=self.generation)

    def spec_generation(self, tag_name: str) -> int:
        source = self.state(tag_name).source
        return source.spec_generation if source else self.generation

    def record(self, tag_name: str, reference: str, image: str) -> None:
        # Every entry carries the generation of the spec tag that produced it, so an unrelated spec
        # change (which bumps the stream generation) rewrites nothing.
        event = TagEvent(
            created=self.now,
            docker_image_reference=reference,
            image=image,
            generation=self.spec_generation(tag_name),
        )
        state = self.state(tag_name)
        history = add_tag_event(state.items or [], event, self.history_limit)
        if history is not None:
            state.items = history
        # A source found again clears an earlier failure, even when the image is the one already
        # recorded (OpenShift clears a tag's conditions on every successful import).
        state.conditions = None

    def fail(self, tag_name: str, failure: Failure) -> None:
        state = self.state(tag_name)
        state.conditions = failure_conditions(
            state.conditions or [], failure.reason, failure.message, self.spec_generation(tag_name), self.now
        )


def next_status(
    stream: ImageStream,
    outcomes: Mapping[str, Outcome],
    *,
    now: str,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
    import_request: str | None = None,
    repository: RepositoryResult | None = None,
) -> ImageStreamStatus:
    """The status after applying `outcomes` (by tag name) to `stream`, following aliases."""
    namespace = stream.metadata.get("namespace", "")
    name = stream.metadata.get("name", "")
    old_status = stream.status or ImageStreamStatus()
    spec_tags = {tag.name: tag for tag in stream.spec.tags or []}
    builder = _StatusBuilder(stream, now, history_limit)
    for tag in spec_tags.values():
        builder.note_source(tag)

    # Direct sources first: imports, references, other streams.
    for tag in spec_tags.values():
        source = classify_source(namespace, name, tag)
        if source.type is SourceType.INVALID:
            builder.fail(tag.name, Failure("InvalidSource", source.problem))
        elif source.type is SourceType.REFERENCE:
            builder.record(tag.name, source.target, "")
        outcome = outcomes.get(tag.name)
        if isinstance(outcome, Resolved):
            builder.record(tag.name, outcome.docker_image_reference, outcome.image)
        elif isinstance(outcome, Failure):
            builder.fail(tag.name, outcome)

    # Tags found in spec.dockerImageRepository live in status only, as in OpenShift.
    repository_state = old_status.repository_import
    if repository is not None:
        repository_state = _apply_repository(builder, spec_tags, repository, repository_check(stream))

    # Then aliases, which follow their target's newest entry whatever changed it.
    for tag in spec_tags.values():
        if classify_source(namespace, name, tag).type is SourceType.ALIAS:
            _follow(builder, namespace, name, spec_tags, tag.name)

    # With no integrated registry, OpenShift's PrepareForCreate/PrepareForUpdate copy spec.dockerImageRepository
    # here (Strategy.dockerImageRepository); it writes the field even when empty.
    repository_spelling = stream.spec.docker_image_repository or ""

    images = _images(old_status, outcomes, repository, builder.states)

    # OpenShift keeps a tag's status when its spec tag is removed (only deleting the ImageStreamTag removes both),
    # and drops status entries with neither images nor conditions (collapseEmptyStatusTags in openshift-apiserver
    # registry/imagestream/strategy.go): a tag never imported has no entry. The operator's source bookkeeping goes
    # with the spec tag, so a tag added again is imported again, as its new spec generation makes OpenShift do.
    states = builder.states
    ordered = []
    for tag_name in sorted(states):
        state = states[tag_name]
        if tag_name not in spec_tags and state.source is not None:
            state.source = None
        if state.items or state.conditions:
            ordered.append(state)
    summary, updated = summarize(ordered)
    return old_status.model_copy(
        update={
            "tags": ordered or None,
            "tags_summary": summary,
            "updated": updated,
            "import_request": import_request or old_status.import_request,
            "repository_import": repository_state,
            "images": images,
            "docker_image_repository": repository_spelling,
        }
    )


def _images(
    old: ImageStreamStatus,
    outcomes: Mapping[str, Outcome],
    repository: RepositoryResult | None,
    states: Mapping[str, NamedTagEventList],
) -> list[ImageSummary] | None:
    """Metadata for exactly the images still in some tag's history: old entries kept, new ones added."""
    in_history = {item.image for state in states.values() for item in state.items or [] if item.image}
    known = {summary.image: summary for summary in old.images or []}
    fresh = [*outcomes.values(), *(repository.outcomes.values() if repository else [])]
    for outcome in fresh:
        if isinstance(outcome, Resolved) and outcome.summary and outcome.image not in known:
            known[outcome.image] = outcome.summary
    kept = [known[digest] for digest in sorted(known) if digest in in_history]
    return kept or None


def _apply_repository(
    builder: _StatusBuilder, spec_tags: Mapping[str, TagReference], repository: RepositoryResult, check: str
) -> RepositoryImportState:
    for tag_name, outcome in repository.outcomes.items():
        if tag_name in spec_tags:
            continue
        if isinstance(outcome, Resolved):
            builder.record(tag_name, outcome.docker_image_reference, outcome.image)
        elif tag_name in builder.states and builder.states[tag_name].items:
            builder.fail(tag_name, outcome)  # keeps the tag's last good image
    return RepositoryImportState(
        repository=repository.repository,
        additional_tags=list(repository.additional_tags) or None,
        message=repository.failure.message if repository.failure else None,
        docker_repository_check=check or None,
    )


def _follow(
    builder: _StatusBuilder, namespace: str, name: str, spec_tags: Mapping[str, TagReference], alias: str
) -> None:
    """The alias takes its target's newest entry. A target without an image, a missing target and a loop leave the
    alias as it is, with no condition: OpenShift's tagsChanged skips an alias whose LatestTaggedImage is nil
    ("referenced tag or ID doesn't exist, which is ok"). `alias_problems` says why, for a Warning Event."""
    try:
        target = follow_aliases(namespace, name, spec_tags, alias, _status_tags(builder.states))
    except AliasProblem:
        return
    target_items = builder.states[target].items if target in builder.states else None
    if target_items:
        builder.record(alias, target_items[0].docker_image_reference, target_items[0].image)


def _status_tags(states: Mapping[str, NamedTagEventList]) -> set[str]:
    return {tag for tag, state in states.items() if state.items}


def alias_problems(stream: ImageStream) -> dict[str, str]:
    """Aliases OpenShift silently leaves alone because they loop or name a tag this stream does not have, by tag,
    with what is wrong; the operator reports them as Warning Events instead of conditions."""
    namespace = stream.metadata.get("namespace", "")
    name = stream.metadata.get("name", "")
    spec_tags = {tag.name: tag for tag in stream.spec.tags or []}
    known = _status_tags(tag_states(stream))
    problems = {}
    for tag in spec_tags.values():
        if classify_source(namespace, name, tag).type is not SourceType.ALIAS:
            continue
        try:
            follow_aliases(namespace, name, spec_tags, tag.name, known)
        except AliasProblem as problem:
            problems[tag.name] = f"tag {tag.name} follows nothing: {problem}"
    return problems


SUMMARY_TAGS = 3


def summarize(tags: Sequence[NamedTagEventList]) -> tuple[str | None, str | None]:
    """The TAGS and UPDATED columns of `oc get is`: up to three tags with images, then "+ N more..."."""
    with_images = sorted(entry.tag for entry in tags if entry.items)
    if not with_images:
        return None, None
    summary = ",".join(with_images[:SUMMARY_TAGS])
    if len(with_images) > SUMMARY_TAGS:
        summary += f" + {len(with_images) - SUMMARY_TAGS} more..."
    updated = max(entry.items[0].created for entry in tags if entry.items)
    return summary, updated


def tags_updated_message(updates: Sequence[tuple[str, str]], limit: int) -> str:
    """The message of the one `TagUpdated` Event for the tags a pass moved to new images, as (tag, image reference)
    pairs in status order: a whole repository imported at once is one Event, not one per tag. Stays within `limit`
    characters by naming the first tags in full and counting the rest."""
    if len(updates) == 1:
        tag, reference = updates[0]
        return f"tag {tag} now points at {reference}"
    head = f"{len(updates)} tags now point at new images: "
    named: list[str] = []
    length = len(head)
    for index, (tag, reference) in enumerate(updates):
        part = f"{'; ' if named else ''}{tag} at {reference}"
        rest = len(updates) - index - 1
        if length + len(part) + (len(f"; and {rest} more") if rest else 0) > limit:
            break
        named.append(part)
        length += len(part)
    if not named:
        return head.removesuffix(": ")
    rest = len(updates) - len(named)
    return head + "".join(named) + (f"; and {rest} more" if rest else "")

"""`oc describe` layouts for image streams and their images, computed from the stream alone.

OpenShift serves ImageStreamTag and ImageStreamImage objects from its API server; here
they are views computed from the stream's status (history and `status.images`
metadata). The text follows `oc describe is` / `oc describe istag` line for line,
aligned by Go's tabwriter rules (see `tabwriter`).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from imagestreams.api.imagestream import (
    ImageStream,
    ImageStreamStatus,
    ImageSummary,
    NamedTagEventList,
    ReferencePolicyType,
    SourceKind,
    TagEvent,
    TagReference,
)
from imagestreams.cli.errors import CliError, NotFound
from imagestreams.cli.humanize import ago, human_duration, human_size, parse_time
from imagestreams.cli.tabwriter import tabwrite
from imagestreams.core.references import InvalidReference, parse_reference
from imagestreams.core.tagorder import prioritize_tags

NONE = "<none>"
IMPORT_SUCCESS = "ImportSuccess"
DEFAULT_TAG = "latest"


# --- small accessors -----------------------------------------------------------------------------------------


def spec_tags(stream: ImageStream) -> dict[str, TagReference]:
    return {tag.name: tag for tag in stream.spec.tags or []}


def status_tags(stream: ImageStream) -> dict[str, NamedTagEventList]:
    status = stream.status or ImageStreamStatus()
    return {entry.tag: entry for entry in status.tags or []}


def stream_name(stream: ImageStream) -> str:
    return str(stream.metadata.get("name", ""))


def stream_namespace(stream: ImageStream) -> str:
    return str(stream.metadata.get("namespace", ""))


def split_stream_tag(name_and_tag: str) -> tuple[str, str, bool]:
    """OpenShift's SplitImageStreamTag: (stream, tag defaulting to latest, whether a ':' was present)."""
    name, sep, tag = name_and_tag.partition(":")
    return name, tag or DEFAULT_TAG, bool(sep)


# --- following same-stream references (oc's FollowTagReference) ----------------------------------------------


class ReferenceProblem(Enum):
    INVALID = "invalid"
    CROSS_STREAM = "cross-stream"
    CIRCULAR = "circular"
    NOT_FOUND = "not-found"


@dataclass(frozen=True)
class FollowedTag:
    final: str  # the tag the chain ends at (or where it broke)
    spec: TagReference | None  # that tag's spec, when the chain ends well
    multiple: bool  # True when at least one reference was followed
    problem: ReferenceProblem | None = None


def follow_tag_reference(stream: ImageStream, tag: str) -> FollowedTag:
    """Follow `<tag>` and `<this stream>:<tag>` ImageStreamTag references to the tag that has a real source."""
    tags = spec_tags(stream)
    seen: set[str] = set()
    multiple = False
    while True:
        if tag in seen:
            return FollowedTag(tag, None, multiple, ReferenceProblem.CIRCULAR)
        seen.add(tag)
        spec = tags.get(tag)
        if spec is None:
            return FollowedTag(tag, None, multiple, ReferenceProblem.NOT_FOUND)
        source = spec.from_
        if source is None or source.kind != SourceKind.IMAGE_STREAM_TAG:
            return FollowedTag(tag, spec, multiple)
        if source.namespace and source.namespace != stream_namespace(stream):
            return FollowedTag(tag, None, multiple, ReferenceProblem.CROSS_STREAM)
        target = source.name or ""
        if ":" in target:
            name, next_tag, _ = split_stream_tag(target)
            if name != stream_name(stream):
                return FollowedTag(tag, None, multiple, ReferenceProblem.CROSS_STREAM)
            tag = next_tag
        else:
            tag = target
        multiple = True


# --- the describe building blocks (oc's formatString, formatMapStringString, formatMeta) --------------------


def _string(label: str, value: str | None) -> str:
    lines = (value or NONE).split("\n")
    return f"{label}:" + "".join(f"\t{line}\n" for line in lines)


def _mapping(label: str, items: Mapping[str, str] | None) -> str:
    if not items:
        return _string(label, "")
    keys = sorted(items)
    text = _string(label, f"{keys[0]}={items[keys[0]]}")
    return text + "".join(f"\t{key}={items[key]}\n" for key in keys[1:])


def _annotations(annotations: Mapping[str, str] | None) -> str:
    remaining = dict(annotations or {})
    description = remaining.pop("description", "")
    text = _string("Description", description) if description else ""
    return text + _mapping("Annotations", remaining)


def _meta(metadata: Mapping[str, object], now: datetime.datetime) -> str:
    text = _string("Name", str(metadata.get("name", "")))
    namespace = metadata.get("namespace")
    if namespace:
        text += _string("Namespace", str(namespace))
    created = parse_time(str(metadata.get("creationTimestamp") or ""))
    if created is not None:
        text += f"Created:\t{ago(created, now)}\n"
    labels = metadata.get("labels")
    annotations = metadata.get("annotations")
    text += _mapping("Labels", labels if isinstance(labels, Mapping) else None)
    return text + _annotations(annotations if isinstance(annotations, Mapping) else None)


# --- describe is -----------------------------------------------------------------------------------------------


def observed_generation(entry: NamedTagEventList | None) -> int:
    """oc's latestObservedTagGeneration: the newest of the first item's and the ImportSuccess condition's."""
    if entry is None:
        return 0
    generation = entry.items[0].generation if entry.items else 0
    for condition in entry.conditions or []:
        if condition.type == IMPORT_SUCCESS:
            generation = max(generation, condition.generation)
            break
    return generation


def tag_pending(
    stream: ImageStream, spec: TagReference, entry: NamedTagEventList | None, *, request_pending: bool
) -> bool:
    """Whether the operator has yet to act on this tag's current spec (oc's "~ importing latest image ...").

    OpenShift compares spec tag generations; on a CRD the operator records the source it last
    saw in `status.tags[].source`, so a tag is pending while that record differs from the spec,
    while its recorded generation is newer than anything observed, or (for imported tags) while
    an import request annotation has not been acted on.
    """
    from imagestreams.core.tags import SourceType, classify_source, source_fingerprint  # noqa: PLC0415

    if spec.from_ is None or spec.reference:
        return False
    kind = classify_source(stream_namespace(stream), stream_name(stream), spec).type
    if kind is SourceType.INVALID:
        return False
    if request_pending and kind is SourceType.IMPORT:
        return True
    source = entry.source if entry else None
    if source is None or source.source_fingerprint != source_fingerprint(spec):
        return True
    return source.spec_generation > observed_generation(entry)


def _unique_images(status_entries: Iterable[NamedTagEventList]) -> int:
    # oc counts images by digest, and (through a slip in its code) all reference-only entries as one.
    images: dict[str, str] = {}
    for entry in status_entries:
        for item in entry.items or []:
            if item.image:
                images.setdefault(item.image, entry.tag)
            elif item.docker_image_reference and item.docker_image_reference not in images:
                images[""] = item.docker_image_reference
    return len(images)


def _source_line(spec: TagReference | None, display_name: str) -> str:  # noqa: PLR0911 - oc's switch, line for line
    if spec is None:
        return "  no spec tag\n"
    source = spec.from_
    if source is None:
        return "  tag without source image\n"
    scheduled = bool(spec.import_policy and spec.import_policy.scheduled)
    if source.kind == SourceKind.IMAGE_STREAM_TAG:
        if spec.reference:
            return f"  reference to {display_name}\n"
        if scheduled:
            return f"  updates automatically from {display_name}\n"
        return f"  tagged from {display_name}\n"
    if source.kind == SourceKind.DOCKER_IMAGE:
        if spec.reference:
            return f"  reference to registry {display_name}\n"
        if scheduled:
            return f"  updates automatically from registry {display_name}\n"
        return f"  tagged from {display_name}\n"
    if source.kind == SourceKind.IMAGE_STREAM_IMAGE:
        if spec.reference:
            return f"  reference to image {display_name}\n"
        return f"  tagged from {display_name}\n"
    if spec.reference:
        return f"  reference to {source.kind} {display_name}\n"
    return f"  updates from {source.kind} {display_name}\n"


def _item_lines(items: Sequence[TagEvent], now: datetime.datetime) -> str:
    text = ""
    for index, item in enumerate(items):
        marker = "  * " if index == 0 else "    "
        text += f"{marker}{item.docker_image_reference}\n"
        when = human_duration((now - (parse_time(item.created) or now)).total_seconds())
        try:
            digest = parse_reference(item.docker_image_reference).digest
        except InvalidReference:
            digest = item.image  # oc prints no ID when the pull spec does not parse
        if item.image and digest != item.image:
            text += f"      {when} ago\t{item.image}\n"
        else:
            text += f"      {when} ago\n"
    return text


def _tag_block(
    stream: ImageStream,
    tag: str,
    references: Sequence[str],
    now: datetime.datetime,
    *,
    request_pending: bool,
) -> str:
    spec = spec_tags(stream).get(tag)
    entry = status_tags(stream).get(tag)
    text = f"{tag} ({', '.join(prioritize_tags(references))})\n" if references else f"{tag}\n"
    display_name = ""
    importing = False
    if spec is not None and spec.from_ is not None:
        source = spec.from_
        namespace = source.namespace
        display_name = (
            f"{namespace}/{source.name}" if namespace and namespace != stream_namespace(stream) else source.name or ""
        )
        importing = tag_pending(stream, spec, entry, request_pending=request_pending)
    text += _source_line(spec, display_name)
    if spec is not None and spec.import_policy and spec.import_policy.insecure:
        text += "    will use insecure HTTPS or HTTP connections\n"
    if spec is not None and spec.reference_policy and spec.reference_policy.type == ReferencePolicyType.LOCAL:
        text += "    prefer registry pullthrough when referencing this tag\n"
    text += "\n"

    annotations = (spec.annotations if spec else None) or {}
    extra = ""
    if annotations.get("description"):
        extra += f"  {annotations['description']}\n"
    if annotations.get("tags"):
        extra += f"  Tags: {', '.join(annotations['tags'].split(','))}\n"
    if annotations.get("supports"):
        extra += f"  Supports: {', '.join(annotations['supports'].split(','))}\n"
    if annotations.get("sampleRepo"):
        extra += f"  Example Repo: {annotations['sampleRepo']}\n"
    if extra:
        text += extra + "\n"

    if importing:
        text += "  ~ importing latest image ...\n"
    for condition in (entry.conditions if entry else None) or []:
        if condition.type == IMPORT_SUCCESS and condition.status == "False":
            when = human_duration((now - (parse_time(condition.last_transition_time) or now)).total_seconds())
            text += f"  ! error: Import failed ({condition.reason or ''}): {condition.message or ''}\n"
            text += f"      {when} ago\n"
    return text + _item_lines((entry.items if entry else None) or [], now)


def _tags_section(stream: ImageStream, now: datetime.datetime, *, request_pending: bool) -> str:
    status = stream.status or ImageStreamStatus()
    status_entries = status.tags or []
    specs = stream.spec.tags or []
    if not status_entries and not specs:
        return "Tags:\t<none>\n"
    in_status = {entry.tag for entry in status_entries}
    sorted_tags = [entry.tag for entry in status_entries] + [spec.name for spec in specs if spec.name not in in_status]
    local_references: set[str] = set()
    referential: dict[str, list[str]] = {}
    for spec in specs:
        followed = follow_tag_reference(stream, spec.name)
        if followed.problem is None and followed.multiple:
            local_references.add(spec.name)
            referential.setdefault(followed.final, []).append(spec.name)
    text = f"Unique Images:\t{_unique_images(status_entries)}\nTags:\t{len(sorted_tags)}\n\n"
    blocks = [
        _tag_block(stream, tag, sorted(set(referential.get(tag, []))), now, request_pending=request_pending)
        for tag in prioritize_tags(sorted_tags)
        if tag not in local_references
    ]
    return text + "\n".join(blocks)


def describe_stream(stream: ImageStream, now: datetime.datetime, *, request_pending: bool = False) -> str:
    """`oc describe is` for one stream. `request_pending`: an import request is not yet acted on."""
    status = stream.status or ImageStreamStatus()
    text = _meta(stream.metadata, now)
    text += _string("Image Repository", status.public_docker_image_repository or status.docker_image_repository)
    local = bool(stream.spec.lookup_policy and stream.spec.lookup_policy.local)
    text += _string("Image Lookup", f"local={'true' if local else 'false'}")
    text += _tags_section(stream, now, request_pending=request_pending)
    return tabwrite(text)


# --- describe istag / isimage ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageView:
    """What `oc describe` shows of an Image, computed from one stream."""

    digest: str
    docker_image: str
    image_name: str = ""  # the "Image Name" line, shown when set
    created: datetime.datetime | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    summary: ImageSummary | None = None


def _image_summary(stream: ImageStream, digest: str) -> ImageSummary | None:
    status = stream.status or ImageStreamStatus()
    return next((summary for summary in status.images or [] if summary.image == digest), None)


def _platform(os: str | None, architecture: str | None, variant: str | None) -> str:
    parts = [part for part in (os, architecture, variant) if part]
    return "/".join(parts) or NONE


def describe_image(view: ImageView, now: datetime.datetime) -> str:
    """`oc describe istag` / `isimage` (DescribeImage), with what the operator recorded about the image."""
    text = _string("Image Name", view.image_name) if view.image_name else ""
    text += _string("Docker Image", view.docker_image)
    text += _string("Name", view.digest)
    if view.created is not None:
        text += f"Created:\t{ago(view.created, now)}\n"
    if view.annotations:
        text += _annotations(view.annotations)
    summary = view.summary or ImageSummary(image=view.digest)
    if summary.manifests:
        rows = [f"{_platform(m.os, m.architecture, m.variant)}\t{m.digest}" for m in summary.manifests]
        text += f"Manifests:\t{rows[0]}\n" + "".join(f"\t{row}\n" for row in rows[1:])
    elif summary.layer_count:
        text += _string("Image Size", f"{human_size(summary.size or 0)} in {summary.layer_count} layers")
    else:
        text += _string("Layer Size", human_size(summary.size or 0))
    text += _string("Image Created", ago(parse_time(summary.created), now))
    text += _string("Author", "")
    text += _string("Arch", summary.architecture)
    has_command = False
    if summary.entrypoint:
        has_command = True
        text += _string("Entrypoint", " ".join(summary.entrypoint))
    if summary.cmd:
        has_command = True
        text += _string("Command", " ".join(summary.cmd))
    if not has_command:
        text += _string("Command", "")
    text += _string("Working Dir", summary.working_dir)
    text += _string("User", summary.user)
    text += _string("Exposes Ports", ", ".join(sorted(set(summary.exposed_ports or []))))
    text += _mapping("Docker Labels", summary.labels)
    return tabwrite(text)


def stream_not_found(stream: str) -> NotFound:
    return NotFound(f'imagestreams.image.openshift.io "{stream}" not found')


def istag_not_found(stream: str, tag: str) -> NotFound:
    return NotFound(f'imagestreamtags.image.openshift.io "{stream}:{tag}" not found')


def istag_view(stream: ImageStream, tag: str) -> ImageView:
    """The image a tag points at now, as OpenShift's ImageStreamTag shows it (reference policy applied)."""
    from imagestreams.core.triggers import stream_tag_image  # noqa: PLC0415

    entry = status_tags(stream).get(tag)
    if entry is None or not entry.items or not entry.items[0].image:
        # OpenShift answers NotFound too when the tag has no image yet (or only a reference).
        raise istag_not_found(stream_name(stream), tag)
    current = entry.items[0]
    spec = spec_tags(stream).get(tag)
    return ImageView(
        digest=current.image,
        docker_image=stream_tag_image(stream, tag) or current.docker_image_reference,
        image_name=current.image,
        created=parse_time(current.created),
        annotations=dict((spec.annotations if spec else None) or {}),
        summary=_image_summary(stream, current.image),
    )


def find_image(stream: ImageStream, wanted: str) -> tuple[str, list[tuple[str, int, TagEvent]]]:
    """The digest in the stream's history that `wanted` (a digest or a unique prefix) names, with its entries.

    Entries are (tag, position in that tag's history, entry), newest first per tag.
    """
    name = stream_name(stream)
    candidates = (wanted, f"sha256:{wanted}") if ":" not in wanted else (wanted,)
    found: dict[str, list[tuple[str, int, TagEvent]]] = {}
    for entry in (stream.status or ImageStreamStatus()).tags or []:
        for position, item in enumerate(entry.items or []):
            if item.image and any(item.image.startswith(candidate) for candidate in candidates):
                found.setdefault(item.image, []).append((entry.tag, position, item))
    if not found or not wanted:
        raise NotFound(f'imagestreamimages.image.openshift.io "{name}@{wanted}" not found')
    if len(found) > 1:
        raise CliError(
            f'"{wanted}" matches {len(found)} images of image stream "{name}": '
            f"{', '.join(sorted(found))}; give more of the digest"
        )
    [(digest, entries)] = found.items()
    return digest, entries


def isimage_view(stream: ImageStream, wanted: str) -> ImageView:
    """An image of the stream's history by digest or unique digest prefix, as OpenShift's ImageStreamImage."""
    digest, entries = find_image(stream, wanted)
    newest = min(entries, key=lambda found: found[1])[2]
    times = [time for time in (parse_time(item.created) for _, _, item in entries) if time is not None]
    return ImageView(
        digest=digest,
        docker_image=newest.docker_image_reference,
        image_name=digest,
        created=min(times) if times else None,
        summary=_image_summary(stream, digest),
    )

"""`oc tag` rules: argument parsing, source-kind inference, validation, the spec tag written and the messages.

Messages are OpenShift's where `oc tag` has one. Everything here is pure; the command
reads the source stream (to resolve an ImageStreamTag to the image it points at) and
writes the destination streams.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from imagestreams.api.imagestream import STREAM_NAME_PATTERN
from imagestreams.cli.errors import CliError, UsageError
from imagestreams.core.references import InvalidReference, is_digest, parse_reference

DOCKER_IMAGE = "DockerImage"
IMAGE_STREAM_TAG = "ImageStreamTag"
IMAGE_STREAM_IMAGE = "ImageStreamImage"
# --source values `oc tag` accepts (lowercased), and the kinds they mean.
SOURCE_KINDS = {
    "docker": DOCKER_IMAGE,
    "dockerimage": DOCKER_IMAGE,
    "imagestreamimage": IMAGE_STREAM_IMAGE,
    "imagestreamimages": IMAGE_STREAM_IMAGE,
    "isimage": IMAGE_STREAM_IMAGE,
    "imagestreamtag": IMAGE_STREAM_TAG,
    "imagestreamtags": IMAGE_STREAM_TAG,
    "istag": IMAGE_STREAM_TAG,
}
VALID_SOURCES = "docker, dockerimage, imagestreamimage, imagestreamtag, isimage, istag"
REFERENCE_POLICIES = {"source": "Source", "local": "Local"}
IMPORT_MODES = ("Legacy", "PreserveOriginal")
DOCKER_DEFAULT_NAMESPACE = "library"
ROLLED_BACK_ANNOTATION = "imagestreams.dev/rolled-back-from"

_STREAM_NAME = re.compile(STREAM_NAME_PATTERN)
# The tag grammar of `oc tag` and the distribution reference grammar: ASCII word characters, '.' and '-'.
_TAG_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class ImageRef:
    """OpenShift's DockerImageReference: `[registry/][namespace/]name[:tag][@id]`."""

    registry: str = ""
    namespace: str = ""
    name: str = ""
    tag: str = ""
    id: str = ""

    def name_string(self) -> str:
        """The name with its tag and/or ID (`app:v1`, `app@sha256:…`)."""
        if not self.name:
            return ""
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.id:
            text += f"@{self.id}" if is_digest(self.id) else f":{self.id}"
        return text

    def exact(self) -> str:
        """Every part that is set, as `oc` prints a reference."""
        name = self.name_string()
        if not name:
            return ""
        prefix = f"{self.registry}/" if self.registry else ""
        if self.namespace:
            prefix += f"{self.namespace}/"
        return prefix + name


def parse_image_ref(text: str) -> ImageRef:
    """Split a pull spec into the parts of OpenShift's DockerImageReference (registry, namespace, name, tag, ID), by
    the grammar of core.references (which, unlike library-go's reference.Parse, also accepts IPv6 registry hosts);
    raises InvalidReference."""
    parsed = parse_reference(text)
    namespace, slash, name = parsed.repository.partition("/")
    if not slash:
        namespace, name = "", parsed.repository
    return ImageRef(parsed.registry, namespace, name, parsed.tag or "", parsed.digest or "")


@dataclass(frozen=True)
class TagOptions:
    source: str = ""  # --source as given
    alias: bool = False
    reference: bool = False
    scheduled: bool = False
    insecure: bool = False
    reference_policy: str = "source"
    import_mode: str | None = None
    delete: bool = False


@dataclass(frozen=True)
class Destination:
    namespace: str
    stream: str
    tag: str
    text: str  # "<stream>:<tag>" as given, without the namespace

    def display(self, current_namespace: str) -> str:
        return self.text if self.namespace == current_namespace else f"{self.namespace}/{self.text}"


@dataclass(frozen=True)
class Source:
    kind: str  # DockerImage, ImageStreamTag or ImageStreamImage
    ref: ImageRef
    text: str  # SOURCE as given


@dataclass(frozen=True)
class TagPlan:
    source: Source | None  # None when deleting
    destinations: tuple[Destination, ...]


def _usage(message: str) -> UsageError:
    return UsageError(message, "tag")


def parse_destination(text: str, namespace: str) -> Destination:
    """`[namespace/]stream:tag` (oc's parseStreamName, then SplitImageStreamTag)."""
    if "/" in text:
        parts = text.split("/")
        if len(parts) != 2:
            raise CliError(f"invalid image stream {json.dumps(text)}")
        namespace, name_and_tag = parts
        if not namespace:
            raise CliError(f"invalid namespace {json.dumps(namespace)} for image stream {json.dumps(text)}")
        if not name_and_tag:
            raise CliError(f"invalid name {json.dumps(name_and_tag)} for image stream {json.dumps(text)}")
    else:
        name_and_tag = text
    stream, sep, tag = name_and_tag.partition(":")
    if not sep:
        raise CliError(f"{json.dumps(name_and_tag)} must be of the form <stream_name>:<tag>")
    tag = tag or "latest"
    if not _STREAM_NAME.fullmatch(stream):
        raise CliError(
            f"invalid image stream name {json.dumps(stream)}: it must consist of lowercase letters and digits, "
            "separated by single '.', '_' or '-'"
        )
    if not _TAG_NAME.fullmatch(tag):
        raise CliError(
            f"invalid tag {json.dumps(tag)}: a tag is 1 to 128 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )
    return Destination(namespace, stream, tag, name_and_tag)


def source_kind_for(flag: str) -> str:
    """The kind a --source value names; raises the `oc tag` usage error for anything else."""
    kind = SOURCE_KINDS.get(flag.lower())
    if kind is None:
        raise _usage(f"invalid source {json.dumps(flag)}; valid values are {VALID_SOURCES}")
    return kind


def infer_source(text: str, flag: str, namespace: str) -> Source:
    """Parse SOURCE and decide its kind: --source when given, else oc's inference.

    A registry means a container image; `@digest` an image of a stream; `:tag` a stream tag;
    anything else a container image (so `nginx` is Docker Hub's nginx, but `nginx:1.25` is
    the tag 1.25 of the image stream nginx; pass --source=docker for Docker Hub's).
    """
    kind = source_kind_for(flag) if flag else ""
    try:
        ref = parse_image_ref(text)
    except InvalidReference as error:
        raise CliError(f"invalid SOURCE: {error}") from None
    if kind in (IMAGE_STREAM_TAG, IMAGE_STREAM_IMAGE):
        if ref.registry:
            raise CliError("server in SOURCE is only allowed when providing a container image")
        if ref.namespace == DOCKER_DEFAULT_NAMESPACE:
            ref = replace(ref, namespace=namespace)
        if kind == IMAGE_STREAM_TAG and not ref.tag:
            raise CliError("--source=ImageStreamTag requires a valid <name>:<tag> in SOURCE")
        if kind == IMAGE_STREAM_IMAGE and not ref.id:
            raise CliError("--source=ImageStreamImage requires a valid <name>@<id> in SOURCE")
    elif not kind:
        if ref.registry:
            kind = DOCKER_IMAGE
        elif ref.id:
            kind = IMAGE_STREAM_IMAGE
        elif ref.tag:
            kind = IMAGE_STREAM_TAG
        else:
            kind = DOCKER_IMAGE
    return Source(kind, ref, text)


def _cross_stream(source: Source, destinations: Sequence[Destination], namespace: str) -> bool:
    source_namespace = source.ref.namespace or namespace
    return any(dest.namespace != source_namespace or dest.stream != source.ref.name for dest in destinations)


def plan_tag(args: Sequence[str], options: TagOptions, namespace: str) -> TagPlan:
    """Check the arguments and flags of `tag` as `oc tag` does, before anything is read or written."""
    if not args:
        raise _usage("you must specify a source and at least one destination or one or more tags to delete")
    # First what oc's Complete checks (the source, the destinations), then what its Validate checks.
    source: Source | None = None
    destination_args = list(args)
    if not options.delete:
        source = infer_source(args[0], options.source, namespace)
        destination_args = list(args[1:])
    destinations = tuple(parse_destination(arg, namespace) for arg in destination_args)
    _validate(options, source, destinations, namespace)
    return TagPlan(source, destinations)


def _validate(options: TagOptions, source: Source | None, destinations: Sequence[Destination], namespace: str) -> None:
    """oc's Validate, in its order."""
    if options.delete and options.alias:
        raise CliError("--alias and --delete may not be both specified")
    if options.reference_policy not in REFERENCE_POLICIES:
        raise CliError("reference policy must be set to 'source' or 'local'")
    if options.import_mode is not None and options.import_mode not in IMPORT_MODES:
        raise CliError("valid ImportMode values are Legacy or PreserveOriginal")
    if options.delete:
        if options.source:
            raise CliError("cannot specify a source kind when deleting")
        if options.scheduled or options.insecure:
            raise CliError("cannot set flags for importing images when deleting a tag")
    if not destinations:
        raise CliError("at least a destination is required")
    if source is None:
        return
    if source.kind != DOCKER_IMAGE and (options.scheduled or options.insecure):
        raise CliError("only container images can have importing flags set")
    if options.alias:
        if options.scheduled or options.insecure:
            raise CliError("cannot set a container image tag as an alias and also set import flags")
        if _cross_stream(source, destinations, namespace):
            raise CliError("cannot set alias across different Image Streams")


def needs_resolution(source: Source, options: TagOptions) -> bool:
    """A stream tag source is copied as the image it points at now, unless --alias asks to follow it."""
    return source.kind == IMAGE_STREAM_TAG and not options.alias


def newest_item(body: Mapping[str, Any], tag: str) -> Mapping[str, Any] | None:
    """The first history entry of a tag in a stream's status, None when the tag has none."""
    entries = [entry for entry in (body.get("status") or {}).get("tags") or [] if entry.get("tag") == tag]
    newest: Mapping[str, Any] | None = ((entries[0].get("items") or [None])[0]) if entries else None
    return newest


def resolve_stream_tag(source: Source, newest: Mapping[str, Any] | None) -> Source:
    """Turn an ImageStreamTag source into what it points at: `<stream>@<digest>`, or a pull spec without digest.

    `newest` is the first history entry of the source tag (None when the tag has no image).
    """
    if not newest:
        raise CliError(
            f"{json.dumps(source.text)} is not currently pointing to an image, cannot use it as the source of a tag"
        )
    image = str(newest.get("image") or "")
    if not image:
        pull_spec = str(newest.get("dockerImageReference") or "")
        try:
            return Source(DOCKER_IMAGE, parse_image_ref(pull_spec), source.text)
        except InvalidReference as error:
            raise CliError(
                f"the image stream tag {json.dumps(source.text)} has an invalid pull spec and cannot be used "
                f"to tag: {error}"
            ) from None
    return Source(IMAGE_STREAM_IMAGE, replace(source.ref, id=image, tag=""), source.text)


def spec_tag(
    destination: Destination,
    source: Source,
    options: TagOptions,
    namespace: str,
    existing: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The spec tag `oc tag` writes, keeping the existing tag's annotations and generation.

    The tag is replaced as a whole (as OpenShift's ImageStreamTag update does), so flags
    left out are turned off: re-running without --scheduled stops scheduled imports.
    A rollback marker is dropped: tagging again means following the new source.
    """
    tag: dict[str, Any] = {"name": destination.tag}
    annotations = {
        key: value
        for key, value in ((existing or {}).get("annotations") or {}).items()
        if key != ROLLED_BACK_ANNOTATION
    }
    if annotations:
        tag["annotations"] = annotations
    source_ref: dict[str, Any] = {"kind": source.kind}
    if source.kind == DOCKER_IMAGE:
        source_ref["name"] = source.ref.exact()
    else:
        source_ref["name"] = source.ref.name_string()
        source_namespace = source.ref.namespace
        if not source_namespace and destination.namespace != namespace:
            source_namespace = namespace
        if source_namespace:
            source_ref["namespace"] = source_namespace
    tag["from"] = source_ref
    if options.reference:
        tag["reference"] = True
    if existing and existing.get("generation") is not None:
        tag["generation"] = existing["generation"]
    policy = import_policy({}, insecure=options.insecure, scheduled=options.scheduled, mode=options.import_mode)
    if policy:
        tag["importPolicy"] = policy
    tag["referencePolicy"] = {"type": REFERENCE_POLICIES[options.reference_policy]}
    return tag


def import_policy(base: Mapping[str, Any], *, insecure: bool, scheduled: bool, mode: str | None) -> dict[str, Any]:
    """`base` (a tag's importPolicy) with the --insecure, --scheduled and --import-mode flags applied."""
    policy = dict(base)
    if insecure:
        policy["insecure"] = True
    if scheduled:
        policy["scheduled"] = True
    if mode:
        policy["importMode"] = mode
    return policy


def tag_message(destination: Destination, source: Source, options: TagOptions, namespace: str) -> str:
    """What `oc tag` prints for one destination."""
    same_namespace = destination.namespace == namespace
    where = destination.display(namespace)
    shown = source.ref.exact()
    if options.alias:
        return f"Tag {where} set up to track {shown}."
    if options.scheduled:
        if same_namespace:
            return f"Tag {where} set to import {shown} periodically."
        return f"Tag {where} set to {shown} periodically."
    return f"Tag {where} set to {shown}."


def delete_message(destination: Destination) -> str:
    return f"Deleted tag {destination.namespace}/{destination.text}."


def with_tag(tags: Sequence[Mapping[str, Any]], tag: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The spec tags with `tag` replacing the one of the same name, or appended."""
    result = [dict(existing) for existing in tags]
    for index, existing in enumerate(result):
        if existing.get("name") == tag["name"]:
            result[index] = dict(tag)
            return result
    return [*result, dict(tag)]


def without_tag(tags: Sequence[Mapping[str, Any]], name: str, key: str = "name") -> list[dict[str, Any]] | None:
    """The spec tags (or, with key="tag", status tags) without `name`, or None when there is no such tag."""
    kept = [dict(tag) for tag in tags if tag.get(key) != name]
    return kept if len(kept) != len(tags) else None


def source_unchanged(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether the fields that define where a tag's image comes from are the same in both spec tags.

    When they are, the operator sees no reason to import again, so the CLI asks for an import
    explicitly (OpenShift's `oc tag` always re-imports a container image source).
    """
    if old is None:
        return False
    from imagestreams.api.imagestream import TagReference  # noqa: PLC0415
    from imagestreams.core.tags import source_fingerprint  # noqa: PLC0415

    return source_fingerprint(TagReference.model_validate(old)) == source_fingerprint(TagReference.model_validate(new))

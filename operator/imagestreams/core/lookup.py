"""Image lookup at admission: which container images of a pod or workload become an image stream's image.

OpenShift's `image.openshift.io/ImagePolicy` admission plugin with its default configuration (apiserver-library-go
pkg/admission/imagepolicy, `SetDefaults_ImagePolicyConfig`: every resolution rule `localNames: true`, policy
`Attempt`): every container image of a covered object is looked up, a failed lookup never refuses the request, and
an image is rewritten only when it is a *local name*:

- a single-segment name without registry (`app`, `app:v2`) whose stream in the object's namespace has
  `spec.lookupPolicy.local: true`, or
- any name without a digest, when the object or its pod template has `alpha.image.policy.openshift.io/resolve-names:
  "*"`: its registry and namespace are then discarded (`quay.io/org/app:v1` is looked up as `<namespace>/app:v1`).

It becomes the tag's current image by digest (`<repository>@sha256:...`), or, for a tag without an image on a stream
with a `status.dockerImageRepository`, `<status.dockerImageRepository>:<tag>`. Anything else is left as written.

Pure: the caller passes a function that reads a stream of the object's namespace by name. Nothing here reads another
namespace: every lookup uses the object's own namespace, as OpenShift's does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from imagestreams.api.imagestream import STREAM_NAME_PATTERN, ImageStream, TagEvent
from imagestreams.api.webhooks import LOOKUP_RESOURCES
from imagestreams.core.references import DEFAULT_TAG, InvalidReference, parse_reference
from imagestreams.core.triggers import stream_tag_image
from imagestreams.core.workloadkinds import WORKLOAD_TYPES

RESOLVE_NAMES_ANNOTATION = "alpha.image.policy.openshift.io/resolve-names"
# ResolveAllNames (imagereferencemutators/meta.go): exactly "*"; any other value is ignored.
RESOLVE_ALL_NAMES = "*"
CONTAINERS = "containers"
INIT_CONTAINERS = "initContainers"
# Mutate (imagereferencemutators/pods.go) walks init containers first; ephemeral containers never.
CONTAINER_LISTS = (INIT_CONTAINERS, CONTAINERS)

_STREAM_NAME = re.compile(STREAM_NAME_PATTERN)
_TEMPLATE_POD_SPEC = ("spec", "template", "spec")


def _pod_spec_path(group: str, resource: str) -> tuple[str, ...]:
    for workload in WORKLOAD_TYPES.values():
        if (workload.group, workload.plural) == (group, resource):
            return workload.pod_spec_path
    return ("spec",) if (group, resource) == ("", "pods") else _TEMPLATE_POD_SPEC


# Where each covered resource keeps its pod spec (GetPodSpecV1 in imagereferencemutators/pods.go).
POD_SPEC_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    (group, resource): _pod_spec_path(group, resource)
    for group, resources in LOOKUP_RESOURCES.items()
    for resource in resources
}
# skipImageRewriteOnUpdate (imagepolicy.go): a Job's pod template cannot change after creation.
NOT_REWRITTEN_ON_UPDATE = frozenset({("batch", "jobs")})


class LookupResult(StrEnum):
    RESOLVED = "resolved"  # rewritten to (or already) the stream's image
    LEFT = "left"  # used as written: not a local name, no such stream or tag, no local lookup...
    FAILED = "failed"  # used as written because the stream could not be read


class StreamUnreadable(Exception):
    """Raised by a stream reader when the stream may exist but could not be read (an API error, a timeout)."""


# Reads a stream of the object's namespace by name: its body, or None when there is no such stream.
StreamReader = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class DockerImageReference:
    """library-go's DockerImageReference: the parts its reference.Parse gives."""

    registry: str = ""
    namespace: str = ""
    name: str = ""
    tag: str = ""
    id: str = ""

    def exact(self) -> str:
        """DockerImageReference.Exact: the digest wins over the tag; nothing at all without a name."""
        if not self.name:
            return ""
        text = "".join(f"{part}/" for part in (self.registry, self.namespace) if part) + self.name
        if self.id:
            return f"{text}@{self.id}"
        return f"{text}:{self.tag}" if self.tag else text


def split_reference(text: str) -> DockerImageReference:
    """library-go reference.Parse: the grammar of core.references, then library-go's split of the name.

    The first path component is the registry only if it contains "." or ":" or is "localhost" (distribution also
    takes one with upper case letters: library-go does not). A name of one component that contains "." or starts with
    "localhost" is all registry and has no name (`my.app:v1`, `localhost:5000`). Of the rest, the first component is
    the namespace and the remainder the name (`quay.io/a/b/c`: namespace `a`, name `b/c`). Raises InvalidReference.
    """
    parsed = parse_reference(text)
    if parsed.registry.startswith("["):
        # library-go's grammar predates IPv6 hosts: reference.Parse refuses them.
        raise InvalidReference(text, "an IPv6 registry host is not a reference library-go parses")
    name = parsed.repository_spelling
    first, slash, rest = name.partition("/")
    if not slash:
        if "." in name or name.startswith("localhost"):
            registry_only = (
                name + (f":{parsed.tag}" if parsed.tag else "") + (f"@{parsed.digest}" if parsed.digest else "")
            )
            return DockerImageReference(registry=registry_only, id=parsed.digest or "")
        registry, path = "", name
    elif "." in first or ":" in first or first == "localhost":
        registry, path = first, rest
    else:
        registry, path = "", name
    namespace, slash, short = path.partition("/")
    if not slash:
        namespace, short = "", path
    return DockerImageReference(registry, namespace, short, parsed.tag or "", parsed.digest or "")


@dataclass(frozen=True)
class ContainerLookup:
    """What happened to one container's image."""

    container_list: str  # "initContainers" or "containers"
    index: int
    name: str
    image: str  # as written
    result: LookupResult
    reason: str
    resolved: str = ""  # with RESOLVED: the image it becomes
    path: tuple[str | int, ...] = ()  # the image field's place in the object

    @property
    def rewrite(self) -> bool:
        """Whether the object must change (a resolved image can already be what it resolves to)."""
        return self.result is LookupResult.RESOLVED and self.resolved != self.image


@dataclass(frozen=True)
class LookupDecision:
    containers: tuple[ContainerLookup, ...] = ()  # the containers examined, in OpenShift's order
    skipped: str = ""  # why the object was not examined at all

    @property
    def rewrites(self) -> tuple[ContainerLookup, ...]:
        return tuple(container for container in self.containers if container.rewrite)


def _at(body: Any, path: Sequence[str]) -> Any:
    node = body
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _containers(pod_spec: Mapping[str, Any], list_name: str) -> list[Mapping[str, Any]]:
    items = pod_spec.get(list_name)
    if not isinstance(items, list):
        return []
    return [item if isinstance(item, Mapping) else {} for item in items]


def _controlled(obj: Mapping[str, Any]) -> bool:
    """An ownerReference with `controller: true` (admit in imagepolicy.go)."""
    owners = _at(obj, ("metadata", "ownerReferences"))
    return isinstance(owners, list) and any(
        isinstance(owner, Mapping) and owner.get("controller") is True for owner in owners
    )


def resolves_all_names(obj: Mapping[str, Any], pod_spec_path: Sequence[str]) -> bool:
    """ResolveAllNames (imagereferencemutators/meta.go): the annotation is "*" on the pod template or on the object.
    A Pod has no template: only its own annotations count."""
    places: list[tuple[str, ...]] = [("metadata", "annotations")]
    if len(pod_spec_path) > 1:
        places.insert(0, (*pod_spec_path[:-1], "metadata", "annotations"))
    for place in places:
        annotations = _at(obj, place)
        if isinstance(annotations, Mapping) and annotations.get(RESOLVE_NAMES_ANNOTATION) == RESOLVE_ALL_NAMES:
            return True
    return False


def _same_image_before(old_pod_spec: Mapping[str, Any] | None, name: Any, image: Any) -> bool:
    """hasIdenticalPodSpecV1Image (pods.go): the first container of that name, init containers searched first, had
    the same image string."""
    if old_pod_spec is None:
        return False
    for list_name in CONTAINER_LISTS:
        for container in _containers(old_pod_spec, list_name):
            if container.get("name") == name:
                return bool(container.get("image") == image)
    return False


class _Streams:
    """Each stream read at most once per decision, whether it was found, missing or unreadable."""

    def __init__(self, read: StreamReader) -> None:
        self._read = read
        self._seen: dict[str, ImageStream | str | None] = {}

    def get(self, name: str) -> ImageStream | str | None:
        """The stream, None when there is none, or why it could not be read."""
        if name not in self._seen:
            try:
                body = self._read(name)
                self._seen[name] = None if body is None else ImageStream.model_validate(dict(body))
            except StreamUnreadable as error:
                self._seen[name] = str(error) or "the API server did not answer"
            except ValidationError as error:
                self._seen[name] = f"it is not an image stream this operator reads: {error.error_count()} problems"
        return self._seen[name]


def _current_event(stream: ImageStream, tag: str) -> TagEvent | None:
    """LatestTaggedImage (openshift-apiserver internal/imageutil/helpers.go): the tag's first history entry."""
    for named in (stream.status.tags if stream.status else None) or ():
        if named.tag == tag:
            return named.items[0] if named.items else None
    return None


@dataclass(frozen=True)
class _Outcome:
    result: LookupResult
    reason: str
    resolved: str = ""


def _left(reason: str) -> _Outcome:
    return _Outcome(LookupResult.LEFT, reason)


def _stream_tag(image: str, resolve_all: bool) -> tuple[str, str] | _Outcome:
    """resolveImageReference (imagepolicy.go): the (stream, tag) a local name is looked up as, or why there is none."""
    try:
        reference = split_reference(image)
    except InvalidReference as error:
        return _left(str(error))
    if reference.id:
        # Looked up as an Image by digest, never as a stream tag: no rewrite.
        return _left("a digest reference is used as written")
    short = not reference.registry and not reference.namespace and bool(reference.name)
    if not (short or resolve_all):
        return _left(f'not a short name (it names a registry or namespace), and {RESOLVE_NAMES_ANNOTATION} is not "*"')
    if not _STREAM_NAME.fullmatch(reference.name):
        # OpenShift asks for the ImageStreamTag anyway and is told it does not exist.
        return _left(f"no image stream can be named {reference.name!r}")
    return reference.name, reference.tag or DEFAULT_TAG


def _tag_without_image(stream: ImageStream, name: str, tag: str) -> _Outcome:
    """The ImageStreamTag does not exist (isImageStreamTagNotFound in imagepolicy.go): a stream with a repository
    of its own points at that repository's tag, as OpenShift points at its integrated registry."""
    repository = (stream.status.docker_image_repository if stream.status else None) or ""
    if not repository:
        return _left(f"the tag {name}:{tag} has no image, and the stream has no status.dockerImageRepository")
    try:
        parts = split_reference(repository)
    except InvalidReference as error:
        return _left(f"the tag {name}:{tag} has no image, and {error}")
    pull_spec = DockerImageReference(parts.registry, parts.namespace, parts.name, tag).exact()
    if not pull_spec:
        return _left(f"the tag {name}:{tag} has no image, and {repository} names no repository")
    return _Outcome(LookupResult.RESOLVED, f"the tag {name}:{tag} has no image: its stream's repository", pull_spec)


def _tag_image(stream: ImageStream, name: str, tag: str, image: str) -> _Outcome:
    """resolveImageStreamTag (imagepolicy.go): ResolveReferenceForTagEvent gives the tag's pull spec (its reference
    policy applied), whose tag is then dropped for the image's digest."""
    source = stream_tag_image(stream, tag) or ""
    try:
        parts = split_reference(source)
    except InvalidReference as error:
        return _left(f"the tag {name}:{tag} points at a pull spec that does not parse: {error}")
    pull_spec = DockerImageReference(parts.registry, parts.namespace, parts.name, "", image).exact()
    if not pull_spec:
        return _left(f"the tag {name}:{tag} points at {source}, which names no repository")
    return _Outcome(LookupResult.RESOLVED, f"the image of {name}:{tag}", pull_spec)


def resolve_image(image: str, namespace: str, resolve_all: bool, streams: _Streams) -> _Outcome:
    """One image, as resolved by ResolveObjectReference (imagepolicy.go) and applied by accept (accept.go) under the
    default rules, where only a local-name rewrite (LocalRewrite) changes the image."""
    found = _stream_tag(image, resolve_all)
    if isinstance(found, _Outcome):
        return found
    name, tag = found
    stream = streams.get(name)
    if stream is None:
        return _left(f"there is no image stream {name} in namespace {namespace}")
    if isinstance(stream, str):
        return _Outcome(LookupResult.FAILED, f"the image stream {name} could not be read: {stream}")
    if not (stream.spec.lookup_policy and stream.spec.lookup_policy.local) and not resolve_all:
        return _left(
            f"the image stream {name} does not allow local lookup (spec.lookupPolicy.local), "
            f'and {RESOLVE_NAMES_ANNOTATION} is not "*"'
        )
    event = _current_event(stream, tag)
    if event is None or not event.image:
        return _tag_without_image(stream, name, tag)
    return _tag_image(stream, name, tag, event.image)


def decide_lookup(
    resource: tuple[str, str],
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    namespace: str,
    read_stream: StreamReader,
) -> LookupDecision:
    """The images of `obj` (a CREATE, or an UPDATE from `old`) of `resource` (group, plural) to rewrite.

    Follows admit (imagepolicy.go) and Mutate (imagereferencemutators/pods.go): objects with a controller owner are
    skipped (they inherit their images from a template that was resolved); on UPDATE only containers whose image
    string changed are looked up, unless the resolve-names annotation was turned on or off; a Job is not rewritten
    on UPDATE. Streams are read from `namespace` only, each at most once.
    """
    pod_spec_path = POD_SPEC_PATHS.get(resource)
    if pod_spec_path is None:
        return LookupDecision(skipped=f"{resource[1]}.{resource[0] or 'core'} is not a kind images are looked up for")
    if _controlled(obj):
        return LookupDecision(skipped="it has a controller owner: its images come from its owner's template")
    if old is not None and resource in NOT_REWRITTEN_ON_UPDATE:
        return LookupDecision(skipped="a Job's pod template cannot change: it is not rewritten on update")
    pod_spec = _at(obj, pod_spec_path)
    if not isinstance(pod_spec, Mapping):
        # OpenShift refuses the object (errNoImageMutator, 403); the API server's own validation refuses it too
        # (a ReplicationController without spec.template is the only such object), with its own message.
        return LookupDecision(skipped="it has no pod spec")
    resolve_all = resolves_all_names(obj, pod_spec_path)
    old_pod_spec: Mapping[str, Any] | None = None
    if old is not None:
        found = _at(old, pod_spec_path)
        old_pod_spec = found if isinstance(found, Mapping) else None
        if resolve_all != resolves_all_names(old, pod_spec_path):
            old_pod_spec = None  # resolveAnnotationChanged: every container is looked up again
    streams = _Streams(read_stream)
    examined: list[ContainerLookup] = []
    for list_name in CONTAINER_LISTS:
        for index, container in enumerate(_containers(pod_spec, list_name)):
            name, image = container.get("name"), container.get("image")
            if _same_image_before(old_pod_spec, name, image):
                continue
            shown_name = name if isinstance(name, str) else ""
            if not isinstance(image, str) or not image:
                outcome = _left("no image")
                image = ""
            else:
                outcome = resolve_image(image, namespace, resolve_all, streams)
            examined.append(
                ContainerLookup(
                    list_name,
                    index,
                    shown_name,
                    image,
                    outcome.result,
                    outcome.reason,
                    outcome.resolved,
                    (*pod_spec_path, list_name, index, "image"),
                )
            )
    return LookupDecision(tuple(examined))

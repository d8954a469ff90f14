"""Image change triggers: the image.openshift.io/triggers annotation and the images it asks for.

Pure functions over plain workload bodies (dicts as the API server returns them) and
the ImageStream model. The controller parses a workload's annotation with
`parse_triggers`, resolves each trigger's tag with `stream_tag_image`, and asks
`desired_changes` which container images to write; an empty answer means no write.

The annotation is read the way OpenShift reads it, with one difference in spirit:
where OpenShift silently ignores a trigger it cannot use, this module raises a
`TriggerError` that says what is wrong and how to fix it, so the operator can report
it on the workload instead of leaving the user to wonder why nothing happens.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagestreams.api.imagestream import STREAM_NAME_PATTERN, ImageStream, ReferencePolicyType
from imagestreams.core.jsonlimits import load_json
from imagestreams.core.workloadkinds import WORKLOAD_TYPES, WorkloadKind

TRIGGERS_ANNOTATION = "image.openshift.io/triggers"
# A trigger takes about 120 characters, so this is room for hundreds of containers; the annotation is parsed on
# every workload event in the cluster, and Kubernetes alone would let it reach 256 KiB.
TRIGGERS_ANNOTATION_MAX_LENGTH = 64 * 1024
IMAGE_STREAM_TAG = "ImageStreamTag"

CONTAINERS = "containers"
INIT_CONTAINERS = "initContainers"
CONTAINER_LISTS = (CONTAINERS, INIT_CONTAINERS)


# The pod spec's place in each kind, from the one table of workload kinds.
POD_SPEC_PATHS: dict[WorkloadKind, tuple[str, ...]] = {
    kind: workload.pod_spec_path for kind, workload in WORKLOAD_TYPES.items()
}

_INDEX_SELECTOR = re.compile(r"[0-9]+")
# More digits than any container list can have entries; also keeps int() far from its 4300-digit limit.
_MAX_INDEX_DIGITS = 18
# Exactly what OpenShift accepts: double quotes, no whitespace anywhere.
_NAME_SELECTOR = re.compile(r'\?\(@\.name=="([^"\s]+)"\)')
_LOOSE_NAME = re.compile(r"""[^'"\s)]+""")
_STREAM_NAME = re.compile(STREAM_NAME_PATTERN)
# User text quoted in a message is cut here: a Warning should say what is wrong, not repeat 256 KiB.
_SHOWN_TEXT_LENGTH = 200


class TriggerError(ValueError):
    """A trigger that cannot be used; the message says what is wrong and what to change."""


def pod_spec_prefix(kind: WorkloadKind) -> str:
    """The dotted pod-spec path of a kind, e.g. `spec.template.spec`."""
    return ".".join(POD_SPEC_PATHS[kind])


@dataclass(frozen=True)
class FieldPath:
    """The container a trigger writes to: `<pod spec>.<container_list>[<selector>].image`."""

    container_list: str  # "containers" or "initContainers"
    index: int | None  # set for a decimal index selector
    name: str | None  # set for a ?(@.name=="NAME") selector

    @property
    def selector(self) -> str:
        """The selector as written in a fieldPath, e.g. `0` or `?(@.name=="web")`."""
        if self.name is not None:
            return f'?(@.name=="{self.name}")'
        return str(self.index)

    def render(self, kind: WorkloadKind) -> str:
        """The full fieldPath for a kind, in the form `oc set triggers` writes."""
        return f"{pod_spec_prefix(kind)}.{self.container_list}[{self.selector}].image"


@dataclass(frozen=True)
class Trigger:
    stream: str  # image stream name
    tag: str
    namespace: str  # from.namespace, defaulting to the workload's namespace
    field_path: FieldPath
    raw_field_path: str
    paused: bool


def _example_annotation(kind: WorkloadKind) -> str:
    path = f'{pod_spec_prefix(kind)}.containers[?(@.name==\\"web\\")].image'
    return f'[{{"from": {{"kind": "ImageStreamTag", "name": "app:latest"}}, "fieldPath": "{path}"}}]'


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_TEXT_LENGTH else text[:_SHOWN_TEXT_LENGTH] + "..."


def _loose_container_name(selector: str) -> str | None:
    """The NAME in what people write instead of ?(@.name=="NAME"): single quotes, no quotes, spaces, one "=".

    Used only to suggest the fix. Read by hand rather than by one regex: adjacent optional parts such as
    `\\s*['"]?\\s*` make a backtracking regex quadratic in a run of spaces, and this runs on every workload event.
    """
    if not (selector.startswith("?(") and selector.endswith(")")):
        return None
    rest = selector[2:-1].lstrip()
    if not rest.startswith("@.name"):
        return None
    rest = rest.removeprefix("@.name").lstrip()
    if not rest.startswith("="):
        return None
    after_one = rest[1:]
    # "==" is tried first; a single "=" covers a name that itself starts with "=".
    candidates = (after_one[1:], after_one) if after_one.startswith("=") else (after_one,)
    for candidate in candidates:
        name = _without_quotes(candidate.strip())
        if _LOOSE_NAME.fullmatch(name):
            return name
    return None


def _without_quotes(text: str) -> str:
    """Text without one quote (and the spaces inside it) at either end: `' web '` becomes `web`."""
    if text[:1] in ("'", '"'):
        text = text[1:].lstrip()
    if text[-1:] in ("'", '"'):
        text = text[:-1].rstrip()
    return text


def _index(selector: str) -> int | None:
    if not _INDEX_SELECTOR.fullmatch(selector):
        return None
    if len(selector.lstrip("0")) > _MAX_INDEX_DIGITS:
        raise TriggerError(
            f"container index {_shown(selector)} is too large: it has more than {_MAX_INDEX_DIGITS} digits"
        )
    return int(selector)


def parse_field_path(raw: str, kind: WorkloadKind) -> FieldPath:
    """Parse a fieldPath with OpenShift's grammar; raises TriggerError with the fix in the message."""
    prefix = pod_spec_prefix(kind) + "."
    where = f'fieldPath "{_shown(raw)}"'
    if not raw.startswith(prefix):
        # OpenShift silently skips a trigger whose path does not start with the kind's pod-spec path.
        # That silent skip (typically a Deployment's path copied onto a CronJob) is the most common
        # "my trigger does nothing" question, so it is an error here.
        hint = ""
        for other in sorted({pod_spec_prefix(k) for k in WorkloadKind}, key=len, reverse=True):
            if other + "." != prefix and raw.startswith(other + "."):
                hint = f"; replace {other} with {pod_spec_prefix(kind)}"
                # When the rest of the path is wrong too, the prefix is still the first thing to fix.
                with contextlib.suppress(TriggerError):
                    fixed = parse_field_path(prefix + raw[len(other) + 1 :], kind)
                    hint = f"; write {_shown(fixed.render(kind))}"
                break
        raise TriggerError(
            f'{where}: a {kind.value} trigger must start with "{prefix}" (the pod template of a {kind.value}){hint}'
        )
    rest = raw[len(prefix) :]
    shape = f"{prefix}containers[SELECTOR].image or {prefix}initContainers[SELECTOR].image"
    list_name, bracket, rest = rest.partition("[")
    if list_name not in CONTAINER_LISTS:
        raise TriggerError(
            f'{where}: triggers can only set container images; the path must be {shape}, not "{_shown(list_name)}"'
        )
    selector, bracket_close, tail = rest.partition("]")
    if not bracket or not bracket_close:
        raise TriggerError(f"{where}: the path must be {shape}, with a selector in [ ]")
    if tail != ".image":
        raise TriggerError(
            f'{where}: the path must end in "].image" ({shape}); found "{_shown(tail)}" after the selector'
        )
    index = _index(selector)
    if index is not None:
        return FieldPath(list_name, index, None)
    match = _NAME_SELECTOR.fullmatch(selector)
    if match:
        return FieldPath(list_name, None, match.group(1))
    problem = f'{where}: the container selector must be a decimal index or ?(@.name=="NAME") with double quotes'
    loose = _loose_container_name(selector)
    if loose is not None:
        problem += f"; write {_shown(FieldPath(list_name, None, loose).render(kind))}"
    raise TriggerError(problem)


def _split_stream_tag(name: str) -> tuple[str, str]:
    stream, sep, tag = name.partition(":")
    example = 'e.g. "app:latest"'
    where = f'from.name "{_shown(name)}"'
    if "@" in name:
        raise TriggerError(f"{where} names an image by digest; a trigger follows a tag: use <stream>:<tag>, {example}")
    if not sep or not stream or not tag:
        # OpenShift skips a name without ":" (SplitImageStreamTag fails); here it is reported.
        raise TriggerError(f"{where} must be <stream>:<tag>, {example}")
    if ":" in tag:
        raise TriggerError(f'{where} has more than one ":"; it must be <stream>:<tag>, {example}')
    if not _STREAM_NAME.fullmatch(stream):
        raise TriggerError(
            f'{where}: "{_shown(stream)}" is not a valid image stream name '
            "(lowercase letters and digits, separated by single '.', '_' or '-')"
        )
    return stream, tag


def _optional_string(entry: Mapping[str, Any], key: str, label: str) -> str:
    value = entry.get(key)
    if value is None:  # json.Unmarshal leaves a null string field empty
        return ""
    if not isinstance(value, str):
        raise TriggerError(f"{label} must be a JSON string, not {_shown(json.dumps(value))}")
    return value


def _parse_entry(entry: object, kind: WorkloadKind, namespace: str) -> Trigger:
    if not isinstance(entry, dict):
        raise TriggerError(f"each trigger must be a JSON object, not {_shown(json.dumps(entry))}")
    source = entry.get("from")
    if source is None:
        source = {}
    if not isinstance(source, dict):
        raise TriggerError('"from" must be an object like {"kind": "ImageStreamTag", "name": "app:latest"}')
    source_kind = _optional_string(source, "kind", "from.kind")
    if source_kind != IMAGE_STREAM_TAG:
        # OpenShift silently ignores triggers of any other kind; a trigger that can never fire is
        # almost always a typo or a misunderstanding, so it is rejected here with the fix.
        found = f'"{_shown(source_kind)}"' if source_kind else "missing"
        raise TriggerError(f'from.kind must be "ImageStreamTag" (found {found}): triggers follow image stream tags')
    stream, tag = _split_stream_tag(_optional_string(source, "name", "from.name"))
    source_namespace = _optional_string(source, "namespace", "from.namespace") or namespace
    _optional_string(source, "apiVersion", "from.apiVersion")
    raw_path = _optional_string(entry, "fieldPath", "fieldPath")
    if not raw_path:
        raise TriggerError(
            f"fieldPath is required: the container image to set, e.g. "
            f'{pod_spec_prefix(kind)}.containers[?(@.name=="web")].image'
        )
    field_path = parse_field_path(raw_path, kind)
    paused = entry.get("paused")
    if paused is None:  # absent or null: json.Unmarshal leaves it false
        paused = False
    if not isinstance(paused, bool):
        # The OpenShift docs show "paused": "false"; OpenShift's json.Unmarshal rejects it (and with it the
        # whole annotation), and so does this.
        raise TriggerError(
            f"paused must be a JSON boolean, not {_shown(json.dumps(paused))}: write "
            f'"paused": {"true" if str(paused).strip().lower() == "true" else "false"} without quotes'
        )
    return Trigger(stream, tag, source_namespace, field_path, raw_path, paused)


def parse_triggers(annotation: str, kind: WorkloadKind, namespace: str) -> list[Trigger]:
    """The triggers in an image.openshift.io/triggers annotation value, in order.

    Any problem makes the whole annotation invalid (as in OpenShift, where a parse error
    or a duplicate fieldPath makes the controller ignore every trigger of the object).
    Errors name the trigger by its position, counting from 1.
    """
    if len(annotation) > TRIGGERS_ANNOTATION_MAX_LENGTH:
        raise TriggerError(
            f"{TRIGGERS_ANNOTATION} is {len(annotation)} characters long; the limit is "
            f"{TRIGGERS_ANNOTATION_MAX_LENGTH} (64 KiB)"
        )
    try:
        data = load_json(annotation)
    except ValueError as error:
        raise TriggerError(
            f"{TRIGGERS_ANNOTATION} is not valid JSON ({error}); it must be a JSON array such as "
            f"{_example_annotation(kind)}, or [] for no triggers"
        ) from None
    if not isinstance(data, list):
        raise TriggerError(
            f"{TRIGGERS_ANNOTATION} must be a JSON array of triggers (wrap a single trigger in [ ]), "
            f"such as {_example_annotation(kind)}"
        )
    triggers: list[Trigger] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(data, start=1):
        try:
            trigger = _parse_entry(entry, kind, namespace)
        except TriggerError as error:
            raise TriggerError(f"trigger {number}: {error}") from None
        first = seen.setdefault(trigger.raw_field_path, number)
        if first != number:
            raise TriggerError(
                f'triggers {first} and {number} both have fieldPath "{_shown(trigger.raw_field_path)}": duplicate '
                "triggers are not allowed and OpenShift ignores the whole annotation; keep one of them"
            )
        triggers.append(trigger)
    return triggers


def stream_tag_image(stream: ImageStream, tag: str) -> str | None:
    """The pull spec a trigger on `tag` writes, or None when the tag has no image yet.

    The tag's current image (the first history entry) as recorded, except with a Local
    reference policy, where it is the stream's own repository with the image digest when
    both are known. A failed or pending import leaves the last good entry in place.
    """
    status = stream.status
    if status is None or not status.tags:
        return None
    events = next((named for named in status.tags if named.tag == tag), None)
    if events is None or not events.items:
        return None
    current = events.items[0]
    if not current.docker_image_reference:
        return None
    spec_tag = next((spec for spec in stream.spec.tags or () if spec.name == tag), None)
    policy = spec_tag.reference_policy.type if spec_tag and spec_tag.reference_policy else None
    # OpenShift falls back to its internal registry hostname when status.dockerImageRepository is
    # empty; without an integrated registry there is nothing to fall back to, so the source is used.
    if policy == ReferencePolicyType.LOCAL and status.docker_image_repository and current.image:
        return f"{status.docker_image_repository}@{current.image}"
    return current.docker_image_reference


def pod_spec(workload: Mapping[str, Any], kind: WorkloadKind) -> Mapping[str, Any]:
    """The workload's pod spec (empty when the body lacks it)."""
    node: Any = workload
    for key in POD_SPEC_PATHS[kind]:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _containers(spec: Mapping[str, Any], list_name: str) -> list[Mapping[str, Any]]:
    items = spec.get(list_name)
    if not isinstance(items, Sequence) or isinstance(items, str):
        return []
    return [item if isinstance(item, Mapping) else {} for item in items]


def _find_container(
    spec: Mapping[str, Any], kind: WorkloadKind, field_path: FieldPath
) -> tuple[Mapping[str, Any] | None, str]:
    """The selected container, or None with the reason it was not found."""
    containers = _containers(spec, field_path.container_list)
    location = f"{pod_spec_prefix(kind)}.{field_path.container_list}"
    if field_path.name is not None:
        for container in containers:
            if container.get("name") == field_path.name:
                return container, ""
        names = ", ".join(str(c.get("name", "?")) for c in containers) or "(none)"
        return None, (
            f'no container named "{field_path.name}" in {location}; {field_path.container_list} are: {names}. '
            f"Correct the fieldPath in {TRIGGERS_ANNOTATION} or add the container"
        )
    index = field_path.index if field_path.index is not None else 0
    if index < len(containers):
        return containers[index], ""
    entries = "entry" if len(containers) == 1 else "entries"
    return None, (
        f"{location}[{index}] does not exist: the list has {len(containers)} {entries}. "
        f'Correct the index in {TRIGGERS_ANNOTATION} or select the container by name with ?(@.name=="NAME")'
    )


@dataclass(frozen=True)
class ContainerChange:
    trigger: Trigger
    container_list: str  # "containers" | "initContainers"
    container_name: str  # resolved even for index selectors
    old_image: str | None
    new_image: str


def desired_changes(
    workload: Mapping[str, Any], kind: WorkloadKind, resolved: Mapping[Trigger, str]
) -> list[ContainerChange]:
    """The container images to write so the workload follows its active, resolved triggers.

    Paused triggers and triggers missing from `resolved` are skipped. All or nothing:
    when a selected container does not exist, or two triggers select the same container,
    TriggerError is raised (listing every problem) and nothing is to be written.
    """
    spec = pod_spec(workload, kind)
    problems: list[str] = []
    changes: list[ContainerChange] = []
    claimed: dict[tuple[str, str], Trigger] = {}
    for trigger, image in resolved.items():
        if trigger.paused:
            continue
        container, problem = _find_container(spec, kind, trigger.field_path)
        if container is None:
            problems.append(f'fieldPath "{_shown(trigger.raw_field_path)}": {problem}')
            continue
        key = (trigger.field_path.container_list, str(container.get("name", "")))
        other = claimed.setdefault(key, trigger)
        if other is not trigger:
            # OpenShift lets the last one win silently; `oc set triggers` allows one trigger per container.
            problems.append(
                f'fieldPaths "{_shown(other.raw_field_path)}" and "{_shown(trigger.raw_field_path)}" select the same '
                f'container "{_shown(key[1])}"; only one trigger may set a container\'s image: remove one of them'
            )
            continue
        old = container.get("image")
        old_image = old if isinstance(old, str) else None
        if old_image != image:
            changes.append(ContainerChange(trigger, key[0], key[1], old_image, image))
    if problems:
        raise TriggerError("\n".join(problems))
    return changes


def triggered_containers(
    workload: Mapping[str, Any], kind: WorkloadKind, triggers: Iterable[Trigger]
) -> list[tuple[str, str]]:
    """(container list, container name) of every trigger whose container exists, paused or not, without repeats."""
    spec = pod_spec(workload, kind)
    found: list[tuple[str, str]] = []
    for trigger in triggers:
        container, _ = _find_container(spec, kind, trigger.field_path)
        if container is None:
            continue
        key = (trigger.field_path.container_list, str(container.get("name", "")))
        if key not in found:
            found.append(key)
    return found


def trigger_index_keys(triggers: Iterable[Trigger]) -> set[tuple[str, str]]:
    """(namespace, stream) of every active trigger: the streams whose changes concern this workload."""
    return {(trigger.namespace, trigger.stream) for trigger in triggers if not trigger.paused}

"""Image change triggers: the image.openshift.io/triggers annotation and the images it asks for.

Pure functions over plain workload bodies (dicts as the API server returns them) and
the ImageStream model. The controller reads a workload's annotation with `parse_triggers`,
resolves each trigger's tag with `stream_tag_image`, and asks `desired_changes` which
container images to write; no change means no write.

The annotation is read rule by rule as OpenShift's trigger controller reads it (library-go
pkg/image/trigger/annotations.go, openshift-controller-manager pkg/image/controller/trigger/cache.go):

- The JSON with Go's encoding/json rules, since OpenShift reads it with json.Unmarshal into
  []ObjectFieldTrigger: `null` is no triggers, keys match case-insensitively, a repeated key's later
  value is read over the earlier one, unknown keys and `null` values are skipped, and a value of the
  wrong JSON type (`"paused": "false"`) fails the whole annotation, as do duplicate fieldPaths
  (CalculateAnnotationTriggers).
- An entry OpenShift never acts on is skipped and reported (`IgnoredTrigger`), while the other entries
  still apply: another `from.kind`, a `from.apiVersion`, a `from.name` that names no tag, a fieldPath
  outside the kind's pod template.
- The container by library-go's selector grammar (findContainerBySelector); a trigger whose container
  cannot be found stops every trigger of the workload, but only once its tag has an image
  (UpdateObjectFromImages). When two triggers set one container, the last one wins.

Where OpenShift is silent, the messages here say what is wrong and how to fix it. Stricter than
OpenShift, for safety only: the annotation's size and nesting depth (`TRIGGERS_ANNOTATION_MAX_LENGTH`,
`MAX_JSON_DEPTH`), since it is read on every workload event in the cluster.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from imagestreams.api.imagestream import STREAM_NAME_PATTERN, ImageStream, ReferencePolicyType
from imagestreams.core.jsonlimits import MAX_JSON_DEPTH, load_json
from imagestreams.core.workloadkinds import WORKLOAD_TYPES, WorkloadKind

TRIGGERS_ANNOTATION = "image.openshift.io/triggers"
# Stricter than OpenShift (Kubernetes lets annotations reach 256 KiB together): a trigger takes about 120
# characters, so this is room for hundreds of containers, and the annotation is parsed on every workload event.
TRIGGERS_ANNOTATION_MAX_LENGTH = 64 * 1024
IMAGE_STREAM_TAG = "ImageStreamTag"

CONTAINERS = "containers"
INIT_CONTAINERS = "initContainers"
CONTAINER_LISTS = (CONTAINERS, INIT_CONTAINERS)


# The pod spec's place in each kind, from the one table of workload kinds.
POD_SPEC_PATHS: dict[WorkloadKind, tuple[str, ...]] = {
    kind: workload.pod_spec_path for kind, workload in WORKLOAD_TYPES.items()
}

# strconv.Atoi's syntax: an optional sign, then ASCII digits (Python's \d would take other scripts' digits too).
_INDEX_SELECTOR = re.compile(r"[+-]?[0-9]+")
# strconv.Atoi's range on OpenShift's 64-bit platforms; a longer number is not an index there.
_INT64_MAX = 2**63 - 1
_INT64_DIGITS = 19
# findContainerBySelector trims this prefix and this suffix, each only if present.
_NAME_PREFIX = '?(@.name=="'
_NAME_SUFFIX = '")'
_LOOSE_NAME = re.compile(r"""[^'"\s)]+""")
_STREAM_NAME = re.compile(STREAM_NAME_PATTERN)
# User text quoted in a message is cut here: a Warning should say what is wrong, not repeat 64 KiB.
_SHOWN_TEXT_LENGTH = 200


class TriggerError(ValueError):
    """A trigger annotation (or a trigger in it) that cannot be used; the message says what to change."""


def pod_spec_prefix(kind: WorkloadKind) -> str:
    """The dotted pod-spec path of a kind, e.g. `spec.template.spec`."""
    return ".".join(POD_SPEC_PATHS[kind])


@dataclass(frozen=True)
class FieldPath:
    """The container a trigger writes to: `<pod spec>.<container_list>[<selector>].image`."""

    container_list: str  # "containers" or "initContainers"
    index: int | None  # set for an index selector (possibly negative or past the end: then it selects nothing)
    name: str | None  # set for a ?(@.name=="NAME") selector

    @property
    def selector(self) -> str:
        """The selector as `oc set triggers` writes it, e.g. `0` or `?(@.name=="web")`."""
        if self.name is not None:
            return f"{_NAME_PREFIX}{self.name}{_NAME_SUFFIX}"
        return str(self.index)

    def render(self, kind: WorkloadKind) -> str:
        """The full fieldPath for a kind, in the form `oc set triggers` writes."""
        return f"{pod_spec_prefix(kind)}.{self.container_list}[{self.selector}].image"


@dataclass(frozen=True)
class Trigger:
    """An entry OpenShift acts on (unless paused): its tag's image goes into the selected container."""

    position: int  # the entry's place in the annotation, counting from 1
    stream: str  # image stream name
    tag: str
    namespace: str  # from.namespace, defaulting to the workload's namespace
    field_path: FieldPath | None  # None: the path after the pod template is not valid (see path_problem)
    raw_field_path: str
    paused: bool
    path_problem: str = ""  # why field_path is None; an error only once the tag has an image, as in OpenShift


@dataclass(frozen=True)
class IgnoredTrigger:
    """An entry OpenShift never acts on: skipped here too, and reported."""

    position: int
    source: str  # from.name as written
    namespace: str  # from.namespace, defaulting to the workload's namespace
    raw_field_path: str
    paused: bool
    source_kind: str  # from.kind as written
    source_api_version: str
    workload_kind: WorkloadKind

    @functools.cached_property
    def reason(self) -> str:
        """Why, and what to write instead. Worked out only when asked: an annotation can hold thousands of entries."""
        return "; ".join(
            _reasons_ignored(
                self.source_kind, self.source_api_version, self.source, self.raw_field_path, self.workload_kind
            )
        )

    @property
    def message(self) -> str:
        return f"trigger {self.position} is ignored: {self.reason}"


@dataclass(frozen=True)
class TriggerAnnotation:
    """What an image.openshift.io/triggers annotation asks for, in the annotation's order."""

    triggers: tuple[Trigger, ...] = ()
    ignored: tuple[IgnoredTrigger, ...] = ()


# --- the JSON, read with Go's encoding/json rules -------------------------------------------------------------------


# A JSON object is read as a tuple of its members in document order, repeated keys kept (json.Unmarshal reads each
# in turn); arrays stay lists, so the two are told apart. A plain tuple is several times faster than a class here.
_JSONObject: type[tuple[tuple[str, Any], ...]] = tuple


@dataclass(frozen=True)
class _JSONNumber:
    """A number as written. Go skips a number it has no field for without converting it, so no size limit
    applies (Python's int() refuses more than 4300 digits); in a field of the annotation it is a type error."""

    text: str


def _refuse_constant(name: str) -> NoReturn:
    # Python's json reads NaN and Infinity; Go's encoding/json refuses them (scanner.go: invalid character).
    raise ValueError(f"{name} is not a JSON value")


_GO_JSON = json.JSONDecoder(
    object_pairs_hook=_JSONObject, parse_int=_JSONNumber, parse_float=_JSONNumber, parse_constant=_refuse_constant
)
# Go decodes a \u escape of a lone surrogate as U+FFFD (decode.go unquoteBytes); Python keeps the surrogate, which
# could not even be encoded into an Event.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# encoding/json matches a key to a field by foldName (fold.go): ASCII letters without case, and each other
# character by its Unicode simple case folding. Only these two non-ASCII characters fold to ASCII letters
# (checked over every rune with unicode.SimpleFold): U+017F long s to s and U+212A Kelvin sign to k.
_FOLDS_TO_ASCII = str.maketrans({"\u017f": "s", "\u212a": "k"})


def _go_string(value: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", value)


def json_field(key: str, names: Iterable[str]) -> str | None:
    """The struct field json.Unmarshal fills for an object key: an exact name, else a case-insensitive match."""
    names = tuple(names)
    if key in names:
        return key
    folded = _go_string(key).translate(_FOLDS_TO_ASCII)
    if not folded.isascii():
        return None  # any other non-ASCII character folds to a non-ASCII one: no field name matches
    return next((name for name in names if name.upper() == folded.upper()), None)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {_shown(json.dumps(value))}"
    if isinstance(value, _JSONNumber):
        return f"the number {_shown(value.text)}"
    if isinstance(value, _JSONObject):
        return "an object"
    return "an array"


@dataclass
class _Entry:
    """One ObjectFieldTrigger as json.Unmarshal fills it: Go's zero values, then each member in turn."""

    kind: str = ""
    name: str = ""
    namespace: str = ""
    api_version: str = ""
    field_path: str = ""
    paused: bool = False


# JSON name -> _Entry attribute (types.go: ObjectFieldTrigger and ObjectReference).
_REFERENCE_FIELDS = {"kind": "kind", "name": "name", "namespace": "namespace", "apiVersion": "api_version"}
_ENTRY_FIELDS = ("from", "fieldPath", "paused")
_UNMARSHAL = "OpenShift's json.Unmarshal refuses it too, and with it the whole annotation"


def _string_member(entry: _Entry, attribute: str, label: str, value: object) -> None:
    if value is None:  # json.Unmarshal leaves the field as it was
        return
    if not isinstance(value, str):
        raise TriggerError(f"{label} must be a JSON string, not {_json_type(value)} ({_UNMARSHAL})")
    setattr(entry, attribute, _go_string(value))


def _decode_reference(value: object, entry: _Entry) -> None:
    if value is None:
        return
    if not isinstance(value, _JSONObject):
        raise TriggerError(
            f'"from" must be an object like {{"kind": "ImageStreamTag", "name": "app:latest"}}, not '
            f"{_json_type(value)} ({_UNMARSHAL})"
        )
    # A repeated "from" is read into the same struct: members of the earlier one that the later one lacks stay.
    for key, member in value:
        name = json_field(key, _REFERENCE_FIELDS)
        if name is not None:
            _string_member(entry, _REFERENCE_FIELDS[name], f"from.{name}", member)


def _decode_entry(value: object) -> _Entry:
    entry = _Entry()
    if value is None:  # null in an array of structs is a zero struct
        return entry
    if not isinstance(value, _JSONObject):
        raise TriggerError(f"each trigger must be a JSON object, not {_json_type(value)} ({_UNMARSHAL})")
    for key, member in value:
        name = json_field(key, _ENTRY_FIELDS)
        if name == "from":
            _decode_reference(member, entry)
        elif name == "fieldPath":
            _string_member(entry, "field_path", "fieldPath", member)
        elif name == "paused" and member is not None:
            if not isinstance(member, bool):
                # The OpenShift docs show "paused": "false"; json.Unmarshal refuses a string for a bool.
                fix = "true" if isinstance(member, str) and member.strip().lower() == "true" else "false"
                raise TriggerError(
                    f"paused must be a JSON boolean, not {_json_type(member)}: write "
                    f'"paused": {fix} without quotes ({_UNMARSHAL})'
                )
            entry.paused = member
    return entry


def _decode_annotation(annotation: str, kind: WorkloadKind) -> list[_Entry]:
    """json.Unmarshal of the annotation into []ObjectFieldTrigger, then hasDuplicateTriggers; TriggerError wherever
    CalculateAnnotationTriggers returns an error."""
    if len(annotation) > TRIGGERS_ANNOTATION_MAX_LENGTH:
        raise TriggerError(
            f"{TRIGGERS_ANNOTATION} is {len(annotation)} characters long; the limit is "
            f"{TRIGGERS_ANNOTATION_MAX_LENGTH} (64 KiB)"
        )
    try:
        # Nested deeper than MAX_JSON_DEPTH is refused (Go allows 10000 levels): stricter, for the same reason
        # as the length limit. Nothing legitimate nests more than 3 levels here.
        data = load_json(annotation, decoder=_GO_JSON, max_depth=MAX_JSON_DEPTH)
    except ValueError as error:
        raise TriggerError(
            f"{TRIGGERS_ANNOTATION} is not valid JSON ({error}); it must be a JSON array such as "
            f"{_example_annotation(kind)}, or [] for no triggers"
        ) from None
    if data is None:  # `oc set triggers --remove-all` writes null: no triggers
        return []
    if not isinstance(data, list):
        raise TriggerError(
            f"{TRIGGERS_ANNOTATION} must be a JSON array of triggers (wrap a single trigger in [ ]), "
            f"such as {_example_annotation(kind)}; not {_json_type(data)}"
        )
    entries = []
    seen: dict[str, int] = {}
    for number, value in enumerate(data, start=1):
        try:
            entry = _decode_entry(value)
        except TriggerError as error:
            raise TriggerError(f"trigger {number}: {error}") from None
        # hasDuplicateTriggers runs after json.Unmarshal, so Go would name a type error further on first; either
        # way the whole annotation is refused, and stopping here keeps `[{},{},...]` cheap.
        first = seen.setdefault(entry.field_path, number)
        if first != number:
            raise TriggerError(
                f'triggers {first} and {number} both have fieldPath "{_shown(entry.field_path)}": duplicate '
                "triggers are not allowed and OpenShift ignores the whole annotation; keep one of them"
            )
        entries.append(entry)
    return entries


# --- the rules of OpenShift's trigger controller --------------------------------------------------------------------


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


def _index(selector: str, where: str) -> int | None:
    """strconv.Atoi(selector) when it succeeds (findContainerBySelector tries it first); None when the selector is
    not a number at all; TriggerError for a number out of Atoi's range, which selects no container."""
    if not _INDEX_SELECTOR.fullmatch(selector):
        return None
    # The length is checked before int(), which refuses more than 4300 digits.
    if len(selector.lstrip("+-").lstrip("0")) > _INT64_DIGITS or not -_INT64_MAX - 1 <= int(selector) <= _INT64_MAX:
        # Atoi fails with a range error; OpenShift then finds no container.
        raise TriggerError(f"{where}: container index {_shown(selector)} is too large: no container has it")
    return int(selector)


def _container_reference(raw: str, rest: str, kind: WorkloadKind) -> FieldPath:
    """The container part of a fieldPath, after `<pod spec>.`: parseContainerReference, then the selector as
    findContainerBySelector reads it (library-go annotations.go). TriggerError says what to fix."""
    prefix = pod_spec_prefix(kind) + "."
    where = f'fieldPath "{_shown(raw)}"'
    shape = f"{prefix}containers[SELECTOR].image or {prefix}initContainers[SELECTOR].image"
    list_name, bracket, after = rest.partition("[")
    if list_name not in CONTAINER_LISTS or not bracket:
        if list_name in CONTAINER_LISTS:
            raise TriggerError(f"{where}: the path must be {shape}, with a selector in [ ]")
        raise TriggerError(
            f'{where}: triggers can only set container images; the path must be {shape}, not "{_shown(list_name)}"'
        )
    # The selector ends at the first "]"; one "." may follow before "image" (so "[0]image" is read as "[0].image").
    selector, bracket_close, tail = after.partition("]")
    if not bracket_close:
        raise TriggerError(f"{where}: the path must be {shape}, with a selector in [ ]")
    if tail.removeprefix(".") != "image":
        raise TriggerError(
            f'{where}: the path must end in "].image" ({shape}); found "{_shown(tail)}" after the selector'
        )
    index = _index(selector, where)
    if index is not None:
        return FieldPath(list_name, index, None)
    name = selector.removeprefix(_NAME_PREFIX).removesuffix(_NAME_SUFFIX)
    if name != selector:  # trimming either end is enough: `?(@.name=="web` and `web")` both name web
        return FieldPath(list_name, None, name)
    problem = f'{where}: the container selector must be a decimal index or ?(@.name=="NAME") with double quotes'
    loose = _loose_container_name(selector)
    if loose is not None:
        problem += f"; write {_shown(FieldPath(list_name, None, loose).render(kind))}"
    raise TriggerError(problem)


def _other_prefix_hint(raw: str, kind: WorkloadKind) -> str:
    """The fix for a path written for another kind's pod template (a Deployment's path on a CronJob)."""
    prefix = pod_spec_prefix(kind) + "."
    for other in sorted({pod_spec_prefix(k) for k in WorkloadKind}, key=len, reverse=True):
        if other + "." != prefix and raw.startswith(other + "."):
            hint = f"; replace {other} with {pod_spec_prefix(kind)}"
            # When the rest of the path is wrong too, the prefix is still the first thing to fix.
            with contextlib.suppress(TriggerError):
                fixed = _container_reference(raw, raw[len(other) + 1 :], kind)
                hint = f"; write {_shown(fixed.render(kind))}"
            return hint
    return ""


def parse_field_path(raw: str, kind: WorkloadKind) -> FieldPath:
    """Parse a fieldPath with OpenShift's grammar; TriggerError says what to fix.

    A path outside the kind's pod template is an error here; in an annotation, such an entry is ignored
    (see `parse_triggers`).
    """
    prefix = pod_spec_prefix(kind) + "."
    if not raw.startswith(prefix):
        raise TriggerError(_outside_pod_template(raw, kind))
    return _container_reference(raw, raw[len(prefix) :], kind)


def _outside_pod_template(raw: str, kind: WorkloadKind) -> str:
    prefix = pod_spec_prefix(kind) + "."
    if not raw:
        return (
            f'fieldPath is missing: write the container image to set, e.g. {prefix}containers[?(@.name=="web")].image'
        )
    return (
        f'fieldPath "{_shown(raw)}" does not start with "{prefix}" (the pod template of a {kind.value})'
        f"{_other_prefix_hint(raw, kind)}"
    )


def _name_problem(name: str) -> str | None:
    """Why from.name can name no image stream tag (the controller's SplitImageStreamTag and stream lookup)."""
    example = 'e.g. "app:latest"'
    where = f'from.name "{_shown(name)}"'
    stream, colon, tag = name.partition(":")
    if "@" in name:
        return f"{where} names an image by digest; a trigger follows a tag: use <stream>:<tag>, {example}"
    if not colon:
        return f"{where} has no tag; it must be <stream>:<tag>, {example}"
    if not _STREAM_NAME.fullmatch(stream):
        if not stream:
            return f"{where} has no image stream name; it must be <stream>:<tag>, {example}"
        return (
            f'{where}: "{_shown(stream)}" is not a valid image stream name '
            "(lowercase letters and digits, separated by single '.', '_' or '-')"
        )
    if ":" in tag:
        return f'{where} has more than one ":", and no tag has one; it must be <stream>:<tag>, {example}'
    return None


def _ignored(entry: _Entry, kind: WorkloadKind) -> bool:
    """Whether OpenShift never acts on an entry (the reasons are in `_reasons_ignored`)."""
    return (
        entry.kind != IMAGE_STREAM_TAG
        or bool(entry.api_version)
        or _name_problem(entry.name) is not None
        or not entry.field_path.startswith(pod_spec_prefix(kind) + ".")
    )


def _reasons_ignored(source_kind: str, api_version: str, name: str, field_path: str, kind: WorkloadKind) -> list[str]:
    """Why OpenShift never acts on an entry, each with its fix (empty: it does)."""
    reasons = []
    # triggerCacheIndexer (openshift-controller-manager cache.go) indexes only kind ImageStreamTag without an
    # apiVersion, so such an entry never follows its tag.
    if source_kind != IMAGE_STREAM_TAG:
        found = f'"{_shown(source_kind)}"' if source_kind else "missing"
        reasons.append(f'from.kind must be "ImageStreamTag" (found {found}): triggers follow image stream tags')
    if api_version:
        reasons.append(
            f'from.apiVersion "{_shown(api_version)}" is set: OpenShift\'s trigger index skips entries '
            "with an apiVersion; leave it out"
        )
    # SplitImageStreamTag fails, or the stream can never exist (the lister finds nothing): the entry is skipped.
    name_problem = _name_problem(name)
    if name_problem:
        reasons.append(name_problem)
    # UpdateObjectFromImages skips a fieldPath outside the kind's pod template.
    if not field_path.startswith(pod_spec_prefix(kind) + "."):
        reasons.append(_outside_pod_template(field_path, kind))
    return reasons


def ignored_summary(ignored: Sequence[IgnoredTrigger], limit: int = 5) -> list[str]:
    """The messages of the first `limit` ignored entries, then how many more there are: a Warning is read by a
    person (and cut at 1 KiB), so thousands of entries are not described one by one."""
    messages = [entry.message for entry in ignored[:limit]]
    if len(ignored) > limit:
        messages.append(f"and {len(ignored) - limit} more entries are ignored")
    return messages


def parse_triggers(annotation: str, kind: WorkloadKind, namespace: str) -> TriggerAnnotation:
    """The entries of an image.openshift.io/triggers annotation: the triggers OpenShift acts on, and the rest.

    TriggerError when OpenShift refuses the whole annotation (CalculateAnnotationTriggers: json.Unmarshal
    fails, or two entries share a fieldPath), or when it exceeds this module's size and depth limits.
    Entries are named by their position, counting from 1.
    """
    entries = _decode_annotation(annotation, kind)
    triggers: list[Trigger] = []
    ignored: list[IgnoredTrigger] = []
    for number, entry in enumerate(entries, start=1):
        source_namespace = entry.namespace or namespace
        if _ignored(entry, kind):
            ignored.append(
                IgnoredTrigger(
                    number,
                    entry.name,
                    source_namespace,
                    entry.field_path,
                    entry.paused,
                    entry.kind,
                    entry.api_version,
                    kind,
                )
            )
            continue
        stream, _, tag = entry.name.partition(":")
        field_path: FieldPath | None = None
        problem = ""
        try:
            field_path = parse_field_path(entry.field_path, kind)
        except TriggerError as error:
            problem = str(error)
        # SplitImageStreamTag: "app:" is app:latest.
        triggers.append(
            Trigger(
                number, stream, tag or "latest", source_namespace, field_path, entry.field_path, entry.paused, problem
            )
        )
    return TriggerAnnotation(tuple(triggers), tuple(ignored))


# --- the image a tag resolves to, and the containers to write -------------------------------------------------------


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


def _container_names(containers: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(str(c.get("name", "?")) for c in containers) or "(none)"


def _find_container(
    spec: Mapping[str, Any], kind: WorkloadKind, field_path: FieldPath
) -> tuple[tuple[str, Mapping[str, Any]] | None, str]:
    """(list name, container) the path selects, as library-go's findContainerBySelector does; or None and why."""
    if field_path.name is not None:
        # GetContainerByName (referencemutator/pods.go) looks in initContainers, then containers, whichever list
        # the path names: `containers[?(@.name=="migrate")]` selects the init container migrate.
        for list_name in (INIT_CONTAINERS, CONTAINERS):
            for container in _containers(spec, list_name):
                if container.get("name", "") == field_path.name:
                    return (list_name, container), ""
        problem = (
            f'no container named "{_shown(field_path.name)}" in {pod_spec_prefix(kind)}: containers are '
            f"{_container_names(_containers(spec, CONTAINERS))}; initContainers are "
            f"{_container_names(_containers(spec, INIT_CONTAINERS))}. Correct the fieldPath in "
            f"{TRIGGERS_ANNOTATION} or add the container"
        )
        # `?(@.name == "web")` loses its `")` to the selector grammar and names `?(@.name == "web`: say what was meant.
        loose = _loose_container_name(field_path.name + _NAME_SUFFIX) if field_path.name.startswith("?(") else None
        if loose is not None:
            problem += f"; write {_shown(FieldPath(field_path.container_list, None, loose).render(kind))}"
        return None, problem
    containers = _containers(spec, field_path.container_list)
    index = field_path.index if field_path.index is not None else 0
    if 0 <= index < len(containers):
        return (field_path.container_list, containers[index]), ""
    location = f"{pod_spec_prefix(kind)}.{field_path.container_list}"
    entries = "entry" if len(containers) == 1 else "entries"
    return None, (
        f"{location}[{index}] does not exist: the list has {len(containers)} {entries}. "
        f'Correct the index in {TRIGGERS_ANNOTATION} or select the container by name with ?(@.name=="NAME")'
    )


def trigger_container(workload: Mapping[str, Any], kind: WorkloadKind, field_path: FieldPath) -> tuple[str, str] | None:
    """(container list, container name) of the container a fieldPath selects, or None."""
    found, _ = _find_container(pod_spec(workload, kind), kind, field_path)
    if found is None:
        return None
    list_name, container = found
    return list_name, str(container.get("name", ""))


@dataclass(frozen=True)
class ContainerChange:
    trigger: Trigger
    container_list: str  # "containers" | "initContainers"
    container_name: str  # resolved even for index selectors
    old_image: str | None
    new_image: str


@dataclass(frozen=True)
class TriggerPlan:
    changes: tuple[ContainerChange, ...]  # the images to write
    overridden: tuple[str, ...]  # a trigger whose container a later trigger also sets (the later one wins)


def desired_changes(workload: Mapping[str, Any], kind: WorkloadKind, resolved: Mapping[Trigger, str]) -> TriggerPlan:
    """The container images to write so the workload follows its active, resolved triggers.

    As UpdateObjectFromImages: paused triggers and triggers missing from `resolved` (no image yet) are
    skipped; the others are applied in the annotation's order, so when two set one container the last one
    wins. All or nothing: when one of them has an invalid fieldPath or selects no container, TriggerError
    is raised (listing every such problem) and nothing is to be written.
    """
    spec = pod_spec(workload, kind)
    problems: list[str] = []
    overridden: list[str] = []
    # By the container itself, as library-go's mutators point at it: selected by index, by name or from either list.
    chosen: dict[int, tuple[Trigger, str, str, Mapping[str, Any]]] = {}
    for trigger in sorted(resolved, key=lambda t: t.position):
        if trigger.paused:
            continue
        where = f"trigger {trigger.position}"
        if trigger.field_path is None:
            problems.append(f"{where}: {trigger.path_problem}")
            continue
        found, problem = _find_container(spec, kind, trigger.field_path)
        if found is None:
            problems.append(f'{where}: fieldPath "{_shown(trigger.raw_field_path)}": {problem}')
            continue
        list_name, container = found
        name = str(container.get("name", ""))
        earlier = chosen.get(id(container))
        if earlier is not None:
            first = earlier[0]
            overridden.append(
                f"trigger {first.position} is overridden: triggers {first.position} ({first.stream}:{first.tag}) "
                f'and {trigger.position} ({trigger.stream}:{trigger.tag}) both set the image of container "{name}", '
                f"and the last one wins (as on OpenShift); remove one of them"
            )
        chosen[id(container)] = (trigger, list_name, name, container)
    if problems:
        raise TriggerError("\n".join(problems))
    changes = []
    for trigger, list_name, name, container in chosen.values():
        image = resolved[trigger]
        old = container.get("image")
        old_image = old if isinstance(old, str) else None
        if old_image != image:
            changes.append(ContainerChange(trigger, list_name, name, old_image, image))
    return TriggerPlan(tuple(changes), tuple(overridden))


def trigger_index_keys(triggers: Iterable[Trigger]) -> set[tuple[str, str]]:
    """(namespace, stream) of every active trigger: the streams whose changes concern this workload."""
    return {(trigger.namespace, trigger.stream) for trigger in triggers if not trigger.paused}

"""`oc set triggers` for annotation-triggered workloads: list and edit `image.openshift.io/triggers`. Pure.

Entries are written as `oc set triggers` writes them: one per container, from an
ImageStreamTag, the fieldPath in the `?(@.name=="NAME")` form, `paused` only when true,
and `from.namespace` only when it differs from the workload's.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagestreams.cli.errors import CliError
from imagestreams.cli.tagging import parse_image_ref
from imagestreams.cli.workloads import WorkloadRef
from imagestreams.core.references import InvalidReference
from imagestreams.core.triggers import (
    CONTAINERS,
    INIT_CONTAINERS,
    TRIGGERS_ANNOTATION,
    FieldPath,
    IgnoredTrigger,
    Trigger,
    TriggerError,
    json_field,
    parse_field_path,
    parse_triggers,
    pod_spec,
    trigger_container,
)
from imagestreams.core.workloadkinds import WorkloadKind


@dataclass(frozen=True)
class TriggerEdit:
    from_image: str = ""  # [namespace/]stream:tag
    containers: tuple[str, ...] = ()
    auto: bool = False
    manual: bool = False
    remove: bool = False
    remove_all: bool = False

    @property
    def lists_only(self) -> bool:
        """No flags: print the triggers."""
        return not (self.from_image or self.auto or self.manual or self.remove or self.remove_all or self.containers)


def validate_edit(edit: TriggerEdit) -> None:
    """oc's checks of the flag combination."""
    if edit.auto and edit.manual:
        raise CliError("you must specify at most one of --auto or --manual")
    if edit.remove and edit.remove_all:
        raise CliError("you must specify either --remove or --remove-all")
    if edit.remove_all and (edit.from_image or edit.auto or edit.manual or edit.containers):
        raise CliError("--remove-all may not be used with any other flag")
    if edit.remove and not edit.from_image:
        raise CliError("--remove requires a flag defining a trigger type to be specified")
    if edit.containers and not edit.from_image:
        raise CliError("--containers selects the containers of --from-image; give --from-image too")


@dataclass(frozen=True)
class ImageSource:
    name: str  # stream:tag
    namespace: str  # "" when it is the workload's namespace


def parse_from_image(text: str, namespace: str) -> ImageSource:
    """--from-image `[namespace/]stream:tag`, with oc's messages."""
    try:
        ref = parse_image_ref(text)
    except InvalidReference as error:
        raise CliError(
            f"the value of --from-image does not appear to be a valid reference to an image: {error}"
        ) from None
    if ref.registry or ref.id:
        raise CliError("the value of --from-image must point to an image stream tag on this server")
    if not ref.tag:
        raise CliError("the value of --from-image must include the tag you wish to pull from")
    source_namespace = "" if ref.namespace == namespace else ref.namespace
    return ImageSource(f"{ref.name}:{ref.tag}", source_namespace)


def _container_names(body: Mapping[str, Any], kind: WorkloadKind) -> dict[str, str]:
    """Container name -> the list it is in (containers first, then init containers)."""
    spec = pod_spec(body, kind)
    names: dict[str, str] = {}
    for list_name in (CONTAINERS, INIT_CONTAINERS):
        for container in spec.get(list_name) or []:
            if isinstance(container, Mapping) and isinstance(container.get("name"), str):
                names.setdefault(container["name"], list_name)
    return names


@dataclass(frozen=True)
class _Entry:
    """One entry of the annotation as written, and what OpenShift makes of it."""

    raw: Any  # the JSON value as written (unknown keys kept when it is written back)
    source: str  # stream:tag ("app:" read as app:latest), or from.name as written when the entry is ignored
    namespace: str  # where the stream is looked up
    raw_field_path: str
    field_path: FieldPath | None  # None: not a path to a container of this kind
    container: str | None  # the container its fieldPath selects (library-go's rules), None when none
    paused: bool
    ignored: IgnoredTrigger | None  # set when OpenShift never acts on the entry

    @property
    def shown_container(self) -> str:
        """The container's name, or the selector as written when it selects none."""
        if self.container is not None:
            return self.container
        if self.field_path is None:
            return self.raw_field_path or "no fieldPath"
        if self.field_path.name is not None:
            return self.field_path.name
        return f"{self.field_path.container_list}[{self.field_path.index}]"


def _current(body: Mapping[str, Any], kind: WorkloadKind, namespace: str) -> tuple[str | None, list[_Entry]]:
    """The annotation's value and its entries; TriggerError when OpenShift could not read it at all."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(TRIGGERS_ANNOTATION)
    if value is None:
        return None, []
    parsed = parse_triggers(value, kind, namespace)
    try:
        raw = json.loads(value) or []  # null is no triggers, as `oc set triggers --remove-all` writes it
    except ValueError as error:  # only a number of more than 4300 digits gets here
        raise TriggerError(str(error)) from None
    entries: dict[int, _Entry] = {}
    for trigger in parsed.triggers:
        entries[trigger.position] = _entry(body, kind, raw[trigger.position - 1], trigger, trigger.field_path)
    for ignored in parsed.ignored:
        field_path = None
        with contextlib.suppress(TriggerError):
            field_path = parse_field_path(ignored.raw_field_path, kind)
        entries[ignored.position] = _entry(body, kind, raw[ignored.position - 1], ignored, field_path)
    return value, [entries[position] for position in sorted(entries)]


def _entry(
    body: Mapping[str, Any],
    kind: WorkloadKind,
    raw: Any,
    parsed: Trigger | IgnoredTrigger,
    field_path: FieldPath | None,
) -> _Entry:
    found = trigger_container(body, kind, field_path) if field_path is not None else None
    if isinstance(parsed, Trigger):
        source, ignored = f"{parsed.stream}:{parsed.tag}", None
    else:
        source, ignored = parsed.source, parsed
    return _Entry(
        raw,
        source,
        parsed.namespace,
        parsed.raw_field_path,
        field_path,
        found[1] if found else None,
        parsed.paused,
        ignored,
    )


def trigger_rows(workload: WorkloadRef, body: Mapping[str, Any], namespace: str) -> list[list[str]]:
    """The rows `oc set triggers` prints for a workload: the config trigger, then one per image trigger."""
    name = workload.resource
    config_auto = not bool((body.get("spec") or {}).get("paused")) if workload.kind == WorkloadKind.DEPLOYMENT else True
    rows = [[name, "config", "", _bool(config_auto)]]
    try:
        _, entries = _current(body, workload.kind, namespace)
    except TriggerError:
        return [[name, "<error>", "", "false"]]
    for entry in entries:
        source = entry.source
        if entry.namespace != namespace:
            source = f"{entry.namespace}/{source}"
        # A trigger whose container is missing is listed as written, so it can be found and fixed (oc hides it).
        value = f"{source} ({entry.shown_container})"
        if entry.ignored is not None:
            # oc lists such an entry like any other; OpenShift's controller never acts on it.
            rows.append([name, "image", f"{value} ignored: {entry.ignored.reason}", "false"])
        else:
            rows.append([name, "image", value, _bool(not entry.paused)])
    return rows


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _set_paused(raw: Any, paused: bool) -> Any:
    """The entry with `paused` set as oc writes it (only when true); a null entry, which is ignored, stays."""
    if not isinstance(raw, dict):
        return raw
    # Every key json.Unmarshal would read as "paused" goes, or a later "Paused" would still decide.
    entry = {key: value for key, value in raw.items() if json_field(key, ("paused",)) is None}
    if paused:
        entry["paused"] = True
    return entry


def _matches(entry: _Entry, source: ImageSource, namespace: str) -> bool:
    return entry.source == source.name and entry.namespace == (source.namespace or namespace)


def edit_triggers(workload: WorkloadRef, body: Mapping[str, Any], edit: TriggerEdit, namespace: str) -> str | None:
    """The new annotation value after `edit` (None: remove the annotation).

    --from-image sets, for each named container (default: the only container), a trigger
    from that tag, automatic unless --manual; a container already triggered by another tag
    is an error, as in oc. --remove drops the tag's triggers (only for the named containers
    when -c is given). --auto/--manual alone switch every trigger. Entries OpenShift ignores
    are kept as written unless an edit names their tag or container (oc rewrites or drops them).
    An unchanged annotation is returned as it is (`null` stays `null`).
    """
    if edit.remove_all:
        return None
    try:
        value, entries = _current(body, workload.kind, namespace)
    except TriggerError as error:
        raise CliError(
            f"the {TRIGGERS_ANNOTATION} annotation of {workload.qualified} is not valid: {error}; "
            "correct it, or start again with --remove-all"
        ) from None
    before = [entry.raw for entry in entries]
    if not edit.from_image:
        after = [_set_paused(entry.raw, edit.manual) for entry in entries]
    else:
        source = parse_from_image(edit.from_image, namespace)
        if edit.remove:
            after = [
                entry.raw
                for entry in entries
                if not (
                    _matches(entry, source, namespace) and (not edit.containers or entry.container in edit.containers)
                )
            ]
        else:
            after = _set_from_image(workload, body, edit, source, namespace, entries)
    if after == before:
        return value
    return _encode(after)


def _set_from_image(  # noqa: PLR0917 - one private helper of edit_triggers
    workload: WorkloadRef,
    body: Mapping[str, Any],
    edit: TriggerEdit,
    source: ImageSource,
    namespace: str,
    entries: Sequence[_Entry],
) -> list[Any]:
    """The entries with the triggers from `source` added or updated for the named (or only) containers."""
    available = _container_names(body, workload.kind)
    names = list(edit.containers)
    if not names:
        if len(available) != 1:
            raise CliError("you must specify --containers when setting --from-image")
        names = list(available)
    missing = sorted(set(names) - set(available))
    if missing:
        raise CliError(f"not all container names exist: {', '.join(missing)} (accepts: {', '.join(sorted(available))})")
    after = [entry.raw for entry in entries]
    for name in names:
        reference: dict[str, Any] = {"kind": "ImageStreamTag", "name": source.name}
        if source.namespace:
            reference["namespace"] = source.namespace
        written = {"from": reference, "fieldPath": FieldPath(available[name], None, name).render(workload.kind)}
        owners = [position for position, entry in enumerate(entries) if entry.container == name]
        for position in owners:
            entry = entries[position]
            if not _matches(entry, source, namespace):
                suffix = f" (trigger {entry.ignored.position}, which OpenShift ignores)" if entry.ignored else ""
                raise CliError(f"only one trigger may reference each container: {name}{suffix}")
            # oc writes every entry back in its own form; an ignored entry for this tag and container becomes
            # a trigger that works, the others keep what they carry.
            after[position] = _set_paused(entry.raw if entry.ignored is None else written, edit.manual)
        if not owners:
            after.append(_set_paused(written, edit.manual))
    return after


def _encode(entries: Sequence[Any]) -> str | None:
    return json.dumps(list(entries), separators=(",", ":")) if entries else None

"""`oc set triggers` for annotation-triggered workloads: list and edit `image.openshift.io/triggers`. Pure.

Entries are written as `oc set triggers` writes them: one per container, from an
ImageStreamTag, the fieldPath in the `?(@.name=="NAME")` form, `paused` only when true,
and `from.namespace` only when it differs from the workload's.
"""

from __future__ import annotations

import copy
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
    Trigger,
    TriggerError,
    parse_triggers,
    pod_spec,
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


def _trigger_container(body: Mapping[str, Any], kind: WorkloadKind, trigger: Trigger) -> str | None:
    path = trigger.field_path
    if path.name is not None:
        return path.name
    containers = pod_spec(body, kind).get(path.container_list) or []
    index = path.index if path.index is not None else 0
    if index < len(containers) and isinstance(containers[index], Mapping):
        name = containers[index].get("name")
        return name if isinstance(name, str) else None
    return None


def _current(body: Mapping[str, Any], kind: WorkloadKind, namespace: str) -> tuple[list[dict[str, Any]], list[Trigger]]:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(TRIGGERS_ANNOTATION)
    if value is None:
        return [], []
    triggers = parse_triggers(value, kind, namespace)
    return [dict(entry) for entry in json.loads(value)], triggers


def trigger_rows(workload: WorkloadRef, body: Mapping[str, Any], namespace: str) -> list[list[str]]:
    """The rows `oc set triggers` prints for a workload: the config trigger, then one per image trigger."""
    name = workload.resource
    config_auto = not bool((body.get("spec") or {}).get("paused")) if workload.kind == WorkloadKind.DEPLOYMENT else True
    rows = [[name, "config", "", _bool(config_auto)]]
    try:
        _, triggers = _current(body, workload.kind, namespace)
    except TriggerError:
        return [[name, "<error>", "", "false"]]
    for trigger in triggers:
        container = _trigger_container(body, workload.kind, trigger)
        if container is None:  # an index past the end of the list: shown as written
            container = f"{trigger.field_path.container_list}[{trigger.field_path.index}]"
        source = f"{trigger.stream}:{trigger.tag}"
        if trigger.namespace != namespace:
            source = f"{trigger.namespace}/{source}"
        rows.append([name, "image", f"{source} ({container})", _bool(not trigger.paused)])
    return rows


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _set_paused(entry: dict[str, Any], paused: bool) -> None:
    if paused:
        entry["paused"] = True
    else:
        entry.pop("paused", None)


def _matches(trigger: Trigger, source: ImageSource, namespace: str) -> bool:
    return f"{trigger.stream}:{trigger.tag}" == source.name and trigger.namespace == (source.namespace or namespace)


def edit_triggers(workload: WorkloadRef, body: Mapping[str, Any], edit: TriggerEdit, namespace: str) -> str | None:
    """The new annotation value after `edit` (None: remove the annotation).

    --from-image sets, for each named container (default: the only container), a trigger
    from that tag, automatic unless --manual; a container already triggered by another tag
    is an error, as in oc. --remove drops the tag's triggers (only for the named containers
    when -c is given). --auto/--manual alone switch every trigger.
    """
    if edit.remove_all:
        return None
    try:
        entries, triggers = _current(body, workload.kind, namespace)
    except TriggerError as error:
        raise CliError(
            f"the {TRIGGERS_ANNOTATION} annotation of {workload.qualified} is not valid: {error}; "
            "correct it, or start again with --remove-all"
        ) from None
    entries = copy.deepcopy(entries)
    if not edit.from_image:
        for entry in entries:
            _set_paused(entry, edit.manual)
        return _encode(entries)
    source = parse_from_image(edit.from_image, namespace)
    containers = [_trigger_container(body, workload.kind, trigger) for trigger in triggers]
    if edit.remove:
        kept = [
            entry
            for entry, trigger, container in zip(entries, triggers, containers, strict=True)
            if not (_matches(trigger, source, namespace) and (not edit.containers or container in edit.containers))
        ]
        return _encode(kept)
    _set_from_image(workload, body, edit, source, namespace, entries, triggers, containers)
    return _encode(entries)


def _set_from_image(  # noqa: PLR0917 - one private helper of edit_triggers
    workload: WorkloadRef,
    body: Mapping[str, Any],
    edit: TriggerEdit,
    source: ImageSource,
    namespace: str,
    entries: list[dict[str, Any]],
    triggers: Sequence[Trigger],
    containers: Sequence[str | None],
) -> None:
    """Add or update, in `entries`, the triggers from `source` for the named (or only) containers."""
    available = _container_names(body, workload.kind)
    names = list(edit.containers)
    if not names:
        if len(available) != 1:
            raise CliError("you must specify --containers when setting --from-image")
        names = list(available)
    missing = sorted(set(names) - set(available))
    if missing:
        raise CliError(f"not all container names exist: {', '.join(missing)} (accepts: {', '.join(sorted(available))})")
    existing = list(zip(entries, triggers, containers, strict=True))
    for name in names:
        owners = [(entry, trigger) for entry, trigger, container in existing if container == name]
        if any(not _matches(trigger, source, namespace) for _, trigger in owners):
            raise CliError(f"only one trigger may reference each container: {name}")
        if owners:
            for entry, _ in owners:
                _set_paused(entry, edit.manual)
            continue
        reference: dict[str, Any] = {"kind": "ImageStreamTag", "name": source.name}
        if source.namespace:
            reference["namespace"] = source.namespace
        entry = {"from": reference, "fieldPath": FieldPath(available[name], None, name).render(workload.kind)}
        _set_paused(entry, edit.manual)
        entries.append(entry)


def _encode(entries: Sequence[Mapping[str, Any]]) -> str | None:
    return json.dumps(list(entries), separators=(",", ":")) if entries else None

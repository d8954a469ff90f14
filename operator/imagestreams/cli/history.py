"""A tag's history with the workloads that use each image, and pinning a tag to an earlier image. Pure.

`rollback` points the spec tag at `ImageStreamImage <stream>@<digest>` (so the operator
copies that image to the top of the history and triggered workloads follow it) and keeps
the tag's original source in the spec tag annotation `imagestreams.dev/rolled-back-from`;
`resume` puts that source back.
"""

from __future__ import annotations

import copy
import datetime
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagestreams.api.imagestream import ImageStream, TagEvent
from imagestreams.cli.describe import istag_not_found, spec_tags, status_tags, stream_name, stream_namespace
from imagestreams.cli.errors import CliError
from imagestreams.cli.humanize import age, parse_time
from imagestreams.cli.tabwriter import table
from imagestreams.cli.tagging import ROLLED_BACK_ANNOTATION, with_tag
from imagestreams.core.jsonlimits import load_json
from imagestreams.core.triggers import (
    CONTAINERS,
    INIT_CONTAINERS,
    TRIGGERS_ANNOTATION,
    TriggerError,
    parse_triggers,
    pod_spec,
    trigger_container,
)
from imagestreams.core.workloadkinds import WorkloadKind

IMAGE_STREAM_IMAGE = "ImageStreamImage"


@dataclass(frozen=True)
class ContainerUse:
    """One container of a workload: its image and whether a trigger on the tag sets it."""

    workload: str  # "deployment/web"
    container: str
    image: str
    several_containers: bool
    follows: bool  # a trigger on this tag names the container
    paused: bool  # ... and that trigger is paused

    @property
    def label(self) -> str:
        text = f"{self.workload} ({self.container})" if self.several_containers else self.workload
        return f"{text} [trigger paused]" if self.paused else text


def container_uses(
    workloads: Sequence[tuple[WorkloadKind, Mapping[str, Any]]], namespace: str, stream: str, tag: str
) -> list[ContainerUse]:
    """Every container of the workloads, with what a trigger on `stream:tag` does to it."""
    uses: list[ContainerUse] = []
    for kind, body in workloads:
        name = str((body.get("metadata") or {}).get("name", ""))
        label = f"{kind.value.lower()}/{name}"
        spec = pod_spec(body, kind)
        containers = [
            (list_name, container)
            for list_name in (CONTAINERS, INIT_CONTAINERS)
            for container in spec.get(list_name) or []
            if isinstance(container, Mapping)
        ]
        following: dict[tuple[str, str], bool] = {}
        annotation = ((body.get("metadata") or {}).get("annotations") or {}).get(TRIGGERS_ANNOTATION)
        if annotation is not None:
            try:
                # Entries OpenShift ignores set no container, so they follow nothing.
                triggers = parse_triggers(annotation, kind, namespace).triggers
            except TriggerError:
                triggers = ()
            for trigger in triggers:
                if (trigger.namespace, trigger.stream, trigger.tag) != (namespace, stream, tag):
                    continue
                found = trigger_container(body, kind, trigger.field_path) if trigger.field_path else None
                if found is not None:
                    # Paused only when every trigger on this tag that selects the container is.
                    following[found] = following.get(found, True) and trigger.paused
        for list_name, container in containers:
            container_name = str(container.get("name", ""))
            key = (list_name, container_name)
            uses.append(
                ContainerUse(
                    workload=label,
                    container=container_name,
                    image=str(container.get("image", "")),
                    several_containers=len(containers) > 1,
                    follows=key in following,
                    paused=following.get(key, False),
                )
            )
    return uses


def _uses_item(image: str, item: TagEvent) -> bool:
    if image == item.docker_image_reference:
        return True
    return bool(item.image) and image.endswith(f"@{item.image}")


@dataclass(frozen=True)
class HistoryRow:
    index: int
    item: TagEvent
    age: str
    used_by: tuple[str, ...]


@dataclass(frozen=True)
class History:
    stream: str
    tag: str
    rows: tuple[HistoryRow, ...]
    not_yet_following: tuple[str, ...]  # triggered containers on none of the history's images
    rolled_back_from: Mapping[str, Any] | None  # the saved source while the tag is pinned by `rollback`


def tag_items(stream: ImageStream, tag: str) -> list[TagEvent]:
    """The tag's history, newest first; NotFound as OpenShift words it when the tag does not exist."""
    entry = status_tags(stream).get(tag)
    if entry is None and tag not in spec_tags(stream):
        raise istag_not_found(stream_name(stream), tag)
    return list((entry.items if entry else None) or [])


def rolled_back_from(stream: ImageStream, tag: str) -> dict[str, Any] | None:
    spec = spec_tags(stream).get(tag)
    value = ((spec.annotations if spec else None) or {}).get(ROLLED_BACK_ANNOTATION)
    if value is None:
        return None
    try:
        saved = load_json(value)
    except ValueError:
        return None
    return saved if isinstance(saved, dict) else None


def tag_history(stream: ImageStream, tag: str, uses: Sequence[ContainerUse], now: datetime.datetime) -> History:
    """Each history entry with the containers that run its image (each container on its newest match only)."""
    items = tag_items(stream, tag)
    assigned: dict[int, list[str]] = {}
    matched: set[int] = set()
    for number, use in enumerate(uses):
        for index, item in enumerate(items):
            if _uses_item(use.image, item):
                assigned.setdefault(index, []).append(use.label)
                matched.add(number)
                break
    rows = tuple(
        HistoryRow(index, item, age(parse_time(item.created), now), tuple(assigned.get(index, [])))
        for index, item in enumerate(items)
    )
    pending = tuple(use.label for number, use in enumerate(uses) if use.follows and number not in matched)
    return History(stream_name(stream), tag, rows, pending, rolled_back_from(stream, tag))


def history_table(history: History) -> str:
    """The table `history` prints, with notes about triggers and a rollback after it."""
    rows = [["#", "AGE", "IMAGE", "USED BY"]]
    for row in history.rows:
        image = row.item.image or row.item.docker_image_reference
        rows.append([str(row.index), row.age, image, ", ".join(row.used_by) or "<none>"])
    text = table(rows)
    if not history.rows:
        text += f"{history.stream}:{history.tag} has no images yet\n"
    if history.not_yet_following:
        text += (
            f"Triggers on {history.stream}:{history.tag} whose containers run none of these images: "
            f"{', '.join(history.not_yet_following)}\n"
        )
    if history.rolled_back_from is not None:
        text += (
            f"{history.stream}:{history.tag} is pinned by a rollback; to follow its source again run: "
            f"kubectl imagestream resume {history.stream}:{history.tag}\n"
        )
    return text


def history_document(history: History) -> dict[str, Any]:
    """The history as data, for -o json|yaml."""
    return {
        "stream": history.stream,
        "tag": history.tag,
        "items": [
            {
                "index": row.index,
                "created": row.item.created,
                "image": row.item.image,
                "dockerImageReference": row.item.docker_image_reference,
                "generation": row.item.generation,
                "usedBy": list(row.used_by),
            }
            for row in history.rows
        ],
        "triggersNotYetApplied": list(history.not_yet_following),
        "rolledBackFrom": history.rolled_back_from,
    }


# --- rollback and resume ---------------------------------------------------------------------------------------


def choose_entry(stream: ImageStream, tag: str, to: str | None) -> tuple[int, TagEvent]:
    """The history entry to pin to: the previous one by default, `--to N` (0 is the newest) or a digest (prefix)."""
    items = tag_items(stream, tag)
    name = f"{stream_name(stream)}:{tag}"
    if to is None:
        if len(items) < 2:
            entries = "entry" if len(items) == 1 else "entries"
            raise CliError(f"{name} has no earlier image to roll back to (its history has {len(items)} {entries})")
        index = 1
    elif to.isdigit():
        index = int(to)
        if index >= len(items):
            raise CliError(f"{name} has history entries 0 to {len(items) - 1}; there is no entry {index}")
    else:
        wanted = (to, f"sha256:{to}") if ":" not in to else (to,)
        matches = [i for i, item in enumerate(items) if item.image and item.image.startswith(wanted)]
        digests = sorted({items[i].image for i in matches})
        if not matches:
            raise CliError(f"no entry in the history of {name} has the image {json.dumps(to)}")
        if len(digests) > 1:
            raise CliError(f"{json.dumps(to)} matches {len(digests)} images of {name}: {', '.join(digests)}")
        index = matches[0]
    item = items[index]
    if not item.image:
        raise CliError(
            f"entry {index} of {name} has no image digest (the tag is a reference), so the tag cannot be pinned to it"
        )
    return index, item


def parse_stream_tag(text: str) -> tuple[str, str]:
    """`NAME:TAG` of history, rollback and resume; the tag defaults to latest."""
    stream, _, tag = text.partition(":")
    if not stream or "@" in text:
        raise CliError(f'"{text}" must be of the form <stream_name>:<tag>')
    return stream, tag or "latest"


def find_spec_tag(body: Mapping[str, Any], stream: str, tag: str) -> dict[str, Any]:
    """The spec tag as written; NotFound in the API server's words when the stream has none of that name."""
    for raw in (body.get("spec") or {}).get("tags") or []:
        if raw.get("name") == tag:
            return dict(raw)
    raise istag_not_found(stream, tag)


def spec_tag_patch(body: Mapping[str, Any], new_tag: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch replacing the spec tag of that name (spec.tags is a list, so the whole list is written)."""
    return {"spec": {"tags": with_tag((body.get("spec") or {}).get("tags") or [], new_tag)}}


def _saved_source(raw: Mapping[str, Any]) -> dict[str, Any]:
    saved: dict[str, Any] = {"from": raw.get("from")}
    if raw.get("importPolicy"):
        saved["importPolicy"] = raw["importPolicy"]
    if raw.get("reference"):
        saved["reference"] = True
    return saved


def rollback_spec_tag(raw: Mapping[str, Any], stream: str, digest: str) -> dict[str, Any]:
    """The spec tag pinned to `<stream>@<digest>`, remembering the source it had (a second rollback keeps it)."""
    tag = copy.deepcopy(dict(raw))
    annotations = dict(tag.get("annotations") or {})
    if ROLLED_BACK_ANNOTATION not in annotations:
        annotations[ROLLED_BACK_ANNOTATION] = json.dumps(_saved_source(raw), sort_keys=True, separators=(",", ":"))
    tag["annotations"] = annotations
    tag["from"] = {"kind": IMAGE_STREAM_IMAGE, "name": f"{stream}@{digest}"}
    tag.pop("reference", None)
    policy = dict(tag.get("importPolicy") or {})
    policy.pop("scheduled", None)  # only container image sources may be scheduled
    if policy:
        tag["importPolicy"] = policy
    else:
        tag.pop("importPolicy", None)
    return tag


def resume_spec_tag(raw: Mapping[str, Any], stream: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The spec tag with the source saved by `rollback` restored, and that saved source."""
    name = f"{stream}:{raw.get('name')}"
    value = (raw.get("annotations") or {}).get(ROLLED_BACK_ANNOTATION)
    if value is None:
        raise CliError(
            f"{name} is not pinned by a rollback (its spec tag has no {ROLLED_BACK_ANNOTATION} annotation); "
            "use the tag command to set its source"
        )
    try:
        saved = load_json(value)
    except ValueError:
        saved = None
    if not isinstance(saved, dict):
        raise CliError(
            f"the {ROLLED_BACK_ANNOTATION} annotation of {name} is not a JSON object; set the source with tag"
        )
    tag = copy.deepcopy(dict(raw))
    annotations = {key: val for key, val in (tag.get("annotations") or {}).items() if key != ROLLED_BACK_ANNOTATION}
    if annotations:
        tag["annotations"] = annotations
    else:
        tag.pop("annotations", None)
    for key in ("from", "importPolicy", "reference"):
        if saved.get(key) is not None:
            tag[key] = saved[key]
        else:
            tag.pop(key, None)
    return tag, saved


def describe_source(saved: Mapping[str, Any], namespace: str) -> str:
    source = saved.get("from") or {}
    name = str(source.get("name") or "")
    source_namespace = source.get("namespace")
    if source_namespace and source_namespace != namespace:
        name = f"{source_namespace}/{name}"
    return name or "no source"


def tag_command(saved: Mapping[str, Any], stream: str, tag: str, namespace: str) -> str | None:
    """The `kubectl imagestream tag` command equivalent to resuming, when the saved source has one."""
    source = saved.get("from") or {}
    kind = source.get("kind")
    name = str(source.get("name") or "")
    if not kind or not name:
        return None
    policy = saved.get("importPolicy") or {}
    words = ["kubectl", "imagestream", "tag"]
    if kind == "DockerImage":
        words.append("--source=docker")
        if policy.get("scheduled"):
            words.append("--scheduled")
        if policy.get("insecure"):
            words.append("--insecure")
        if saved.get("reference"):
            words.append("--reference")
    elif kind == "ImageStreamTag":
        words.append("--alias" if ":" not in name or name.startswith(f"{stream}:") else "--source=istag")
        if ":" not in name:
            name = f"{stream}:{name}"
    else:
        words.append("--source=isimage")
    if policy.get("importMode"):
        words.append(f"--import-mode={policy['importMode']}")
    source_namespace = source.get("namespace")
    if source_namespace and source_namespace != namespace:
        name = f"{source_namespace}/{name}"
    words += [name, f"{stream}:{tag}"]
    return shlex.join(words)


def rollback_message(
    stream: ImageStream, tag: str, index: int, item: TagEvent, saved: Mapping[str, Any], *, already_pinned: bool
) -> str:
    name = stream_name(stream)
    namespace = stream_namespace(stream)
    text = f"Tag {name}:{tag} set to {name}@{item.image} (history entry {index}).\n"
    if not already_pinned:
        text += f"It no longer follows {describe_source(saved, namespace)}. "
    text += f"To follow {describe_source(saved, namespace)} again, run:\n  kubectl imagestream resume {name}:{tag}\n"
    command = tag_command(saved, name, tag, namespace)
    if command:
        text += f"or:\n  {command}\n"
    return text

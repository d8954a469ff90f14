"""Naming workloads on the command line, and the image lookup (`resolve-names`) setting on them. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagestreams.cli.errors import CliError
from imagestreams.core.lookup import RESOLVE_ALL_NAMES, RESOLVE_NAMES_ANNOTATION, resolves_all_names
from imagestreams.core.triggers import POD_SPEC_PATHS
from imagestreams.core.workloadkinds import WORKLOAD_TYPES, WorkloadKind

# Every name kubectl accepts for a workload kind: kind, plural and short names, each also with its API group.
WORKLOAD_NAMES: dict[str, WorkloadKind] = {
    f"{name}{suffix}": workload.kind
    for workload in WORKLOAD_TYPES.values()
    for name in (workload.kind.value.lower(), workload.plural, *workload.short_names)
    for suffix in ("", f".{workload.group}")
}
STREAM_TYPES = frozenset(
    {"is", "imagestream", "imagestreams", "imagestream.image.openshift.io", "imagestreams.image.openshift.io"}
)
_PLURALS = [workload.plural for workload in WORKLOAD_TYPES.values()]
SUPPORTED = f"{', '.join(_PLURALS[:-1])} and {_PLURALS[-1]}"


@dataclass(frozen=True)
class WorkloadRef:
    kind: WorkloadKind
    name: str

    @property
    def resource(self) -> str:
        """`deployments/web`, as `oc set` prints names in its tables."""
        return f"{WORKLOAD_TYPES[self.kind].plural}/{self.name}"

    @property
    def qualified(self) -> str:
        """`deployment.apps/web`, as kubectl prints a name after a change."""
        return f"{WORKLOAD_TYPES[self.kind].qualified}/{self.name}"


def split_type_name(text: str) -> tuple[str, str]:
    """`TYPE/NAME` into its parts; ("", NAME) without a slash."""
    kind, slash, name = text.partition("/")
    if not slash:
        return "", text
    if not kind or not name or "/" in name:
        raise CliError(f"arguments in resource/name form must have a single resource and name: {json.dumps(text)}")
    return kind, name


def parse_workload(text: str, verb: str) -> WorkloadRef:
    """`deployment/web`, `deploy/web`, `statefulsets.apps/db`, `cj/nightly`, ..."""
    kind_text, name = split_type_name(text)
    if not kind_text:
        raise CliError(f"{verb} needs TYPE/NAME, e.g. deployment/{name} ({SUPPORTED} are supported)")
    kind = WORKLOAD_NAMES.get(kind_text.lower())
    if kind is None:
        raise CliError(f"{kind_text}/{name} does not support {verb}: only {SUPPORTED} do")
    return WorkloadRef(kind, name)


def workload_ref(kind: WorkloadKind, body: Mapping[str, Any]) -> WorkloadRef:
    return WorkloadRef(kind, str(body["metadata"]["name"]))


def parse_types(texts: Sequence[str]) -> list[str]:
    """Resource types as kubectl takes them with a selector: `deploy,sts` or `deploy sts`; never TYPE/NAME."""
    types: list[str] = []
    for text in texts:
        for kind in text.split(","):
            if "/" in kind:
                raise CliError("name cannot be provided when a selector is specified")
            if kind:
                types.append(kind)
    return types


def parse_workload_types(texts: Sequence[str], verb: str) -> tuple[WorkloadKind, ...]:
    """The workload kinds named for a selector (`deployments`, `deploy,sts`, `cronjobs.batch`), in order."""
    types = parse_types(texts)
    if not types:
        raise CliError(f"-l selects among resources of a type: name one or more of {SUPPORTED}")
    kinds: list[WorkloadKind] = []
    for text in types:
        kind = WORKLOAD_NAMES.get(text.lower())
        if kind is None:
            raise CliError(f"{text} does not support {verb}: only {SUPPORTED} do")
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def template_metadata_path(kind: WorkloadKind) -> tuple[str, ...]:
    """Where the pod template's metadata is, e.g. ("spec", "template", "metadata")."""
    return (*POD_SPEC_PATHS[kind][:-1], "metadata")


def lookup_enabled(body: Mapping[str, Any], kind: WorkloadKind) -> bool:
    """Whether the workload asks for all its images to be resolved through streams (oc's LOCAL column): the
    annotation on its pod template or on itself, as admission reads it."""
    return resolves_all_names(body, POD_SPEC_PATHS[kind])


def lookup_patch(kind: WorkloadKind, enabled: bool) -> dict[str, Any]:
    """A merge patch setting (or removing) the resolve-names annotation on the pod template, as oc does."""
    node: dict[str, Any] = {"annotations": {RESOLVE_NAMES_ANNOTATION: RESOLVE_ALL_NAMES if enabled else None}}
    for key in reversed(template_metadata_path(kind)):
        node = {key: node}
    return node


def stream_lookup_local(body: Mapping[str, Any]) -> bool:
    """spec.lookupPolicy.local of a stream."""
    return bool(((body.get("spec") or {}).get("lookupPolicy") or {}).get("local"))


def stream_lookup_patch(enabled: bool) -> dict[str, Any]:
    return {"spec": {"lookupPolicy": {"local": enabled}}}

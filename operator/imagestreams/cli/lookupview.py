"""What image lookup does, as the plugin shows it: per tag of a stream, per container of a workload. Pure.

The decision is core/lookup.py's, the one the operator's admission webhook makes; this module only asks it and
puts the answer into words. A stream's tags are shown as what a new Pod naming `STREAM:TAG` would get; a workload's
containers as what its images would become if it were created now with the streams its namespace has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagestreams.cli.tabwriter import tabwrite
from imagestreams.core.lookup import ContainerLookup, LookupDecision, LookupResult, StreamReader, decide_lookup
from imagestreams.core.references import DEFAULT_TAG
from imagestreams.core.tagorder import prioritize_tags
from imagestreams.core.workloadkinds import WORKLOAD_TYPES, WorkloadKind

POD = ("", "pods")
NONE = "<none>"
# Every tag of a stream, when they all share one outcome (local lookup is off): `app:*`.
ANY_TAG = "*"


@dataclass(frozen=True)
class LookupLine:
    """One image and what lookup does with it."""

    image: str  # as written in a container, or the short name a container would write for a stream's tag
    lookup: str  # "resolved to X", "left: why" or "failed: why"
    container: str = NONE  # the container's name; none for a stream's tag


def lookup_text(container: ContainerLookup) -> str:
    """`resolved to X` (`(as written)` when X is already the image), `left: why`, or `failed: why`."""
    if container.result is LookupResult.RESOLVED:
        return f"resolved to {container.resolved}" + ("" if container.rewrite else " (as written)")
    return f"{container.result.value}: {container.reason}"


def _tag_names(body: Mapping[str, Any]) -> list[str]:
    """Every tag the stream has in spec or status, in OpenShift's order (latest, versions newest first, the rest)."""
    spec_tags = (body.get("spec") or {}).get("tags") or []
    status_tags = (body.get("status") or {}).get("tags") or []
    names = {str(tag.get("name")) for tag in spec_tags if tag.get("name")}
    names |= {str(tag.get("tag")) for tag in status_tags if tag.get("tag")}
    return prioritize_tags(names)


def stream_lookups(body: Mapping[str, Any]) -> list[LookupLine]:
    """What a new Pod of the stream's namespace naming each tag (`app:v1`), or `app` when it has none, would get.

    The decision admission makes for such a Pod, asked for all tags at once; the reader hands out this stream only,
    as a short name names no other. When every tag is left for the same reason (the stream's lookup is off), one line
    `app:*` says so.
    """
    metadata = body.get("metadata") or {}
    name, namespace = str(metadata.get("name", "")), str(metadata.get("namespace", ""))
    tags = _tag_names(body) or [DEFAULT_TAG]
    pod = {"spec": {"containers": [{"name": tag, "image": f"{name}:{tag}"} for tag in tags]}}
    decision = decide_lookup(POD, pod, None, namespace, lambda wanted: body if wanted == name else None)
    examined = decision.containers
    reasons = {(container.result, container.reason) for container in examined}
    if len(examined) > 1 and len(reasons) == 1 and examined[0].result is not LookupResult.RESOLVED:
        return [LookupLine(f"{name}:{ANY_TAG}", lookup_text(examined[0]))]
    return [LookupLine(container.image, lookup_text(container)) for container in examined]


def workload_decision(
    kind: WorkloadKind, body: Mapping[str, Any], namespace: str, read_stream: StreamReader
) -> LookupDecision:
    """The decision admission would make if the workload were created now, as it is, in `namespace`."""
    workload = WORKLOAD_TYPES[kind]
    return decide_lookup((workload.group, workload.plural), body, None, namespace, read_stream)


def workload_lookups(
    kind: WorkloadKind, body: Mapping[str, Any], namespace: str, read_stream: StreamReader
) -> list[LookupLine]:
    """Per container (init containers first, as admission walks them), what its image would become."""
    decision = workload_decision(kind, body, namespace, read_stream)
    if decision.skipped:
        return [LookupLine(NONE, f"{LookupResult.LEFT.value}: {decision.skipped}")]
    if not decision.containers:
        return [LookupLine(NONE, f"{LookupResult.LEFT.value}: no containers")]
    return [
        LookupLine(container.image or NONE, lookup_text(container), container.name or NONE)
        for container in decision.containers
    ]


def lookup_section(lines: Sequence[LookupLine]) -> str:
    """The `Lookup:` section `describe is --show-lookup` ends a stream's description with, in oc's tab layout."""
    rows = "".join(f"  {line.image}\t{line.lookup}\n" for line in lines)
    return tabwrite(f"Lookup:\n{rows}")

"""`set-image-lookup` (`set image-lookup`): spec.lookupPolicy.local of streams, or resolve-names on workloads.

Its tables keep oc's NAME and LOCAL columns and add what lookup does: IMAGE (a stream's short names, or each
container's image, under CONTAINER) and LOOKUP (`resolved to X`, `left: why`, `failed: why`), from the decision the
operator's admission webhook makes (core/lookup.py through cli/lookupview.py).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagestreams.cli.context import Context
from imagestreams.cli.describe import stream_not_found
from imagestreams.cli.edits import Edit, merge_patch
from imagestreams.cli.errors import CliError
from imagestreams.cli.flags import add_dry_run_flag, add_output_flag, add_selector_flag
from imagestreams.cli.lookupview import LookupLine, stream_lookups, workload_lookups
from imagestreams.cli.tabwriter import table
from imagestreams.cli.workloads import (
    STREAM_TYPES,
    SUPPORTED,
    WORKLOAD_NAMES,
    WorkloadRef,
    lookup_enabled,
    lookup_patch,
    parse_types,
    parse_workload,
    split_type_name,
    stream_lookup_local,
    stream_lookup_patch,
    workload_ref,
)
from imagestreams.core.lookup import StreamReader, StreamUnreadable

USAGE = "set-image-lookup [STREAM | TYPE/NAME ... | [TYPE] -l SELECTOR] [--enabled=false] [--list] [flags]"
DESCRIPTION = (
    "Set spec.lookupPolicy.local of image streams, or the alpha.image.policy.openshift.io/resolve-names "
    "annotation on a workload's pod template. Without arguments (or with --list), show the setting and what "
    "lookup does with each stream's tags or each container's image; after a change, show it for what changed."
)
EXAMPLES = """\
Examples:
  # Whether each stream of the namespace resolves short names, and what each tag resolves to
  kubectl imagestream set-image-lookup
  # Resolve "app:latest" in this namespace's workloads through the stream app
  kubectl imagestream set-image-lookup app
  # Every stream labelled team=web
  kubectl imagestream set-image-lookup -l team=web
  # Resolve every image of a deployment through streams; show what each container's image would become
  kubectl imagestream set-image-lookup deployment/web
  kubectl imagestream set-image-lookup deployment/web --list
  # Turn it off
  kubectl imagestream set-image-lookup app --enabled=false"""

Target = str | WorkloadRef  # a stream name, or a workload


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", metavar="NAME", nargs="*", help="streams or TYPE/NAME; with -l, types (default is)")
    parser.add_argument(
        "--enabled", action=argparse.BooleanOptionalAction, default=True, help="turn lookup on (default) or off"
    )
    parser.add_argument("--list", action="store_true", help="show the setting instead of changing it")
    parser.add_argument("--all", action="store_true", help="every stream of the namespace")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="list the streams of all namespaces")
    add_selector_flag(parser, "the streams, or the workloads of the given types, with these labels")
    add_dry_run_flag(parser, "client: print what would be written; server: let the API server check it too")
    add_output_flag(parser, "print the changed objects")


def run(ctx: Context) -> int:
    args = ctx.args
    namespace = ctx.namespace
    listing = args.list or (not args.names and not args.selector and not args.all and ctx.output is None)
    if listing and not args.names and not args.selector:
        ctx.out(table(_namespace_rows(ctx), padding=2, minwidth=0))
        return 0
    targets = _selected(ctx) if args.selector else _named(args.names)
    if args.selector and not targets:
        ctx.err(f"No resources found in {namespace} namespace.\n")
        return 0
    if listing:
        ctx.out(table(_target_rows(ctx, targets), padding=2, minwidth=0))
        return 0
    if not targets:
        targets = [body["metadata"]["name"] for body in ctx.kube.list_streams(namespace)]
    changed = []
    made: list[tuple[Target, dict[str, Any]]] = []  # each object as the change makes it
    for item in targets:
        if isinstance(item, WorkloadRef):
            decide_workload = functools.partial(set_workload_lookup, kind=item, enabled=args.enabled)
            edited = ctx.kube.edit_workload(item.kind, namespace, item.name, decide_workload, dry_run=ctx.dry_run)
            name = item.qualified
        else:
            decide_stream = functools.partial(set_stream_lookup, name=item, enabled=args.enabled)
            edited = ctx.kube.edit_stream(namespace, item, decide_stream, dry_run=ctx.dry_run)
            name = f"imagestream.image.openshift.io/{item}"
        changed.append(edited.body)
        made.append((item, edited.result))
        if ctx.output is None:
            ctx.out(f"{name} image lookup updated{ctx.dry_run.note()}\n")
    if ctx.output is None and made:
        # oc stops at the lines above; what lookup now does follows them, so scripts reading those lines still work.
        ctx.out("\n" + table(_rows_after_change(ctx, made), padding=2, minwidth=0))
    ctx.emit(changed)
    return 0


def _rows_after_change(ctx: Context, made: Sequence[tuple[Target, dict[str, Any]]]) -> list[list[str]]:
    """What lookup does once all the changes are made: a workload's containers see the streams this command changed
    as it made them (on a dry run too), and the rest as stored."""
    changed_streams = {item: body for item, body in made if not isinstance(item, WorkloadRef)}
    read_stream = stream_reader(ctx, changed_streams)
    shown = [
        shown_workload(item, body, ctx.namespace, read_stream) if isinstance(item, WorkloadRef) else shown_stream(body)
        for item, body in made
    ]
    return lookup_rows(shown, with_containers=any(isinstance(item, WorkloadRef) for item, _ in made))


def set_stream_lookup(body: dict[str, Any] | None, *, name: str, enabled: bool) -> Edit[dict[str, Any]]:
    """The patch, and the stream as it makes it (what lookup is then shown for)."""
    if body is None:
        raise stream_not_found(name)
    patch = stream_lookup_patch(enabled)
    return Edit(merge_patch(body, patch), patch=patch)


def set_workload_lookup(body: dict[str, Any], *, kind: WorkloadRef, enabled: bool) -> Edit[dict[str, Any]]:
    """The patch, and the workload as it makes it: lookup is shown for that, not for the object the server returns,
    whose images the admission webhook may already have rewritten by then."""
    patch = lookup_patch(kind.kind, enabled)
    return Edit(merge_patch(body, patch), patch=patch)


def _named(names: Sequence[str]) -> list[Target]:
    """Stream names (plain or is/NAME) and workload references, in order."""
    targets: list[Target] = []
    for text in names:
        kind, name = split_type_name(text)
        targets.append(name if not kind or kind.lower() in STREAM_TYPES else parse_workload(text, "image lookup"))
    return targets


def _selected(ctx: Context) -> list[Target]:
    """The objects of the named types (image streams when none) that match -l."""
    types = parse_types(ctx.args.names) or ["imagestreams"]
    targets: list[Target] = []
    workload_kinds = []
    for text in types:
        if text.lower() in STREAM_TYPES:
            targets += [body["metadata"]["name"] for body in ctx.kube.list_streams(ctx.namespace, ctx.args.selector)]
        else:
            kind = WORKLOAD_NAMES.get(text.lower())
            if kind is None:
                raise CliError(f"{text} does not support image lookup: only image streams, {SUPPORTED} do")
            workload_kinds.append(kind)
    for kind, body in ctx.kube.list_workloads(ctx.namespace, tuple(workload_kinds), ctx.args.selector):
        targets.append(workload_ref(kind, body))
    return targets


@dataclass(frozen=True)
class Shown:
    """One object of a listing: its name as oc prints it, its LOCAL setting, and what lookup does with its images."""

    name: str
    local: bool
    lines: Sequence[LookupLine]
    namespace: str = ""


def shown_stream(body: Mapping[str, Any]) -> Shown:
    metadata = body["metadata"]
    return Shown(metadata["name"], stream_lookup_local(body), stream_lookups(body), metadata.get("namespace", ""))


def shown_workload(item: WorkloadRef, body: Mapping[str, Any], namespace: str, read_stream: StreamReader) -> Shown:
    lines = workload_lookups(item.kind, body, namespace, read_stream)
    return Shown(item.resource, lookup_enabled(body, item.kind), lines, namespace)


def lookup_rows(
    shown: Sequence[Shown], *, with_namespace: bool = False, with_containers: bool = False
) -> list[list[str]]:
    """oc's NAME LOCAL (NAMESPACE first with -A), then CONTAINER (when workloads are listed), IMAGE and LOOKUP: one
    row per image, the object's name and setting repeated on each, as `oc set triggers` repeats them per trigger."""
    header = ["NAME", "LOCAL", *(["CONTAINER"] if with_containers else []), "IMAGE", "LOOKUP"]
    rows = [["NAMESPACE", *header] if with_namespace else header]
    for item in shown:
        for line in item.lines:
            row = [item.name, _bool_text(item.local), *([line.container] if with_containers else [])]
            row += [line.image, line.lookup]
            rows.append([item.namespace, *row] if with_namespace else row)
    return rows


def stream_reader(ctx: Context, known: Mapping[str, dict[str, Any]] | None = None) -> StreamReader:
    """Reads the streams of the command's namespace for lookup, each once per command (every workload listed asks
    the same question of the same streams); `known` ones are not read."""
    seen: dict[str, dict[str, Any] | None] = dict(known or {})

    def read(name: str) -> dict[str, Any] | None:
        if name not in seen:
            try:
                seen[name] = ctx.kube.get_stream(ctx.namespace, name)
            except CliError as error:
                # Shown as `failed: ...` on the containers that name it, as the webhook leaves their images.
                raise StreamUnreadable(str(error)) from None
        return seen[name]

    return read


def _namespace_rows(ctx: Context) -> list[list[str]]:
    """The namespace's streams (every namespace's with -A)."""
    every = ctx.args.all_namespaces
    shown = [shown_stream(body) for body in ctx.kube.list_streams(None if every else ctx.namespace)]
    return lookup_rows(shown, with_namespace=every)


def _target_rows(ctx: Context, targets: Sequence[Target]) -> list[list[str]]:
    shown = []
    read_stream = stream_reader(ctx)
    for item in targets:
        if isinstance(item, WorkloadRef):
            body = ctx.kube.get_workload(item.kind, ctx.namespace, item.name)
            shown.append(shown_workload(item, body, ctx.namespace, read_stream))
        else:
            shown.append(shown_stream(ctx.kube.require_stream(ctx.namespace, item)))
    return lookup_rows(shown, with_containers=any(isinstance(item, WorkloadRef) for item in targets))


def _bool_text(value: bool) -> str:
    return "true" if value else "false"

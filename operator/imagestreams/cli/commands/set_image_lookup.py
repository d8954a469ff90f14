"""`set-image-lookup` (`set image-lookup`): spec.lookupPolicy.local of streams, or resolve-names on workloads."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from typing import Any

from imagestreams.cli.context import Context
from imagestreams.cli.describe import stream_not_found
from imagestreams.cli.edits import Edit
from imagestreams.cli.errors import CliError
from imagestreams.cli.flags import add_dry_run_flag, add_output_flag, add_selector_flag
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

USAGE = "set-image-lookup [STREAM | TYPE/NAME ... | [TYPE] -l SELECTOR] [--enabled=false] [--list] [flags]"
DESCRIPTION = (
    "Set spec.lookupPolicy.local of image streams, or the alpha.image.policy.openshift.io/resolve-names "
    "annotation on a workload's pod template. Without arguments (or with --list), show the setting."
)
EXAMPLES = """\
Examples:
  # Whether each stream of the namespace resolves short names
  kubectl imagestream set-image-lookup
  # Resolve "app:latest" in this namespace's workloads through the stream app
  kubectl imagestream set-image-lookup app
  # Every stream labelled team=web
  kubectl imagestream set-image-lookup -l team=web
  # Resolve every image of a deployment through streams, and show the setting
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
    for item in targets:
        if isinstance(item, WorkloadRef):
            decide_workload = functools.partial(set_workload_lookup, kind=item, enabled=args.enabled)
            body = ctx.kube.edit_workload(item.kind, namespace, item.name, decide_workload, dry_run=ctx.dry_run).body
            name = item.qualified
        else:
            decide_stream = functools.partial(set_stream_lookup, name=item, enabled=args.enabled)
            body = ctx.kube.edit_stream(namespace, item, decide_stream, dry_run=ctx.dry_run).body
            name = f"imagestream.image.openshift.io/{item}"
        changed.append(body)
        if ctx.output is None:
            ctx.out(f"{name} image lookup updated{ctx.dry_run.note()}\n")
    ctx.emit(changed)
    return 0


def set_stream_lookup(body: dict[str, Any] | None, *, name: str, enabled: bool) -> Edit[None]:
    if body is None:
        raise stream_not_found(name)
    return Edit(None, patch=stream_lookup_patch(enabled))


def set_workload_lookup(body: dict[str, Any], *, kind: WorkloadRef, enabled: bool) -> Edit[None]:
    return Edit(None, patch=lookup_patch(kind.kind, enabled))


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


def _namespace_rows(ctx: Context) -> list[list[str]]:
    """oc's NAME LOCAL table of the namespace's streams (NAMESPACE first with -A)."""
    every = ctx.args.all_namespaces
    rows = [["NAMESPACE", "NAME", "LOCAL"] if every else ["NAME", "LOCAL"]]
    for body in ctx.kube.list_streams(None if every else ctx.namespace):
        row = [body["metadata"]["name"], _bool_text(stream_lookup_local(body))]
        rows.append([body["metadata"]["namespace"], *row] if every else row)
    return rows


def _target_rows(ctx: Context, targets: Sequence[Target]) -> list[list[str]]:
    rows = [["NAME", "LOCAL"]]
    for item in targets:
        if isinstance(item, WorkloadRef):
            body = ctx.kube.get_workload(item.kind, ctx.namespace, item.name)
            rows.append([item.resource, _bool_text(lookup_enabled(body, item.kind))])
        else:
            rows.append([item, _bool_text(stream_lookup_local(ctx.kube.require_stream(ctx.namespace, item)))])
    return rows


def _bool_text(value: bool) -> str:
    return "true" if value else "false"

"""`set-triggers` (`set triggers`): list or edit the image.openshift.io/triggers annotation of workloads."""

from __future__ import annotations

import argparse
import functools
from typing import Any

from imagestreams.cli.context import Context
from imagestreams.cli.edits import Edit
from imagestreams.cli.errors import UsageError
from imagestreams.cli.flags import add_dry_run_flag, add_output_flag, add_selector_flag
from imagestreams.cli.tabwriter import table
from imagestreams.cli.triggeredit import TriggerEdit, edit_triggers, parse_from_image, trigger_rows, validate_edit
from imagestreams.cli.workloads import WorkloadRef, parse_workload, parse_workload_types, workload_ref
from imagestreams.core.triggers import TRIGGERS_ANNOTATION

USAGE = (
    "set-triggers (TYPE/NAME ... | TYPE -l SELECTOR) [--from-image=STREAM:TAG [-c NAMES]] [--auto|--manual] "
    "[--remove|--remove-all] [flags]"
)
DESCRIPTION = (
    "Show or change the image.openshift.io/triggers annotation of deployments, statefulsets, daemonsets, "
    "cronjobs and jobs: which containers follow which image stream tags."
)
EXAMPLES = """\
Examples:
  # List the triggers of a deployment
  kubectl imagestream set-triggers deployment/web
  # Set container web from the tag app:latest whenever it changes
  kubectl imagestream set-triggers deployment/web --from-image=app:latest -c web
  # Stop (and restart) following the tags, keeping the triggers
  kubectl imagestream set-triggers deployment/web --manual
  kubectl imagestream set-triggers deployment/web --auto
  # Every deployment labelled tier=web follows app:latest; show the result without writing it
  kubectl imagestream set-triggers deployment -l tier=web --from-image=app:latest --dry-run=client -o yaml
  # Remove the triggers from one tag, or all of them
  kubectl imagestream set-triggers deployment/web --remove --from-image=app:latest
  kubectl imagestream set-triggers deployment/web --remove-all"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resources", metavar="TYPE/NAME", nargs="*", help="workloads; with -l, workload types")
    parser.add_argument("--from-image", default="", help="an image stream tag, [namespace/]stream:tag")
    parser.add_argument(
        "-c", "--containers", default="", help="comma-separated containers to set (default: the only container)"
    )
    parser.add_argument("--auto", action="store_true", help="follow the tags (unpause the triggers)")
    parser.add_argument("--manual", action="store_true", help="stop following the tags (pause the triggers)")
    parser.add_argument("--remove", action="store_true", help="remove the triggers of --from-image")
    parser.add_argument("--remove-all", action="store_true", help="remove every trigger")
    add_selector_flag(parser, "the workloads of the given types with these labels")
    add_dry_run_flag(parser, "client: print what would be written; server: let the API server check it too")
    add_output_flag(parser, "print the changed workloads")


def run(ctx: Context) -> int:
    args = ctx.args
    edit = TriggerEdit(
        from_image=args.from_image,
        containers=tuple(name for name in args.containers.split(",") if name),
        auto=args.auto,
        manual=args.manual,
        remove=args.remove,
        remove_all=args.remove_all,
    )
    validate_edit(edit)
    namespace = ctx.namespace
    if args.selector:
        kinds = parse_workload_types(args.resources, "triggers")
        selected = ctx.kube.list_workloads(namespace, kinds, args.selector)
        workloads: list[tuple[WorkloadRef, dict[str, Any] | None]] = [
            (workload_ref(kind, body), body) for kind, body in selected
        ]
        if not workloads:
            ctx.err(f"No resources found in {namespace} namespace.\n")
            return 0
    else:
        if not args.resources:
            raise UsageError(
                "one or more resources must be specified as <resource>/<name>, or <resource> with -l", "set-triggers"
            )
        refs = [parse_workload(text, "triggers") for text in args.resources]
        workloads = [(ref, None) for ref in refs]
    if edit.lists_only:
        rows = [["NAME", "TYPE", "VALUE", "AUTO"]]
        for ref, body in workloads:
            rows += trigger_rows(ref, body or ctx.kube.get_workload(ref.kind, namespace, ref.name), namespace)
        ctx.out(table(rows, padding=2, minwidth=0))
        return 0
    changed = []
    for ref, _ in workloads:
        decide = functools.partial(set_triggers, workload=ref, edit=edit, namespace=namespace)
        edited = ctx.kube.edit_workload(ref.kind, namespace, ref.name, decide, dry_run=ctx.dry_run)
        changed.append(edited.body)
        if not edited.changed:
            ctx.err(f"info: {ref.resource} was not changed\n")
        elif ctx.output is None:
            ctx.out(f"{ref.qualified} triggers updated{ctx.dry_run.note()}\n")
    if edit.from_image and not edit.remove:
        source = parse_from_image(edit.from_image, namespace)
        _warn_missing_tag(ctx, source.namespace or namespace, source.name)
    kinds_written = {ref.kind for ref, _ in workloads}
    ctx.emit(changed, next(iter(kinds_written)).value if len(kinds_written) == 1 else None)
    return 0


def set_triggers(body: dict[str, Any], *, workload: WorkloadRef, edit: TriggerEdit, namespace: str) -> Edit[None]:
    """The annotation after the edit; nothing to write when its value stays as it is."""
    value = edit_triggers(workload, body, edit, namespace)
    current = ((body.get("metadata") or {}).get("annotations") or {}).get(TRIGGERS_ANNOTATION)
    if value == current:
        return Edit(None)
    return Edit(None, patch={"metadata": {"annotations": {TRIGGERS_ANNOTATION: value}}})


def _warn_missing_tag(ctx: Context, namespace: str, stream_tag: str) -> None:
    stream_name, _, tag = stream_tag.partition(":")
    body = ctx.kube.get_stream(namespace, stream_name)
    entries = (body or {}).get("status", {}).get("tags") or []
    spec = ((body or {}).get("spec") or {}).get("tags") or []
    known = any(e.get("tag") == tag for e in entries) or any(t.get("name") == tag for t in spec)
    if body is None or not known:
        ctx.err(
            f"warning: the image stream tag {namespace}/{stream_tag} does not exist yet; "
            "the trigger takes effect when it has an image\n"
        )

"""`history`: a tag's images, newest first, numbered for rollback, with the workloads running each."""

from __future__ import annotations

import argparse

from imagestreams.api.imagestream import ImageStream
from imagestreams.cli.context import Context
from imagestreams.cli.flags import add_output_flag
from imagestreams.cli.history import container_uses, history_document, history_table, parse_stream_tag, tag_history
from imagestreams.core.workloadkinds import WorkloadKind

USAGE = "history NAME:TAG [flags]"
DESCRIPTION = (
    "List the images a tag pointed at (newest first, as numbered for rollback --to) with the "
    "deployments, statefulsets, daemonsets and cronjobs of the namespace whose containers run each."
)
EXAMPLES = """\
Examples:
  # The images app:latest pointed at, newest first, and the workloads running each
  kubectl imagestream history app:latest
  # Only the digests, one a line
  kubectl imagestream history app:latest -o jsonpath='{range .items[*]}{.image}{"\\n"}{end}'"""

_KINDS = (WorkloadKind.DEPLOYMENT, WorkloadKind.STATEFULSET, WorkloadKind.DAEMONSET, WorkloadKind.CRONJOB)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="NAME:TAG")
    add_output_flag(parser, "print the history", formats=("yaml", "json"))


def run(ctx: Context) -> int:
    name, tag = parse_stream_tag(ctx.args.target)
    namespace = ctx.namespace
    stream = ImageStream.model_validate(ctx.kube.require_stream(namespace, name))
    uses = container_uses(ctx.kube.list_workloads(namespace, _KINDS), namespace, name, tag)
    history = tag_history(stream, tag, uses, ctx.now())
    if ctx.output is not None:
        ctx.emit_document(history_document(history))
    else:
        ctx.out(history_table(history))
    return 0

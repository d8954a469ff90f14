"""`rollback`: pin a tag to an earlier image of its history, remembering its source for `resume`."""

from __future__ import annotations

import argparse
import functools
import json
from typing import Any

from imagestreams.api.imagestream import ImageStream
from imagestreams.cli.context import Context
from imagestreams.cli.describe import stream_not_found
from imagestreams.cli.edits import Edit
from imagestreams.cli.flags import add_dry_run_flag, add_output_flag
from imagestreams.cli.history import (
    choose_entry,
    find_spec_tag,
    parse_stream_tag,
    rollback_message,
    rollback_spec_tag,
    spec_tag_patch,
)
from imagestreams.cli.tagging import ROLLED_BACK_ANNOTATION

USAGE = "rollback NAME:TAG [--to N|DIGEST] [flags]"
DESCRIPTION = (
    "Point the tag at an earlier image of its history (ImageStreamImage NAME@DIGEST) so every workload "
    "that follows the tag rolls back with it. The tag's source is remembered; resume restores it."
)
EXAMPLES = """\
Examples:
  # Pin app:latest to the image before the current one (triggered workloads follow)
  kubectl imagestream rollback app:latest
  # Pin it to an entry of its history by number (0 is the newest) or by digest
  kubectl imagestream rollback app:latest --to 2
  kubectl imagestream rollback app:latest --to sha256:4f2a
  # The stream as the rollback would write it, for a GitOps repository
  kubectl imagestream rollback app:latest --dry-run=client -o yaml
  # Follow the original source again
  kubectl imagestream resume app:latest"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="NAME:TAG")
    parser.add_argument("--to", default=None, help="history entry number (0 is the newest) or digest (prefix)")
    add_dry_run_flag(parser, "client: print what would be written; server: let the API server check it too")
    add_output_flag(parser, "print the stream")


def run(ctx: Context) -> int:
    name, tag = parse_stream_tag(ctx.args.target)
    decide = functools.partial(pin_tag, name=name, tag=tag, to=ctx.args.to)
    edited = ctx.kube.edit_stream(ctx.namespace, name, decide, dry_run=ctx.dry_run)
    if ctx.output is not None:
        ctx.emit([edited.body], "ImageStream")
    else:
        ctx.out(ctx.dry_run.mark(edited.result))
    return 0


def pin_tag(body: dict[str, Any] | None, *, name: str, tag: str, to: str | None) -> Edit[str]:
    """The spec tag pinned to the chosen history entry; the result is the message to print."""
    if body is None:
        raise stream_not_found(name)
    stream = ImageStream.model_validate(body)
    raw = find_spec_tag(body, name, tag)
    index, item = choose_entry(stream, tag, to)
    already = ROLLED_BACK_ANNOTATION in (raw.get("annotations") or {})
    new_tag = rollback_spec_tag(raw, name, item.image)
    saved = json.loads(new_tag["annotations"][ROLLED_BACK_ANNOTATION])
    message = rollback_message(stream, tag, index, item, saved, already_pinned=already)
    return Edit(message, patch=spec_tag_patch(body, new_tag))

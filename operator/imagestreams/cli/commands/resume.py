"""`resume`: a rolled-back tag follows the source it had before `rollback` again."""

from __future__ import annotations

import argparse
import functools
from typing import Any

from imagestreams.cli.context import Context
from imagestreams.cli.describe import stream_not_found
from imagestreams.cli.edits import Edit
from imagestreams.cli.flags import add_dry_run_flag, add_output_flag
from imagestreams.cli.history import describe_source, find_spec_tag, parse_stream_tag, resume_spec_tag, spec_tag_patch

USAGE = "resume NAME:TAG [flags]"
DESCRIPTION = "Restore the source a tag had before rollback, so it is imported (or followed) again."
EXAMPLES = """\
Examples:
  kubectl imagestream resume app:latest
  # The stream as it would be written, checked by the API server
  kubectl imagestream resume app:latest --dry-run=server -o yaml"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="NAME:TAG")
    add_dry_run_flag(parser, "client: print what would be written; server: let the API server check it too")
    add_output_flag(parser, "print the stream")


def run(ctx: Context) -> int:
    name, tag = parse_stream_tag(ctx.args.target)
    decide = functools.partial(restore_source, name=name, tag=tag)
    edited = ctx.kube.edit_stream(ctx.namespace, name, decide, dry_run=ctx.dry_run)
    if ctx.output is not None:
        ctx.emit([edited.body], "ImageStream")
    else:
        source = describe_source(edited.result, ctx.namespace)
        ctx.out(ctx.dry_run.mark(f"Tag {name}:{tag} follows {source} again.") + "\n")
    return 0


def restore_source(body: dict[str, Any] | None, *, name: str, tag: str) -> Edit[dict[str, Any]]:
    """The spec tag with the source saved by rollback; the result is that saved source."""
    if body is None:
        raise stream_not_found(name)
    new_tag, saved = resume_spec_tag(find_spec_tag(body, name, tag), name)
    return Edit(saved, patch=spec_tag_patch(body, new_tag))

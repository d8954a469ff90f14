"""`describe is|istag|isimage`: oc describe's layouts; with --show-lookup what image lookup does with each tag,
with --show-events the stream's Events (oc shows neither: both are off by default, so the layout stays oc's)."""

from __future__ import annotations

import argparse
from typing import Any

from imagestreams.api.imagestream import ImageStream
from imagestreams.cli.context import Context
from imagestreams.cli.describe import describe_image, describe_stream, isimage_view, istag_view
from imagestreams.cli.errors import CliError, UsageError
from imagestreams.cli.events import events_section
from imagestreams.cli.importing import import_request_pending
from imagestreams.cli.lookupview import lookup_section, stream_lookups
from imagestreams.cli.workloads import STREAM_TYPES

USAGE = "describe (is|istag|isimage) [NAME ...] [flags]"
DESCRIPTION = (
    "Show image streams (is), the image of a tag (istag NAME:TAG) or an image of a stream's history "
    "(isimage NAME@DIGEST) as oc describe does."
)
EXAMPLES = """\
Examples:
  # A stream in oc describe's layout
  kubectl imagestream describe is app
  # ... followed by its events (the operator's import failures, for example)
  kubectl imagestream describe is app --show-events
  # ... followed by what image lookup makes of each tag's short name (app:v1 -> its image by digest)
  kubectl imagestream describe is app --show-lookup
  # Every stream of every namespace, or those with a label
  kubectl imagestream describe is -A
  kubectl imagestream describe is -l team=web
  # The image a tag points at now, and an image of the history by digest (or a unique prefix)
  kubectl imagestream describe istag app:latest
  kubectl imagestream describe isimage app@sha256:4f2a"""

_ISTAG_TYPES = {"istag", "imagestreamtag", "imagestreamtags", "imagestreamtag.image.openshift.io"}
_ISIMAGE_TYPES = {"isimage", "imagestreamimage", "imagestreamimages", "imagestreamimage.image.openshift.io"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("type", metavar="TYPE", help="is, istag or isimage (or TYPE/NAME)")
    parser.add_argument("names", metavar="NAME", nargs="*", help="what to describe (all streams when omitted)")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="describe the streams of all namespaces")
    parser.add_argument(
        "-l", "--selector", default="", help="describe the streams with these labels (e.g. -l team=web), as kubectl"
    )
    parser.add_argument(
        "--show-events",
        action="store_true",
        help="end each stream's description with its events, as kubectl describe (oc shows none for streams)",
    )
    parser.add_argument(
        "--show-lookup",
        action="store_true",
        help="end each stream's description with what image lookup does with each tag's short name (not in oc)",
    )


def run(ctx: Context) -> int:
    kind, slash, first = ctx.args.type.partition("/")
    names = ([first] if slash else []) + list(ctx.args.names)
    kind = kind.lower()
    if kind in STREAM_TYPES:
        return _describe_streams(ctx, names)
    if kind in _ISTAG_TYPES or kind in _ISIMAGE_TYPES:
        _refuse_stream_flags(ctx, kind)
        if not names:
            raise UsageError(f"you must provide the name of the {kind} to describe", "describe")
        ctx.out("\n\n".join(_describe_image(ctx, kind, name) for name in names))
        return 0
    raise UsageError(
        f'the plugin describes is, istag and isimage; use "kubectl describe {ctx.args.type}" for other resources',
        "describe",
    )


def _refuse_stream_flags(ctx: Context, kind: str) -> None:
    if ctx.args.selector or ctx.args.show_events or ctx.args.show_lookup:
        raise UsageError(f"-l, --show-events and --show-lookup describe image streams, not {kind}", "describe")


def _describe_streams(ctx: Context, names: list[str]) -> int:
    args = ctx.args
    if names and args.selector:
        raise UsageError("name cannot be provided when a selector is specified", "describe")
    if names:
        bodies = [ctx.kube.require_stream(ctx.namespace, name) for name in names]
    else:
        bodies = ctx.kube.list_streams(None if args.all_namespaces else ctx.namespace, args.selector)
        if not bodies:
            where = "any namespace" if args.all_namespaces else f"{ctx.namespace} namespace"
            ctx.err(f"No resources found in {where}.\n")
            return 0
    now = ctx.now()
    texts = []
    for body in bodies:
        text = describe_stream(_stream(body), now, request_pending=import_request_pending(body))
        if args.show_lookup:
            text += lookup_section(stream_lookups(body))
        if args.show_events:
            metadata = body["metadata"]
            events = ctx.kube.events_about(metadata["namespace"], "ImageStream", metadata["name"], metadata["uid"])
            text += events_section(events, now)
        texts.append(text)
    ctx.out("\n\n".join(texts))
    return 0


def _describe_image(ctx: Context, kind: str, name: str) -> str:
    if kind in _ISTAG_TYPES:
        stream_name, _, tag = name.partition(":")
        view = istag_view(_stream(ctx.kube.require_stream(ctx.namespace, stream_name)), tag or "latest")
    else:
        stream_name, at, digest = name.partition("@")
        if not at or not stream_name or not digest:
            raise CliError(f'expected exactly one @ in the isimage name "{name}"')
        view = isimage_view(_stream(ctx.kube.require_stream(ctx.namespace, stream_name)), digest)
    return describe_image(view, ctx.now())


def _stream(body: dict[str, Any]) -> ImageStream:
    return ImageStream.model_validate(body)

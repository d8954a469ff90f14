"""`import-image`: ask the operator to import now (an annotation it answers in status), wait, and report."""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any, TextIO

from imagestreams.api.imagestream import ImageStream
from imagestreams.cli import importing
from imagestreams.cli.context import Context
from imagestreams.cli.describe import describe_stream
from imagestreams.cli.edits import Edit
from imagestreams.cli.errors import CliError
from imagestreams.cli.flags import DryRun, add_dry_run_flag, add_output_flag

USAGE = "import-image NAME[:TAG] [flags]"
DESCRIPTION = (
    "Ask the operator to import the tag's image from its registry now, wait for the result and show it. "
    "With --from and --confirm the stream and tag are created first."
)
EXAMPLES = """\
Examples:
  # Re-import a tag and show the result
  kubectl imagestream import-image app:1.2
  # Create the stream and a tag importing from a registry
  kubectl imagestream import-image app:1.2 --from=quay.io/team/app:1.2 --confirm
  # Import a whole repository into the stream
  kubectl imagestream import-image app --all --from=quay.io/team/app --confirm
  # The stream the request would write, checked by the API server, nothing imported
  kubectl imagestream import-image app:1.2 --dry-run -o yaml"""

POLL_SECONDS = 0.3
DEFAULT_IMPORT_TIMEOUT = "2m"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="NAME[:TAG]", nargs="?", default="")
    parser.add_argument("--from", dest="from_", default="", help="the container image (repository) to import from")
    parser.add_argument("--confirm", action="store_true", help="allow the stream or its import source to be set")
    parser.add_argument("--all", action="store_true", help="import every tag (of --from, or of the stream)")
    parser.add_argument("--scheduled", action="store_true", help="also re-import the tag periodically")
    parser.add_argument(
        "--insecure", action=argparse.BooleanOptionalAction, default=None, help="allow plain HTTP or unverified TLS"
    )
    parser.add_argument("--reference-policy", default=None, help="source or local, for a new tag")
    parser.add_argument("--import-mode", default=None, help="Legacy or PreserveOriginal")
    add_dry_run_flag(
        parser,
        "check the change without importing: server (also a bare --dry-run, as oc's) lets the API server "
        "validate it; client only shows it",
        bare=DryRun.SERVER,
    )
    parser.add_argument(
        "--timeout",
        default=DEFAULT_IMPORT_TIMEOUT,
        help=f"how long to wait for the operator (default {DEFAULT_IMPORT_TIMEOUT}; 0: do not wait)",
    )
    add_output_flag(parser, "print the stream instead of the description")


def run(ctx: Context) -> int:
    args = ctx.args
    options = importing.ImportOptions(
        target=args.target,
        from_=args.from_,
        confirm=args.confirm,
        all=args.all,
        scheduled=args.scheduled,
        insecure=args.insecure,
        reference_policy=args.reference_policy,
        import_mode=args.import_mode,
        dry_run=ctx.dry_run is not DryRun.NONE,
    )
    target = importing.parse_target(options)
    timeout = importing.parse_timeout(args.timeout)
    namespace = ctx.namespace
    request = ctx.new_import_request()
    decide = functools.partial(request_import, options=options, target=target, namespace=namespace, request=request)
    edited = ctx.kube.edit_stream(namespace, target.name, decide, dry_run=ctx.dry_run)
    plan = edited.result
    for warning in plan.warnings:
        ctx.err(f"warning: {warning}\n")
    if ctx.dry_run is not DryRun.NONE or timeout <= 0:
        if ctx.output is not None:
            ctx.emit([edited.body], "ImageStream")
        elif ctx.dry_run is DryRun.NONE:
            ctx.out(f"{importing.STREAM_RESOURCE}/{target.name} import requested\n")
        else:
            what = "validated" if ctx.dry_run is DryRun.SERVER else "requested"
            description = describe_stream(ImageStream.model_validate(edited.body), ctx.now())
            ctx.out(f"{importing.STREAM_RESOURCE}/{target.name} import {what} (dry run)\n\n{description}\n")
        return 0
    body = _wait_for_import(ctx, namespace, target.name, request, timeout)
    report = importing.import_report(ImageStream.model_validate(body), plan, ctx.now())
    if ctx.output is not None:
        ctx.emit([body], "ImageStream")
    else:
        ctx.out(report.stdout)
    for error in report.errors:
        ctx.err(f"error: {error}\n")
    return 1 if report.failed else 0


def request_import(
    body: dict[str, Any] | None,
    *,
    options: importing.ImportOptions,
    target: importing.ImportTarget,
    namespace: str,
    request: str,
) -> Edit[importing.ImportPlan]:
    """The change `oc import-image` would make, with the import request: a new stream, or a patch of this one."""
    plan = importing.plan_import(options, target, body, namespace)
    if body is None:
        return Edit(plan, create=importing.new_stream_body(plan, request))
    return Edit(plan, patch=importing.request_patch(plan, request, None))


class Progress:
    """A one-line spinner on stderr while waiting, only when stderr is a terminal."""

    FRAMES = "|/-\\"

    def __init__(self, stream: TextIO, what: str) -> None:
        self.stream = stream
        self.what = what
        self.enabled = stream.isatty()
        self.started = time.monotonic()
        self.frame = 0

    def tick(self) -> None:
        if self.enabled:
            elapsed = int(time.monotonic() - self.started)
            self.stream.write(f"\r{self.FRAMES[self.frame % 4]} {self.what} ({elapsed}s)\033[K")
            self.stream.flush()
            self.frame += 1

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _wait_for_import(ctx: Context, namespace: str, name: str, request: str, timeout: float) -> dict[str, Any]:
    progress = Progress(ctx.stderr, f"waiting for the operator to import {namespace}/{name}")
    deadline = time.monotonic() + timeout
    try:
        while True:
            body = ctx.kube.require_stream(namespace, name)
            if importing.request_acted_on(body, request):
                return body
            if time.monotonic() >= deadline:
                raise CliError(
                    f"timed out after {importing.format_timeout(timeout)} waiting for the operator to import "
                    f"{namespace}/{name}; the request stays pending (annotation imagestreams.dev/import-request="
                    f"{request}). Is the operator running and watching this namespace? "
                    f"See: kubectl get events -n {namespace} --field-selector involvedObject.name={name}"
                )
            progress.tick()
            time.sleep(POLL_SECONDS)
    finally:
        progress.done()

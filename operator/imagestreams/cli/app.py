"""The command line: argument parsing (stdlib argparse, so `--help` needs nothing else) and the verbs.

Each verb checks its arguments with the pure modules first, then reads and writes through
`kube`. Heavy imports (lightkube, pydantic models) happen inside the verbs.
"""

from __future__ import annotations

import argparse
import datetime
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from imagestreams.cli.errors import CliError, NotFound, UsageError

if TYPE_CHECKING:
    from imagestreams.api.imagestream import ImageStream
    from imagestreams.cli.kube import Kube
    from imagestreams.cli.kubeconfig import Target

PROG = "kubectl imagestream"
POLL_SECONDS = 0.3
DEFAULT_IMPORT_TIMEOUT = "2m"


class Parser(argparse.ArgumentParser):
    """argparse with kubectl's way of reporting usage mistakes: `error: ...`, a pointer to -h, exit status 1."""

    def error(self, message: str) -> NoReturn:
        verb = self.prog.removeprefix(PROG).strip()
        unknown = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        if unknown:
            message = f'unknown command "{unknown.group(1)}" for "{PROG}"'
        raise UsageError(message, verb)


# Boolean flags that may be written --flag=false (cobra style); the negatable ones keep the "false".
_NEGATABLE = frozenset({"insecure", "enabled"})
_BOOLEAN = frozenset(
    {
        "alias",
        "reference",
        "scheduled",
        "delete",
        "confirm",
        "all",
        "dry-run",
        "list",
        "auto",
        "manual",
        "remove",
        "remove-all",
        "all-namespaces",
        *_NEGATABLE,
    }
)
_SET_VERBS = {"triggers": "set-triggers", "image-lookup": "set-image-lookup"}


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """`set triggers` -> `set-triggers`, and cobra's `--flag=true|false` spellings for argparse."""
    args = list(argv)
    for index, word in enumerate(args[:-1]):
        if word in VERBS:
            break
        if word == "set" and args[index + 1] in _SET_VERBS:
            args[index : index + 2] = [_SET_VERBS[args[index + 1]]]
            break
    result = []
    for word in args:
        name, equals, value = word.partition("=")
        flag = name.removeprefix("--")
        if word.startswith("--") and equals and flag in _BOOLEAN and value.lower() in ("true", "false"):
            if value.lower() == "true":
                result.append(name)
            elif flag in _NEGATABLE:
                result.append(f"--no-{flag}")
            continue
        result.append(word)
    return result


# --- the parser ------------------------------------------------------------------------------------------------

_DESCRIPTION = """\
OpenShift-style image streams on any cluster: oc's image stream commands as a kubectl plugin.

The operator (imagestream-operator) imports tags and updates triggered workloads; this
plugin shows streams in oc's layouts and asks the operator for changes."""

_COMMANDS_EPILOG = """\
Examples:
  kubectl imagestream describe is app
  kubectl imagestream tag --source=docker quay.io/team/app:1.2 app:1.2 --scheduled
  kubectl imagestream import-image app:1.2 --from=quay.io/team/app:1.2 --confirm
  kubectl imagestream set-triggers deployment/web --from-image=app:1.2 -c web
  kubectl imagestream history app:1.2
  kubectl imagestream rollback app:1.2

Use "kubectl imagestream COMMAND -h" for the flags of a command. docs/cli.md has the full reference."""

_EXAMPLES = {
    "describe": """\
Examples:
  # A stream in oc describe's layout
  kubectl imagestream describe is app
  # Every stream of every namespace
  kubectl imagestream describe is -A
  # The image a tag points at now, and an image of the history by digest (or a unique prefix)
  kubectl imagestream describe istag app:latest
  kubectl imagestream describe isimage app@sha256:4f2a""",
    "tag": """\
Examples:
  # Import an external image into a tag (a registry in SOURCE means a container image)
  kubectl imagestream tag quay.io/team/app:1.2 app:1.2
  # Docker Hub names have no registry: say that SOURCE is a container image
  kubectl imagestream tag --source=docker nginx:1.27 nginx:1.27 --scheduled
  # Copy the image app:1.2 points at now into app:stable (stays on that image)
  kubectl imagestream tag app:1.2 app:stable
  # Make app:latest follow app:1.2 whenever it changes
  kubectl imagestream tag --alias app:1.2 app:latest
  # Delete a tag
  kubectl imagestream tag -d app:old""",
    "import-image": """\
Examples:
  # Re-import a tag and show the result
  kubectl imagestream import-image app:1.2
  # Create the stream and a tag importing from a registry
  kubectl imagestream import-image app:1.2 --from=quay.io/team/app:1.2 --confirm
  # Import a whole repository into the stream
  kubectl imagestream import-image app --all --from=quay.io/team/app --confirm""",
    "set-triggers": """\
Examples:
  # List the triggers of a deployment
  kubectl imagestream set-triggers deployment/web
  # Set container web from the tag app:latest whenever it changes
  kubectl imagestream set-triggers deployment/web --from-image=app:latest -c web
  # Stop (and restart) following the tags, keeping the triggers
  kubectl imagestream set-triggers deployment/web --manual
  kubectl imagestream set-triggers deployment/web --auto
  # Remove the triggers from one tag, or all of them
  kubectl imagestream set-triggers deployment/web --remove --from-image=app:latest
  kubectl imagestream set-triggers deployment/web --remove-all""",
    "set-image-lookup": """\
Examples:
  # Whether each stream of the namespace resolves short names
  kubectl imagestream set-image-lookup
  # Resolve "app:latest" in this namespace's workloads through the stream app
  kubectl imagestream set-image-lookup app
  # Resolve every image of a deployment through streams, and show the setting
  kubectl imagestream set-image-lookup deployment/web
  kubectl imagestream set-image-lookup deployment/web --list
  # Turn it off
  kubectl imagestream set-image-lookup app --enabled=false""",
    "history": """\
Examples:
  # The images app:latest pointed at, newest first, and the workloads running each
  kubectl imagestream history app:latest""",
    "rollback": """\
Examples:
  # Pin app:latest to the image before the current one (triggered workloads follow)
  kubectl imagestream rollback app:latest
  # Pin it to an entry of its history by number (0 is the newest) or by digest
  kubectl imagestream rollback app:latest --to 2
  kubectl imagestream rollback app:latest --to sha256:4f2a
  # Follow the original source again
  kubectl imagestream resume app:latest""",
    "resume": """\
Examples:
  kubectl imagestream resume app:latest""",
}


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (as kubectl)")
    group.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="path to a kubeconfig file")
    group.add_argument("--context", default=argparse.SUPPRESS, help="the kubeconfig context to use")
    group.add_argument(
        "-n", "--namespace", default=argparse.SUPPRESS, help="the namespace (default: the context's, else default)"
    )


def _output_flag(
    parser: argparse.ArgumentParser, help_text: str = "print the result as yaml, json or its name"
) -> None:
    parser.add_argument("-o", "--output", choices=("yaml", "json", "name"), default=None, help=help_text)


def _verb(sub: Any, name: str, help_text: str, usage: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        usage=f"{PROG} {usage}",
        description=description,
        epilog=_EXAMPLES.get(name),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection_flags(parser)
    return parser


def _add_describe(sub: Any) -> None:
    describe = _verb(
        sub,
        "describe",
        "show a stream, a tag's image or an image in oc describe's layout",
        "describe (is|istag|isimage) [NAME ...] [flags]",
        "Show image streams (is), the image of a tag (istag NAME:TAG) or an image of a stream's history "
        "(isimage NAME@DIGEST) as oc describe does.",
    )
    describe.add_argument("type", metavar="TYPE", help="is, istag or isimage (or TYPE/NAME)")
    describe.add_argument("names", metavar="NAME", nargs="*", help="what to describe (all streams when omitted)")
    describe.add_argument("-A", "--all-namespaces", action="store_true", help="describe the streams of all namespaces")


def _add_tag(sub: Any) -> None:
    tag = _verb(
        sub,
        "tag",
        "set a tag from an image, another tag or a container image; or delete tags",
        "tag [--source=SOURCETYPE] SOURCE DEST [DEST ...] | tag -d DEST [DEST ...] [flags]",
        "Point tags of image streams at a container image (imported by the operator), at the image another "
        "tag points to now, or (with --alias) at another tag of the same stream. Missing streams are created.",
    )
    tag.add_argument("args", metavar="SOURCE DEST", nargs="*", help="the source, then [namespace/]stream:tag targets")
    tag.add_argument(
        "--source", default="", help="what SOURCE is: docker (dockerimage), istag (imagestreamtag), isimage"
    )
    tag.add_argument("--alias", action="store_true", help="follow the source tag whenever it changes (same stream)")
    tag.add_argument("--reference", action="store_true", help="record the source as written, never import it")
    tag.add_argument("--scheduled", action="store_true", help="re-import the container image periodically")
    tag.add_argument("--insecure", action="store_true", help="allow plain HTTP or unverified TLS for the import")
    tag.add_argument("--reference-policy", default="source", help="source (default) or local")
    tag.add_argument("--import-mode", default=None, help="Legacy (default) or PreserveOriginal, for multi-arch images")
    tag.add_argument("-d", "--delete", action="store_true", help="delete the given tags")
    _output_flag(tag, "print the changed streams as yaml, json or their names")


def _add_importing(sub: Any) -> None:
    importing = _verb(
        sub,
        "import-image",
        "ask the operator to import a tag (or all tags) now and show the result",
        "import-image NAME[:TAG] [flags]",
        "Ask the operator to import the tag's image from its registry now, wait for the result and show it. "
        "With --from and --confirm the stream and tag are created first.",
    )
    importing.add_argument("target", metavar="NAME[:TAG]", nargs="?", default="")
    importing.add_argument("--from", dest="from_", default="", help="the container image (repository) to import from")
    importing.add_argument("--confirm", action="store_true", help="allow the stream or its import source to be set")
    importing.add_argument("--all", action="store_true", help="import every tag (of --from, or of the stream)")
    importing.add_argument("--scheduled", action="store_true", help="also re-import the tag periodically")
    importing.add_argument(
        "--insecure", action=argparse.BooleanOptionalAction, default=None, help="allow plain HTTP or unverified TLS"
    )
    importing.add_argument("--reference-policy", default=None, help="source or local, for a new tag")
    importing.add_argument("--import-mode", default=None, help="Legacy or PreserveOriginal")
    importing.add_argument(
        "--dry-run", action="store_true", help="check the change with the API server without writing or importing"
    )
    importing.add_argument(
        "--timeout",
        default=DEFAULT_IMPORT_TIMEOUT,
        help=f"how long to wait for the operator (default {DEFAULT_IMPORT_TIMEOUT}; 0: do not wait)",
    )
    _output_flag(importing, "print the stream as yaml, json or its name instead of the description")


def _add_triggers(sub: Any) -> None:
    triggers = _verb(
        sub,
        "set-triggers",
        "list or edit the image triggers of workloads",
        "set-triggers TYPE/NAME [...] [--from-image=STREAM:TAG [-c NAMES]] [--auto|--manual] [--remove|--remove-all]",
        "Show or change the image.openshift.io/triggers annotation of deployments, statefulsets, daemonsets, "
        "cronjobs and jobs: which containers follow which image stream tags.",
    )
    triggers.add_argument("resources", metavar="TYPE/NAME", nargs="+")
    triggers.add_argument("--from-image", default="", help="an image stream tag, [namespace/]stream:tag")
    triggers.add_argument(
        "-c", "--containers", default="", help="comma-separated containers to set (default: the only container)"
    )
    triggers.add_argument("--auto", action="store_true", help="follow the tags (unpause the triggers)")
    triggers.add_argument("--manual", action="store_true", help="stop following the tags (pause the triggers)")
    triggers.add_argument("--remove", action="store_true", help="remove the triggers of --from-image")
    triggers.add_argument("--remove-all", action="store_true", help="remove every trigger")
    _output_flag(triggers, "print the changed workloads as yaml, json or their names")


def _add_lookup(sub: Any) -> None:
    lookup = _verb(
        sub,
        "set-image-lookup",
        "resolve short image names through image streams",
        "set-image-lookup [STREAM | TYPE/NAME ...] [--enabled=false] [--list] [flags]",
        "Set spec.lookupPolicy.local of image streams, or the alpha.image.policy.openshift.io/resolve-names "
        "annotation on a workload's pod template. Without arguments (or with --list), show the setting.",
    )
    lookup.add_argument("names", metavar="NAME", nargs="*")
    lookup.add_argument(
        "--enabled", action=argparse.BooleanOptionalAction, default=True, help="turn lookup on (default) or off"
    )
    lookup.add_argument("--list", action="store_true", help="show the setting instead of changing it")
    lookup.add_argument("--all", action="store_true", help="every stream of the namespace")
    lookup.add_argument("-A", "--all-namespaces", action="store_true", help="list the streams of all namespaces")
    _output_flag(lookup, "print the changed objects as yaml, json or their names")


def _add_history(sub: Any) -> None:
    history = _verb(
        sub,
        "history",
        "a tag's images, newest first, and the workloads running each",
        "history NAME:TAG [flags]",
        "List the images a tag pointed at (newest first, as numbered for rollback --to) with the "
        "deployments, statefulsets, daemonsets and cronjobs of the namespace whose containers run each.",
    )
    history.add_argument("target", metavar="NAME:TAG")
    history.add_argument("-o", "--output", choices=("yaml", "json"), default=None, help="print as yaml or json")


def _add_rollback(sub: Any) -> None:
    rollback = _verb(
        sub,
        "rollback",
        "pin a tag to an earlier image of its history",
        "rollback NAME:TAG [--to N|DIGEST] [flags]",
        "Point the tag at an earlier image of its history (ImageStreamImage NAME@DIGEST) so every workload "
        "that follows the tag rolls back with it. The tag's source is remembered; resume restores it.",
    )
    rollback.add_argument("target", metavar="NAME:TAG")
    rollback.add_argument("--to", default=None, help="history entry number (0 is the newest) or digest (prefix)")
    _output_flag(rollback, "print the stream as yaml, json or its name")


def _add_resume(sub: Any) -> None:
    resume = _verb(
        sub,
        "resume",
        "make a rolled-back tag follow its original source again",
        "resume NAME:TAG [flags]",
        "Restore the source a tag had before rollback, so it is imported (or followed) again.",
    )
    resume.add_argument("target", metavar="NAME:TAG")
    _output_flag(resume, "print the stream as yaml, json or its name")


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        usage=f"{PROG} COMMAND [flags]",
        description=_DESCRIPTION,
        epilog=_COMMANDS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection_flags(parser)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", title="commands", parser_class=Parser, prog=PROG)
    _add_describe(sub)
    _add_tag(sub)
    _add_importing(sub)
    _add_triggers(sub)
    _add_lookup(sub)
    _add_history(sub)
    _add_rollback(sub)
    _add_resume(sub)
    return parser


# --- running ---------------------------------------------------------------------------------------------------


class Context:
    """The parsed flags, the streams, and a connection opened on first use."""

    def __init__(self, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> None:
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self._target: Target | None = None
        self._kube: Kube | None = None

    @property
    def target(self) -> Target:
        if self._target is None:
            from imagestreams.cli.kubeconfig import load_target  # noqa: PLC0415

            self._target = load_target(
                getattr(self.args, "kubeconfig", None),
                getattr(self.args, "context", None),
                getattr(self.args, "namespace", None),
            )
        return self._target

    @property
    def namespace(self) -> str:
        return self.target.namespace

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            from imagestreams.cli.kube import Kube  # noqa: PLC0415

            self._kube = Kube(self.target)
        return self._kube

    def out(self, text: str) -> None:
        self.stdout.write(text)

    def err(self, text: str) -> None:
        self.stderr.write(text)

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)


def _stream(body: dict[str, Any]) -> ImageStream:
    from imagestreams.api.imagestream import ImageStream  # noqa: PLC0415

    return ImageStream.model_validate(body)


def _request_pending(body: dict[str, Any]) -> bool:
    from imagestreams.cli.importing import IMPORT_REQUEST_ANNOTATION  # noqa: PLC0415

    request = ((body.get("metadata") or {}).get("annotations") or {}).get(IMPORT_REQUEST_ANNOTATION)
    return bool(request) and request != (body.get("status") or {}).get("importRequest")


def _emit(ctx: Context, objects: Sequence[dict[str, Any]], kind: str | None = None) -> None:
    from imagestreams.cli.output import render  # noqa: PLC0415

    if objects:
        ctx.out(render(objects, ctx.args.output, kind=kind))


# describe --------------------------------------------------------------------------------------------------------

_STREAM_TYPES = {"is", "imagestream", "imagestreams", "imagestream.image.openshift.io"}
_ISTAG_TYPES = {"istag", "imagestreamtag", "imagestreamtags", "imagestreamtag.image.openshift.io"}
_ISIMAGE_TYPES = {"isimage", "imagestreamimage", "imagestreamimages", "imagestreamimage.image.openshift.io"}


def run_describe(ctx: Context) -> int:
    from imagestreams.cli.describe import describe_image, describe_stream, isimage_view, istag_view  # noqa: PLC0415

    kind, slash, first = ctx.args.type.partition("/")
    names = ([first] if slash else []) + list(ctx.args.names)
    kind = kind.lower()
    now = ctx.now()
    texts: list[str] = []
    if kind in _STREAM_TYPES:
        if names:
            bodies = [ctx.kube.require_stream(ctx.namespace, name) for name in names]
        else:
            bodies = ctx.kube.list_streams(None if ctx.args.all_namespaces else ctx.namespace)
            if not bodies:
                where = "any namespace" if ctx.args.all_namespaces else f"{ctx.namespace} namespace"
                ctx.err(f"No resources found in {where}.\n")
                return 0
        texts = [describe_stream(_stream(body), now, request_pending=_request_pending(body)) for body in bodies]
    elif kind in _ISTAG_TYPES or kind in _ISIMAGE_TYPES:
        if not names:
            raise UsageError(f"you must provide the name of the {kind} to describe", "describe")
        for name in names:
            if kind in _ISTAG_TYPES:
                stream_name, _, tag = name.partition(":")
                view = istag_view(_stream(ctx.kube.require_stream(ctx.namespace, stream_name)), tag or "latest")
            else:
                stream_name, at, digest = name.partition("@")
                if not at or not stream_name or not digest:
                    raise CliError(f'expected exactly one @ in the isimage name "{name}"')
                view = isimage_view(_stream(ctx.kube.require_stream(ctx.namespace, stream_name)), digest)
            texts.append(describe_image(view, now))
    else:
        raise UsageError(
            f'the plugin describes is, istag and isimage; use "kubectl describe {ctx.args.type}" for other resources',
            "describe",
        )
    ctx.out("\n\n".join(texts))
    return 0


# tag -------------------------------------------------------------------------------------------------------------


def run_tag(ctx: Context) -> int:
    from imagestreams.cli import tagging  # noqa: PLC0415
    from imagestreams.cli.describe import istag_not_found  # noqa: PLC0415
    from imagestreams.cli.importing import IMPORT_REQUEST_ANNOTATION  # noqa: PLC0415
    from imagestreams.cli.kube import retry_on_conflict, with_resource_version  # noqa: PLC0415

    args = ctx.args
    options = tagging.TagOptions(
        source=args.source,
        alias=args.alias,
        reference=args.reference,
        scheduled=args.scheduled,
        insecure=args.insecure,
        reference_policy=args.reference_policy,
        import_mode=args.import_mode,
        delete=args.delete,
    )
    namespace = ctx.namespace
    plan = tagging.plan_tag(args.args, options, namespace)
    source = plan.source
    if source is not None and tagging.needs_resolution(source, options):
        source_namespace = source.ref.namespace or namespace
        body = ctx.kube.require_stream(source_namespace, source.ref.name)
        entries = [e for e in (body.get("status") or {}).get("tags") or [] if e.get("tag") == source.ref.tag]
        newest = ((entries[0].get("items") or [None])[0]) if entries else None
        source = tagging.resolve_stream_tag(source, newest)
    changed: list[dict[str, Any]] = []
    for destination in plan.destinations:

        def attempt(destination: tagging.Destination = destination) -> dict[str, Any]:
            body = ctx.kube.get_stream(destination.namespace, destination.stream)
            tags = list(((body or {}).get("spec") or {}).get("tags") or [])
            if options.delete:
                # Deleting an ImageStreamTag on OpenShift removes the spec tag and the tag's status history; a tag
                # removed from spec alone keeps its history (and triggers keep resolving it).
                status_tags = list(((body or {}).get("status") or {}).get("tags") or [])
                remaining = tagging.without_tag(tags, destination.tag)
                remaining_status = tagging.without_tag(status_tags, destination.tag, key="tag")
                if body is None or (remaining is None and remaining_status is None):
                    raise istag_not_found(destination.stream, destination.tag)
                result = body
                if remaining is not None:
                    removal = with_resource_version({"spec": {"tags": remaining}}, body)
                    result = ctx.kube.patch_stream(destination.namespace, destination.stream, removal)
                if remaining_status is not None:
                    removal = with_resource_version({"status": {"tags": remaining_status}}, result)
                    result = ctx.kube.patch_stream_status(destination.namespace, destination.stream, removal)
                return result
            assert source is not None
            existing = next((t for t in tags if t.get("name") == destination.tag), None)
            new_tag = tagging.spec_tag(destination, source, options, namespace, existing)
            if body is None:
                stream = {
                    "apiVersion": "image.openshift.io/v1",
                    "kind": "ImageStream",
                    "metadata": {"name": destination.stream, "namespace": destination.namespace},
                    "spec": {"tags": [new_tag]},
                }
                return ctx.kube.create_stream(stream)
            patch: dict[str, Any] = {"spec": {"tags": tagging.with_tag(tags, new_tag)}}
            importable = source.kind == tagging.DOCKER_IMAGE and not options.reference
            if importable and tagging.source_unchanged(existing, new_tag):
                # Same source as before: the operator would not import again, so ask it to (oc tag re-imports).
                patch["metadata"] = {"annotations": {IMPORT_REQUEST_ANNOTATION: _request_value()}}
            return ctx.kube.patch_stream(destination.namespace, destination.stream, with_resource_version(patch, body))

        changed.append(retry_on_conflict(attempt))
        if not args.output:
            if options.delete:
                ctx.out(tagging.delete_message(destination) + "\n")
            else:
                assert source is not None
                ctx.out(tagging.tag_message(destination, source, options, namespace) + "\n")
    if args.output:
        _emit(ctx, changed, "ImageStream")
    return 0


def _request_value() -> str:
    """A fresh value for the import-request annotation: the time, and a random part so two never collide."""
    return f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}-{uuid.uuid4().hex[:8]}"


# import-image ------------------------------------------------------------------------------------------------------


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
    from imagestreams.cli.importing import format_timeout, request_acted_on  # noqa: PLC0415

    progress = Progress(ctx.stderr, f"waiting for the operator to import {namespace}/{name}")
    deadline = time.monotonic() + timeout
    try:
        while True:
            body = ctx.kube.require_stream(namespace, name)
            if request_acted_on(body, request):
                return body
            if time.monotonic() >= deadline:
                raise CliError(
                    f"timed out after {format_timeout(timeout)} waiting for the operator to import "
                    f"{namespace}/{name}; the request stays pending (annotation imagestreams.dev/import-request="
                    f"{request}). Is the operator running and watching this namespace? "
                    f"See: kubectl get events -n {namespace} --field-selector involvedObject.name={name}"
                )
            progress.tick()
            time.sleep(POLL_SECONDS)
    finally:
        progress.done()


def run_import_image(ctx: Context) -> int:
    from imagestreams.cli import importing  # noqa: PLC0415
    from imagestreams.cli.describe import describe_stream  # noqa: PLC0415
    from imagestreams.cli.kube import retry_on_conflict  # noqa: PLC0415

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
        dry_run=args.dry_run,
    )
    target = importing.parse_target(options)
    timeout = importing.parse_timeout(args.timeout)
    namespace = ctx.namespace
    request = _request_value()
    plans: list[importing.ImportPlan] = []

    def attempt() -> dict[str, Any]:
        body = ctx.kube.get_stream(namespace, target.name)
        plan = importing.plan_import(options, target, body, namespace)
        plans.append(plan)
        if body is None:
            return ctx.kube.create_stream(importing.new_stream_body(plan, request), dry_run=options.dry_run)
        patch = importing.request_patch(plan, request, body["metadata"]["resourceVersion"])
        return ctx.kube.patch_stream(namespace, target.name, patch, dry_run=options.dry_run)

    written = retry_on_conflict(attempt)
    plan = plans[-1]
    for warning in plan.warnings:
        ctx.err(f"warning: {warning}\n")
    if options.dry_run:
        if args.output:
            _emit(ctx, [written], "ImageStream")
        else:
            description = describe_stream(_stream(written), ctx.now())
            ctx.out(f"{importing.STREAM_RESOURCE}/{target.name} import validated (dry run)\n\n{description}\n")
        return 0
    if timeout <= 0:
        if args.output:
            _emit(ctx, [written], "ImageStream")
        else:
            ctx.out(f"{importing.STREAM_RESOURCE}/{target.name} import requested\n")
        return 0
    body = _wait_for_import(ctx, namespace, target.name, request, timeout)
    report = importing.import_report(_stream(body), plan, ctx.now())
    if args.output:
        _emit(ctx, [body], "ImageStream")
    else:
        ctx.out(report.stdout)
    for error in report.errors:
        ctx.err(f"error: {error}\n")
    return 1 if report.failed else 0


# set-triggers ------------------------------------------------------------------------------------------------------


def run_set_triggers(ctx: Context) -> int:
    from imagestreams.cli.kube import retry_on_conflict, with_resource_version  # noqa: PLC0415
    from imagestreams.cli.tabwriter import table  # noqa: PLC0415
    from imagestreams.cli.triggeredit import (  # noqa: PLC0415
        TriggerEdit,
        edit_triggers,
        parse_from_image,
        trigger_rows,
        validate_edit,
    )
    from imagestreams.cli.workloads import parse_workload  # noqa: PLC0415
    from imagestreams.core.triggers import TRIGGERS_ANNOTATION  # noqa: PLC0415

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
    workloads = [parse_workload(text, "triggers") for text in args.resources]
    namespace = ctx.namespace
    if edit.lists_only:
        rows = [["NAME", "TYPE", "VALUE", "AUTO"]]
        for workload in workloads:
            rows += trigger_rows(workload, ctx.kube.get_workload(workload.kind, namespace, workload.name), namespace)
        ctx.out(table(rows, padding=2, minwidth=0))
        return 0
    changed = []
    for workload in workloads:

        def attempt(workload: Any = workload) -> tuple[dict[str, Any], bool]:
            body = ctx.kube.get_workload(workload.kind, namespace, workload.name)
            value = edit_triggers(workload, body, edit, namespace)
            current = ((body.get("metadata") or {}).get("annotations") or {}).get(TRIGGERS_ANNOTATION)
            if value == current:
                return body, False
            patch = with_resource_version({"metadata": {"annotations": {TRIGGERS_ANNOTATION: value}}}, body)
            return ctx.kube.patch_workload(workload.kind, namespace, workload.name, patch), True

        body, updated = retry_on_conflict(attempt)
        changed.append(body)
        if not updated:
            ctx.err(f"info: {workload.resource} was not changed\n")
        elif not args.output:
            ctx.out(f"{workload.qualified} triggers updated\n")
    if edit.from_image and not edit.remove:
        source = parse_from_image(edit.from_image, namespace)
        _warn_missing_tag(ctx, source.namespace or namespace, source.name)
    if args.output:
        _emit(ctx, changed, workloads[0].kind.value if len({w.kind for w in workloads}) == 1 else None)
    return 0


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


# set-image-lookup --------------------------------------------------------------------------------------------------


def _lookup_targets(names: Sequence[str]) -> list[Any]:
    """Stream names (plain or is/NAME) and workload references, in order."""
    from imagestreams.cli.workloads import STREAM_TYPES, parse_workload, split_type_name  # noqa: PLC0415

    targets: list[Any] = []
    for text in names:
        kind, name = split_type_name(text)
        targets.append(name if not kind or kind.lower() in STREAM_TYPES else parse_workload(text, "image lookup"))
    return targets


def _lookup_rows(ctx: Context, targets: Sequence[Any]) -> list[list[str]]:
    """oc's NAME LOCAL table (with NAMESPACE first when listing all namespaces)."""
    from imagestreams.cli.workloads import WorkloadRef, lookup_enabled, stream_lookup_local  # noqa: PLC0415

    namespace = ctx.namespace
    if not targets:
        every = ctx.args.all_namespaces
        streams = ctx.kube.list_streams(None if every else namespace)
        rows = [["NAMESPACE", "NAME", "LOCAL"] if every else ["NAME", "LOCAL"]]
        for body in streams:
            row = [body["metadata"]["name"], _bool_text(stream_lookup_local(body))]
            rows.append([body["metadata"]["namespace"], *row] if every else row)
        return rows
    rows = [["NAME", "LOCAL"]]
    for item in targets:
        if isinstance(item, WorkloadRef):
            body = ctx.kube.get_workload(item.kind, namespace, item.name)
            rows.append([item.resource, _bool_text(lookup_enabled(body, item.kind))])
        else:
            rows.append([item, _bool_text(stream_lookup_local(ctx.kube.require_stream(namespace, item)))])
    return rows


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def run_set_image_lookup(ctx: Context) -> int:
    from imagestreams.cli.kube import retry_on_conflict, with_resource_version  # noqa: PLC0415
    from imagestreams.cli.tabwriter import table  # noqa: PLC0415
    from imagestreams.cli.workloads import WorkloadRef, lookup_patch, stream_lookup_patch  # noqa: PLC0415

    args = ctx.args
    namespace = ctx.namespace
    targets = _lookup_targets(args.names)
    if args.list or (not targets and not args.all and not args.output):
        ctx.out(table(_lookup_rows(ctx, targets), padding=2, minwidth=0))
        return 0
    if not targets:
        targets = [body["metadata"]["name"] for body in ctx.kube.list_streams(namespace)]
    changed = []
    for item in targets:

        def attempt(item: Any = item) -> dict[str, Any]:
            if isinstance(item, WorkloadRef):
                body = ctx.kube.get_workload(item.kind, namespace, item.name)
                patch = with_resource_version(lookup_patch(item.kind, args.enabled), body)
                return ctx.kube.patch_workload(item.kind, namespace, item.name, patch)
            body = ctx.kube.require_stream(namespace, item)
            return ctx.kube.patch_stream(
                namespace, item, with_resource_version(stream_lookup_patch(args.enabled), body)
            )

        changed.append(retry_on_conflict(attempt))
        if not args.output:
            name = item.qualified if isinstance(item, WorkloadRef) else f"imagestream.image.openshift.io/{item}"
            ctx.out(f"{name} image lookup updated\n")
    if args.output:
        _emit(ctx, changed)
    return 0


# history, rollback, resume -----------------------------------------------------------------------------------------


def _stream_and_tag(text: str) -> tuple[str, str]:
    stream, _, tag = text.partition(":")
    if not stream or "@" in text:
        raise CliError(f'"{text}" must be of the form <stream_name>:<tag>')
    return stream, tag or "latest"


def run_history(ctx: Context) -> int:
    from imagestreams.cli.history import container_uses, history_document, history_table, tag_history  # noqa: PLC0415
    from imagestreams.cli.output import render_document  # noqa: PLC0415
    from imagestreams.core.workloadkinds import WorkloadKind  # noqa: PLC0415

    name, tag = _stream_and_tag(ctx.args.target)
    namespace = ctx.namespace
    stream = _stream(ctx.kube.require_stream(namespace, name))
    kinds = (WorkloadKind.DEPLOYMENT, WorkloadKind.STATEFULSET, WorkloadKind.DAEMONSET, WorkloadKind.CRONJOB)
    uses = container_uses(ctx.kube.list_workloads(namespace, kinds), namespace, name, tag)
    history = tag_history(stream, tag, uses, ctx.now())
    if ctx.args.output:
        ctx.out(render_document(history_document(history), ctx.args.output))
    else:
        ctx.out(history_table(history))
    return 0


def _spec_tag(body: dict[str, Any], name: str, tag: str) -> dict[str, Any]:
    from imagestreams.cli.describe import istag_not_found  # noqa: PLC0415

    for raw in (body.get("spec") or {}).get("tags") or []:
        if raw.get("name") == tag:
            return dict(raw)
    raise istag_not_found(name, tag)


def _replace_spec_tag(body: dict[str, Any], new_tag: dict[str, Any]) -> dict[str, Any]:
    from imagestreams.cli.kube import with_resource_version  # noqa: PLC0415
    from imagestreams.cli.tagging import with_tag  # noqa: PLC0415

    return with_resource_version(
        {"spec": {"tags": with_tag((body.get("spec") or {}).get("tags") or [], new_tag)}}, body
    )


def run_rollback(ctx: Context) -> int:
    from imagestreams.cli.history import choose_entry, rollback_message, rollback_spec_tag  # noqa: PLC0415
    from imagestreams.cli.kube import retry_on_conflict  # noqa: PLC0415
    from imagestreams.cli.tagging import ROLLED_BACK_ANNOTATION  # noqa: PLC0415

    name, tag = _stream_and_tag(ctx.args.target)
    namespace = ctx.namespace
    results: list[tuple[dict[str, Any], str]] = []

    def attempt() -> dict[str, Any]:
        import json  # noqa: PLC0415

        body = ctx.kube.require_stream(namespace, name)
        stream = _stream(body)
        raw = _spec_tag(body, name, tag)
        index, item = choose_entry(stream, tag, ctx.args.to)
        already = ROLLED_BACK_ANNOTATION in (raw.get("annotations") or {})
        new_tag = rollback_spec_tag(raw, name, item.image)
        saved = json.loads(new_tag["annotations"][ROLLED_BACK_ANNOTATION])
        written = ctx.kube.patch_stream(namespace, name, _replace_spec_tag(body, new_tag))
        results.append((written, rollback_message(stream, tag, index, item, saved, already_pinned=already)))
        return written

    written = retry_on_conflict(attempt)
    if ctx.args.output:
        _emit(ctx, [written], "ImageStream")
    else:
        ctx.out(results[-1][1])
    return 0


def run_resume(ctx: Context) -> int:
    from imagestreams.cli.history import describe_source, resume_spec_tag  # noqa: PLC0415
    from imagestreams.cli.kube import retry_on_conflict  # noqa: PLC0415

    name, tag = _stream_and_tag(ctx.args.target)
    namespace = ctx.namespace
    sources: list[dict[str, Any]] = []

    def attempt() -> dict[str, Any]:
        body = ctx.kube.require_stream(namespace, name)
        new_tag, saved = resume_spec_tag(_spec_tag(body, name, tag), name)
        sources.append(saved)
        return ctx.kube.patch_stream(namespace, name, _replace_spec_tag(body, new_tag))

    written = retry_on_conflict(attempt)
    if ctx.args.output:
        _emit(ctx, [written], "ImageStream")
    else:
        ctx.out(f"Tag {name}:{tag} follows {describe_source(sources[-1], namespace)} again.\n")
    return 0


VERBS: dict[str, Callable[[Context], int]] = {
    "describe": run_describe,
    "tag": run_tag,
    "import-image": run_import_image,
    "set-triggers": run_set_triggers,
    "set-image-lookup": run_set_image_lookup,
    "history": run_history,
    "rollback": run_rollback,
    "resume": run_resume,
}


def run(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    """Parse and run one command; returns the exit status (0 success, 1 any error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(normalize_argv(argv))
        if not args.verb:
            parser.print_help(stdout)
            return 0
        from imagestreams.cli.kube import api_errors  # noqa: PLC0415

        with api_errors():
            return VERBS[args.verb](Context(args, stdout, stderr))
    except UsageError as error:
        verb = f" {error.verb}" if error.verb else ""
        stderr.write(f"error: {error}\nSee '{PROG}{verb} -h' for help and examples\n")
    except NotFound as error:
        stderr.write(f"error: {error}\n")
    except CliError as error:
        stderr.write(f"error: {error}\n")
    except KeyboardInterrupt:
        stderr.write("\n")
        return 130
    return 1

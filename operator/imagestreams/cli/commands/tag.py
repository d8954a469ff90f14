"""`tag`: point tags at a container image, at the image another tag points to now, or at another tag; `tag -d`."""

from __future__ import annotations

import argparse
import functools
from typing import Any

from imagestreams.cli import tagging
from imagestreams.cli.context import Context
from imagestreams.cli.describe import istag_not_found
from imagestreams.cli.edits import Edit
from imagestreams.cli.flags import add_dry_run_flag, add_output_flag
from imagestreams.cli.importing import IMPORT_REQUEST_ANNOTATION

USAGE = "tag [--source=SOURCETYPE] SOURCE DEST [DEST ...] | tag -d DEST [DEST ...] [flags]"
DESCRIPTION = (
    "Point tags of image streams at a container image (imported by the operator), at the image another "
    "tag points to now, or (with --alias) at another tag of the same stream. Missing streams are created."
)
EXAMPLES = """\
Examples:
  # Import an external image into a tag (a registry in SOURCE means a container image)
  kubectl imagestream tag quay.io/team/app:1.2 app:1.2
  # Docker Hub names have no registry: say that SOURCE is a container image
  kubectl imagestream tag --source=docker nginx:1.27 nginx:1.27 --scheduled
  # Copy the image app:1.2 points at now into app:stable (stays on that image)
  kubectl imagestream tag app:1.2 app:stable
  # Make app:latest follow app:1.2 whenever it changes
  kubectl imagestream tag --alias app:1.2 app:latest
  # Show the stream the tag would write, without writing it
  kubectl imagestream tag quay.io/team/app:1.2 app:1.2 --dry-run=client -o yaml
  # Delete a tag
  kubectl imagestream tag -d app:old"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "args", metavar="SOURCE DEST", nargs="*", help="the source, then [namespace/]stream:tag targets"
    )
    parser.add_argument(
        "--source", default="", help="what SOURCE is: docker (dockerimage), istag (imagestreamtag), isimage"
    )
    parser.add_argument("--alias", action="store_true", help="follow the source tag whenever it changes (same stream)")
    parser.add_argument("--reference", action="store_true", help="record the source as written, never import it")
    parser.add_argument("--scheduled", action="store_true", help="re-import the container image periodically")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP or unverified TLS for the import")
    parser.add_argument("--reference-policy", default="source", help="source (default) or local")
    parser.add_argument(
        "--import-mode", default=None, help="Legacy (default) or PreserveOriginal, for multi-arch images"
    )
    parser.add_argument("-d", "--delete", action="store_true", help="delete the given tags")
    add_dry_run_flag(parser, "client: print what would be written; server: let the API server check it too")
    add_output_flag(parser, "print the changed streams")


def run(ctx: Context) -> int:
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
        source_body = ctx.kube.require_stream(source.ref.namespace or namespace, source.ref.name)
        source = tagging.resolve_stream_tag(source, tagging.newest_item(source_body, source.ref.tag))
    changed: list[dict[str, Any]] = []
    for destination in plan.destinations:
        if source is None:
            decide = functools.partial(delete_tag, destination=destination)
            message = tagging.delete_message(destination)
        else:
            decide = functools.partial(
                set_tag,
                destination=destination,
                source=source,
                options=options,
                namespace=namespace,
                request=ctx.new_import_request(),
            )
            message = tagging.tag_message(destination, source, options, namespace)
        edited = ctx.kube.edit_stream(destination.namespace, destination.stream, decide, dry_run=ctx.dry_run)
        changed.append(edited.body)
        if ctx.output is None:
            ctx.out(ctx.dry_run.mark(message) + "\n")
    ctx.emit(changed, "ImageStream")
    return 0


def delete_tag(body: dict[str, Any] | None, *, destination: tagging.Destination) -> Edit[None]:
    """Deleting an ImageStreamTag on OpenShift removes the spec tag and the tag's status history (a tag removed from
    spec alone keeps its history, and triggers keep resolving it): the spec, then the status subresource."""
    tags = ((body or {}).get("spec") or {}).get("tags") or []
    status_tags = ((body or {}).get("status") or {}).get("tags") or []
    remaining = tagging.without_tag(tags, destination.tag)
    remaining_status = tagging.without_tag(status_tags, destination.tag, key="tag")
    if body is None or (remaining is None and remaining_status is None):
        raise istag_not_found(destination.stream, destination.tag)
    return Edit(
        None,
        patch=None if remaining is None else {"spec": {"tags": remaining}},
        status_patch=None if remaining_status is None else {"status": {"tags": remaining_status}},
    )


def set_tag(
    body: dict[str, Any] | None,
    *,
    destination: tagging.Destination,
    source: tagging.Source,
    options: tagging.TagOptions,
    namespace: str,
    request: str,
) -> Edit[None]:
    """The spec tag written (the stream created when missing); an unchanged container image source also gets a new
    import request, since the operator would not import it again otherwise (oc tag re-imports every time)."""
    tags = list(((body or {}).get("spec") or {}).get("tags") or [])
    existing = next((tag for tag in tags if tag.get("name") == destination.tag), None)
    new_tag = tagging.spec_tag(destination, source, options, namespace, existing)
    if body is None:
        return Edit(
            None,
            create={
                "apiVersion": "image.openshift.io/v1",
                "kind": "ImageStream",
                "metadata": {"name": destination.stream, "namespace": destination.namespace},
                "spec": {"tags": [new_tag]},
            },
        )
    patch: dict[str, Any] = {"spec": {"tags": tagging.with_tag(tags, new_tag)}}
    importable = source.kind == tagging.DOCKER_IMAGE and not options.reference
    if importable and tagging.source_unchanged(existing, new_tag):
        patch["metadata"] = {"annotations": {IMPORT_REQUEST_ANNOTATION: request}}
    return Edit(None, patch=patch)

"""`oc import-image` rules, as requests to the operator: what to change in the stream and how to report it.

OpenShift imports synchronously through its ImageStreamImport API. Here the CLI writes
the spec change `oc import-image` would make (a new tag, a new repository, import flags)
together with a fresh `imagestreams.dev/import-request` annotation, then waits until the
operator records that value in `status.importRequest` and reports what it found.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from imagestreams.api.imagestream import ImageStream, ImageStreamStatus
from imagestreams.cli.describe import (
    IMPORT_SUCCESS,
    ReferenceProblem,
    describe_image,
    describe_stream,
    follow_tag_reference,
    istag_view,
    status_tags,
)
from imagestreams.cli.errors import CliError, NotFound
from imagestreams.cli.tagging import DOCKER_IMAGE, IMPORT_MODES, REFERENCE_POLICIES, import_policy, parse_image_ref
from imagestreams.core.references import InvalidReference

IMPORT_REQUEST_ANNOTATION = "imagestreams.dev/import-request"
INSECURE_REPOSITORY_ANNOTATION = "openshift.io/image.insecureRepository"
STREAM_RESOURCE = "imagestream.image.openshift.io"


@dataclass(frozen=True)
class ImportOptions:
    target: str
    from_: str = ""
    confirm: bool = False
    all: bool = False
    scheduled: bool = False
    insecure: bool | None = None  # None: the flag was not given
    reference_policy: str | None = None  # None: the flag was not given
    import_mode: str | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class ImportTarget:
    name: str
    tag: str  # "" with --all


def parse_target(options: ImportOptions) -> ImportTarget:
    """NAME[:TAG] of `import-image`, with oc's messages; the tag defaults to latest unless --all."""
    if not options.target:
        raise CliError("you must specify the name of an image stream")
    try:
        ref = parse_image_ref(options.target)
    except InvalidReference:
        raise CliError(
            "the image name must be a valid Docker image pull spec or reference to an image stream "
            "(e.g. myregistry/myteam/image:tag)"
        ) from None
    if ref.id:
        raise CliError("to import images by ID, use the 'tag' command")
    if ref.tag and options.all:
        raise CliError(f"cannot specify a tag {json.dumps(options.target)} as well as --all")
    if options.reference_policy is not None and options.reference_policy not in REFERENCE_POLICIES:
        raise CliError("reference policy must be set to 'source' or 'local'")
    if options.import_mode is not None and options.import_mode not in IMPORT_MODES:
        raise CliError("valid ImportMode values are Legacy or PreserveOriginal")
    return ImportTarget(ref.name, "" if options.all else ref.tag or "latest")


@dataclass
class ImportPlan:
    """The stream to create, or the changes to an existing stream, and what to report afterwards."""

    create: dict[str, Any] | None = None
    spec_tags: list[dict[str, Any]] | None = None  # the new spec.tags, when they change
    docker_image_repository: str | None = None  # the new spec.dockerImageRepository, when it changes
    annotations: dict[str, str] = field(default_factory=dict)  # stream annotations to set
    tags: tuple[str, ...] = ()  # tags whose outcome is reported
    repository: str | None = None  # spec.dockerImageRepository whose import is reported
    warnings: tuple[str, ...] = ()


def _with_import_flags(tag: Mapping[str, Any], options: ImportOptions, *, new: bool) -> dict[str, Any]:
    """A spec tag with the import flags applied as OpenShift's import writes them back.

    --scheduled and --insecure only ever turn a setting on (oc sends flag-or-current); an
    existing tag's explicit reference policy is kept, as OpenShift's server keeps it.
    """
    result = copy.deepcopy(dict(tag))
    policy = import_policy(
        result.get("importPolicy") or {},
        insecure=bool(options.insecure),
        scheduled=bool(options.scheduled),
        mode=options.import_mode,
    )
    if policy:
        result["importPolicy"] = policy
    if options.reference_policy and (new or not result.get("referencePolicy")):
        result["referencePolicy"] = {"type": REFERENCE_POLICIES[options.reference_policy]}
    return result


def _docker_tag(name: str, pull_spec: str, options: ImportOptions) -> dict[str, Any]:
    return _with_import_flags({"name": name, "from": {"kind": DOCKER_IMAGE, "name": pull_spec}}, options, new=True)


def _replace_tags(tags: Sequence[Mapping[str, Any]], changed: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    result = [changed.get(str(tag.get("name")), dict(tag)) for tag in tags]
    known = {str(tag.get("name")) for tag in tags}
    return result + [tag for name, tag in changed.items() if name not in known]


def _repository_without_tag(pull_spec: str) -> None:
    try:
        ref = parse_image_ref(pull_spec)
    except InvalidReference as error:
        raise CliError(f"invalid --from: {error}") from None
    if ref.tag or ref.id:
        raise CliError(
            f"--all imports a whole repository: give it without a tag or digest (not {json.dumps(pull_spec)})"
        )


def _plan_new_stream(options: ImportOptions, target: ImportTarget, namespace: str) -> ImportPlan:
    if not options.confirm:
        raise CliError(f"no image stream named {json.dumps(target.name)} exists, pass --confirm to create and import")
    source = options.from_ or options.target
    metadata: dict[str, Any] = {"name": target.name, "namespace": namespace}
    if options.all:
        _repository_without_tag(source)
        spec: dict[str, Any] = {"dockerImageRepository": source}
        annotations = {INSECURE_REPOSITORY_ANNOTATION: "true"} if options.insecure else {}
        if annotations:
            metadata["annotations"] = annotations
        warnings = _repository_warnings(options)
        body = {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": metadata, "spec": spec}
        return ImportPlan(create=body, repository=source, warnings=warnings)
    spec = {"tags": [_docker_tag(target.tag, source, options)]}
    body = {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": metadata, "spec": spec}
    return ImportPlan(create=body, tags=(target.tag,))


def _repository_warnings(options: ImportOptions) -> tuple[str, ...]:
    if options.scheduled:
        return (
            "--scheduled has no effect on spec.dockerImageRepository (it has no import policy); "
            "tag single tags with --scheduled instead",
        )
    return ()


def _plan_all(options: ImportOptions, body: Mapping[str, Any]) -> ImportPlan:
    spec = body.get("spec") or {}
    tags: list[Mapping[str, Any]] = list(spec.get("tags") or [])
    current = str(spec.get("dockerImageRepository") or "")
    source = options.from_
    if not source:
        if current:
            source = current
        else:
            docker = {
                str(tag["name"]): _with_import_flags(tag, options, new=False)
                for tag in tags
                if (tag.get("from") or {}).get("kind") == DOCKER_IMAGE
            }
            if not docker:
                raise CliError("image stream does not have tags pointing to external container images")
            changed = {name: tag for name, tag in docker.items() if tag != next(t for t in tags if t["name"] == name)}
            return ImportPlan(spec_tags=_replace_tags(tags, changed) if changed else None, tags=tuple(docker))
    plan = ImportPlan(repository=source, warnings=_repository_warnings(options))
    if source != current:
        if not options.confirm:
            if not current:
                raise CliError(
                    "the image stream does not currently import an entire Docker repository, pass --confirm to update"
                )
            raise CliError(
                f"the image stream has a different import spec {json.dumps(current)}, pass --confirm to update"
            )
        _repository_without_tag(source)
        plan.docker_image_repository = source
    if options.insecure:
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        if annotations.get(INSECURE_REPOSITORY_ANNOTATION) != "true":
            plan.annotations[INSECURE_REPOSITORY_ANNOTATION] = "true"
    return plan


def _plan_tag(options: ImportOptions, target: ImportTarget, body: Mapping[str, Any]) -> ImportPlan:
    stream = ImageStream.model_validate(body)
    spec = body.get("spec") or {}
    tags: list[Mapping[str, Any]] = list(spec.get("tags") or [])
    tag = target.tag
    followed = follow_tag_reference(stream, tag)
    if followed.problem is ReferenceProblem.INVALID:
        raise CliError(f"tag {json.dumps(tag)} points to an invalid imagestreamtag")
    if followed.problem is ReferenceProblem.CROSS_STREAM:
        raise CliError(f"tag {json.dumps(tag)} points to an imagestreamtag from another ImageStream")
    if followed.problem is ReferenceProblem.CIRCULAR:
        raise CliError(f"tag {json.dumps(tag)} on the image stream is a reference to same tag")
    if followed.problem is ReferenceProblem.NOT_FOUND:
        source = options.from_
        if not source and tag == "latest":
            source = str(spec.get("dockerImageRepository") or "")
        if not source:
            raise CliError(
                f"the tag {json.dumps(tag)} does not exist on the image stream - choose an existing tag to import "
                "or use the 'tag' command to create a new tag"
            )
        # A reference chain that ends at a missing tag gets that tag created, so the chain resolves.
        new_tag = _docker_tag(followed.final, source, options)
        return ImportPlan(spec_tags=_replace_tags(tags, {followed.final: new_tag}), tags=(followed.final,))
    existing = followed.spec
    assert existing is not None
    source_ref = existing.from_
    if source_ref is not None and source_ref.kind != DOCKER_IMAGE:
        raise CliError(
            f"tag {json.dumps(tag)} points to existing {source_ref.kind} {json.dumps(source_ref.name or '')}, "
            "it cannot be re-imported"
        )
    if source_ref is None:
        raise CliError(
            f"tag {json.dumps(tag)} already exists - you must use the 'tag' command if you want to change the "
            f"source to {json.dumps(options.from_)}"
        )
    if options.from_ and options.from_ != source_ref.name:
        if followed.multiple:
            raise CliError(
                f"the tag {json.dumps(tag)} points to the tag {json.dumps(followed.final)} which points to "
                f"{json.dumps(source_ref.name)} - use the 'tag' command if you want to change the source to "
                f"{json.dumps(options.from_)}"
            )
        raise CliError(
            f"the tag {json.dumps(tag)} points to {json.dumps(source_ref.name)} - use the 'tag' command if you "
            f"want to change the source to {json.dumps(options.from_)}"
        )
    raw = next(t for t in tags if t.get("name") == followed.final)
    updated = _with_import_flags(raw, options, new=False)
    changed = {followed.final: updated} if updated != raw else {}
    return ImportPlan(spec_tags=_replace_tags(tags, changed) if changed else None, tags=(followed.final,))


def plan_import(
    options: ImportOptions, target: ImportTarget, body: Mapping[str, Any] | None, namespace: str
) -> ImportPlan:
    """What to write for `import-image`, given the stream as read (None when it does not exist)."""
    if body is None:
        return _plan_new_stream(options, target, namespace)
    if options.all:
        return _plan_all(options, body)
    return _plan_tag(options, target, body)


def request_patch(plan: ImportPlan, request: str, resource_version: str | None) -> dict[str, Any]:
    """The merge patch that applies the plan to an existing stream and asks for an import."""
    patch: dict[str, Any] = {"metadata": {"annotations": {**plan.annotations, IMPORT_REQUEST_ANNOTATION: request}}}
    if resource_version:
        patch["metadata"]["resourceVersion"] = resource_version
    spec: dict[str, Any] = {}
    if plan.spec_tags is not None:
        spec["tags"] = plan.spec_tags
    if plan.docker_image_repository is not None:
        spec["dockerImageRepository"] = plan.docker_image_repository
    if spec:
        patch["spec"] = spec
    return patch


def new_stream_body(plan: ImportPlan, request: str) -> dict[str, Any]:
    """The stream to create, carrying the import request."""
    assert plan.create is not None
    body = copy.deepcopy(plan.create)
    annotations = body["metadata"].setdefault("annotations", {})
    annotations[IMPORT_REQUEST_ANNOTATION] = request
    return body


def import_request_pending(body: Mapping[str, Any]) -> bool:
    """Whether the stream carries an import request the operator has not acted on yet."""
    request = ((body.get("metadata") or {}).get("annotations") or {}).get(IMPORT_REQUEST_ANNOTATION)
    return bool(request) and request != (body.get("status") or {}).get("importRequest")


def request_acted_on(body: Mapping[str, Any], request: str) -> bool:
    """True once the operator has recorded this import request in status."""
    return ((body.get("status") or {}).get("importRequest")) == request


@dataclass(frozen=True)
class TagOutcome:
    tag: str
    error: str | None  # the import failure, when the tag has one


def tag_outcomes(stream: ImageStream, tags: Sequence[str]) -> list[TagOutcome]:
    """After the operator acted on a request: each reported tag's failure message, or None when it has an image."""
    entries = status_tags(stream)
    outcomes = []
    for tag in tags:
        entry = entries.get(tag)
        failure = next(
            (
                c
                for c in (entry.conditions if entry else None) or []
                if c.type == IMPORT_SUCCESS and c.status == "False"
            ),
            None,
        )
        if failure is not None:
            outcomes.append(TagOutcome(tag, failure.message or failure.reason or "unknown error"))
        elif entry is None or not entry.items:
            outcomes.append(TagOutcome(tag, "the operator recorded no image for this tag"))
        else:
            outcomes.append(TagOutcome(tag, None))
    return outcomes


@dataclass(frozen=True)
class ImportReport:
    stdout: str
    errors: tuple[str, ...]  # printed as `error: ...` on stderr

    @property
    def failed(self) -> bool:
        return bool(self.errors)


def repository_tags(stream: ImageStream) -> list[str]:
    """Tags that exist only in status: those imported from spec.dockerImageRepository."""
    in_spec = {tag.name for tag in stream.spec.tags or []}
    return [entry.tag for entry in (stream.status or ImageStreamStatus()).tags or [] if entry.tag not in in_spec]


def import_report(stream: ImageStream, plan: ImportPlan, now: datetime.datetime) -> ImportReport:
    """What `oc import-image` prints: the stream, then each imported image; failures as errors."""
    name = str(stream.metadata.get("name", ""))
    errors: list[str] = []
    described: list[str] = []
    tags = list(plan.tags)
    status = stream.status or ImageStreamStatus()
    if plan.repository is not None:
        state = status.repository_import
        if state is not None and state.message:
            errors.append(f"repository {plan.repository} failed: {state.message}")
        tags += [tag for tag in repository_tags(stream) if tag not in tags]
    for outcome in tag_outcomes(stream, tags):
        if outcome.error is not None:
            errors.append(f"tag {outcome.tag} failed: {outcome.error}")
            continue
        try:
            view = istag_view(stream, outcome.tag)
        except NotFound:
            continue  # a reference-only tag has no image to describe
        described.append(describe_image(replace(view, image_name=f"{name}:{outcome.tag}"), now))
    message = "imported with errors" if errors else "imported"
    text = f"{message}\n\n" + describe_stream(stream, now) + "\n"
    text += "".join(image + "\n" for image in described)
    additional = status.repository_import.additional_tags if status.repository_import else None
    if plan.repository is not None and additional:
        text += (
            f"\ninfo: The remote repository contained {len(additional)} additional tags which were not imported: "
            f"{', '.join(additional)}\n"
        )
    return ImportReport(f"{STREAM_RESOURCE}/{name} {text}\n", tuple(errors))


_DURATION_PART = re.compile(r"(\d++(?:\.\d++)?)(ms|s|m|h)")


def parse_timeout(text: str) -> float:
    """A kubectl-style duration ("30s", "2m", "1h30m", "500ms", or plain seconds) in seconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    # Part after part from the start (findall would retry from every digit of a long bad run: quadratic).
    parts: list[tuple[str, str]] = []
    position = 0
    while part := _DURATION_PART.match(value, position):
        parts.append((part[1], part[2]))
        position = part.end()
    if not parts or position != len(value):
        raise CliError(f'invalid --timeout {json.dumps(text)}: use a duration such as "30s", "2m" or "1h30m"')
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


def format_timeout(seconds: float) -> str:
    """Seconds as Go prints a time.Duration ("2m30s", "45s")."""
    whole = int(seconds)
    if whole != seconds or whole == 0:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return f"{text}{secs}s"

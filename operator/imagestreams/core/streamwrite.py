"""OpenShift's write-time rules for image streams, as the operator's admission webhooks apply them to the CRD.

On OpenShift the API server itself numbers spec tag generations, fills in defaults and checks cross-namespace tag
sources against the user who writes (openshift-apiserver pkg/image/apiserver/registry/imagestream/strategy.go, and
SetDefaults_* in pkg/image/apis/image/v1/defaults.go). A custom resource has no such strategy, so the mutating
webhook computes here what OpenShift would store and answers with the JSON Patch that gets there; the validating
webhook asks here which sources to check.

Pure: the old body (None on CREATE) and the new body in, patch operations and decisions out.

Where a custom resource forces a choice OpenShift never faces (it never stores a tag without a generation or
defaults; a CRD stores whatever was written before the webhook was turned on), the rule is: **a tag the write does
not change keeps its stored form**. Such a legacy tag gets a generation and the defaults the first time a write
changes its source or asks for an import, never from a write that changes nothing, so enabling the webhook and
re-applying the same manifests re-imports nothing and bumps nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagestreams.api.crd import PULL_SPEC_PATTERN
from imagestreams.api.imagestream import GROUP, KIND, PLURAL

Json = dict[str, Any]

# SetDefaults_TagReferencePolicy and SetDefaults_TagImportPolicy (openshift-apiserver pkg/image/apis/image/v1/
# defaults.go): an empty type is Source, an empty import mode is apisimage.DefaultImportMode (Legacy unless the
# cluster's imageStreamImportMode says otherwise).
DEFAULT_REFERENCE_POLICY = "Source"
DEFAULT_IMPORT_MODE = "Legacy"
# TagVerifier and tagsChanged (strategy.go) refuse a source name parseFromReference cannot split with this text.
FROM_NAME_FORM = "must be of the form <tag>, <repo>:<tag>, <id>, or <repo>@<id>"


@dataclass(frozen=True)
class StreamWrite:
    """What OpenShift's strategy would make of one write."""

    patch: tuple[Json, ...]  # JSON Patch operations (RFC 6902) against the new body as received
    generation: int  # the metadata.generation the API server will store
    renumbered: tuple[str, ...]  # tags given that generation: OpenShift imports (or copies) each of them anew


@dataclass(frozen=True)
class SourceCheck:
    """One SubjectAccessReview TagVerifier makes: may the writer `get imagestreams/layers` of this stream."""

    namespace: str
    stream: str
    tags: tuple[str, ...]  # the tags that name it, each refused if the answer is no


@dataclass(frozen=True)
class FieldError:
    """A field.Error of k8s.io/apimachinery, kept as the text its Error() method gives."""

    text: str


def stream_write(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> StreamWrite:
    """The patch that makes `new` what OpenShift would store: PrepareForCreate (old is None) or prepareForUpdate.

    Tag generations (strategy.go):
    - CREATE: every tag gets generation 1, whatever was sent.
    - UPDATE, updateSpecTagGenerationsForUpdate: a tag that exists keeps its stored generation, whatever was sent,
      unless 0 was sent.
    - ensureSpecTagGenerationsAreSet: a new tag, a tag whose source changed (tagRefChanged: namespace, name,
      reference, importMode, or generation reset to 0) and a tag sent with generation 0 get the stream's new
      metadata.generation. OpenShift also gives one to a stored tag without a generation (or with 0, written
      before the webhook was on); here such a tag keeps what it has until a write changes it (the module's rule),
      since on a CRD setting it would bump metadata.generation and re-import the tag.

    metadata.generation: the API server bumps a custom resource's generation after the mutating webhooks have run,
    to old + 1 when anything outside metadata and status differs from the stored object, so the new value is
    predicted from the final body (OpenShift compares specs the same way, after restoring generations).
    """
    tags = _tags(new)
    if old is None:
        return _create(tags)
    namespace = _text(_mapping(new.get("metadata")).get("namespace")) or _text(
        _mapping(old.get("metadata")).get("namespace")
    )
    old_tags = _tags_by_name(old)
    stored_generation = _generation(_mapping(old.get("metadata")).get("generation")) or 1
    next_generation = stored_generation + 1

    final_tags: list[Any] = []
    renumbered: list[str] = []
    patch: list[Json] = []
    for index, tag in enumerate(tags):
        if not isinstance(tag, dict):
            final_tags.append(tag)
            continue
        name = _text(tag.get("name"))
        stored = old_tags.get(name)
        restored = _restore_generation(tag, stored)
        asks_import = _generation(tag.get("generation")) == 0
        if stored is None or asks_import or tag_ref_changed(stored, restored, namespace):
            final = _with_defaults(_set_generation(restored, next_generation))
            renumbered.append(name)
        else:
            final = _keep_stored_defaults(restored, stored)
        final_tags.append(final)
        patch.extend(_tag_patch(index, tag, final))

    final_body = {**new, "spec": {**_mapping(new.get("spec")), "tags": final_tags}} if tags else new
    generation = stored_generation if _identical(_content(final_body), _content(old)) else next_generation
    return StreamWrite(tuple(patch), generation, tuple(renumbered))


def _create(tags: Sequence[Any]) -> StreamWrite:
    patch: list[Json] = []
    renumbered: list[str] = []
    for index, tag in enumerate(tags):
        if isinstance(tag, dict):
            patch.extend(_tag_patch(index, tag, _with_defaults(_set_generation(tag, 1))))
            renumbered.append(_text(tag.get("name")))
    return StreamWrite(tuple(patch), 1, tuple(renumbered))


def _restore_generation(tag: Json, stored: Mapping[str, Any] | None) -> Json:
    """updateSpecTagGenerationsForUpdate: 0 stays 0; otherwise a stored tag's generation replaces what was sent
    (an absent one included); a new tag keeps what was sent (replaced later anyway)."""
    if stored is None or _generation(tag.get("generation")) == 0:
        return tag
    restored = {key: value for key, value in tag.items() if key != "generation"}
    if "generation" in stored:
        restored["generation"] = stored["generation"]
    return restored


def _set_generation(tag: Mapping[str, Any], generation: int) -> Json:
    return {**tag, "generation": generation}


def _with_defaults(tag: Mapping[str, Any]) -> Json:
    """SetDefaults_TagReferencePolicy and SetDefaults_TagImportPolicy. Both structs are values, not pointers, in
    OpenShift's TagReference, so every tag OpenShift stores has them, even when the client left them out."""
    result = dict(tag)
    reference_policy = _mapping(tag.get("referencePolicy"))
    if not _text(reference_policy.get("type")):
        result["referencePolicy"] = {**reference_policy, "type": DEFAULT_REFERENCE_POLICY}
    import_policy = _mapping(tag.get("importPolicy"))
    if not _text(import_policy.get("importMode")):
        result["importPolicy"] = {**import_policy, "importMode": DEFAULT_IMPORT_MODE}
    return result


def _keep_stored_defaults(tag: Json, stored: Mapping[str, Any]) -> Json:
    """A tag the write does not renumber: a default the client left out is written back where the stored tag has
    that field (a client that omits it does not remove it), and not added where the stored tag has none."""
    result = dict(tag)
    if _text(_mapping(stored.get("referencePolicy")).get("type")):
        reference_policy = _mapping(tag.get("referencePolicy"))
        if not _text(reference_policy.get("type")):
            result["referencePolicy"] = {**reference_policy, "type": DEFAULT_REFERENCE_POLICY}
    if _text(_mapping(stored.get("importPolicy")).get("importMode")):
        import_policy = _mapping(tag.get("importPolicy"))
        if not _text(import_policy.get("importMode")):
            result["importPolicy"] = {**import_policy, "importMode": DEFAULT_IMPORT_MODE}
    return result


def _tag_patch(index: int, sent: Mapping[str, Any], final: Mapping[str, Any]) -> list[Json]:
    """Operations turning the tag as sent into `final` (which differs only in generation and the two policies)."""
    operations: list[Json] = []
    base = f"/spec/tags/{index}"
    if "generation" in final and not ("generation" in sent and _identical(sent["generation"], final["generation"])):
        operations.append({"op": "add", "path": f"{base}/generation", "value": final["generation"]})
    elif "generation" not in final and "generation" in sent:
        operations.append({"op": "remove", "path": f"{base}/generation"})
    for policy, field in (("referencePolicy", "type"), ("importPolicy", "importMode")):
        if _identical(sent.get(policy), final.get(policy)):
            continue
        value = final[policy][field]
        if isinstance(sent.get(policy), dict):
            operations.append({"op": "add", "path": f"{base}/{policy}/{field}", "value": value})
        else:
            operations.append({"op": "add", "path": f"{base}/{policy}", "value": {field: value}})
    return operations


def tag_ref_changed(old: Mapping[str, Any], new: Mapping[str, Any], namespace: str) -> bool:
    """tagRefChanged (strategy.go) on defaulted tags: the source namespace (empty means the stream's), name,
    `reference` or importMode differ, or the generation went from a value to 0. A tag without `from`, or whose
    `from` has neither kind nor name, never counts as changed. `from.kind`, `scheduled`, `insecure`,
    referencePolicy and annotations are not compared."""
    new_from = new.get("from")
    if not isinstance(new_from, dict) or not (_text(new_from.get("kind")) or _text(new_from.get("name"))):
        return False
    old_from = _mapping(old.get("from"))
    old_generation, new_generation = _generation(old.get("generation")), _generation(new.get("generation"))
    return (
        (_text(old_from.get("namespace")) or namespace) != (_text(new_from.get("namespace")) or namespace)
        or _text(old_from.get("name")) != _text(new_from.get("name"))
        or bool(old.get("reference")) != bool(new.get("reference"))
        or _import_mode(old) != _import_mode(new)
        # tagRefGenerationChanged: both set, different, and the new one is 0.
        or (old_generation is not None and new_generation == 0 and old_generation != 0)
    )


def source_checks(
    old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> tuple[tuple[SourceCheck, ...], tuple[FieldError, ...]]:
    """TagVerifier.Verify (strategy.go): the access reviews a write needs, and the sources refused outright.

    A tag is checked when its `from.namespace` is set and is not the stream's own, and it is new or its source
    changed (tagRefChanged after generations are set, so a generation reset alone is not checked again). Its stream
    is parseFromReference's: `<stream>:<tag>` or `<stream>@<id>`, or this stream's own name for a bare tag or id;
    any other kind (DockerImage included) or a name with more separators is refused as Invalid, with no review.
    One review per (namespace, stream), naming every tag that points at it.
    """
    metadata = _mapping(new.get("metadata"))
    namespace, name = _text(metadata.get("namespace")), _text(metadata.get("name"))
    old_tags = _tags_by_name(old)
    invalid: list[FieldError] = []
    by_stream: dict[tuple[str, str], list[str]] = {}
    for tag in _tags(new):
        if not isinstance(tag, dict):
            continue
        tag_name = _text(tag.get("name"))
        source = tag.get("from")
        if not isinstance(source, dict):
            continue
        source_namespace = _text(source.get("namespace"))
        if not source_namespace or source_namespace == namespace:
            continue
        stored = old_tags.get(tag_name)
        if stored is not None and not tag_ref_changed(stored, tag, namespace):
            continue
        stream = _source_stream(name, _text(source.get("kind")), _text(source.get("name")))
        if stream is None:
            invalid.append(invalid_error(f"{_from_path(tag_name)}.name", source.get("name"), FROM_NAME_FORM))
            continue
        by_stream.setdefault((source_namespace, stream), []).append(tag_name)
    checks = tuple(SourceCheck(ns, stream, tuple(tags)) for (ns, stream), tags in by_stream.items())
    return checks, tuple(invalid)


# library-go's reference errors (pkg/image/internal/reference/reference.go, internal/digest/digest.go).
_NAME_TOO_LONG = "repository name must not be more than 255 characters"
_NAME_UPPERCASE = "repository name must be lowercase"
_INVALID_FORMAT = "invalid reference format"
_DIGEST_FORMAT = re.compile(r"[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+")
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_PULL_SPEC = re.compile(PULL_SPEC_PATTERN)
NAME_TOTAL_LENGTH_MAX = 255


def pull_spec_problem(spec: str) -> str | None:
    """Why library-go's reference.Parse refuses a pull spec, in its words; None when it parses."""
    name_and_tag, at, digest = spec.partition("@")
    if at:
        if not _DIGEST_FORMAT.fullmatch(digest):
            return "invalid checksum digest format"
        algorithm, _, hex_digits = digest.partition(":")
        if algorithm not in _DIGEST_HEX_LENGTHS:
            return "unsupported digest algorithm"
        if len(hex_digits) != _DIGEST_HEX_LENGTHS[algorithm]:
            return "invalid checksum digest length"
    if not _PULL_SPEC.fullmatch(name_and_tag):
        return _NAME_UPPERCASE if _PULL_SPEC.fullmatch(name_and_tag.lower()) else _INVALID_FORMAT
    name = name_and_tag
    if ":" in name.rsplit("/", 1)[-1]:
        name = name[: name.rindex(":")]
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        return _NAME_TOO_LONG
    return None


def pull_spec_errors(new: Mapping[str, Any]) -> tuple[FieldError, ...]:
    """ValidateImageStreamTagReference (openshift-apiserver pkg/image/apis/image/validation): every DockerImage
    `from.name` must parse as a pull spec (library-go reference.Parse), checked on every write of the stream."""
    errors = []
    for tag in _tags(new):
        source = _mapping(tag.get("from")) if isinstance(tag, dict) else {}
        name = source.get("name")
        if source.get("kind") != "DockerImage" or not isinstance(name, str) or not name:
            continue
        problem = pull_spec_problem(name)
        if problem is not None:
            errors.append(invalid_error(f"{_from_path(_text(tag.get('name')))}.name", name, problem))
    return tuple(errors)


def _source_stream(own_name: str, kind: str, name: str) -> str | None:
    """parseFromReference (strategy.go): the stream an ImageStreamTag or ImageStreamImage source names."""
    separator = {"ImageStreamTag": ":", "ImageStreamImage": "@"}.get(kind)
    if separator is None:
        return None
    parts = name.split(separator)
    if len(parts) == 1:
        return own_name
    if len(parts) == 2:
        return parts[0]
    return None


def refused_source(
    check: SourceCheck, reason: str = "", evaluation_error: str = "", error: str = ""
) -> list[FieldError]:
    """TagVerifier's Forbidden error for each tag of a check that was not allowed: `<ns>/<stream>`, the review's
    reason and evaluation error quoted, then `- <error>` when asking failed. (client-go hands back an empty review
    along with an error, so OpenShift prints the two empty quotes then too.)"""
    message = f"{check.namespace}/{check.stream}: {go_quote(reason)} {go_quote(evaluation_error)}"
    if error:
        message += f"- {error}"
    return [FieldError(f"{_from_path(tag)}: Forbidden: {message}") for tag in check.tags]


def invalid_error(path: str, value: object, detail: str) -> FieldError:
    """field.Invalid(path, value, detail).Error()."""
    shown = go_quote(value) if isinstance(value, str) else ("null" if value is None else json.dumps(value))
    return FieldError(f"{path}: Invalid value: {shown}: {detail}")


def invalid_message(name: str, errors: Sequence[FieldError]) -> str:
    """The message OpenShift's API server gives when validateTagsAndLimits fails: kerrors.NewInvalid over the
    field errors, wrapped by Validate in field.InternalError(field.NewPath(""), err), then NewInvalid again by the
    generic registry (derived from strategy.go and k8s.io/apiserver rest.BeforeCreate/BeforeUpdate)."""
    inner = f"{PLURAL} {go_quote(name)} is invalid: {_aggregate(errors)}"
    return f"{KIND}.{GROUP} {go_quote(name)} is invalid: : Internal error: {inner}"


def refusal_message(name: str, verifier_errors: Sequence[FieldError], spec_errors: Sequence[FieldError]) -> str:
    """Strategy.Validate's errors as the API server reports them: the TagVerifier's wrapped in one internal error
    (invalid_message), then ValidateImageStream's field errors, all in one Invalid."""
    if not spec_errors:
        return invalid_message(name, verifier_errors)
    errors = list(spec_errors)
    if verifier_errors:
        inner = f"{PLURAL} {go_quote(name)} is invalid: {_aggregate(verifier_errors)}"
        errors.insert(0, FieldError(f": Internal error: {inner}"))
    return f"{KIND}.{GROUP} {go_quote(name)} is invalid: {_aggregate(errors)}"


def _aggregate(errors: Sequence[FieldError]) -> str:
    """utilerrors.Aggregate.Error(): one message alone, several in brackets; duplicates once."""
    texts = list(dict.fromkeys(error.text for error in errors))
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def go_quote(value: str) -> str:
    """Go's %q for the strings met here (printable text): double quotes, backslash escapes."""
    return json.dumps(value, ensure_ascii=False)


def _from_path(tag: str) -> str:
    # field.NewPath("spec", "tags").Key(tag).Child("from")
    return f"spec.tags[{tag}].from"


def _import_mode(tag: Mapping[str, Any]) -> str:
    return _text(_mapping(tag.get("importPolicy")).get("importMode")) or DEFAULT_IMPORT_MODE


def _tags(body: Mapping[str, Any] | None) -> list[Any]:
    tags = _mapping(_mapping(body).get("spec")).get("tags")
    return list(tags) if isinstance(tags, list) else []


def _tags_by_name(body: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {_text(tag.get("name")): tag for tag in _tags(body) if isinstance(tag, dict)}


def _content(body: Mapping[str, Any]) -> Json:
    """What the API server compares to decide a custom resource's generation: all but metadata and status."""
    return {key: value for key, value in body.items() if key not in ("metadata", "status")}


def _generation(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _identical(a: object, b: object) -> bool:
    """Equality as Go compares decoded JSON: a bool is not a number, an integer is not a float."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_identical(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b

"""`convert`: OpenShift exports of image streams as clean `image.openshift.io/v1` objects. Pure (text in, text out).

What `oc get is -o yaml` and old catalogs hold, and what becomes of it:

- `apiVersion: v1` (OpenShift 3's legacy API, which has no group): the same object under
  `image.openshift.io/v1`, which is the only version the CRD serves.
- `List` and `ImageStreamList` wrappers: one object per stream, in order.
- What the server wrote about the object on the old cluster, removed:
  `metadata.uid`, `resourceVersion`, `selfLink`, `creationTimestamp`, `generation`, `managedFields`
  (identity and bookkeeping of the old cluster; the new API server sets its own, and in a Git repository they
  would show as drift on every sync), `metadata.deletionTimestamp`/`deletionGracePeriodSeconds` (same),
  `metadata.ownerReferences` (they name owners by the old cluster's UIDs: the new cluster's garbage collector
  would delete a stream whose owner does not exist), `status` (the operator fills it on the new cluster by
  importing), `spec.tags[].generation` (OpenShift's API server numbers them against the old stream's
  `metadata.generation`, and numbers them anew on create, as the admission webhook here does), the annotation
  `openshift.io/image.dockerRepositoryCheck` (OpenShift's server writes the time it last imported
  `spec.dockerImageRepository`; on the new cluster no such import happened, and the operator reads any change
  of it as a request to import the repository again), and `kubectl.kubernetes.io/last-applied-configuration`
  (what was last applied to the old cluster: a later client-side `kubectl apply` would compute deletions from it).
- Everything else is kept as written, in its order: names, namespaces, labels, other annotations, spec.

Other kinds are refused, with the file and document named: a DeploymentConfig or BuildConfig has no
equivalent here (see docs/migration.md), and passing it through would only move the failure to `kubectl apply`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from imagestreams.cli.errors import CliError

GROUP_VERSION = "image.openshift.io/v1"
LEGACY_VERSION = "v1"
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "selfLink",
    "creationTimestamp",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
)
SERVER_ANNOTATIONS = ("openshift.io/image.dockerRepositoryCheck", "kubectl.kubernetes.io/last-applied-configuration")
LIST_KINDS = frozenset({"List", "ImageStreamList"})
_HINTS = {
    "DeploymentConfig": "use a Deployment with the image.openshift.io/triggers annotation (docs/migration.md)",
    "BuildConfig": "build images in CI and push them to a registry the stream imports from (docs/migration.md)",
    "ImageStreamTag": "its tag is part of the ImageStream's spec.tags; convert the ImageStream",
    "ImageStreamImage": "images are recorded in the ImageStream's status by the operator; convert the ImageStream",
    "ImageTag": "its tag is part of the ImageStream's spec.tags; convert the ImageStream",
    "ImageStreamMapping": "the operator records images itself; push to a registry and import instead",
    "Image": "images are recorded in the ImageStream's status by the operator; convert the ImageStream",
}


class _Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """YAML as Kubernetes reads it: an unquoted timestamp stays a string (PyYAML would make it a datetime)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Where:
    """A document of an input, for messages: `exports.yaml: document 2, item 5`."""

    source: str
    document: int
    item: int | None = None

    def __str__(self) -> str:
        item = f", item {self.item}" if self.item is not None else ""
        return f"{self.source}: document {self.document}{item}"


def documents(text: str, source: str) -> Iterator[tuple[int, Any]]:
    """The YAML (or JSON) documents of one input, numbered from 1; empty documents are skipped, as kubectl does."""
    loader = _Loader(text)
    number = 0
    reading = 1  # the document being read, for the message when it does not parse
    try:
        while loader.check_data():
            number = reading
            document = loader.get_data()
            reading = number + 1
            if document is not None:
                yield number, document
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise CliError(f"{source}: document {reading}{where}: not valid YAML or JSON: {problem}") from None
    finally:
        loader.dispose()


def _kind(document: Any) -> tuple[str, str]:
    return str(document.get("kind") or ""), str(document.get("apiVersion") or "")


def convert_stream(document: Mapping[str, Any], where: Where) -> dict[str, Any]:
    """One ImageStream without what the old cluster's server wrote; the rest as written."""
    api_version = _kind(document)[1]
    if api_version not in (GROUP_VERSION, LEGACY_VERSION):
        raise CliError(
            f"{where}: an ImageStream of apiVersion {json.dumps(api_version)}; expected v1 or {GROUP_VERSION}"
        )
    stream: dict[str, Any] = {}
    for key, value in document.items():
        if key == "apiVersion":
            stream[key] = GROUP_VERSION
        elif key != "status":
            stream[key] = copy.deepcopy(value)
    metadata = stream.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        raise CliError(f"{where}: an ImageStream without metadata.name")
    for field in SERVER_METADATA:
        metadata.pop(field, None)
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        for annotation in SERVER_ANNOTATIONS:
            annotations.pop(annotation, None)
        if not annotations:
            del metadata["annotations"]
    spec = stream.get("spec")
    tags = spec.get("tags") if isinstance(spec, dict) else None
    for tag in tags if isinstance(tags, list) else ():
        if isinstance(tag, dict):
            tag.pop("generation", None)
    return stream


def _refuse(document: Any, where: Where) -> CliError:
    if not isinstance(document, Mapping):
        return CliError(f"{where}: not an object (a {type(document).__name__}); expected an ImageStream")
    kind, api_version = _kind(document)
    if not kind:
        return CliError(f"{where}: has no kind; expected an ImageStream")
    hint = _HINTS.get(kind)
    shown = f"a {kind} ({api_version})" if api_version else f"a {kind}"
    return CliError(
        f"{where}: {shown}, not an ImageStream; convert rewrites image streams only"
        + (f": {hint}" if hint else " (export them with: oc get imagestreams -o yaml)")
    )


def convert_documents(text: str, source: str) -> list[dict[str, Any]]:
    """Every stream of one input, unwrapped from List and ImageStreamList, in order."""
    streams: list[dict[str, Any]] = []
    for number, document in documents(text, source):
        where = Where(source, number)
        kind = _kind(document)[0] if isinstance(document, Mapping) else ""
        if kind in LIST_KINDS:
            items = document.get("items") or []
            if not isinstance(items, list):
                raise CliError(f"{where}: a {kind} whose items are not a list")
            for index, item in enumerate(items, start=1):
                item_where = Where(source, number, index)
                if not isinstance(item, Mapping) or _kind(item)[0] != "ImageStream":
                    raise _refuse(item, item_where)
                streams.append(convert_stream(item, item_where))
        elif kind == "ImageStream":
            streams.append(convert_stream(document, where))
        else:
            raise _refuse(document, where)
    return streams


def render_streams(streams: list[dict[str, Any]], output: str) -> str:
    """One document per stream: YAML documents separated by `---`, or JSON objects one after another (kubectl
    reads both as a stream of objects)."""
    if output == "json":
        return "".join(json.dumps(stream, indent=4) + "\n" for stream in streams)
    dumper = yaml.CSafeDumper if hasattr(yaml, "CSafeDumper") else yaml.SafeDumper
    return "".join(
        "---\n" + str(yaml.dump(stream, Dumper=dumper, default_flow_style=False, sort_keys=False)) for stream in streams
    )

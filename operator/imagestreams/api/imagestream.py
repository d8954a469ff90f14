"""The ImageStream resource, field for field compatible with OpenShift's image.openshift.io/v1.

These pydantic models are the one source of truth: the CRD in crds/ and in the
Helm chart is generated from them (`make crds`), and the operator reads and
writes streams through them. Extra unknown fields are kept, so an object read
and written back never loses data a newer client put there.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

GROUP = "image.openshift.io"
VERSION = "v1"
KIND = "ImageStream"
PLURAL = "imagestreams"
API_VERSION = f"{GROUP}/{VERSION}"

# Stream names follow OpenShift's rule (stricter than a DNS subdomain: no consecutive separators).
STREAM_NAME_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"


class SourceKind(StrEnum):
    DOCKER_IMAGE = "DockerImage"
    IMAGE_STREAM_TAG = "ImageStreamTag"
    IMAGE_STREAM_IMAGE = "ImageStreamImage"


class ImportMode(StrEnum):
    LEGACY = "Legacy"
    PRESERVE_ORIGINAL = "PreserveOriginal"


class ReferencePolicyType(StrEnum):
    SOURCE = "Source"
    LOCAL = "Local"


def _empty_as_none(value: object) -> object:
    """Go writes an unset string field as "" (e.g. `importMode: ""`); it means the same as leaving it out."""
    return None if value == "" else value


def _default_reference_policy(value: object) -> object:
    # SetDefaults_TagReferencePolicy (openshift-apiserver pkg/image/apis/image/v1/defaults.go): "" means Source.
    return ReferencePolicyType.SOURCE if value in ("", None) else value


def _null_as_false(value: object) -> object:
    # Go decodes `null` into a bool field as false.
    return False if value is None else value


# Every optional field of OpenShift's types may be written as an explicit `null` (its serializer writes
# `generation: null` and `annotations: null`); the CRD marks them `nullable` (api/crd.py).
NULLABLE: dict[str, Any] = {"nullable": True}


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow", use_enum_values=True)

    def dump(self) -> dict[str, Any]:
        """The wire form: camelCase names, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectReference(_Model):
    """The fields of core/v1 ObjectReference; image streams use kind, name and namespace."""

    kind: SourceKind | None = Field(
        None,
        description="What `name` refers to: DockerImage (a pull spec in a registry), ImageStreamTag "
        "(`<stream>:<tag>`, or just `<tag>` within this stream) or ImageStreamImage (`<stream>@<digest>`).",
    )
    name: str | None = Field(None, description="The pull spec (DockerImage), `<stream>:<tag>` or `<stream>@<digest>`.")
    namespace: str | None = Field(
        None, description="Namespace of the referenced stream; defaults to the namespace of this stream."
    )
    api_version: str | None = Field(None, alias="apiVersion", description="Unused; kept for compatibility.")
    uid: str | None = Field(None, description="Unused; kept for compatibility.")
    resource_version: str | None = Field(None, alias="resourceVersion", description="Unused; kept for compatibility.")
    field_path: str | None = Field(None, alias="fieldPath", description="Unused; kept for compatibility.")


class TagImportPolicy(_Model):
    insecure: bool | None = Field(
        None,
        description="Allow importing over plain HTTP or without verifying the registry's TLS certificate. "
        "Off by default; prefer adding the registry's CA to the operator instead.",
    )
    scheduled: bool | None = Field(
        None,
        description="Re-import this tag periodically so it follows its source. Only for DockerImage sources.",
    )
    import_mode: Annotated[ImportMode | None, BeforeValidator(_empty_as_none)] = Field(
        None,
        alias="importMode",
        description="For multi-arch sources: Legacy imports the one image matching the preferred platform "
        "(tag annotations importer.image.openshift.io/prefer-arch and prefer-os, then the operator's platform, "
        "then linux/amd64, then the first); PreserveOriginal keeps the index digest and records its children. "
        "Empty means Legacy.",
        json_schema_extra={"enum": ["", "Legacy", "PreserveOriginal"]},
    )


class TagReferencePolicy(_Model):
    type: Annotated[ReferencePolicyType, BeforeValidator(_default_reference_policy)] = Field(
        ReferencePolicyType.SOURCE,
        description="Source: workloads are pointed at the image's original location. Local: at the stream's "
        "status.dockerImageRepository when one is set, else the original location. Empty means Source.",
        json_schema_extra={"enum": ["", "Source", "Local"], **NULLABLE},
    )


class TagReference(_Model):
    """One spec tag: where its image comes from and how it is imported."""

    name: str = Field(description="The tag name, e.g. `latest` or `1.2`.")
    annotations: dict[str, str] | None = Field(None, description="Annotations for images seen through this tag.")
    from_: ObjectReference | None = Field(
        None,
        alias="from",
        description="The source of this tag's image. Without it, the tag only receives pushed images.",
    )
    reference: bool | None = Field(
        None,
        description="When true the source pull spec is recorded as is and never imported "
        "(a DockerImage reference then has no digest).",
    )
    generation: int | None = Field(
        None,
        description="OpenShift's spec tag generation. Accepted for compatibility; setting it to 0 (or to any "
        "new value) requests a new import of this tag.",
    )
    import_policy: TagImportPolicy | None = Field(
        None, alias="importPolicy", description="How the tag is imported from its source."
    )
    reference_policy: TagReferencePolicy | None = Field(
        None, alias="referencePolicy", description="Which pull spec workloads that follow this tag receive."
    )


class ImageLookupPolicy(_Model):
    local: Annotated[bool, BeforeValidator(_null_as_false)] = Field(
        False,
        json_schema_extra=NULLABLE,
        description="When true, short image names in workloads of this namespace that match this stream are "
        "meant to resolve to the stream's images (see the operator docs for what is supported).",
    )


class ImageStreamSpec(_Model):
    lookup_policy: ImageLookupPolicy | None = Field(
        None, alias="lookupPolicy", description="Whether short image names resolve to this stream."
    )
    docker_image_repository: str | None = Field(
        None,
        alias="dockerImageRepository",
        description="Deprecated in OpenShift but honoured: a repository (no tag or digest) whose tags are all "
        "imported, up to the operator's per-repository limit, most relevant first.",
    )
    tags: list[TagReference] | None = Field(
        None,
        description="The tags this stream tracks, unique by name.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class TagEvent(_Model):
    """One image a tag pointed at."""

    created: str = Field(description="When the tag first pointed at this image (RFC 3339).")
    docker_image_reference: str = Field(
        alias="dockerImageReference",
        description="A pull spec for this image: the source repository as written, with @digest.",
    )
    image: str = Field("", description="The image digest (empty for reference-only tags).")
    generation: int = Field(description="The stream generation whose spec produced this entry.")


class TagEventCondition(_Model):
    type: str = Field(description="ImportSuccess.")
    status: str = Field(description="True, False or Unknown.")
    last_transition_time: str | None = Field(
        None, alias="lastTransitionTime", description="When the condition last changed (RFC 3339)."
    )
    reason: str | None = Field(None, description="A machine-readable reason, e.g. NotFound or Unauthorized.")
    message: str | None = Field(None, description="What went wrong and what to do about it.")
    generation: int = Field(description="The stream generation this condition was observed at.")


class TagSourceState(_Model):
    """The operator's own bookkeeping for one tag (not an OpenShift field; `oc` ignores it).

    OpenShift's API server assigns spec tag generations itself. A CRD cannot, and
    writing them into spec would fight GitOps tools, so the operator records here
    which source it last saw for the tag and at which stream generation it appeared.
    """

    source_fingerprint: str = Field(
        alias="sourceFingerprint", description="A hash of the spec fields that define where the image comes from."
    )
    spec_generation: int = Field(
        alias="specGeneration", description="The stream generation at which that source was first seen."
    )


class NamedTagEventList(_Model):
    tag: str = Field(description="The tag name.")
    source: TagSourceState | None = Field(
        None, description="Operator bookkeeping: the source last seen for this tag (not an OpenShift field)."
    )
    items: list[TagEvent] | None = Field(
        None, description="The tag's history, newest first; the first entry is the current image."
    )
    conditions: list[TagEventCondition] | None = Field(
        None, description="Import problems; ImportSuccess=False while the last import failed."
    )


class ImageManifestSummary(_Model):
    """One child of a multi-arch image."""

    digest: str = Field(description="The child manifest's digest.")
    media_type: str | None = Field(None, alias="mediaType", description="The child manifest's media type.")
    size: int | None = Field(None, description="The child manifest's size in bytes.")
    architecture: str | None = Field(None, description="CPU architecture, e.g. amd64.")
    os: str | None = Field(None, description="Operating system, e.g. linux.")
    variant: str | None = Field(None, description="CPU variant, e.g. v8.")


class ImageSummary(_Model):
    """What the operator read about one image in a tag's history (OpenShift keeps this in Image objects,
    which need cluster-wide rights to read; here anyone who can read the stream sees it)."""

    image: str = Field(description="The image digest, as in status.tags[].items[].image.")
    media_type: str | None = Field(None, alias="mediaType", description="The manifest or index media type.")
    architecture: str | None = Field(None, description="CPU architecture, e.g. amd64.")
    os: str | None = Field(None, description="Operating system, e.g. linux.")
    variant: str | None = Field(None, description="CPU variant, e.g. v8.")
    created: str | None = Field(None, description="When the image was built, from its config.")
    size: int | None = Field(None, description="Config plus distinct layer sizes, in bytes (compressed).")
    layer_count: int | None = Field(None, alias="layerCount", description="Number of layers.")
    labels: dict[str, str] | None = Field(None, description="Image labels (the first 32, values cut at 256 bytes).")
    entrypoint: list[str] | None = Field(None, description="The image's entrypoint.")
    cmd: list[str] | None = Field(None, description="The image's default command.")
    working_dir: str | None = Field(None, alias="workingDir", description="The image's working directory.")
    user: str | None = Field(None, description="The user the image runs as.")
    exposed_ports: list[str] | None = Field(None, alias="exposedPorts", description="Ports the image declares.")
    manifests: list[ImageManifestSummary] | None = Field(
        None, description="For a multi-arch image kept whole (PreserveOriginal): its children."
    )
    mirror: str | None = Field(
        None,
        description="The mirror repository the image was read from (an ImageDigestMirrorSet or ImageTagMirrorSet "
        "mirror), when it was not read from its source. dockerImageReference keeps the source's name, as on "
        "OpenShift.",
    )


class RepositoryImportState(_Model):
    """Operator bookkeeping for spec.dockerImageRepository (not an OpenShift field)."""

    repository: str = Field(description="The repository that was imported.")
    additional_tags: list[str] | None = Field(
        None,
        alias="additionalTags",
        description="Tags of the repository that were not imported because of the operator's per-repository limit.",
    )
    message: str | None = Field(None, description="Why the repository's tags could not be listed, if they could not.")
    docker_repository_check: str | None = Field(
        None,
        alias="dockerRepositoryCheck",
        description="The value of the openshift.io/image.dockerRepositoryCheck annotation at that import; a "
        "change or removal of the annotation imports the repository again.",
    )


class StreamCondition(_Model):
    """A condition of the whole stream (not an OpenShift field)."""

    type: str = Field(description="StatusComplete.")
    status: str = Field(description="True, False or Unknown.")
    reason: str | None = Field(None, description="A machine-readable reason, e.g. TooLarge.")
    message: str | None = Field(None, description="What happened and what to do about it.")
    last_transition_time: str | None = Field(
        None, alias="lastTransitionTime", description="When the condition last changed (RFC 3339)."
    )


class ImageStreamStatus(_Model):
    docker_image_repository: str | None = Field(
        None,
        alias="dockerImageRepository",
        description="Where this stream can be pulled from when the cluster has an integrated registry.",
    )
    public_docker_image_repository: str | None = Field(
        None, alias="publicDockerImageRepository", description="The externally reachable form, when exposed."
    )
    tags: list[NamedTagEventList] | None = Field(
        None,
        description="Per-tag history and conditions, unique by tag.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["tag"]},
    )
    tags_summary: str | None = Field(
        None,
        alias="tagsSummary",
        description="Operator bookkeeping for `kubectl get`: the tags that have an image, as `oc get is` "
        "lists them (not an OpenShift field).",
    )
    updated: str | None = Field(
        None,
        description="Operator bookkeeping for `kubectl get`: when any tag last pointed at a new image "
        "(not an OpenShift field).",
    )
    images: list[ImageSummary] | None = Field(
        None,
        description="Operator bookkeeping: metadata of every image in the tags' histories, by digest "
        "(not an OpenShift field).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["image"]},
    )
    repository_import: RepositoryImportState | None = Field(
        None,
        alias="repositoryImport",
        description="Operator bookkeeping: the last import of spec.dockerImageRepository (not an OpenShift field).",
    )
    import_request: str | None = Field(
        None,
        alias="importRequest",
        description="Operator bookkeeping: the last value of the import-request annotation that was acted on.",
    )
    conditions: list[StreamCondition] | None = Field(
        None,
        description="Operator bookkeeping: conditions of the whole stream, such as StatusComplete=False when "
        "tags had to be left out of status to fit the API server's object size limit (not an OpenShift field).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class ImageStream(_Model):
    api_version: str = Field(API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ImageStreamSpec = Field(default_factory=ImageStreamSpec)
    status: ImageStreamStatus | None = None

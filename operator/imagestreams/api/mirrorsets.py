"""ImageDigestMirrorSet and ImageTagMirrorSet, field for field compatible with OpenShift's config.openshift.io/v1.

Cluster-scoped lists of registry mirrors: imports of an image whose repository falls under a `source` try the
`mirrors` first (core/mirrors.py says in which order and for which lookups). On OpenShift these CRDs exist already;
elsewhere the operator ships them (`make crds` writes them from these models, api/crd.py).

Field names, patterns, the enum and the list types are those of openshift/api config/v1
(types_image_digest_mirror_set.go, types_image_tag_mirror_set.go and their generated CRDs). Unknown fields are kept,
as in api/imagestream.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

GROUP = "config.openshift.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"

# OpenShift's kubebuilder patterns, unchanged: the API server (RE2) and pydantic check the same grammar.
# A mirror: host[:port] with an optional repository path (distribution's path components).
MIRROR_PATTERN = (
    r"^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*"
    r"[a-zA-Z0-9]))+)?(?::[0-9]+)?)(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$"
)
# A source: the same, or a wildcard host `*.example.com` (no port, no path).
SOURCE_PATTERN = r"^\*(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+$|" + MIRROR_PATTERN


Mirror = Annotated[str, Field(pattern=MIRROR_PATTERN)]


class MirrorSourcePolicy(StrEnum):
    NEVER_CONTACT_SOURCE = "NeverContactSource"
    ALLOW_CONTACTING_SOURCE = "AllowContactingSource"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow", use_enum_values=True)


_SOURCE_DESCRIPTION = (
    "The repository the mirrors stand in for, as image references name it: a registry host[:port] (e.g. quay.io), "
    "a namespace under it (quay.io/team) or one repository (quay.io/team/app), or every subdomain of a host "
    "(*.example.com). The most specific source that matches an image applies, and only it."
)
_POLICY_DESCRIPTION = (
    "What happens when no mirror has the image: AllowContactingSource (the default when unset) falls back to "
    "the source; NeverContactSource never contacts the source, for any lookup of an image under it."
)


def _mirrors_description(lookups: str) -> str:
    return (
        f"Where the same images can be found, tried in this order before the source, for {lookups}. Each is "
        "host[:port] or host[:port]/path: the part of the image's repository matched by `source` is replaced "
        "by it (source quay.io/team and mirror mirror.local/copies turn quay.io/team/app into "
        "mirror.local/copies/app)."
    )


class _SourceMirrors(_Model):
    """What both kinds say of one source; their `mirrors` differ only in which lookups they serve."""

    source: str = Field(description=_SOURCE_DESCRIPTION, pattern=SOURCE_PATTERN)
    mirror_source_policy: MirrorSourcePolicy | None = Field(
        None, alias="mirrorSourcePolicy", description=_POLICY_DESCRIPTION
    )


class ImageDigestMirrors(_SourceMirrors):
    mirrors: list[Mirror] | None = Field(
        None,
        description=_mirrors_description("images named by digest"),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class ImageTagMirrors(_SourceMirrors):
    mirrors: list[Mirror] | None = Field(
        None,
        description=_mirrors_description("images named by tag (a mirror may hold another image under the same tag)"),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class ImageDigestMirrorSetSpec(_Model):
    image_digest_mirrors: list[ImageDigestMirrors] | None = Field(
        None,
        alias="imageDigestMirrors",
        description="Mirrors for images named by digest. Sets naming the same source are merged, keeping each "
        "set's order of mirrors where they agree.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )


class ImageTagMirrorSetSpec(_Model):
    image_tag_mirrors: list[ImageTagMirrors] | None = Field(
        None,
        alias="imageTagMirrors",
        description="Mirrors for images named by tag. Sets naming the same source are merged, keeping each set's "
        "order of mirrors where they agree.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )


class ImageDigestMirrorSet(_Model):
    api_version: str = Field(API_VERSION, alias="apiVersion")
    kind: str = "ImageDigestMirrorSet"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ImageDigestMirrorSetSpec = Field(default_factory=ImageDigestMirrorSetSpec)


class ImageTagMirrorSet(_Model):
    api_version: str = Field(API_VERSION, alias="apiVersion")
    kind: str = "ImageTagMirrorSet"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ImageTagMirrorSetSpec = Field(default_factory=ImageTagMirrorSetSpec)


@dataclass(frozen=True)
class MirrorSetKind:
    """One of the two kinds: its names, and the model of its spec (the CRD's schema is generated from it)."""

    kind: str
    plural: str
    short_name: str
    description: str
    spec_model: type[BaseModel]

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


DIGEST_MIRROR_SETS = MirrorSetKind(
    "ImageDigestMirrorSet",
    "imagedigestmirrorsets",
    "idms",
    "Cluster-wide registry mirrors for images named by digest (OpenShift's config.openshift.io/v1 kind): image "
    "stream imports of a matching repository try the mirrors before the source.",
    ImageDigestMirrorSetSpec,
)
TAG_MIRROR_SETS = MirrorSetKind(
    "ImageTagMirrorSet",
    "imagetagmirrorsets",
    "itms",
    "Cluster-wide registry mirrors for images named by tag (OpenShift's config.openshift.io/v1 kind): image stream "
    "imports of a matching repository try the mirrors before the source.",
    ImageTagMirrorSetSpec,
)
MIRROR_SET_KINDS = (DIGEST_MIRROR_SETS, TAG_MIRROR_SETS)


SPEC_DESCRIPTION = "The mirrors and the sources they stand in for."


def custom_resource_definition(kind: MirrorSetKind, spec_schema: dict[str, Any]) -> dict[str, Any]:
    """The kind's CRD as OpenShift defines it (cluster-scoped, `spec` required, an empty status subresource), around
    `spec_schema`, the structural schema api/crd.py makes from `kind.spec_model`."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": [kind.short_name],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "properties": {
                                "apiVersion": {"type": "string", "description": API_VERSION},
                                "kind": {"type": "string", "description": kind.kind},
                                "metadata": {"type": "object"},
                                "spec": {**spec_schema, "description": SPEC_DESCRIPTION},
                                "status": {"type": "object", "description": "Unused: OpenShift keeps it empty."},
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }

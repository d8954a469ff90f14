"""Listing the cluster's ImageDigestMirrorSets and ImageTagMirrorSets (config.openshift.io/v1, cluster-scoped)."""

from __future__ import annotations

from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.generic_resource import create_global_resource

from imagestreams.api.mirrorsets import GROUP, MIRROR_SET_KINDS, VERSION, MirrorSetKind

RESOURCES = {kind: create_global_resource(GROUP, VERSION, kind.kind, kind.plural) for kind in MIRROR_SET_KINDS}


async def list_mirror_sets(client: AsyncClient, kind: MirrorSetKind) -> list[dict[str, Any]] | None:
    """Every set of the kind, now; None when the cluster does not serve the kind (its CRD is not installed)."""
    try:
        return [item.to_dict() async for item in client.list(RESOURCES[kind])]  # type: ignore[no-untyped-call]
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise

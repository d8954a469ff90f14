"""Who owns a container's image field, read from metadata.managedFields (server-side apply bookkeeping)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Field managers of GitOps controllers that, like the operator, write container images.
GITOPS_MANAGERS = ("argocd", "kustomize-controller", "helm-controller", "flux")


def image_field_path(pod_spec_path: Sequence[str], container_list: str, container_name: str) -> list[str]:
    """The fieldsV1 keys leading to a container's image, e.g. f:spec, f:template, ..., k:{"name":"web"}, f:image."""
    key = "k:" + json.dumps({"name": container_name}, separators=(",", ":"))
    return [*(f"f:{part}" for part in pod_spec_path), f"f:{container_list}", key, "f:image"]


def image_owners(
    managed_fields: Iterable[Mapping[str, Any]] | None,
    pod_spec_path: Sequence[str],
    container_list: str,
    container_name: str,
) -> list[str]:
    """Names of the field managers that own the container's image field."""
    path = image_field_path(pod_spec_path, container_list, container_name)
    owners = []
    for entry in managed_fields or []:
        node: Any = entry.get("fieldsV1") or {}
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            owners.append(str(entry.get("manager", "")))
    return owners


def gitops_owners(owners: Iterable[str]) -> list[str]:
    return [owner for owner in owners if any(marker in owner.lower() for marker in GITOPS_MANAGERS)]

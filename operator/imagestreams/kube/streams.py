"""Reading and writing ImageStreams: status writes are merge patches guarded by resourceVersion."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.types import PatchType

from imagestreams.api.imagestream import GROUP, KIND, PLURAL, VERSION

ImageStreamResource = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)
FIELD_MANAGER = "imagestream-operator"


class StaleStream(Exception):
    """The stream changed since it was read; the newer version will be reconciled instead."""


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch (RFC 7386) turning status `old` into `new`: changed keys set, vanished keys set to null.

    A merge patch merges objects key by key, so a changed object is patched recursively (a key that vanished from
    a nested object must be sent as null, or it stays); lists are replaced whole.
    """
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = status_patch(before, value)
        else:
            patch[key] = value
    patch.update({key: None for key in old if key not in new})
    return patch


async def write_status(
    client: AsyncClient,
    namespace: str,
    name: str,
    *,
    resource_version: str,
    old: dict[str, Any],
    new: dict[str, Any],
) -> None:
    """Write the status difference; raises StaleStream on a conflict or if the stream is gone."""
    patch = {"metadata": {"resourceVersion": resource_version}, "status": status_patch(old, new)}
    try:
        await client.patch(
            ImageStreamResource.Status,
            name,
            patch,
            namespace=namespace,
            patch_type=PatchType.MERGE,
            field_manager=FIELD_MANAGER,
        )
    except ApiError as error:
        if error.status.code in (404, 409):
            raise StaleStream(f"{namespace}/{name}: {error.status.reason}") from None
        raise


def listable_namespaces(namespaces: Sequence[str]) -> list[str]:
    """Where to list: each watched namespace, or everywhere ("*") when all or a glob pattern are watched."""
    if not namespaces or any(set(pattern) & set("*?[") for pattern in namespaces):
        return ["*"]
    return list(namespaces)


async def list_stream_keys(client: AsyncClient, namespaces: Sequence[str]) -> set[tuple[str, str]]:
    """(namespace, name) of every ImageStream in the watched namespaces, now."""
    return set(await list_streams(client, namespaces, whole=lambda key, metadata: False))


async def list_streams(
    client: AsyncClient, namespaces: Sequence[str], whole: Whole | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every ImageStream in the watched namespaces, now, by (namespace, name); listed in pages. Those `whole` turns
    down come as their identity only (`identity`): thousands of whole bodies at once are a lot of memory."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for namespace in listable_namespaces(namespaces):
        async for stream in client.list(ImageStreamResource, namespace=namespace, chunk_size=500):
            metadata = stream.metadata
            if metadata is None or not metadata.namespace or not metadata.name:
                continue
            key = (metadata.namespace, metadata.name)
            keep = whole is None or whole(key, metadata)
            found[key] = stream.to_dict() if keep else identity(metadata)  # type: ignore[no-untyped-call]
    return found


# Whether a listed object is wanted whole: (namespace, name) or (kind, namespace, name), and its metadata.
Whole = Callable[[Any, ObjectMeta], bool]


def identity(metadata: ObjectMeta) -> dict[str, Any]:
    """What a comparison of versions reads of a listed object: names, uid, resourceVersion and generation."""
    return {
        "metadata": {
            "namespace": metadata.namespace,
            "name": metadata.name,
            "uid": metadata.uid,
            "resourceVersion": metadata.resourceVersion,
            "generation": metadata.generation,
        }
    }


def too_large(error: ApiError) -> bool:
    """The API server (or etcd behind it) refused a write for its size: retrying the same write cannot help."""
    message = (error.status.message or "").lower()
    return error.status.code == 413 or "too large" in message or "too long" in message

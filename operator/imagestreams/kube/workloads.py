"""Writing to workloads: server-side apply of container images, and Job runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from lightkube import ApiError, AsyncClient
from lightkube.resources.apps_v1 import DaemonSet, Deployment, StatefulSet
from lightkube.resources.batch_v1 import CronJob, Job
from lightkube.types import CascadeType, PatchType

from imagestreams.core.jobruns import SOURCE_JOB_LABEL
from imagestreams.core.triggers import POD_SPEC_PATHS
from imagestreams.core.workloadkinds import WORKLOAD_TYPES, WorkloadKind
from imagestreams.kube.streams import Whole, identity, listable_namespaces

FIELD_MANAGER = "imagestream-operator"

_MODELS = {model.__name__: model for model in (Deployment, StatefulSet, DaemonSet, CronJob, Job)}
# The lightkube model of every kind in the table (a kind added there without a model fails here, at import).
RESOURCE_MODELS: dict[WorkloadKind, Any] = {kind: _MODELS[kind.value] for kind in WORKLOAD_TYPES}


def image_apply_body(
    kind: WorkloadKind, namespace: str, name: str, images: Mapping[tuple[str, str], str]
) -> dict[str, Any]:
    """The smallest apply configuration that sets `images` ((list, container) -> image) and nothing else."""
    lists: dict[str, list[dict[str, str]]] = {}
    for (container_list, container_name), image in sorted(images.items()):
        lists.setdefault(container_list, []).append({"name": container_name, "image": image})
    node: dict[str, Any] = dict(lists)
    for part in reversed(POD_SPEC_PATHS[kind]):
        node = {part: node}
    return {
        "apiVersion": WORKLOAD_TYPES[kind].api_version,
        "kind": kind.value,
        "metadata": {"name": name, "namespace": namespace},
        **node,
    }


async def apply_images(
    client: AsyncClient, kind: WorkloadKind, namespace: str, name: str, images: Mapping[tuple[str, str], str]
) -> dict[str, Any]:
    """Server-side apply under the operator's field manager, taking over the image fields it sets. Returns the
    workload as written."""
    written = await client.patch(
        RESOURCE_MODELS[kind],
        name,
        image_apply_body(kind, namespace, name, images),
        namespace=namespace,
        patch_type=PatchType.APPLY,
        field_manager=FIELD_MANAGER,
        force=True,
    )
    return cast(dict[str, Any], written.to_dict())


async def list_workloads(
    client: AsyncClient, kind: WorkloadKind, namespaces: Sequence[str], whole: Whole | None = None
) -> dict[tuple[WorkloadKind, str, str], dict[str, Any]]:
    """Every workload of `kind` in the watched namespaces, now, by (kind, namespace, name); listed in pages. Those
    `whole` turns down come as their identity only (`kube.streams.identity`): 10,000 Deployments whole are a
    quarter of a GiB."""
    found: dict[tuple[WorkloadKind, str, str], dict[str, Any]] = {}
    for namespace in listable_namespaces(namespaces):
        async for workload in client.list(RESOURCE_MODELS[kind], namespace=namespace, chunk_size=500):
            metadata = workload.metadata
            if metadata is not None and metadata.namespace and metadata.name:
                key = (kind, metadata.namespace, metadata.name)
                keep = whole is None or whole(key, metadata)
                found[key] = workload.to_dict() if keep else identity(metadata)
    return found


async def job_runs(client: AsyncClient, namespace: str, source: str) -> list[dict[str, Any]]:
    runs = []
    async for job in client.list(Job, namespace=namespace, labels={SOURCE_JOB_LABEL: source}):
        runs.append(job.to_dict())
    return runs


async def create_job(client: AsyncClient, manifest: dict[str, Any]) -> bool:
    """Create a Job; False when one of that name exists already (a run started before)."""
    try:
        await client.create(cast(Job, Job.from_dict(manifest)), field_manager=FIELD_MANAGER)
    except ApiError as error:
        if error.status.code == 409:
            return False
        raise
    return True


async def delete_job(client: AsyncClient, namespace: str, name: str) -> None:
    try:
        await client.delete(Job, name, namespace=namespace, cascade=CascadeType.BACKGROUND)
    except ApiError as error:
        if error.status.code != 404:
            raise

"""The CLI's only contact with the API server: lightkube's synchronous client, bodies as plain dicts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from lightkube import ALL_NS, ApiError
from lightkube.types import PatchType

from imagestreams.cli.errors import CliError
from imagestreams.cli.kubeconfig import Target
from imagestreams.cli.transport import connect
from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.kube.streams import ImageStreamResource
from imagestreams.kube.workloads import RESOURCE_MODELS

FIELD_MANAGER = "kubectl-imagestream"
STREAMS = "imagestreams.image.openshift.io"
CONFLICT_RETRIES = 5
T = TypeVar("T")


def _body(obj: Any) -> dict[str, Any]:
    body: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return body


@contextmanager
def api_errors() -> Iterator[None]:
    """API and connection failures as CliError, with the server's message."""
    import httpx2  # noqa: PLC0415

    try:
        yield
    except ApiError as error:
        raise CliError(error.status.message or str(error)) from None
    except httpx2.TransportError as error:
        raise CliError(f"unable to connect to the server: {error}") from None


class Conflict(Exception):
    """The object changed between read and write."""


class Kube:
    def __init__(self, target: Target) -> None:
        self.namespace = target.namespace
        self.client = connect(target, field_manager=FIELD_MANAGER)

    # --- image streams ---

    def get_stream(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The stream, or None when it does not exist."""
        with api_errors():
            try:
                return _body(self.client.get(ImageStreamResource, name, namespace=namespace))
            except ApiError as error:
                if error.status.code == 404:
                    return None
                raise

    def require_stream(self, namespace: str, name: str) -> dict[str, Any]:
        body = self.get_stream(namespace, name)
        if body is None:
            raise CliError(f'{STREAMS} "{name}" not found')
        return body

    def list_streams(self, namespace: str | None) -> list[dict[str, Any]]:
        """Streams of a namespace, or of all namespaces when `namespace` is None, sorted by namespace and name."""
        with api_errors():
            items = [_body(obj) for obj in self.client.list(ImageStreamResource, namespace=namespace or ALL_NS)]
        return sorted(items, key=lambda body: (body["metadata"].get("namespace", ""), body["metadata"]["name"]))

    def create_stream(self, body: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        obj = ImageStreamResource.from_dict(dict(body))
        try:
            return _body(self.client.create(obj, namespace=body["metadata"]["namespace"], dry_run=dry_run))
        except ApiError as error:
            if error.status.code == 409:
                raise Conflict(error.status.message) from None
            raise CliError(error.status.message or str(error)) from None

    def patch_stream(
        self, namespace: str, name: str, patch: Mapping[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """A merge patch; a resourceVersion in it makes a concurrent change a Conflict."""
        try:
            result = self.client.patch(
                ImageStreamResource,
                name,
                dict(patch),
                namespace=namespace,
                patch_type=PatchType.MERGE,
                dry_run=dry_run,
            )
        except ApiError as error:
            if error.status.code == 409:
                raise Conflict(error.status.message) from None
            raise CliError(error.status.message or str(error)) from None
        return _body(result)

    def patch_stream_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A merge patch of the status subresource; a resourceVersion in it makes a concurrent change a Conflict."""
        try:
            result = self.client.patch(
                ImageStreamResource.Status, name, dict(patch), namespace=namespace, patch_type=PatchType.MERGE
            )
        except ApiError as error:
            if error.status.code == 409:
                raise Conflict(error.status.message) from None
            raise CliError(error.status.message or str(error)) from None
        return _body(result)

    # --- workloads ---

    def get_workload(self, kind: WorkloadKind, namespace: str, name: str) -> dict[str, Any]:
        with api_errors():
            return _body(self.client.get(RESOURCE_MODELS[kind], name, namespace=namespace))

    def list_workloads(
        self, namespace: str, kinds: tuple[WorkloadKind, ...]
    ) -> list[tuple[WorkloadKind, dict[str, Any]]]:
        found: list[tuple[WorkloadKind, dict[str, Any]]] = []
        with api_errors():
            for kind in kinds:
                found += [(kind, _body(obj)) for obj in self.client.list(RESOURCE_MODELS[kind], namespace=namespace)]
        return found

    def patch_workload(self, kind: WorkloadKind, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        try:
            result = self.client.patch(
                RESOURCE_MODELS[kind], name, dict(patch), namespace=namespace, patch_type=PatchType.MERGE
            )
        except ApiError as error:
            if error.status.code == 409:
                raise Conflict(error.status.message) from None
            raise CliError(error.status.message or str(error)) from None
        return _body(result)


def retry_on_conflict(attempt: Callable[[], T]) -> T:
    """Run a read-modify-write `attempt` again when the object changed in between (as kubectl's RetryOnConflict)."""
    for _ in range(CONFLICT_RETRIES - 1):
        try:
            return attempt()
        except Conflict:
            continue
    try:
        return attempt()
    except Conflict as conflict:
        raise CliError(f"the object kept changing while being updated: {conflict}") from None


def with_resource_version(patch: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The patch guarded by the body's resourceVersion."""
    result: dict[str, Any] = json.loads(json.dumps(patch))
    result.setdefault("metadata", {})["resourceVersion"] = body["metadata"]["resourceVersion"]
    return result

"""The CLI's only contact with the API server: lightkube's synchronous client, bodies as plain dicts.

Every change goes through `edit_stream` or `edit_workload`: read, let the verb decide (a function from the
object to an `Edit`), write guarded by the resourceVersion read, and on a conflict read and decide again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx2
from lightkube import ALL_NS, ApiError
from lightkube.operators import Operator
from lightkube.resources.core_v1 import Event
from lightkube.types import PatchType

from imagestreams.cli.edits import Edit, Edited, merge_patch, with_resource_version
from imagestreams.cli.errors import CliError
from imagestreams.cli.flags import DryRun
from imagestreams.cli.kubeconfig import Target
from imagestreams.cli.transport import connect
from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.kube.streams import ImageStreamResource
from imagestreams.kube.workloads import RESOURCE_MODELS

FIELD_MANAGER = "kubectl-imagestream"
STREAMS = "imagestreams.image.openshift.io"
CONFLICT_RETRIES = 5
R = TypeVar("R")


def _body(obj: Any) -> dict[str, Any]:
    body: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return body


def api_error(error: Exception) -> CliError | None:
    """An API or connection failure as CliError with the server's message; None for any other exception."""
    if isinstance(error, ApiError):
        return CliError(error.status.message or str(error))
    if isinstance(error, httpx2.TransportError):
        return CliError(f"unable to connect to the server: {error}")
    return None


@contextmanager
def api_errors() -> Iterator[None]:
    """API and connection failures as CliError, with the server's message."""
    try:
        yield
    except (ApiError, httpx2.TransportError) as error:
        translated = api_error(error)
        assert translated is not None
        raise translated from None


class Conflict(Exception):
    """The object changed between read and write."""


class _LabelSelector(Operator[str]):
    """A label selector as the user wrote it, passed to the API server unchanged (it parses and checks it, as
    it does for kubectl); lightkube otherwise only builds selectors from key/operator pairs."""

    def __init__(self, text: str) -> None:
        super().__init__("raw", "", text)

    def encode(self, key: str) -> str:
        return str(self.value)


def _labels(selector: str) -> dict[str, Any] | None:
    return {"": _LabelSelector(selector)} if selector else None


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

    def list_streams(self, namespace: str | None, selector: str = "") -> list[dict[str, Any]]:
        """Streams of a namespace (all namespaces when None) matching the label selector, by namespace and name."""
        with api_errors():
            items = [
                _body(obj)
                for obj in self.client.list(
                    ImageStreamResource, namespace=namespace or ALL_NS, labels=_labels(selector)
                )
            ]
        return sorted(items, key=lambda body: (body["metadata"].get("namespace", ""), body["metadata"]["name"]))

    def edit_stream(
        self,
        namespace: str,
        name: str,
        decide: Callable[[dict[str, Any] | None], Edit[R]],
        *,
        dry_run: DryRun = DryRun.NONE,
    ) -> Edited[R]:
        """Read the stream (None when missing), write what `decide` returns, and decide again after a conflict."""
        for _ in range(CONFLICT_RETRIES - 1):
            try:
                return self._edit_stream_once(namespace, name, decide, dry_run)
            except Conflict:
                continue
        try:
            return self._edit_stream_once(namespace, name, decide, dry_run)
        except Conflict as conflict:
            raise CliError(f"the object kept changing while being updated: {conflict}") from None

    def _edit_stream_once(
        self,
        namespace: str,
        name: str,
        decide: Callable[[dict[str, Any] | None], Edit[R]],
        dry_run: DryRun,
    ) -> Edited[R]:
        body = self.get_stream(namespace, name)
        edit = decide(body)
        if edit.create is not None:
            if dry_run is DryRun.CLIENT:
                return Edited(dict(edit.create), edit.result, changed=True)
            return Edited(self._create_stream(edit.create, dry_run), edit.result, changed=True)
        if body is None or not edit.writes:
            return Edited(body or {}, edit.result, changed=False)
        written = body
        if edit.patch is not None:
            if dry_run is DryRun.CLIENT:
                written = merge_patch(body, edit.patch)
            else:
                guarded = with_resource_version(edit.patch, body)
                written = self._patch(ImageStreamResource, namespace, name, guarded, dry_run)
        if edit.status_patch is not None:
            if dry_run is DryRun.CLIENT:
                written = merge_patch(written, edit.status_patch)
            elif dry_run is DryRun.SERVER:
                # Nothing was stored, so the status is checked against the stored object and shown with the
                # spec change the server accepted above.
                guarded = with_resource_version(edit.status_patch, body)
                checked = self._patch(ImageStreamResource.Status, namespace, name, guarded, dry_run)
                written = {**written, "status": checked.get("status")}
            else:
                guarded = with_resource_version(edit.status_patch, written)
                written = self._patch(ImageStreamResource.Status, namespace, name, guarded, dry_run)
        return Edited(written, edit.result, changed=True)

    def _create_stream(self, body: Mapping[str, Any], dry_run: DryRun) -> dict[str, Any]:
        obj = ImageStreamResource.from_dict(dict(body))
        try:
            created = self.client.create(obj, namespace=body["metadata"]["namespace"], dry_run=dry_run is DryRun.SERVER)
        except ApiError as error:
            if error.status.code == 409:
                raise Conflict(error.status.message) from None
            raise CliError(error.status.message or str(error)) from None
        return _body(created)

    # --- workloads ---

    def get_workload(self, kind: WorkloadKind, namespace: str, name: str) -> dict[str, Any]:
        with api_errors():
            return _body(self.client.get(RESOURCE_MODELS[kind], name, namespace=namespace))

    def list_workloads(
        self, namespace: str, kinds: tuple[WorkloadKind, ...], selector: str = ""
    ) -> list[tuple[WorkloadKind, dict[str, Any]]]:
        """The workloads of these kinds in the namespace that match the label selector, by kind then name."""
        found: list[tuple[WorkloadKind, dict[str, Any]]] = []
        with api_errors():
            for kind in kinds:
                objects = self.client.list(RESOURCE_MODELS[kind], namespace=namespace, labels=_labels(selector))
                bodies = sorted((_body(obj) for obj in objects), key=lambda body: str(body["metadata"]["name"]))
                found += [(kind, body) for body in bodies]
        return found

    def edit_workload(
        self,
        kind: WorkloadKind,
        namespace: str,
        name: str,
        decide: Callable[[dict[str, Any]], Edit[R]],
        *,
        dry_run: DryRun = DryRun.NONE,
    ) -> Edited[R]:
        """Read the workload, write the merge patch `decide` returns, and decide again after a conflict."""
        for _ in range(CONFLICT_RETRIES - 1):
            try:
                return self._edit_workload_once(kind, namespace, name, decide, dry_run)
            except Conflict:
                continue
        try:
            return self._edit_workload_once(kind, namespace, name, decide, dry_run)
        except Conflict as conflict:
            raise CliError(f"the object kept changing while being updated: {conflict}") from None

    def _edit_workload_once(
        self,
        kind: WorkloadKind,
        namespace: str,
        name: str,
        decide: Callable[[dict[str, Any]], Edit[R]],
        dry_run: DryRun,
    ) -> Edited[R]:
        body = self.get_workload(kind, namespace, name)
        edit = decide(body)
        if edit.patch is None:
            return Edited(body, edit.result, changed=False)
        if dry_run is DryRun.CLIENT:
            return Edited(merge_patch(body, edit.patch), edit.result, changed=True)
        guarded = with_resource_version(edit.patch, body)
        return Edited(self._patch(RESOURCE_MODELS[kind], namespace, name, guarded, dry_run), edit.result, changed=True)

    # --- events ---

    def events_about(self, namespace: str, kind: str, name: str, uid: str) -> list[dict[str, Any]]:
        """The core/v1 Events whose involvedObject is this object, as `kubectl describe` finds them."""
        fields: dict[str, Any] = {
            "involvedObject.name": name,
            "involvedObject.namespace": namespace,
            "involvedObject.kind": kind,
            "involvedObject.uid": uid,
        }
        with api_errors():
            return [_body(event) for event in self.client.list(Event, namespace=namespace, fields=fields)]

    # --- writes ---

    def _patch(
        self, resource: Any, namespace: str, name: str, patch: Mapping[str, Any], dry_run: DryRun
    ) -> dict[str, Any]:
        """A merge patch; the resourceVersion in it makes a concurrent change a Conflict."""
        try:
            result = self.client.patch(
                resource,
                name,
                dict(patch),
                namespace=namespace,
                patch_type=PatchType.MERGE,
                dry_run=dry_run is DryRun.SERVER,
            )
        except ApiError as error:
            if error.status.code == 409:
                raise Conflict(error.status.message) from None
            raise CliError(error.status.message or str(error)) from None
        return _body(result)

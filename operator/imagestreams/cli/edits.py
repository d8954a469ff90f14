"""Read-modify-write as data: what a verb decides to change in one object, and what came of it. Pure.

A verb hands `Kube.edit_stream` / `Kube.edit_workload` a function from the object as read to an `Edit`;
the adapter owns the read, the resourceVersion guard, the retry after a conflict, the dry runs and the
result, so the verb's decision is a plain function that unit tests call with a dict.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Edit(Generic[R]):
    """The writes for one object, decided from it as read, and what the verb reports afterwards.

    `patch` is a JSON merge patch of the object, `status_patch` one of its status subresource (written
    after `patch`), `create` the object to create when it did not exist. None of them: nothing to write.
    """

    result: R
    patch: Mapping[str, Any] | None = None
    status_patch: Mapping[str, Any] | None = None
    create: Mapping[str, Any] | None = None

    @property
    def writes(self) -> bool:
        return self.patch is not None or self.status_patch is not None or self.create is not None


@dataclass(frozen=True)
class Edited(Generic[R]):
    """The object as written (on a dry run: as it would be), the verb's result, and whether anything was written."""

    body: dict[str, Any]
    result: R
    changed: bool


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: `patch` applied to `target` (neither is changed), as the API server applies it."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def with_resource_version(patch: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The patch guarded by the body's resourceVersion: the server refuses it (409) when the object changed."""
    result: dict[str, Any] = copy.deepcopy(dict(patch))
    result.setdefault("metadata", {})["resourceVersion"] = body["metadata"]["resourceVersion"]
    return result

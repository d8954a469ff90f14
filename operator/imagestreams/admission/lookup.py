"""Image lookup at admission: the webhook handler around core/lookup.py.

It reads the streams an object's images name, with a live GET each (as OpenShift's plugin does: no cache that could
hand out an image the tag no longer points at), at most once per stream per request, and always in the object's
own namespace. The operator's own credentials read them, as OpenShift's plugin reads with the API server's loopback
client: who sent the request does not change what an image resolves to. A failed read leaves the image as written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx2
from lightkube import ApiError, Client

from imagestreams.admission.review import Request, Response, json_pointer
from imagestreams.core.lookup import LookupDecision, LookupResult, StreamUnreadable, decide_lookup
from imagestreams.kube.streams import ImageStreamResource

logger = logging.getLogger(__name__)

# Told the result ("resolved", "left" or "failed") of each container image examined, e.g. to count them.
LookupObserver = Callable[[str], None]
MUTATING_OPERATIONS = frozenset({"CREATE", "UPDATE"})


def patch_operations(decision: LookupDecision) -> tuple[dict[str, Any], ...]:
    """JSON Patch operations that write each resolved image."""
    return tuple(
        {"op": "replace", "path": json_pointer(*container.path), "value": container.resolved}
        for container in decision.rewrites
    )


class ImageLookup:
    def __init__(self, kube: Client, observe: LookupObserver | None = None) -> None:
        self.kube = kube
        self.observe: LookupObserver = observe or (lambda result: None)

    def _reader(self, namespace: str) -> Callable[[str], Mapping[str, Any] | None]:
        def read(name: str) -> Mapping[str, Any] | None:
            try:
                stream: Any = self.kube.get(ImageStreamResource, name, namespace=namespace)
            except ApiError as error:
                if error.status.code == 404:
                    return None
                raise StreamUnreadable(error.status.message or str(error)) from None
            except httpx2.HTTPError as error:
                raise StreamUnreadable(f"{type(error).__name__}: {error}") from None
            body: dict[str, Any] = stream.to_dict()
            return body

        return read

    def admit(self, request: Request) -> Response:
        # Subresources (status, scale, ephemeralcontainers) are never looked at (admit in imagepolicy.go).
        if request.operation not in MUTATING_OPERATIONS or request.subresource or request.object is None:
            return Response()
        old = request.old_object if request.operation == "UPDATE" else None
        decision = decide_lookup(
            (request.group, request.resource), request.object, old, request.namespace, self._reader(request.namespace)
        )
        where = f"{request.kind} {request.namespace}/{request.name or '(new)'}"
        if decision.skipped:
            logger.debug("image lookup: %s skipped: %s", where, decision.skipped)
        warnings: list[str] = []
        for container in decision.containers:
            self.observe(container.result.value)
            logger.debug(
                "image lookup: %s %s[%d] %s: %s: %s%s",
                where,
                container.container_list,
                container.index,
                container.image,
                container.result.value,
                container.reason,
                f" -> {container.resolved}" if container.resolved else "",
            )
            if container.result is LookupResult.FAILED:
                # Said to the client (kubectl prints it), since the same request would otherwise have resolved.
                warnings.append(
                    f"image lookup: {container.container_list}[{container.index}] image {container.image} was left "
                    f"as written: {container.reason}"
                )
        return Response(patch=patch_operations(decision), warnings=tuple(warnings))

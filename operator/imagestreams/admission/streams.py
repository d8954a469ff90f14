"""OpenShift's write-time rules for image streams at admission: the webhook handlers around core/streamwrite.py.

`mutate` (failurePolicy Fail) patches spec tag generations and defaults as openshift-apiserver's ImageStream
strategy sets them. `validate` (failurePolicy Fail) is OpenShift's TagVerifier: a tag that newly names another
namespace's stream is refused unless the user who writes may `get imagestreams/layers` there, asked with one
SubjectAccessReview per (namespace, stream). It runs after the API server has applied every mutation, so it sees
the final body. Both answer dry-run requests the same way; a review has no side effect.
"""

from __future__ import annotations

import logging

import httpx2
from lightkube import ApiError, Client
from lightkube.models.authorization_v1 import ResourceAttributes, SubjectAccessReviewSpec
from lightkube.resources.authorization_v1 import SubjectAccessReview

from imagestreams.admission.review import Request, Response, UserInfo
from imagestreams.api.imagestream import GROUP, PLURAL
from imagestreams.core.streamwrite import (
    FieldError,
    SourceCheck,
    pull_spec_errors,
    refusal_message,
    refused_source,
    source_checks,
    stream_write,
)

logger = logging.getLogger(__name__)

WRITE_OPERATIONS = frozenset({"CREATE", "UPDATE"})
UNPROCESSABLE = 422  # what OpenShift's API server answers for an Invalid stream


def layers_review(check: SourceCheck, user: UserInfo) -> SubjectAccessReview:
    """May `user` pull from the stream: `get imagestreams/layers` (OpenShift's system:image-puller grants it)."""
    return SubjectAccessReview(
        spec=SubjectAccessReviewSpec(
            user=user.username or None,
            uid=user.uid or None,
            groups=list(user.groups) or None,
            extra={key: list(values) for key, values in user.extra.items()} or None,
            resourceAttributes=ResourceAttributes(
                namespace=check.namespace,
                verb="get",
                group=GROUP,
                resource=PLURAL,
                subresource="layers",
                name=check.stream,
            ),
        )
    )


class StreamWrites:
    def __init__(self, kube: Client) -> None:
        self.kube = kube

    def mutate(self, request: Request) -> Response:
        if request.operation not in WRITE_OPERATIONS or request.subresource or request.object is None:
            return Response()
        if request.operation == "UPDATE" and request.old_object is None:
            return Response()  # the API server always sends the stored object with an UPDATE
        write = stream_write(request.old_object, request.object)
        if write.renumbered:
            logger.debug(
                "stream write: %s/%s %s: generation %d for tags %s",
                request.namespace,
                request.name,
                request.operation,
                write.generation,
                ", ".join(write.renumbered),
            )
        return Response(patch=write.patch)

    def validate(self, request: Request) -> Response:
        if request.operation not in WRITE_OPERATIONS or request.subresource or request.object is None:
            return Response()
        old = request.old_object if request.operation == "UPDATE" else None
        checks, errors = source_checks(old, request.object)
        refusals = list(errors)
        for check in checks:
            refusals.extend(self._verify(check, request.user))
        spec_errors = pull_spec_errors(request.object)
        if not refusals and not spec_errors:
            return Response()
        name = request.name or str((request.object.get("metadata") or {}).get("name") or "")
        message = refusal_message(name, refusals, spec_errors)
        return Response(allowed=False, code=UNPROCESSABLE, reason="Invalid", message=message)

    def _verify(self, check: SourceCheck, user: UserInfo) -> list[FieldError]:
        """The Forbidden errors for `check`: none when the review allows it. Failing to ask is a refusal, as in
        OpenShift; the error says why."""
        try:
            answer = self.kube.create(layers_review(check, user))
        except ApiError as error:
            return refused_source(
                check, error=f"the access review could not be created: {error.status.message or error}"
            )
        except httpx2.HTTPError as error:
            return refused_source(check, error=f"the access review could not be created: {error}")
        status = answer.status
        if status is not None and status.allowed:
            return []
        logger.info(
            "stream write refused: %s may not get %s/%s imagestreams/layers (tags %s)",
            user.username,
            check.namespace,
            check.stream,
            ", ".join(check.tags),
        )
        return refused_source(
            check,
            reason=(status.reason or "") if status else "",
            evaluation_error=(status.evaluationError or "") if status else "",
        )

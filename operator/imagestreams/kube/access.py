"""Cross-namespace access checks with SubjectAccessReview.

A stream (or later a workload) in namespace A may use images of a stream in namespace B only if
A's service accounts may pull from B: the group system:serviceaccounts:A may `get imagestreams/layers`
in B, the right OpenShift's system:image-puller role grants. OpenShift checks the author's rights when
the reference is written; a CRD cannot see its author, so the operator checks the namespace instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lightkube import ApiError, AsyncClient
from lightkube.models.authorization_v1 import ResourceAttributes, SubjectAccessReviewSpec
from lightkube.resources.authorization_v1 import SubjectAccessReview

from imagestreams.api.imagestream import GROUP, PLURAL
from imagestreams.core.caches import TTLCache

CACHE_SECONDS = 30.0
# Pairs of namespaces remembered at most: far more than the cross-namespace sources of any cluster; the bound only
# keeps a flood of pairs from growing memory (the least recently asked pair goes first).
MAX_REMEMBERED_GRANTS = 10_000


class AccessCheckFailed(Exception):
    """The operator could not ask the API server (e.g. it lacks the right to create access reviews)."""


def pull_denied_message(namespace: str, source_namespace: str) -> str:
    return (
        f"service accounts of namespace {namespace} may not pull from namespace {source_namespace}: grant them "
        f"the image puller role there, e.g. kubectl create rolebinding {namespace}-image-puller "
        f"-n {source_namespace} --clusterrole=system:image-puller --group=system:serviceaccounts:{namespace}"
    )


@dataclass
class PullAccess:
    client: AsyncClient
    # (namespace, source namespace) pairs allowed to pull, each for CACHE_SECONDS.
    _grants: TTLCache[tuple[str, str], bool] = field(
        default_factory=lambda: TTLCache(MAX_REMEMBERED_GRANTS, ttl=CACHE_SECONDS, clock=time.monotonic)
    )

    async def namespace_may_pull(self, namespace: str, source_namespace: str) -> bool:
        if namespace == source_namespace:
            return True
        if (namespace, source_namespace) in self._grants:
            return True
        review = SubjectAccessReview(
            spec=SubjectAccessReviewSpec(
                groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
                resourceAttributes=ResourceAttributes(
                    namespace=source_namespace, verb="get", group=GROUP, resource=PLURAL, subresource="layers"
                ),
            )
        )
        try:
            answer = await self.client.create(review)
        except ApiError as error:
            raise AccessCheckFailed(
                f"could not check whether namespace {namespace} may pull from {source_namespace}: "
                f"{error.status.message} (the operator needs to create subjectaccessreviews)"
            ) from None
        allowed = bool(answer.status and answer.status.allowed)
        if allowed:
            # Only grants are remembered, so a new RoleBinding takes effect on the next look; denials are
            # asked again, which happens only when a stream with such a source changes.
            self._grants.put((namespace, source_namespace), allowed)
        return allowed

"""Is the API server answering us? One cheap request the operator is certainly allowed to make."""

from __future__ import annotations

from collections.abc import Sequence

import httpx2
from lightkube import ApiError, AsyncClient

from imagestreams.kube.streams import ImageStreamResource, listable_namespaces


async def api_answers(client: AsyncClient, namespaces: Sequence[str]) -> bool:
    """True when a one-item list of ImageStreams succeeds (in the first watched namespace, or cluster-wide).

    A list the operator's own watch needs anyway: no extra RBAC, and it proves the CRD is served too.
    """
    namespace = listable_namespaces(namespaces)[0]
    try:
        async for _ in client.list(ImageStreamResource, namespace=namespace, chunk_size=1):
            break
    except (ApiError, httpx2.HTTPError, OSError):
        return False
    return True

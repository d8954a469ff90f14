"""Is the API server answering us? One cheap request the operator is certainly allowed to make."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

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


def api_server_endpoints(client: AsyncClient, environ: Mapping[str, str]) -> tuple[str, ...]:
    """Where the operator reaches the API server (host:port from its configuration, and the in-cluster
    service address), so the registry policy can refuse them: a stream must not point the operator at it."""
    endpoints = []
    parsed = urlsplit(client.config.cluster.server)
    if parsed.hostname:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
        endpoints.append(f"{host}:{port}")
    service = environ.get("KUBERNETES_SERVICE_HOST")
    if service and not _is_loopback(service):
        endpoints.append(service)  # the service address means only the API server, on any port
    # A loopback address is never a Service's: it was set for a pod with hostNetwork (the chart's apiServer.host, a
    # local cluster), where the address's other ports are the node's other servers. host:port above covers the API
    # server; loopback as a whole is refused unless loopback registries are allowed, which is for a local cluster.
    return tuple(endpoints)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

"""Small helpers for tests: polling and registry clients."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import TypeVar

from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.images import PushClient

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def pusher_for(registry: Registry) -> PushClient:
    """A push client with the registry's push credentials (none for the plain registry)."""
    credentials = registry.pusher
    return PushClient(
        registry.url,
        ca_file=registry.ca_file,
        username=credentials.username if credentials else None,
        password=credentials.password if credentials else None,
    )


def cluster_tls(cluster: LocalCluster, *, admin: bool = False) -> ssl.SSLContext:
    """A TLS context that trusts the cluster CA, presenting the admin client certificate if asked."""
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    if admin:
        pki = cluster.workdir / "pki"
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context

"""Kopf's login: the API server the rest of the operator talks to.

The operator's own client (lightkube) finds the API server in a pod from KUBERNETES_SERVICE_HOST and
KUBERNETES_SERVICE_PORT, as client-go does. Kopf's built-in service-account login asks https://kubernetes.default.svc
instead, whatever those say: that needs cluster DNS, and misses an address given to a pod that cannot use the
`kubernetes` Service (hostNetwork without kube-proxy: the chart's `apiServer` values). So Kopf is given what lightkube
uses: the pod's service account with that address, else the kubeconfig (KUBECONFIG or ~/.kube/config), read by Kopf's
own kubeconfig login. Kopf calls this again when the API server answers 401, so a rotated token is read afresh.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster(
    environ: Mapping[str, str], account: Path = SERVICE_ACCOUNT, *, trust_env: bool = False
) -> kopf.ConnectionInfo | None:
    """The service account's token and CA with the API server of KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT;
    None outside a pod (no token, or no address), as lightkube's KubeConfig.from_service_account decides."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token_file, namespace_file, ca_file = account / "token", account / "namespace", account / "ca.crt"
    if not host or not port or not token_file.is_file():
        return None
    literal = f"[{host}]" if ":" in host else host
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else ""
    return kopf.ConnectionInfo(
        server=f"https://{literal}:{port}",
        ca_path=str(ca_file) if ca_file.is_file() else None,
        token=token_file.read_text().strip() or None,
        default_namespace=namespace or None,
        trust_env=trust_env,
    )


def login(settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Kopf's login handler (registered in handlers.py; with one registered, Kopf adds none of its own)."""
    connection = in_cluster(os.environ, trust_env=settings.networking.trust_env)
    if connection is not None:
        return connection
    return kopf.login_with_kubeconfig(settings=settings, **kwargs)

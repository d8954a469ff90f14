"""In a pod the operator talks to the API server that KUBERNETES_SERVICE_HOST/PORT name, Kopf included; the registry
policy keeps that server out of reach, and a loopback address set for a hostNetwork pod refuses only its port."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from lightkube import AsyncClient

from imagestreams.controller.login import in_cluster
from imagestreams.kube.health import api_server_endpoints


@pytest.fixture
def account(tmp_path: Path) -> Path:
    (tmp_path / "token").write_text("the-token\n")
    (tmp_path / "namespace").write_text("ops")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return tmp_path


def test_the_service_account_with_the_address_the_pod_was_given(account: Path) -> None:
    connection = in_cluster({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}, account)
    assert connection is not None
    assert connection.server == "https://127.0.0.1:6443"  # not Kopf's https://kubernetes.default.svc
    assert connection.token == "the-token"
    assert connection.ca_path == str(account / "ca.crt")
    assert connection.default_namespace == "ops"


def test_an_ipv6_address_is_bracketed(account: Path) -> None:
    connection = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, account)
    assert connection is not None and connection.server == "https://[fd00::1]:443"


@pytest.mark.parametrize(
    "environ", [{}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT": "443"}], ids=str
)
def test_outside_a_pod_the_kubeconfig_is_used(account: Path, environ: dict[str, str]) -> None:
    assert in_cluster(environ, account) is None
    address = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster(address, account / "absent") is None  # no token: not in a pod


def client_for(server: str) -> AsyncClient:
    stub: Any = SimpleNamespace(config=SimpleNamespace(cluster=SimpleNamespace(server=server)))
    return cast(AsyncClient, stub)


def test_the_service_address_is_refused_on_every_port() -> None:
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert api_server_endpoints(client_for("https://10.96.0.1:443"), environ) == ("10.96.0.1:443", "10.96.0.1")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_a_loopback_address_given_to_a_host_network_pod_is_refused_on_its_port_only(host: str) -> None:
    """Its other ports are the node's other servers (the local cluster's registries); loopback as a whole is
    refused anyway unless loopback registries are allowed."""
    literal = f"[{host}]" if ":" in host else host
    environ = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": "6443"}
    assert api_server_endpoints(client_for(f"https://{literal}:6443"), environ) == (f"{literal}:6443",)

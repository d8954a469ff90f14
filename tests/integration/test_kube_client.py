"""The operator's API client (kube/client.py) against the real API server: lightkube over aiohttp's connections,
with the TLS verification, client certificates and bearer tokens of the configuration."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import httpx2
import pytest
from httpx_aiohttp.httpx2 import AiohttpTransport
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Secret, ServiceAccount
from lightkube.types import PatchType

from imagestreams.kube.client import operator_client
from imagestreams.localcluster import LocalCluster
from imagestreams.localcluster.certs import CertificateAuthority
from tests.helpers import kube_config


async def test_requests_travel_over_aiohttp_with_the_configured_client_certificate(
    cluster: LocalCluster, namespace: str
) -> None:
    client = operator_client("imagestreams-tests", kube_config(cluster.admin_kubeconfig))
    try:
        assert isinstance(client._client._client._transport, AiohttpTransport)  # the wiring this module is for
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": namespace}}
        written = await client.patch(
            ConfigMap,
            "c",
            {**body, "data": {"image": "one"}},
            namespace=namespace,
            patch_type=PatchType.APPLY,
            field_manager="imagestreams-tests",
        )
        assert written.data == {"image": "one"}
        read = await client.get(ConfigMap, "c", namespace=namespace)
        assert read.metadata is not None and written.metadata is not None
        assert read.metadata.resourceVersion == written.metadata.resourceVersion
        listed = [item async for item in client.list(ConfigMap, namespace=namespace, chunk_size=1)]
        assert "c" in {item.metadata.name for item in listed if item.metadata}
        with pytest.raises(ApiError) as missing:
            await client.get(ConfigMap, "absent", namespace=namespace)
        assert missing.value.status.code == 404
    finally:
        await client.close()


async def test_a_server_certificate_from_another_ca_is_refused(cluster: LocalCluster, tmp_path: Path) -> None:
    """Verification stays on: the API server's certificate checked against a CA that did not sign it fails the
    request before anything is sent."""
    config = kube_config(cluster.admin_kubeconfig)
    other_ca_file = tmp_path / "other-ca.crt"
    other_ca_file.write_bytes(CertificateAuthority("not-the-cluster-ca").cert_pem)
    other_ca = config.cluster.__class__(server=config.cluster.server, certificate_auth=str(other_ca_file))
    client = operator_client("imagestreams-tests", config._replace(cluster=other_ca))
    try:
        with pytest.raises(httpx2.HTTPError) as refused:
            await client.get(ConfigMap, "anything", namespace="default")
        assert "certificate verify failed" in str(refused.value)
    finally:
        await client.close()


async def test_insecure_skip_tls_verify_is_honoured_only_when_configured(cluster: LocalCluster) -> None:
    config = kube_config(cluster.admin_kubeconfig)
    unverified = config.cluster.__class__(server=config.cluster.server, insecure=True)
    client = operator_client("imagestreams-tests", config._replace(cluster=unverified))
    try:
        assert (await client.get(ServiceAccount, "default", namespace="default")).metadata is not None
    finally:
        await client.close()


async def test_a_bearer_token_is_sent_and_its_identity_is_what_the_api_server_sees(
    cluster: LocalCluster, admin: Client, namespace: str
) -> None:
    name = f"sa-{uuid.uuid4().hex[:6]}"
    admin.create(ServiceAccount(metadata=ObjectMeta(name=name, namespace=namespace)))
    config = kube_config(cluster.service_account_kubeconfig(namespace, name))
    assert config.user is not None and config.user.token
    client = operator_client("imagestreams-tests", config)
    try:
        with pytest.raises(ApiError) as denied:
            await client.get(Secret, "anything", namespace=namespace)
        # 403 for this service account, not 401: the token reached the API server through the transport.
        assert denied.value.status.code == 403
        assert f"system:serviceaccount:{namespace}:{name}" in (denied.value.status.message or "")
    finally:
        await client.close()


async def test_an_api_server_that_does_not_answer_is_an_httpx2_error(cluster: LocalCluster) -> None:
    """The operator's retries and outage detection know httpx2's errors: aiohttp's are mapped to them."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    config = kube_config(cluster.admin_kubeconfig)
    closed = config.cluster.__class__(server=f"https://127.0.0.1:{port}", insecure=True)
    client = operator_client("imagestreams-tests", config._replace(cluster=closed))
    try:
        with pytest.raises(httpx2.TransportError):
            await client.get(ConfigMap, "anything", namespace="default")
    finally:
        await client.close()

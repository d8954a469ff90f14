"""Safer network defaults: a stream cannot point the operator at loopback or at the API server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.images import unique_image
from tests.conftest import solo_settings
from tests.helpers import OperatorProcess, pusher_for
from tests.streams import apply_stream, insecure_tag, wait_for_tag


def test_loopback_registries_are_refused_by_default(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    with pusher_for(plain_registry) as client:
        client.push_image(repository, "v1", unique_image("loopback"))
    port = plain_registry.host.rsplit(":", 1)[1]
    settings = {k: v for k, v in solo_settings(solo_namespace).items() if k != "IMAGESTREAMS_LOOPBACK_REGISTRIES"}
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        apply_stream(
            crds,
            solo_namespace,
            "probe",
            [
                insecure_tag("literal", f"127.0.0.1:{port}/{repository}:v1"),
                insecure_tag("byname", f"localhost:{port}/{repository}:v1"),
            ],
        )
        literal = wait_for_tag(crds, solo_namespace, "probe", "literal", reason="Forbidden")
        byname = wait_for_tag(crds, solo_namespace, "probe", "byname", reason="Forbidden")
    finally:
        operator.stop()
    assert "127.0.0.1:" in literal["conditions"][0]["message"]
    assert "is a loopback address" in literal["conditions"][0]["message"]
    assert "IMAGESTREAMS_LOOPBACK_REGISTRIES" in byname["conditions"][0]["message"]


def test_the_api_server_is_refused_even_where_loopback_is_allowed(
    crds: LocalCluster, solo_namespace: str, tmp_path: Path
) -> None:
    apiserver = urlsplit(crds.server).netloc  # 127.0.0.1:PORT, where the operator's own credentials go
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, solo_settings(solo_namespace)).start()
    try:
        apply_stream(crds, solo_namespace, "probe", [insecure_tag("api", f"{apiserver}/api/v1:latest")])
        refused = wait_for_tag(crds, solo_namespace, "probe", "api", reason="Forbidden")
    finally:
        operator.stop()
    assert f"{apiserver} is the Kubernetes API server" in refused["conditions"][0]["message"]

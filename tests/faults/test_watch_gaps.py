"""Watch gaps: objects deleted while the operator's watches were away are forgotten.

A watch that comes back after its resource version expired (410 Gone) re-lists, and a re-list never announces what
was deleted in the gap. To make such a gap for real, the API server is stopped, the objects are deleted from etcd
directly (so no apiserver ever sends a DELETED event for them), and the API server is started again: its new watch
cache makes every watch that resumes from an older resource version expire, and Kopf re-lists.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path

from lightkube import Client

from imagestreams.localcluster import LocalCluster, Registry
from tests.conftest import kubectl, namespace_events, solo_settings
from tests.helpers import OperatorProcess, eventually
from tests.streams import apply_stream, insecure_tag, push_unique, triggered_deployment


def delete_from_etcd(cluster: LocalCluster, key: str) -> int:
    """Delete one key through etcd's v3 JSON gateway; returns how many keys were deleted."""
    request = urllib.request.Request(
        f"{cluster.etcd_url}/v3/kv/deleterange",
        data=json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # the harness's own etcd, on loopback
        return int(json.load(answer).get("deleted", 0))


def warnings_on(cluster: LocalCluster, namespace: str, name: str) -> list[str]:
    events = namespace_events(cluster, namespace)
    return [
        event.get("message") or ""
        for event in events
        if event.get("type") == "Warning" and (event.get("involvedObject") or {}).get("name") == name
    ]


def test_a_stream_and_a_workload_deleted_in_a_watch_gap_are_forgotten(
    crds: LocalCluster, admin: Client, solo_namespace: str, plain_registry: Registry, repository: str, tmp_path: Path
) -> None:
    namespace = solo_namespace
    image = push_unique(plain_registry, repository, "v1")
    apply_stream(crds, namespace, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
    kubectl(crds, "apply", "-f", "-", stdin=triggered_deployment(namespace, "app:v1"))
    kubectl(crds, "apply", "-f", "-", stdin=triggered_deployment(namespace, "app:v1", name="other"))
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, solo_settings(namespace)).start()
    try:
        eventually(
            lambda: image.digest in kubectl(crds, "get", "deployment", "web", "-n", namespace, "-o", "json"),
            what="web to follow app:v1",
        )
        with crds.apiserver_down():
            assert delete_from_etcd(crds, f"/registry/image.openshift.io/imagestreams/{namespace}/app") == 1
            assert delete_from_etcd(crds, f"/registry/deployments/{namespace}/other") == 1
        # Nothing announced the deletions: only the comparison after the re-list finds them. The Deployment that
        # still follows the stream is then told that it is gone.
        eventually(
            lambda: any("does not exist" in message for message in warnings_on(crds, namespace, "web")) or None,
            timeout=60,
            what="a Warning on web that image stream app is gone",
        )
        log = operator.log()
        assert f"image stream {namespace}/app is gone (missing from a fresh list)" in log
        assert f"Deployment {namespace}/other is gone (missing from a fresh list)" in log
    finally:
        operator.stop()

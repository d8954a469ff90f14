"""Helpers for tests that create ImageStreams and wait for the operator."""

from __future__ import annotations

import base64
import json
from typing import Any

from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.images import Image, unique_image
from tests.conftest import kubectl
from tests.helpers import eventually, pusher_for


def apply_stream(
    cluster: LocalCluster,
    namespace: str,
    name: str,
    tags: list[dict[str, Any]],
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> None:
    manifest = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {"tags": tags, **spec},
    }
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=json.dumps(manifest))


def get_stream(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    stream: dict[str, Any] = json.loads(kubectl(cluster, "get", "imagestream", name, "-n", namespace, "-o", "json"))
    return stream


def status_tag(stream: dict[str, Any], tag: str) -> dict[str, Any]:
    for entry in (stream.get("status") or {}).get("tags") or []:
        if entry["tag"] == tag:
            return dict(entry)
    return {}


def wait_for_tag(
    cluster: LocalCluster, namespace: str, name: str, tag: str, *, image: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    """Wait until the tag's newest image is `image`, or until its ImportSuccess=False condition has `reason`."""

    def probe() -> dict[str, Any] | None:
        entry = status_tag(get_stream(cluster, namespace, name), tag)
        items, conditions = entry.get("items") or [], entry.get("conditions") or []
        if image is not None and items and items[0]["image"] == image:
            return entry
        if reason is not None and conditions and conditions[0]["reason"] == reason:
            return entry
        return None

    return eventually(probe, timeout=30, what=f"tag {tag} of {namespace}/{name} to show {image or reason}")


def docker_tag(name: str, pull_spec: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "from": {"kind": "DockerImage", "name": pull_spec}, **extra}


def insecure_tag(name: str, pull_spec: str, **extra: Any) -> dict[str, Any]:
    return docker_tag(name, pull_spec, importPolicy={"insecure": True, **extra.pop("importPolicy", {})}, **extra)


def pull_secret(
    cluster: LocalCluster,
    namespace: str,
    registry: Registry,
    *,
    password: str | None = None,
    exclude: bool = False,
    name: str | None = None,
) -> None:
    assert registry.reader is not None
    secret_password = password or registry.reader.password
    auth = base64.b64encode(f"{registry.reader.username}:{secret_password}".encode()).decode()
    config = json.dumps({"auths": {registry.host: {"auth": auth}}})
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": name or f"pull-{registry.kind.value}",
            "namespace": namespace,
            "annotations": {"openshift.io/image.excludeSecret": "true"} if exclude else {},
        },
        "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
    }
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=json.dumps(manifest))


def push_unique(registry: Registry, repository: str, tag: str, label: str = "") -> Image:
    """Push an image no other push has made to repository:tag; returns it (its digest is new)."""
    image = unique_image(label or tag)
    with pusher_for(registry) as client:
        client.push_image(repository, tag, image)
    return image


def grant_image_puller(cluster: LocalCluster, source_namespace: str, consumer_namespace: str) -> None:
    """Let the service accounts of `consumer_namespace` use the streams of `source_namespace`."""
    kubectl(
        cluster,
        "create",
        "rolebinding",
        f"pull-{consumer_namespace}"[:63],
        "-n",
        source_namespace,
        "--clusterrole=system:image-puller",
        f"--group=system:serviceaccounts:{consumer_namespace}",
    )


def triggered_deployment(
    namespace: str,
    trigger_name: str,
    trigger_namespace: str | None = None,
    *,
    name: str = "web",
    image: str = "placeholder:0",
    pod_spec: dict[str, Any] | None = None,
) -> str:
    """A Deployment `name` whose container `web` follows `trigger_name` (JSON, for kubectl apply); `pod_spec` adds
    fields to its pod spec (e.g. the dedicated test node's scheduler and toleration)."""
    source: dict[str, Any] = {"kind": "ImageStreamTag", "name": trigger_name}
    if trigger_namespace:
        source["namespace"] = trigger_namespace
    triggers = [{"from": source, "fieldPath": 'spec.template.spec.containers[?(@.name=="web")].image'}]
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": {"image.openshift.io/triggers": json.dumps(triggers)},
            },
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {**(pod_spec or {}), "containers": [{"name": "web", "image": image}]},
                },
            },
        }
    )

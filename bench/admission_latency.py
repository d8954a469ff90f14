"""What the admission webhooks add to a Pod create, on the real API server with the operator as its own process.

A local cluster without a node (pods are stored and stay Pending: real creates, not dry runs), the CRD applied, and
the operator serving its webhooks on 127.0.0.1 with its own certificates, the two configurations registered by URL
for the namespace `bench` only. `bench-plain` is not matched: the same creates without any webhook. In `bench`, the
stream `app` has local lookup and an imported tag, so a Pod of `app:latest` is resolved (one stream read); a Pod of
a full registry name reaches the webhook, which reads nothing. The three kinds of create alternate, after a warm-up,
so load on the machine falls on all of them alike. Stream creates (failurePolicy Fail webhooks: mutate and validate)
are timed the same way.

Usage: .venv/bin/python bench/admission_latency.py [CREATES]   (default 200 of each)
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightkube import Client, KubeConfig
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod

from imagestreams.api.webhooks import url_client_config, webhook_configurations
from imagestreams.kube.streams import ImageStreamResource
from imagestreams.localcluster import ClusterSettings, LocalCluster, RegistryKind
from imagestreams.localcluster.images import PushClient, unique_image

REPO = Path(__file__).resolve().parents[1]
WEBHOOKS, PLAIN = "bench", "bench-plain"
WARM_UP = 20


def kubectl(cluster: LocalCluster, *args: str, stdin: str | None = None) -> str:
    assert cluster.binaries is not None
    command = [str(cluster.binaries.kubectl), f"--kubeconfig={cluster.admin_kubeconfig}", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, check=True).stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def pod(namespace: str, image: str) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=f"p-{uuid.uuid4().hex[:10]}", namespace=namespace),
        spec=PodSpec(containers=[Container(name="main", image=image)]),
    )


def stream(namespace: str) -> Any:
    tag = {"name": "v1", "from": {"kind": "DockerImage", "name": "registry.example.org/app:v1"}}
    return ImageStreamResource(
        metadata=ObjectMeta(name=f"s-{uuid.uuid4().hex[:10]}", namespace=namespace), spec={"tags": [tag]}
    )


def timed(create: Callable[[], object]) -> float:
    started = time.perf_counter()
    create()
    return time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def setup(cluster: LocalCluster, client: Client, port: int) -> str:
    """Namespaces, the operator with its webhooks, and the stream `app` imported; returns the pull spec a Pod of
    app:latest must be stored with."""
    kubectl(cluster, "apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    for namespace in (WEBHOOKS, PLAIN):
        kubectl(cluster, "create", "namespace", namespace)
        account = ("get", "sa", "default", "-n", namespace, "--ignore-not-found", "-o", "name")
        wait_for(lambda: bool(kubectl(cluster, *account)), 30, "the default ServiceAccount")  # noqa: B023
    selector = {"matchLabels": {"kubernetes.io/metadata.name": WEBHOOKS}}
    for body in webhook_configurations(url_client_config(f"https://127.0.0.1:{port}"), selector, name="bench"):
        kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=json.dumps(body))
    cluster.start_operator(
        {
            "IMAGESTREAMS_NAMESPACES": WEBHOOKS,
            "IMAGESTREAMS_WEBHOOK_PORT": str(port),
            "IMAGESTREAMS_WEBHOOK_ADDRESS": "127.0.0.1",
            "IMAGESTREAMS_WEBHOOK_HOSTS": "127.0.0.1",
            "IMAGESTREAMS_WEBHOOK_NAMESPACE": WEBHOOKS,
            "IMAGESTREAMS_WEBHOOK_CONFIGURATION": "bench",
        },
        "operator",
    )

    def admitted() -> bool:
        try:
            client.create(stream(WEBHOOKS), dry_run=True)
        except Exception:  # refused until the API server has read the CA bundle
            return False
        return True

    wait_for(admitted, 30, "the webhooks to admit a stream write")
    registry = cluster.registries[RegistryKind.PLAIN]
    with PushClient(registry.url) as push:
        digest = push.push_image("bench/app", "latest", unique_image("admission"))
    app = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "app", "namespace": WEBHOOKS},
        "spec": {
            "lookupPolicy": {"local": True},
            "tags": [
                {
                    "name": "latest",
                    "from": {"kind": "DockerImage", "name": f"{registry.host}/bench/app:latest"},
                    "importPolicy": {"insecure": True},
                }
            ],
        },
    }
    kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=json.dumps(app))
    resolved = f"{registry.host}/bench/app@{digest}"

    def imported() -> bool:
        return resolved in kubectl(cluster, "get", "imagestream", "app", "-n", WEBHOOKS, "-o", "json")

    wait_for(imported, 60, "the tag to be imported")
    return resolved


def main() -> None:
    creates = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    settings = ClusterSettings(registries=(RegistryKind.PLAIN,))
    with LocalCluster(settings) as cluster:
        client = Client(config=KubeConfig.from_file(cluster.admin_kubeconfig), trust_env=False)
        resolved = setup(cluster, client, free_port())
        full_name = "registry.example.org/library/app:1"
        kinds: dict[str, Callable[[], object]] = {
            "Pod, no webhook": lambda: client.create(pod(PLAIN, "app:latest")),
            "Pod, lookup webhook, short name resolved": lambda: client.create(pod(WEBHOOKS, "app:latest")),
            "Pod, lookup webhook, full registry name": lambda: client.create(pod(WEBHOOKS, full_name)),
            "ImageStream, no webhook": lambda: client.create(stream(PLAIN)),
            "ImageStream, mutating and validating webhooks": lambda: client.create(stream(WEBHOOKS)),
        }
        stored = client.create(pod(WEBHOOKS, "app:latest"))
        assert stored.spec is not None and stored.spec.containers[0].image == resolved, stored.spec
        for create in kinds.values():
            for _ in range(WARM_UP):
                create()
        seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(creates):
            for kind, create in kinds.items():
                seconds[kind].append(timed(create))
        print(f"{creates} creates of each, alternating, after {WARM_UP} of each to warm up (milliseconds):")
        print(f"{'':48} {'p50':>6} {'p99':>6} {'mean':>6} {'max':>6}")
        for kind, values in seconds.items():
            figures = (percentile(values, 0.5), percentile(values, 0.99), statistics.fmean(values), max(values))
            print(f"{kind:48} " + " ".join(f"{value * 1000:6.1f}" for value in figures))
        plain, resolved_pods = seconds["Pod, no webhook"], seconds["Pod, lookup webhook, short name resolved"]
        print(
            f"added by the lookup webhook to a Pod create: p50 "
            f"{(percentile(resolved_pods, 0.5) - percentile(plain, 0.5)) * 1000:.1f} ms, p99 "
            f"{(percentile(resolved_pods, 0.99) - percentile(plain, 0.99)) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()

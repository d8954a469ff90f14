"""Registry push to Deployment patched: p50 and p99 over N pushes (default 30), in three modes (issue 12, item 4):

  request       after each push, the stream's import-request annotation is set (what `oc import-image` does);
  notification  the registry posts its notification envelope to the operator's endpoint (IMAGESTREAMS_NOTIFICATIONS_*);
  schedule      nothing but the shortest schedule (IMAGESTREAMS_SCHEDULED_INTERVAL_SECONDS=1, the minimum).

One local cluster, its plain registry and a second plain registry that notifies; the operator runs as its own process
(interval 3600 s for the first two modes, so only the request or the notification explains an import; 1 s for the
third). Each mode has its own namespace with one stream (tag `live`, scheduled, following <registry>/<repo>:v1) and one
Deployment triggered by it. Each round pushes a new image to v1 (blobs, then the manifest by tag) and times from the
moment the manifest PUT returned until a watch on the Deployment shows the new digest in its container image. Rounds
start a random 0-1 s apart, so that pushes fall anywhere in the schedule's 1 s grid.

Percentiles are nearest-rank: p99 of 30 rounds is the slowest of them. Target (issue 12): p99 under 1 s with
notifications.

Usage: .venv/bin/python bench/latency.py [--pushes N] [--modes request,notification,schedule]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

from lightkube import Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace, Secret
from lightkube.types import PatchType

from imagestreams.controller.reconciler import IMPORT_REQUEST_ANNOTATION
from imagestreams.kube.streams import ImageStreamResource
from imagestreams.localcluster import ClusterSettings, LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.images import PushClient, unique_image
from imagestreams.localcluster.processes import ManagedProcess

MODES = ("request", "notification", "schedule")
REPOSITORY = "bench/latency"
SECRET = "notification-tokens"
TOKEN = uuid.uuid4().hex + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class DeploymentWatch:
    """Records when each container image is first seen on one Deployment, from a watch in a thread."""

    def __init__(self, client: Client, namespace: str, name: str) -> None:
        self.client, self.namespace, self.name = client, namespace, name
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            try:
                for _, deployment in self.client.watch(
                    Deployment, namespace=self.namespace, fields={"metadata.name": self.name}
                ):
                    now = time.monotonic()
                    spec = deployment.spec
                    image = spec.template.spec.containers[0].image if spec and spec.template.spec else None
                    with self.changed:
                        if image and image not in self.seen:
                            self.seen[image] = now
                            self.changed.notify_all()
            except Exception:  # the watch expired or the connection dropped: watch again
                time.sleep(0.05)

    def wait_for(self, digest: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = [at for image, at in self.seen.items() if image.endswith(digest)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"the Deployment did not get {digest} within {timeout:.0f} s")
                self.changed.wait(left)


class Bench:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.client = Client(
            config=KubeConfig.from_file(cluster.admin_kubeconfig), field_manager="bench", trust_env=False
        )

    def setup(self, mode: str, registry: Registry) -> tuple[str, PushClient, DeploymentWatch]:
        namespace = f"bench-{mode}"
        self.client.create(Namespace(metadata=ObjectMeta(name=namespace)))
        pusher = PushClient(registry.url)
        first = pusher.push_image(REPOSITORY, "v1", unique_image(mode))
        tags = [
            {
                "name": "live",
                "from": {"kind": "DockerImage", "name": f"{registry.host}/{REPOSITORY}:v1"},
                "importPolicy": {"insecure": True, "scheduled": True},
            }
        ]
        self.client.create(
            ImageStreamResource(metadata=ObjectMeta(name="app", namespace=namespace), spec={"tags": tags})
        )
        triggers = [{"from": {"kind": "ImageStreamTag", "name": "app:live"},
                     "fieldPath": 'spec.template.spec.containers[?(@.name=="web")].image'}]  # fmt: skip
        self.client.create(
            Deployment.from_dict(
                {
                    "metadata": {
                        "name": "web",
                        "namespace": namespace,
                        "annotations": {"image.openshift.io/triggers": json.dumps(triggers)},
                    },
                    "spec": {
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {
                            "metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "web", "image": "placeholder:0"}]},
                        },
                    },
                }
            )
        )
        watch = DeploymentWatch(self.client, namespace, "web")
        watch.wait_for(first)
        return namespace, pusher, watch

    def request_import(self, namespace: str) -> None:
        self.client.patch(
            ImageStreamResource,
            "app",
            {"metadata": {"annotations": {IMPORT_REQUEST_ANNOTATION: uuid.uuid4().hex}}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )

    def run(self, mode: str, registry: Registry, pushes: int) -> list[float]:
        namespace, pusher, watch = self.setup(mode, registry)
        latencies = []
        for round_number in range(pushes):
            time.sleep(random.uniform(0.0, 1.0))  # noqa: S311 - a phase, not a secret
            digest = pusher.push_image(REPOSITORY, "v1", unique_image(f"{mode}-{round_number}"))
            pushed = time.monotonic()
            if mode == "request":
                self.request_import(namespace)
            latencies.append(watch.wait_for(digest) - pushed)
        pusher.close()
        return latencies

    def token_secret(self, namespace: str) -> None:
        data = {"token": base64.b64encode(TOKEN.encode()).decode()}
        self.client.create(Secret(metadata=ObjectMeta(name=SECRET, namespace=namespace), data=data))


def start_operator(
    cluster: LocalCluster, name: str, modes: tuple[str, ...], settings: dict[str, str]
) -> ManagedProcess:
    return cluster.start_operator(
        {"IMAGESTREAMS_NAMESPACES": ",".join(f"bench-{mode}" for mode in modes), **settings}, name=name
    )


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, Python {platform.python_version()}, load {load}"


def report(mode: str, latencies: list[float]) -> None:
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(
        f"{mode:12} {len(latencies)} pushes: p50 {p50:.3f} s, p99 {p99:.3f} s"
        f" (min {min(latencies):.3f}, mean {statistics.mean(latencies):.3f}, max {max(latencies):.3f})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = [mode for mode in args.modes.split(",") if mode]
    assert set(modes) <= set(MODES), f"modes are {', '.join(MODES)}"
    print(f"machine: {machine()}", flush=True)
    with LocalCluster(ClusterSettings(registries=(RegistryKind.PLAIN,))) as cluster:
        assert cluster.binaries is not None
        subprocess.run(
            [str(cluster.binaries.kubectl), f"--kubeconfig={cluster.admin_kubeconfig}", "apply", "--server-side",
             "-f", str(Path(__file__).resolve().parents[1] / "crds")],
            check=True,
            capture_output=True,
        )  # fmt: skip
        bench = Bench(cluster)
        plain = cluster.registries[RegistryKind.PLAIN]
        results: dict[str, list[float]] = {}
        if {"request", "notification"} & set(modes):
            port = free_port()
            notifying = cluster.add_registry(
                RegistryKind.PLAIN, notifications_url=f"http://127.0.0.1:{port}/notifications/distribution/{TOKEN}"
            )
            bench.client.create(Namespace(metadata=ObjectMeta(name="bench-tokens")))
            bench.token_secret("bench-tokens")
            operator = start_operator(
                cluster,
                "operator-on-request",
                ("request", "notification"),
                {
                    "IMAGESTREAMS_SCHEDULED_INTERVAL_SECONDS": "3600",
                    "IMAGESTREAMS_NOTIFICATIONS_PORT": str(port),
                    "IMAGESTREAMS_NOTIFICATIONS_ADDRESS": "127.0.0.1",
                    "IMAGESTREAMS_NOTIFICATIONS_NAMESPACE": "bench-tokens",
                    "IMAGESTREAMS_NOTIFICATIONS_SECRET": SECRET,
                },
            )
            try:
                for mode, registry in (("request", plain), ("notification", notifying)):
                    if mode in modes:
                        results[mode] = bench.run(mode, registry, args.pushes)
                        report(mode, results[mode])
            finally:
                operator.stop()
        if "schedule" in modes:
            operator = start_operator(
                cluster,
                "operator-on-schedule",
                ("schedule",),
                {"IMAGESTREAMS_SCHEDULED_INTERVAL_SECONDS": "1", "IMAGESTREAMS_MAX_SCHEDULED_IMPORTS_PER_MINUTE": "0"},
            )
            try:
                results["schedule"] = bench.run("schedule", plain, args.pushes)
                report("schedule", results["schedule"])
            finally:
                operator.stop()
    print("\nsummary (registry push to Deployment patched):")
    for mode in modes:
        report(mode, results[mode])


if __name__ == "__main__":
    main()

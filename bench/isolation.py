"""One tenant cannot delay another: a healthy stream's import time alone, next to 8 streams on a registry that never
answers, and next to a 1,000-tag stream on the same registry (issue 8; target: within 2 s of alone).

The operator runs as its own process with 4 import workers and IMAGESTREAMS_REGISTRY_RATE=20 against the local
plain registry; the registry that never answers is a TCP server on 127.0.0.1 that accepts connections and never
sends a byte. Each healthy import is a new image in a new repository of the plain registry (HEAD, GET manifest, GET
config), in its own namespace, timed from the stream's creation until its status shows the image (polled every
20 ms). It also prints how long the 1,000-tag stream took, and how soon the connections of deleted streams closed.

Usage: .venv/bin/python bench/isolation.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from lightkube import Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from imagestreams.kube.streams import ImageStreamResource
from imagestreams.localcluster import ClusterSettings, LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.faults import SilentServer
from imagestreams.localcluster.images import PushClient, unique_image

WORKERS = 4
RATE = 20
HANGING_STREAMS = 8
TAGS = 1000


def tag(name: str, pull_spec: str) -> dict[str, Any]:
    return {"name": name, "from": {"kind": "DockerImage", "name": pull_spec}, "importPolicy": {"insecure": True}}


class Bench:
    def __init__(self, cluster: LocalCluster) -> None:
        self.registry: Registry = cluster.registries[RegistryKind.PLAIN]
        self.client = Client(
            config=KubeConfig.from_file(cluster.admin_kubeconfig), field_manager="bench", trust_env=False
        )

    def namespace(self, name: str) -> str:
        self.client.create(Namespace(metadata=ObjectMeta(name=name)))
        return name

    def create(self, namespace: str, name: str, tags: list[dict[str, Any]]) -> None:
        self.client.create(
            ImageStreamResource(metadata=ObjectMeta(name=name, namespace=namespace), spec={"tags": tags})
        )

    def status_tags(self, namespace: str, name: str) -> list[dict[str, Any]]:
        stream = self.client.get(ImageStreamResource, name, namespace=namespace)
        return list((stream.status or {}).get("tags") or [])

    def healthy_import(self, namespace: str, name: str) -> float:
        repository = f"isolation/{name}-{uuid.uuid4().hex[:6]}"
        image = unique_image(name)
        with PushClient(self.registry.url) as pusher:
            pusher.push_image(repository, "v1", image)
        started = time.monotonic()
        self.create(namespace, name, [tag("v1", f"{self.registry.host}/{repository}:v1")])
        while time.monotonic() - started < 300:
            for entry in self.status_tags(namespace, name):
                if entry.get("conditions"):
                    raise SystemExit(f"{namespace}/{name} failed: {entry['conditions'][0]['message']}")
                if (entry.get("items") or [{}])[0].get("image") == image.digest:
                    return time.monotonic() - started
            time.sleep(0.02)
        raise SystemExit(f"{namespace}/{name} was not imported within 300 s")

    def healthy_imports(self, namespace: str, label: str, runs: int) -> list[float]:
        return [self.healthy_import(namespace, f"{label}-{n}") for n in range(runs)]


def summary(times: list[float]) -> str:
    return (
        f"median {statistics.median(times):.2f}s (min {min(times):.2f}s, max {max(times):.2f}s, {len(times)} imports)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="healthy imports per situation")
    args = parser.parse_args()
    with LocalCluster(ClusterSettings(registries=(RegistryKind.PLAIN,))) as cluster, SilentServer() as silent:
        assert cluster.binaries is not None
        kubectl = [str(cluster.binaries.kubectl), f"--kubeconfig={cluster.admin_kubeconfig}"]
        crds = str(Path(__file__).resolve().parents[1] / "crds")
        subprocess.run([*kubectl, "apply", "--server-side", "-f", crds], check=True, capture_output=True)
        # kubectl wait fails at once on a CRD that has no conditions yet: ask again until it is Established.
        wait = [*kubectl, "wait", "--for=condition=Established", "--timeout=30s", "crd", "--all"]
        while subprocess.run(wait, check=False, capture_output=True).returncode != 0:
            time.sleep(0.2)
        bench = Bench(cluster)
        operator = cluster.start_operator(
            {"IMAGESTREAMS_IMPORT_WORKERS": str(WORKERS), "IMAGESTREAMS_REGISTRY_RATE": str(RATE)}
        )
        try:
            healthy, hanging, busy = (bench.namespace(name) for name in ("healthy", "hanging", "busy"))
            print(f"{WORKERS} import workers, {RATE} requests per second per registry")
            bench.healthy_import(healthy, "warm-up")  # the registry's first ping and connection
            alone = bench.healthy_imports(healthy, "alone", args.runs)
            print(f"{'alone':52}: {summary(alone)}")

            for n in range(HANGING_STREAMS):
                bench.create(hanging, f"hangs-{n}", [tag("v1", f"{silent.host}/team/app-{n}:v1")])
            while not silent.connections():
                time.sleep(0.05)
            time.sleep(1)
            beside_hanging = bench.healthy_imports(healthy, "beside-hanging", args.runs)
            print(
                f"{f'next to {HANGING_STREAMS} streams on a registry that never answers':52}: {summary(beside_hanging)}"
            )
            deleted = time.monotonic()
            for n in range(HANGING_STREAMS):
                bench.client.delete(ImageStreamResource, f"hangs-{n}", namespace=hanging)
            while silent.open_connections():
                time.sleep(0.01)
            closed = time.monotonic() - deleted
            print(f"connections to the registry that never answers closed {closed:.2f}s after its streams' deletion")

            repository = f"isolation/thousand-{uuid.uuid4().hex[:6]}"
            image = unique_image("thousand")
            with PushClient(bench.registry.url) as pusher:
                pusher.push_image(repository, "t0", image)
                for n in range(1, TAGS):
                    pusher.push_manifest(repository, f"t{n}", image.manifest, image.media_type)
            created = time.monotonic()
            bench.create(
                busy, "thousand", [tag(f"t{n}", f"{bench.registry.host}/{repository}:t{n}") for n in range(TAGS)]
            )
            time.sleep(2)
            beside_busy = bench.healthy_imports(healthy, "beside-thousand", args.runs)
            busy_note = "still importing" if not bench.status_tags(busy, "thousand") else "FINISHED: not contended"
            print(f"{f'next to a {TAGS}-tag stream on the same registry':52}: {summary(beside_busy)} ({busy_note})")
            while len(bench.status_tags(busy, "thousand")) < TAGS:
                time.sleep(0.5)
            print(f"the {TAGS}-tag stream itself: {time.monotonic() - created:.1f}s until every tag had an image")
        finally:
            operator.stop()


if __name__ == "__main__":
    main()

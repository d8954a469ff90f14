"""Shared by the fan-out and memory benchmarks: a local cluster with the CRDs, many streams and Deployments created
quickly through the API, and the operator process's RSS and CPU read from /proc.

Not a benchmark itself: `bench/fanout.py` and `bench/memory.py` import it (run them from the repository root).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lightkube import AsyncClient, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace

from imagestreams.kube.streams import ImageStreamResource
from imagestreams.localcluster import LocalCluster
from imagestreams.localcluster.processes import ManagedProcess

REPO = Path(__file__).resolve().parents[1]
TRIGGERS = "image.openshift.io/triggers"
FOLLOWS_LABEL = "bench.imagestreams.dev/follows"  # on the Deployments that carry a trigger annotation
CONTAINER = "app"
CREATE_CONCURRENCY = 16


def kubectl(cluster: LocalCluster, *args: str, stdin: str | None = None) -> str:
    assert cluster.binaries is not None
    command = [str(cluster.binaries.kubectl), f"--kubeconfig={cluster.admin_kubeconfig}", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, check=True).stdout


def install_crds(cluster: LocalCluster) -> None:
    kubectl(cluster, "apply", "--server-side", "-f", str(REPO / "crds"))
    # kubectl wait fails at once on a CRD that has no conditions yet: ask again until it is Established.
    while True:
        try:
            kubectl(cluster, "wait", "--for=condition=Established", "--timeout=30s", "crd", "--all")
            return
        except subprocess.CalledProcessError:
            time.sleep(0.2)


def admin_client(cluster: LocalCluster) -> AsyncClient:
    return AsyncClient(config=KubeConfig.from_file(cluster.admin_kubeconfig), field_manager="bench", trust_env=False)


def stream_manifest(namespace: str, name: str, pull_spec: str) -> dict[str, Any]:
    tag = {"name": "v1", "from": {"kind": "DockerImage", "name": pull_spec}, "importPolicy": {"insecure": True}}
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"tags": [tag]}}


def deployment_manifest(namespace: str, name: str, follows: str | None, *, paused: bool = False) -> dict[str, Any]:
    """A Deployment with no replicas (no node runs pods here), following stream `follows`'s tag v1 if given; a
    paused one gets no new ReplicaSet from kube-controller-manager when its template changes."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"app": name}}
    if follows is not None:
        trigger = {
            "from": {"kind": "ImageStreamTag", "name": f"{follows}:v1"},
            "fieldPath": f'spec.template.spec.containers[?(@.name=="{CONTAINER}")].image',
        }
        metadata["annotations"] = {TRIGGERS: json.dumps([trigger])}
        metadata["labels"][FOLLOWS_LABEL] = "true"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 0,
            "paused": paused,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": CONTAINER, "image": "registry.invalid/placeholder:0"}]},
            },
        },
    }


async def create_namespaces(client: AsyncClient, names: Iterable[str]) -> None:
    for name in names:
        await client.create(Namespace(metadata=ObjectMeta(name=name)))


async def create_all(client: AsyncClient, objects: list[Any], concurrency: int = CREATE_CONCURRENCY) -> None:
    """Create `objects` (lightkube resources), `concurrency` requests at a time."""
    pending = iter(objects)

    async def creator() -> None:
        for obj in pending:
            await client.create(obj)

    await asyncio.gather(*(creator() for _ in range(concurrency)))


def streams(manifests: Iterable[dict[str, Any]]) -> list[Any]:
    return [
        ImageStreamResource(metadata=ObjectMeta(**manifest["metadata"]), spec=manifest["spec"])
        for manifest in manifests
    ]


def deployments(manifests: Iterable[dict[str, Any]]) -> list[Any]:
    return [Deployment.from_dict(manifest) for manifest in manifests]


async def count_imported(client: AsyncClient, namespaces: Iterable[str]) -> int:
    """Streams in `namespaces` whose tag v1 has an image."""
    imported = 0
    for namespace in namespaces:
        async for stream in client.list(ImageStreamResource, namespace=namespace, chunk_size=500):
            imported += any(tag.get("items") for tag in status_tags(stream))
    return imported


async def count_following(client: AsyncClient, namespaces: Iterable[str], image: str) -> int:
    """Triggered Deployments in `namespaces` whose container runs `image`."""
    following = 0
    for namespace in namespaces:
        async for deployment in client.list(
            Deployment, namespace=namespace, labels={FOLLOWS_LABEL: "true"}, chunk_size=500
        ):
            assert deployment.spec is not None and deployment.spec.template.spec is not None
            following += deployment.spec.template.spec.containers[0].image == image
    return following


def status_tags(stream: Any) -> list[dict[str, Any]]:
    """A listed stream's status.tags (lightkube's generic resources type `status` loosely)."""
    status: dict[str, Any] = stream.status or {}
    tags: list[dict[str, Any]] = status.get("tags") or []
    return tags


def when(moment: datetime.datetime | None) -> datetime.datetime:
    """An audit timestamp that a completed request always has."""
    assert moment is not None, "an audit event without its timestamps"
    return moment


def proc_status(pid: int, field: str) -> int:
    """A /proc/PID/status field in KiB (VmRSS: resident now, VmHWM: the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mib(pid: int) -> float:
    return proc_status(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    return proc_status(pid, "VmHWM") / 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_process(cluster: LocalCluster, operator: ManagedProcess) -> dict[str, float]:
    """CPU seconds used so far by the cluster's and the registries' processes, the operator and this process (the
    bench itself, and the plain script where it runs)."""
    processes = [*cluster.processes, operator]
    used = {p.name: cpu_seconds(p.pid) for p in processes if p.pid is not None and p.running()}
    used["bench"] = cpu_seconds(os.getpid())
    return used


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> str:
    """The CPU seconds each process used between two `cpu_by_process` readings, most first."""
    spent = sorted(((name, used - before.get(name, 0.0)) for name, used in after.items()), key=lambda item: -item[1])
    return ", ".join(f"{name} {used:.1f}" for name, used in spent)


def wait_until_idle(pid: int, *, window: float = 5.0, busy: float = 0.05, timeout: float = 600.0) -> float:
    """Wait until the process used less than `busy` of a core over `window` seconds; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < busy * window:
            return time.monotonic() - started
    raise SystemExit(f"process {pid} still busy after {timeout:.0f} s")


def wait_for(probe: Callable[[], bool], timeout: float, what: str, poll: float = 0.5) -> float:
    started = time.monotonic()
    while not probe():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - started


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])

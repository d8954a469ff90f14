"""Pods really run on the local cluster's node: images built in-process and pushed to the local registries,
pulled by containerd, run by runc, their output read back with `kubectl logs`. Stopping the node leaves the
machine as it was."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.images import PushClient
from imagestreams.localcluster.node import (
    BRIDGE,
    Node,
    container_inits,
    dedicated_pod_spec,
    message_image,
    mounts_under,
    shims_under,
    sysctl_record,
)
from imagestreams.localcluster.records import reap_orphans
from imagestreams.localcluster.sysctls import KUBELET_SYSCTLS
from tests.conftest import kubectl
from tests.helpers import eventually, pusher_for

POD_TIMEOUT = 60.0


def pod_manifest(namespace: str, name: str, image: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            **dedicated_pod_spec(),
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "app", "image": image}],
            **spec,
        },
    }


def apply(cluster: LocalCluster, manifest: dict[str, Any]) -> None:
    kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=json.dumps(manifest))


def wait_running(cluster: LocalCluster, namespace: str, name: str) -> float:
    """Seconds until the pod is Running; fails early with its container state if it cannot start."""
    started = time.monotonic()
    while time.monotonic() - started < POD_TIMEOUT:
        pod = json.loads(kubectl(cluster, "get", "pod", name, "-n", namespace, "-o", "json"))
        if pod["status"].get("phase") == "Running":
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"pod {namespace}/{name} not Running within {POD_TIMEOUT:.0f}s: {json.dumps(pod['status'])}")


def logs(cluster: LocalCluster, namespace: str, target: str) -> str:
    """The container's output, once there is some (Running means started, not yet printed)."""
    return eventually(lambda: kubectl(cluster, "logs", target, "-n", namespace), 10, f"output from {target}")


def push_message(registry: Registry, node: Node, repository: str, tag: str, message: str) -> str:
    with pusher_for(registry) as client:
        return client.push_image(repository, tag, message_image(node.binaries.pause, message))


def test_a_pod_runs_an_image_from_the_plain_registry(
    cluster: LocalCluster, node: Node, namespace: str, plain_registry: Registry, repository: str
) -> None:
    message = f"hello from {uuid.uuid4()}\n"
    push_message(plain_registry, node, repository, "v1", message)
    image = f"{plain_registry.host}/{repository}:v1"

    apply(cluster, pod_manifest(namespace, "first", image))
    first = wait_running(cluster, namespace, "first")
    assert logs(cluster, namespace, "first") == message
    # The image is now on the node: a second pod only needs a sandbox and a container.
    apply(cluster, pod_manifest(namespace, "second", image))
    second = wait_running(cluster, namespace, "second")
    assert logs(cluster, namespace, "second") == message
    print(f"\npod Running: {first:.2f}s with the image pulled, {second:.2f}s with it cached")
    pod = json.loads(kubectl(cluster, "get", "pod", "first", "-n", namespace, "-o", "json"))
    assert pod["spec"]["nodeName"] == node.name
    assert pod["status"]["podIP"].startswith("10.88.")


def test_a_deployment_rolled_to_a_new_digest_runs_the_new_content(
    cluster: LocalCluster, node: Node, namespace: str, plain_registry: Registry, repository: str
) -> None:
    old, new = f"old {uuid.uuid4()}\n", f"new {uuid.uuid4()}\n"
    old_digest = push_message(plain_registry, node, repository, "latest", old)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {
                    **dedicated_pod_spec(),
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{"name": "app", "image": f"{plain_registry.host}/{repository}@{old_digest}"}],
                },
            },
        },
    }
    apply(cluster, deployment)
    kubectl(cluster, "rollout", "status", "deployment/app", "-n", namespace, "--timeout=60s")
    assert logs(cluster, namespace, "deployment/app") == old

    new_digest = push_message(plain_registry, node, repository, "latest", new)
    assert new_digest != old_digest
    started = time.monotonic()
    kubectl(
        cluster,
        "set",
        "image",
        "deployment/app",
        f"app={plain_registry.host}/{repository}@{new_digest}",
        "-n",
        namespace,
    )
    kubectl(cluster, "rollout", "status", "deployment/app", "-n", namespace, "--timeout=60s")
    print(f"\nrolled out the new digest in {time.monotonic() - started:.2f}s")

    def only_new_pod() -> list[dict[str, Any]] | None:
        pods = json.loads(kubectl(cluster, "get", "pods", "-n", namespace, "-l", "app=app", "-o", "json"))["items"]
        return pods if len(pods) == 1 and pods[0]["status"].get("phase") == "Running" else None

    (pod,) = eventually(only_new_pod, 30, "the old pod to go")
    assert pod["status"]["containerStatuses"][0]["imageID"].endswith(new_digest)
    assert logs(cluster, namespace, pod["metadata"]["name"]) == new


def test_a_pull_secret_opens_the_tls_registry(
    cluster: LocalCluster, node: Node, namespace: str, tls_registry: Registry, repository: str
) -> None:
    message = f"private {uuid.uuid4()}\n"
    push_message(tls_registry, node, repository, "v1", message)
    reader = tls_registry.reader
    assert reader is not None
    kubectl(
        cluster,
        "create",
        "secret",
        "docker-registry",
        "pull",
        "-n",
        namespace,
        f"--docker-server={tls_registry.host}",
        f"--docker-username={reader.username}",
        f"--docker-password={reader.password}",
    )
    image = f"{tls_registry.host}/{repository}:v1"
    apply(cluster, pod_manifest(namespace, "private", image, imagePullSecrets=[{"name": "pull"}]))
    wait_running(cluster, namespace, "private")
    assert logs(cluster, namespace, "private") == message


def test_stopping_the_node_leaves_the_machine_as_it_was(
    cluster: LocalCluster, node: Node, namespace: str, plain_registry: Registry, repository: str
) -> None:
    push_message(plain_registry, node, repository, "v1", "running while the node stops\n")
    apply(cluster, pod_manifest(namespace, "running", f"{plain_registry.host}/{repository}:v1"))
    wait_running(cluster, namespace, "running")
    root = node.paths.root
    originals = sysctl_record().recorded()
    assert originals, "the node records kubelet's sysctls before kubelet starts"
    changed = {name: value for name, value in originals.items() if sysctl_record().read(name) != value}
    containers = container_inits(node.paths.runc_root)
    processes = [p for p in node.processes]
    assert containers and shims_under(root) and mounts_under(root)

    started = time.monotonic()
    node.stop()
    stopped_in = time.monotonic() - started
    try:
        print(f"\nnode stopped in {stopped_in:.2f}s; kubelet had changed {changed or 'no sysctl'}")
        assert {name: sysctl_record().read(name) for name in originals} == originals
        assert not sysctl_record().path.exists()
        assert not any(c.alive() for c in containers), "container processes outlived the node"
        assert not any(p.running() for p in processes)
        assert shims_under(root) == []
        assert mounts_under(root) == []
        assert not Path(f"/sys/class/net/{BRIDGE}").exists()
        assert "NotFound" in kubectl(cluster, "get", "node", node.name, check=False)
        assert not list(Path("/sys/fs/cgroup").glob("*/kubepods"))
    finally:
        node.start()  # for the tests that follow in this session
    assert 0 < node.timings.ready <= node.timings.schedulable


def test_a_node_whose_owner_was_killed_is_cleaned_up_by_the_next_reap(
    cluster: LocalCluster, node: Node, tmp_path: Path
) -> None:
    """containerd's shims detach from it on purpose, so SIGKILL to the owner leaves them and their containers
    running (the kernel stops only the owner's children). The next start or `down` reaps them."""
    node.stop()  # one node per machine: the session's steps aside for this one
    before = {name: sysctl_record().read(name) for name in KUBELET_SYSCTLS}
    workdir, run_dir, output = tmp_path / "cluster", tmp_path / "run", tmp_path / "up.log"
    assert cluster.binaries is not None
    with output.open("wb") as sink:
        owner = subprocess.Popen(
            [sys.executable, "-m", "imagestreams.localcluster", "up", "--node", f"--workdir={workdir}"],
            env={**os.environ, "IMAGESTREAMS_RUN_DIR": str(run_dir), "PYTHONUNBUFFERED": "1"},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        eventually(lambda: "press Ctrl-C" in output.read_text() or owner.poll() is not None, 90, "`up --node`")
        text = output.read_text()
        assert owner.poll() is None, text
        assert "node Ready" in text, text
        host = re.search(r"registry \(plain\): (\S+)", text)
        assert host, text
        with PushClient(f"http://{host[1]}") as client:
            client.push_image("killed/app", "v1", message_image(node.binaries.pause, "still here?\n"))
        kubeconfig = f"--kubeconfig={workdir / 'kubeconfigs' / 'admin.yaml'}"
        pod = pod_manifest("default", "orphan", f"{host[1]}/killed/app:v1")
        del pod["spec"]["schedulerName"], pod["spec"]["tolerations"]  # `up --node` runs every pod
        run = [str(cluster.binaries.kubectl), kubeconfig]
        subprocess.run([*run, "apply", "-f", "-"], input=json.dumps(pod), text=True, check=True, capture_output=True)
        subprocess.run([*run, "wait", "--for=condition=Ready", "pod/orphan", "--timeout=60s"], check=True)

        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=10)
        containers = eventually(lambda: container_inits(workdir / "node" / "runc"), 5, "the pod's containers")
        assert shims_under(workdir), "expected containerd's shims to outlive their owner"

        (reaped,) = reap_orphans(index=run_dir)
        print(f"\nreaped a killed node in {reaped.seconds:.2f}s: {', '.join(reaped.stopped)}")
        assert not any(c.alive() for c in containers)
        assert shims_under(workdir) == []
        assert mounts_under(workdir) == []
        assert not Path(f"/sys/class/net/{BRIDGE}").exists()
        assert {name: sysctl_record().read(name) for name in KUBELET_SYSCTLS} == before
        assert not sysctl_record().path.exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(owner.pid, signal.SIGKILL)
        owner.wait()
        reap_orphans(index=run_dir)
        node.start()

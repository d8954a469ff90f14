"""Self-healing figures of issue 8, on the real local cluster with the operator as its own process:

1. writes after a restart (counted in the apiserver's audit log, Events included), with 20 streams and 20
   triggered Deployments in place;
2. after a 35 s API server outage during which a scheduled check found a new image (its status write
   failing), the time from the API server being ready until the Deployments run the new image;
3. the operator's log lines during a 60 s outage (not verbose).

    .venv/bin/python bench/self_healing.py
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from imagestreams.localcluster import ClusterSettings, LocalCluster, RegistryKind
from imagestreams.localcluster.images import PushClient, unique_image
from imagestreams.localcluster.processes import ManagedProcess

NAMESPACE = "bench"
COUNT = 20
REPO = Path(__file__).resolve().parents[1]


def kubectl(cluster: LocalCluster, *args: str, stdin: str | None = None) -> str:
    assert cluster.binaries is not None
    command = [str(cluster.binaries.kubectl), f"--kubeconfig={cluster.admin_kubeconfig}", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, check=True).stdout


def start_operator(cluster: LocalCluster, name: str, interval: int) -> ManagedProcess:
    settings = {"IMAGESTREAMS_SCHEDULED_INTERVAL_SECONDS": str(interval), "IMAGESTREAMS_NAMESPACES": NAMESPACE}
    return cluster.start_operator(settings, name)


def images(cluster: LocalCluster) -> set[str]:
    items = json.loads(kubectl(cluster, "get", "deployments", "-n", NAMESPACE, "-o", "json"))["items"]
    return {item["spec"]["template"]["spec"]["containers"][0]["image"] for item in items}


def wait_for(probe: object, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not probe():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def setup(cluster: LocalCluster, push: PushClient, host: str) -> str:
    kubectl(cluster, "apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    kubectl(cluster, "create", "namespace", NAMESPACE)
    digest = push.push_image("bench/app", "v1", unique_image("first"))
    documents = []
    for number in range(COUNT):
        tag = {"name": "v1", "from": {"kind": "DockerImage", "name": f"{host}/bench/app:v1"},
               "importPolicy": {"insecure": True, "scheduled": True}}  # fmt: skip
        metadata = {"name": f"s{number}", "namespace": NAMESPACE}
        documents.append({"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": metadata,
                          "spec": {"tags": [tag]}})  # fmt: skip
        trigger = [{"from": {"kind": "ImageStreamTag", "name": f"s{number}:v1"},
                    "fieldPath": 'spec.template.spec.containers[?(@.name=="m")].image'}]  # fmt: skip
        documents.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"d{number}", "namespace": NAMESPACE,
                         "annotations": {"image.openshift.io/triggers": json.dumps(trigger)}},
            "spec": {"selector": {"matchLabels": {"app": f"d{number}"}},
                     "template": {"metadata": {"labels": {"app": f"d{number}"}},
                                  "spec": {"containers": [{"name": "m", "image": "placeholder:0"}]}}},
        })  # fmt: skip
    kubectl(cluster, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
    return digest


def operator_writes(cluster: LocalCluster, since: int) -> int:
    others = ("kubectl/", "kube-controller-manager/")
    return sum(1 for w in cluster.audit.writes(since, namespace=NAMESPACE) if not w.user_agent.startswith(others))


def main() -> None:
    with LocalCluster(ClusterSettings(registries=(RegistryKind.PLAIN,))) as cluster:
        registry = cluster.registries[RegistryKind.PLAIN]
        with PushClient(registry.url) as push:
            first = setup(cluster, push, registry.host)
            operator = start_operator(cluster, "operator-1", interval=20)
            wanted = f"{registry.host}/bench/app@{first}"
            wait_for(lambda: images(cluster) == {wanted}, 120, "every Deployment to follow its stream")
            operator.stop()

            mark = cluster.audit.mark()
            operator = start_operator(cluster, "operator-2", interval=20)
            time.sleep(10)
            print(f"writes in the 10 s after a restart ({COUNT} streams, {COUNT} Deployments): "
                  f"{operator_writes(cluster, mark)}")  # fmt: skip

            second = push.push_image("bench/app", "v1", unique_image("second"))
            wanted = f"{registry.host}/bench/app@{second}"
            lines = len(operator.log_path.read_text().splitlines())
            with cluster.apiserver_down():
                time.sleep(35)  # the scheduled checks (every 20 s) find the new image and cannot write it
            seconds = wait_for(lambda: images(cluster) == {wanted}, 120, "every Deployment to follow the new image")
            print(f"35 s outage: API server ready -> all {COUNT} Deployments on the new image: {seconds:.2f} s")
            print(f"  log lines during that outage and recovery: "
                  f"{len(operator.log_path.read_text().splitlines()) - lines}")  # fmt: skip

            lines = len(operator.log_path.read_text().splitlines())
            with cluster.apiserver_down():
                time.sleep(60)
            time.sleep(5)
            during = operator.log_path.read_text().splitlines()[lines:]
            print(f"60 s outage, nothing to write: {len(during)} log lines, "
                  f"{sum('Traceback' in line for line in during)} tracebacks")  # fmt: skip
            if os.environ.get("BENCH_SHOW_LOG"):
                print("\n".join(during))
            operator.stop()


if __name__ == "__main__":
    main()

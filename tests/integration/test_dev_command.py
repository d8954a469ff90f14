"""`make dev`'s command starts everything, applies manifests, and cleans up on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from tests.helpers import eventually

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: applied-by-dev
  namespace: default
data:
  hello: world
"""


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The operator names the work directory only in its environment (KUBECONFIG).
                seen = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            except OSError:
                continue
            if text.encode() in seen:
                found.append(int(entry.name))
    return found


def walk_through_on_the_node(kubectl: str, kubeconfig: str, registry: str, printed: str) -> None:
    """The README's walk-through with the node: a Deployment that follows the tag runs its image, and a new image
    under the tag rolls it to a pod that logs the new text."""
    assert "kubectl create deployment web -n demo --image=placeholder" in printed
    plugin = str(Path(sys.executable).parent / "kubectl-imagestream")

    def run(*args: str) -> str:
        done = subprocess.run(
            [kubectl, f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True, check=False
        )
        return done.stdout if done.returncode == 0 else ""

    run("create", "deployment", "web", "-n", "demo", "--image=placeholder")
    subprocess.run(
        [plugin, f"--kubeconfig={kubeconfig}", "set-triggers", "deployment/web", "-n", "demo",
         "--from-image=hello:latest", "-c", "placeholder"],
        check=True, capture_output=True,
    )  # fmt: skip

    def logs_show(text: str) -> bool:
        return text in run("logs", "deployment/web", "-n", "demo")

    # Both pushed images are in the registry; the stream now points at the one this test pushed ("walk-through").
    eventually(lambda: logs_show("walk-through") or None, timeout=60, what="the web pod to log the pushed image's text")
    pushed = subprocess.run(
        [sys.executable, "-m", "imagestreams.localcluster", "push", f"http://{registry}/demo/hello:latest",
         "--label", "version 3"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert " as sha256:" in pushed
    run("annotate", "is/hello", "-n", "demo", "imagestreams.dev/import-request=walk-through-2", "--overwrite")
    eventually(lambda: logs_show("version 3") or None, timeout=60, what="the Deployment to roll to version 3")
    running = run("get", "pods", "-n", "demo", "-l", "app=web", "--field-selector=status.phase=Running", "-o", "name")
    assert running.strip(), "no web pod is running"


def test_up_serves_until_ctrl_c_then_stops_every_process(tmp_path: Path) -> None:
    workdir, manifests = tmp_path / "cluster", tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "configmap.yaml").write_text(CONFIGMAP)
    crds = Path(__file__).resolve().parents[2] / "crds"
    # What `make dev` runs, plus one extra manifest directory.
    command = [
        sys.executable,
        "-m",
        "imagestreams.localcluster",
        "up",
        f"--workdir={workdir}",
        f"--apply={crds}",
        f"--apply={manifests}",
        "--node",
        "--operator",
        "--demo",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "press Ctrl-C" in line:
                break
        text = "".join(output)
        assert "press Ctrl-C" in text, text
        kubeconfig = next(line.split("=", 1)[1].strip() for line in output if "KUBECONFIG=" in line)
        registry = next(line.split()[2] for line in output if line.strip().startswith("registry (plain)"))

        kubectl = next(line.split()[1] for line in output if line.strip().startswith("kubectl:"))
        got = subprocess.run(
            [kubectl, f"--kubeconfig={kubeconfig}", "get", "configmap", "applied-by-dev", "-o=jsonpath={.data.hello}"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert got.stdout == "world"
        assert "demo: imagestream demo/hello imported" in text
        assert "node:" in text
        # The printed walk-through works: push, request an import, see the new digest.
        pushed = subprocess.run(
            [
                sys.executable,
                "-m",
                "imagestreams.localcluster",
                "push",
                f"http://{registry}/demo/hello:latest",
                "--label",
                "walk-through",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        digest = pushed.split(" as ")[1].strip()
        subprocess.run(
            [
                kubectl,
                f"--kubeconfig={kubeconfig}",
                "annotate",
                "is/hello",
                "-n",
                "demo",
                "imagestreams.dev/import-request=test",
                "--overwrite",
            ],
            check=True,
            capture_output=True,
        )

        def imported() -> bool:
            current = subprocess.run(
                [
                    kubectl,
                    f"--kubeconfig={kubeconfig}",
                    "get",
                    "is/hello",
                    "-n",
                    "demo",
                    "-o=jsonpath={.status.tags[0].items[0].image}",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            return current == digest

        eventually(imported, timeout=30, what="the demo stream to import the pushed image")
        walk_through_on_the_node(kubectl, kubeconfig, registry, text)
        # This command, etcd, apiserver, controller-manager, registry, the operator, containerd, kubelet, scheduler.
        assert len(_processes_mentioning(str(workdir))) >= 9

        process.send_signal(signal.SIGINT)
        remaining, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, remaining
    assert "stopped in" in remaining
    assert _processes_mentioning(str(workdir)) == []
    try:
        httpx2.get(f"http://{registry}/v2/", timeout=1)
        still_serving = True
    except httpx2.TransportError:
        still_serving = False
    assert not still_serving

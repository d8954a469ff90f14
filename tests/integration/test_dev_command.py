"""`make dev`'s command starts everything, applies manifests, and cleans up on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from imagestreams.localcluster.images import PushClient, unique_image

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
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def test_up_serves_until_ctrl_c_then_stops_every_process(tmp_path: Path) -> None:
    workdir, manifests = tmp_path / "cluster", tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "configmap.yaml").write_text(CONFIGMAP)
    command = [sys.executable, "-m", "imagestreams.localcluster", "up", f"--workdir={workdir}", f"--apply={manifests}"]
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
        deadline = time.monotonic() + 90
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
        with PushClient(f"http://{registry}") as client:
            image = unique_image("dev")
            assert client.push_image("demo/app", "v1", image) == image.digest
        assert len(_processes_mentioning(str(workdir))) >= 3  # etcd, apiserver, controller-manager, registry

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

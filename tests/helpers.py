"""Small helpers for tests: polling and registry clients."""

from __future__ import annotations

import os
import signal
import ssl
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Self, TypeVar

from lightkube import KubeConfig
from lightkube.config.kubeconfig import SingleConfig

from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.audit import AuditedWrite
from imagestreams.localcluster.images import PushClient
from imagestreams.localcluster.processes import ManagedProcess
from imagestreams.localcluster.records import ProcessRecord

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def pusher_for(registry: Registry) -> PushClient:
    """A push client with the registry's push credentials (none for the plain registry)."""
    credentials = registry.pusher
    return PushClient(
        registry.url,
        ca_file=registry.ca_file,
        username=credentials.username if credentials else None,
        password=credentials.password if credentials else None,
    )


def kube_config(kubeconfig: Path) -> SingleConfig:
    """The current context of a kubeconfig the harness wrote."""
    config = KubeConfig.from_file(kubeconfig).get()
    assert config is not None, kubeconfig
    return config


def cluster_tls(cluster: LocalCluster, *, admin: bool = False) -> ssl.SSLContext:
    """A TLS context that trusts the cluster CA, presenting the admin client certificate if asked."""
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    if admin:
        pki = cluster.workdir / "pki"
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


class OperatorProcess:
    """The operator as its own process, as it runs in a cluster: `python -m imagestreams.controller`.

    It dies with the test run however that ends (processes.spawn), and is recorded with the
    cluster whose work directory holds its kubeconfig, so a later run can reap it if it survived.
    """

    def __init__(
        self, kubeconfig: Path, log_dir: Path, env: dict[str, str] | None = None, *, verbose: bool = True
    ) -> None:
        self.kubeconfig = kubeconfig
        self.name = f"operator-{uuid.uuid4().hex[:6]}"
        self.log_path = log_dir / f"{self.name}.log"
        self.env = env or {}
        self.command = [sys.executable, "-m", "imagestreams.controller", *(["--verbose"] if verbose else [])]
        self._log_dir = log_dir
        self._process: ManagedProcess | None = None

    def start(self, ready: str = "image stream operator started") -> Self:
        """Start it and wait until its log shows `ready`."""
        self._process = ManagedProcess(
            self.name,
            self.command,
            self._log_dir,
            env={"KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1", **self.env},
            record=ProcessRecord.enclosing(self.kubeconfig),
        )
        self._process.start()
        eventually(lambda: ready in self.log(), timeout=30, what=f"the operator to log {ready!r}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(grace=15)

    def kill(self) -> None:
        """SIGKILL its process group: no clean-up, no graceful end of requests in flight; then reap it."""
        assert self._process is not None and self._process.pid is not None and self._process.running()
        os.killpg(self._process.pid, signal.SIGKILL)
        self.stop()


def operator_writes(cluster: LocalCluster, since: int, namespace: str) -> list[AuditedWrite]:
    """Writes in `namespace` after audit mark `since` by anyone but kubectl and the controller manager
    (the tests' own kubectl and kube-controller-manager share the operator's admin identity)."""
    others = ("kubectl/", "kube-controller-manager/")
    return [w for w in cluster.audit.writes(since, namespace=namespace) if not w.user_agent.startswith(others)]

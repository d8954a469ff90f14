"""The whole local cluster: control plane plus registries (and optionally a node), started and stopped as one."""

from __future__ import annotations

import atexit
import contextlib
import json
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from imagestreams.localcluster import controlplane
from imagestreams.localcluster.audit import AuditLog
from imagestreams.localcluster.binaries import Binaries, NodeBinaries
from imagestreams.localcluster.certs import KeyPair, loopback_server_pair
from imagestreams.localcluster.controlplane import AdminHTTP, ControlPlaneCertificates
from imagestreams.localcluster.node import Node
from imagestreams.localcluster.processes import ManagedProcess, ProcessFailed
from imagestreams.localcluster.records import ProcessRecord, Reaped, reap, reap_orphans
from imagestreams.localcluster.registry import Registry, RegistryKind, start_registry

ALL_REGISTRIES = (RegistryKind.PLAIN, RegistryKind.TLS_BASIC, RegistryKind.TOKEN)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass
class ClusterSettings:
    workdir: Path | None = None  # default: a fresh temporary directory, removed on stop
    registries: tuple[RegistryKind, ...] = ALL_REGISTRIES
    controller_manager: bool = True
    keep_workdir: bool = False
    # containerd, kubelet and kube-scheduler too, so pods run (node.py); start_node() adds one later.
    node: bool = False


@dataclass
class StartupTimings:
    etcd: float = 0.0
    apiserver: float = 0.0
    controller_manager: float = 0.0
    registries: float = 0.0
    node: float = 0.0  # from the control plane being ready until the node is Ready and schedulable (0: no node)
    total: float = 0.0

    def summary(self) -> str:
        node = f", node Ready and schedulable {self.node:.2f}s after the control plane" if self.node else ""
        return (
            f"ready in {self.total:.1f}s (etcd {self.etcd:.1f}s, apiserver {self.apiserver:.1f}s, "
            f"controller-manager {self.controller_manager:.1f}s, registries {self.registries:.2f}s{node})"
        )


@dataclass
class LocalCluster:
    """etcd, kube-apiserver, kube-controller-manager and registries on 127.0.0.1.

    Use as a context manager, or call start() and stop(). Processes are stopped in
    reverse start order, also at interpreter exit if stop() was never reached. If this
    process dies without stopping them (SIGKILL), the kernel kills them (see processes.spawn);
    the work directory's processes.json lets a later start, or `imagestreams-localcluster down`,
    stop anything that still survived.
    """

    settings: ClusterSettings = field(default_factory=ClusterSettings)
    binaries: Binaries | None = None
    timings: StartupTimings = field(default_factory=StartupTimings)
    registries: dict[RegistryKind, Registry] = field(default_factory=dict)
    server: str = ""
    # etcd's client URL (plain HTTP on loopback): tests change what the apiserver stores behind its back with it.
    etcd_url: str = ""
    workdir: Path = Path()
    admin_kubeconfig: Path = Path()
    _processes: list[ManagedProcess] = field(default_factory=list)
    _extra_registries: list[Registry] = field(default_factory=list)
    _certs: ControlPlaneCertificates | None = None
    _admin: AdminHTTP | None = None
    node: Node | None = None
    record: ProcessRecord | None = None
    reaped: list[Reaped] = field(default_factory=list)  # leftovers of dead clusters stopped by start()
    _made_workdir: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> LocalCluster:
        started = time.monotonic()
        binaries = self.binaries = self.binaries or Binaries.locate()
        if self.settings.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="imagestreams-cluster-"))
            self._made_workdir = True
        else:
            self.workdir = self.settings.workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._reap_workdir(self.workdir)
        self.reaped.extend(reap_orphans())
        for sub in ("logs", "pki", "kubeconfigs"):
            (self.workdir / sub).mkdir(exist_ok=True)
        self.record = ProcessRecord.create(self.workdir, temporary_workdir=self._made_workdir)
        atexit.register(self.stop)
        try:
            self._start(binaries, started)
        except BaseException:
            self.stop()
            raise
        return self

    def _reap_workdir(self, workdir: Path) -> None:
        """A work directory given again: refuse it while its owner runs, else stop what it left behind."""
        earlier = ProcessRecord.read(workdir)
        if earlier is None:
            return
        if earlier.owner.alive():
            raise ProcessFailed(
                f"{workdir} belongs to a running cluster (pid {earlier.owner.pid}); "
                "stop it first, e.g. with `imagestreams-localcluster down --workdir`"
            )
        self.reaped.append(reap(earlier))

    def _start(self, binaries: Binaries, started: float) -> None:
        certs = self._certs = ControlPlaneCertificates.create()
        record = self.record
        etcd, etcd_url = controlplane.start_etcd(binaries.etcd, self.workdir, record)
        self.etcd_url = etcd_url
        self._processes.append(etcd)

        # Registries need nothing from the control plane: bring them up while etcd and the apiserver start.
        def start_registries() -> dict[RegistryKind, Registry]:
            t0 = time.monotonic()
            running = {
                kind: start_registry(kind, self.workdir, binaries.docker_registry, certs.serving_ca, record=record)
                for kind in self.settings.registries
            }
            self.timings.registries = time.monotonic() - t0
            return running

        with ThreadPoolExecutor(max_workers=1) as pool:
            registries_future = pool.submit(start_registries)
            t0 = time.monotonic()
            controlplane.wait_etcd(etcd, etcd_url)
            self.timings.etcd = time.monotonic() - t0

            t0 = time.monotonic()
            apiserver, self.server = controlplane.start_apiserver(
                binaries.kube_apiserver, self.workdir, certs, etcd_url, record
            )
            self._processes.append(apiserver)
            self._admin = AdminHTTP(self.server, self.workdir / "pki", certs)
            self.admin_kubeconfig = controlplane.write_kubeconfig(
                self.workdir / "kubeconfigs" / "admin.yaml",
                controlplane.kubeconfig(
                    self.server, certs.serving_ca.cert_pem, "imagestreams-admin", client=certs.admin
                ),
            )
            try:
                controlplane.wait_apiserver(apiserver, self._admin)
            finally:
                # Registries started in the thread must be recorded even if the apiserver failed.
                self.registries = registries_future.result()
            self.timings.apiserver = time.monotonic() - t0

        if self.settings.controller_manager:
            t0 = time.monotonic()
            kcm = controlplane.start_controller_manager(
                binaries.kube_controller_manager, self.workdir, self.admin_kubeconfig, record
            )
            self._processes.append(kcm)
            controlplane.wait_controller_manager(kcm, self._admin)
            self.timings.controller_manager = time.monotonic() - t0
        if self.settings.node:
            self.start_node()
        self.timings.total = time.monotonic() - started

    def start_node(self, binaries: NodeBinaries | None = None, *, dedicated: bool = False) -> Node:
        """Start containerd, kubelet and kube-scheduler (once) and wait until the node is Ready; stopped with the
        cluster. Needs the controller manager (its node-lifecycle controller lifts the not-ready taint).

        A `dedicated` node runs only pods with node.dedicated_pod_spec(); others stay Pending as without a node.
        """
        assert self._admin is not None and self._certs is not None, "start the cluster first"
        with self._lock:
            if self.node is not None:
                return self.node
            if RegistryKind.PLAIN not in self.registries:  # the sandbox image needs a plain registry
                self._extra_registries.append(
                    start_registry(
                        RegistryKind.PLAIN,
                        self.workdir,
                        self._binaries().docker_registry,
                        self._certs.serving_ca,
                        record=self.record,
                    )
                )
            node = Node(
                binaries or NodeBinaries.locate(),
                self.workdir,
                self._admin,
                self.admin_kubeconfig,
                self.workdir / "pki" / "client-ca.crt",
                [*self.registries.values(), *self._extra_registries],
                record=self.record,
                dedicated=dedicated,
            )
            node.start()
            self.node = node
            self.timings.node = node.timings.schedulable
            return node

    def stop_node(self) -> None:
        """Stop the node (if one runs) and keep the rest of the cluster: the node is one per machine, so a test
        module that used one gives it back for others (`up --node` in a test) to start their own."""
        with self._lock:
            if self.node is not None:
                self.node.stop()
                self.node = None
                self.timings.node = 0.0

    def _binaries(self) -> Binaries:
        assert self.binaries is not None, "start the cluster first"
        return self.binaries

    def stop(self) -> None:
        """Stop everything this cluster started, newest first. Safe to call more than once.

        A second Ctrl-C, SIGTERM or SIGHUP during the stop does not cut it short.
        """
        with self._lock, _signals_held():
            if self.node is not None:  # first: it drains its pods through the apiserver
                self.node.stop()
                self.node = None
            registries = [*self._extra_registries, *reversed(self.registries.values())]
            self._extra_registries.clear()
            self.registries = {}
            for registry in registries:
                registry.stop()
            while self._processes:
                self._processes.pop().stop()
            if self.record is not None:
                # Processes started for the cluster by others (an operator) and not stopped by them.
                reap(self.record)
                self.record.close()
                self.record = None
            if self._made_workdir and not self.settings.keep_workdir and self.workdir.exists():
                shutil.rmtree(self.workdir, ignore_errors=True)
                self._made_workdir = False
            atexit.unregister(self.stop)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def processes(self) -> list[ManagedProcess]:
        """The control-plane processes and every registry's processes, in start order."""
        registry_processes = [p for r in (*self.registries.values(), *self._extra_registries) for p in r.processes]
        node_processes = self.node.processes if self.node is not None else []
        return [*self._processes, *registry_processes, *node_processes]

    def start_operator(self, settings: dict[str, str], name: str = "imagestream-operator") -> ManagedProcess:
        """The operator as its own process against this cluster, as admin: recorded with the cluster, trusting its
        CA, allowed its loopback registries; `settings` are IMAGESTREAMS_* variables. Returns once it started."""
        assert self.binaries is not None, "start the cluster first"
        operator = ManagedProcess(
            name,
            [sys.executable, "-m", "imagestreams.controller"],
            self.workdir / "logs",
            record=self.record,
            env={
                "KUBECONFIG": str(self.admin_kubeconfig),
                "IMAGESTREAMS_EXTRA_CA_FILE": str(self.ca_file),
                # The local registries listen on 127.0.0.1, which the operator refuses by default.
                "IMAGESTREAMS_LOOPBACK_REGISTRIES": "true",
                "PYTHONUNBUFFERED": "1",
                **settings,
            },
        )
        operator.start()
        operator.wait_until(
            lambda: "image stream operator started" in operator.log_path.read_text(errors="replace"),
            60,
            "the operator to start",
        )
        return operator

    @contextlib.contextmanager
    def apiserver_down(self) -> Iterator[None]:
        """Stop kube-apiserver for the body of the `with`, then start it again on the same address and wait
        until it is ready: an outage as clients see it (etcd and everything else keep running).

        The controller manager is restarted afterwards: its informers come back from an outage with a
        backoff of up to half a minute, and later tests need its Deployments and Jobs to move at once.
        """
        assert self._admin is not None, "start the cluster first"
        apiserver = next(p for p in self._processes if p.name == "kube-apiserver")
        apiserver.stop()
        try:
            yield
        finally:
            apiserver.start()
            controlplane.wait_apiserver(apiserver, self._admin)
            for process in self._processes:
                if process.name == "kube-controller-manager":
                    process.stop()
                    process.start()
                    controlplane.wait_controller_manager(process, self._admin)

    @property
    def audit(self) -> AuditLog:
        """The apiserver's audit log of every write (verb, resource, object, user, user agent, code)."""
        return AuditLog(self.workdir / "logs" / controlplane.AUDIT_LOG)

    @property
    def ca_file(self) -> Path:
        """The CA that signed the apiserver's and the TLS registry's serving certificates."""
        return self.workdir / "pki" / "ca.crt"

    # --- extra registries ------------------------------------------------------------

    def add_registry(self, kind: RegistryKind, notifications_url: str | None = None) -> Registry:
        """Start another registry of `kind`, e.g. one that posts push notifications; stopped with the cluster."""
        assert self.binaries and self._certs, "start the cluster first"
        binary, ca = self.binaries.docker_registry, self._certs.serving_ca
        registry = start_registry(kind, self.workdir, binary, ca, notifications_url, record=self.record)
        with self._lock:
            self._extra_registries.append(registry)
            if self.node is not None:
                self.node.trust_registry(registry)
        return registry

    def issue_loopback_certificate(self, name: str) -> KeyPair:
        """A serving certificate for 127.0.0.1 from the cluster CA, e.g. for an admission webhook server."""
        assert self._certs, "start the cluster first"
        return loopback_server_pair(self._certs.serving_ca, name)

    # --- identities --------------------------------------------------------------------

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for a client-certificate user (CN=user, O=groups) with no rights until RBAC grants some."""
        if not _NAME.match(user):
            raise ValueError(f"user name {user!r} must be a lowercase DNS-style name")
        assert self._certs
        pair = self._certs.client_ca.issue(user, organizations=groups, client=True)
        return controlplane.write_kubeconfig(
            self.workdir / "kubeconfigs" / f"user-{user}.yaml",
            controlplane.kubeconfig(self.server, self._certs.serving_ca.cert_pem, user, client=pair),
        )

    def service_account_token(self, namespace: str, name: str, expiration_seconds: int = 3600) -> str:
        """A bound token for a ServiceAccount, from the TokenRequest API."""
        assert self._admin
        status, body = self._admin.post_json(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
        )
        if status != 201:
            raise RuntimeError(f"TokenRequest for {namespace}/{name} failed with {status}: {json.dumps(body)}")
        token: str = body["status"]["token"]
        return token

    def service_account_kubeconfig(self, namespace: str, name: str, expiration_seconds: int = 3600) -> Path:
        """A kubeconfig that authenticates as system:serviceaccount:<namespace>:<name>."""
        assert self._certs
        token = self.service_account_token(namespace, name, expiration_seconds)
        return controlplane.write_kubeconfig(
            self.workdir / "kubeconfigs" / f"sa-{namespace}-{name}.yaml",
            controlplane.kubeconfig(
                self.server,
                self._certs.serving_ca.cert_pem,
                f"{namespace}-{name}",
                token=token,
                namespace=namespace,
            ),
        )

    def describe(self) -> dict[str, Any]:
        """Addresses and files a human or a script needs to use the cluster."""
        return {
            "kubeconfig": str(self.admin_kubeconfig),
            "server": self.server,
            "workdir": str(self.workdir),
            "logs": str(self.workdir / "logs"),
            "registries": {
                kind.value: {
                    "host": registry.host,
                    "url": registry.url,
                    "ca_file": str(registry.ca_file) if registry.ca_file else None,
                }
                for kind, registry in self.registries.items()
            },
        }


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ignore the stop signals while stopping (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in _STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

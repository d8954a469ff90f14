"""etcd, kube-apiserver and kube-controller-manager on loopback, started the envtest way."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imagestreams.localcluster.certs import CertificateAuthority, KeyPair, loopback_server_pair, signing_key_pair
from imagestreams.localcluster.processes import ManagedProcess, free_port
from imagestreams.localcluster.records import ProcessRecord

ETCD_READY_TIMEOUT = 30.0
APISERVER_READY_TIMEOUT = 60.0
CONTROLLER_MANAGER_READY_TIMEOUT = 60.0

# The controllers that make workloads, namespaces, service accounts and ownership behave as in a real
# cluster. Without a node (node.py), pods stay Pending; nothing else here needs them to run. The
# node-lifecycle controller lifts the not-ready taint a kubelet registers its node with, once it is Ready.
# The endpointslice controller lists a Service's ready pods, which is where the API server sends the calls of a
# webhook behind a Service (the operator installed with its chart on the node).
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "node-lifecycle-controller",
    "endpointslice-controller",
)


@dataclass(frozen=True)
class ControlPlaneCertificates:
    """Everything the apiserver and its clients need to trust each other."""

    serving_ca: CertificateAuthority
    client_ca: CertificateAuthority
    serving: KeyPair
    admin: KeyPair
    kubelet_client: KeyPair  # the apiserver's identity towards kubelets (logs, exec)
    service_account_key: bytes
    service_account_public: bytes

    @classmethod
    def create(cls) -> ControlPlaneCertificates:
        serving_ca = CertificateAuthority("imagestreams-local-ca")
        client_ca = CertificateAuthority("imagestreams-local-client-ca")
        key, public = signing_key_pair()
        return cls(
            serving_ca=serving_ca,
            client_ca=client_ca,
            serving=loopback_server_pair(serving_ca, "kube-apiserver"),
            admin=client_ca.issue("imagestreams-admin", organizations=("system:masters",), client=True),
            kubelet_client=client_ca.issue(
                "kube-apiserver-kubelet-client", organizations=("system:masters",), client=True
            ),
            service_account_key=key,
            service_account_public=public,
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    server: str,
    ca_pem: bytes,
    user: str,
    *,
    client: KeyPair | None = None,
    token: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """A self-contained kubeconfig (certificates embedded) for one identity."""
    credentials: dict[str, str] = {}
    if client:
        credentials = {
            "client-certificate-data": _b64(client.cert),
            "client-key-data": _b64(client.key),
        }
    elif token:
        credentials = {"token": token}
    context: dict[str, str] = {"cluster": "imagestreams-local", "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "imagestreams-local", "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": context}],
        "current-context": user,
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


class AdminHTTP:
    """A tiny stdlib client for the admin identity, enough for readiness checks before any real client."""

    def __init__(self, server: str, certs_dir: Path, certs: ControlPlaneCertificates) -> None:
        self.server = server
        ca = certs_dir / "ca.crt"
        cert, key = certs.admin.write(certs_dir, "admin")
        self._context = ssl.create_default_context(cafile=str(ca))
        self._context.load_cert_chain(str(cert), str(key))

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"{self.server}{path}", timeout=5, context=self._context) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def send(
        self, method: str, path: str, body: dict[str, Any] | None = None, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        """Any other request (DELETE, PATCH, ...), with an optional JSON body; returns status and raw body."""
        request = urllib.request.Request(
            f"{self.server}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=self._context) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{self.server}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=self._context) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


AUDIT_LOG = "kube-apiserver-audit.log"
WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"]
# Pods of this RuntimeClass are exempt from Pod Security admission. Only the harness uses it: a pod that must reach
# the loopback apiserver needs hostNetwork, which no Pod Security level but privileged allows, so the end-to-end
# test installs the chart into a namespace that enforces `restricted` and exempts the operator pod this way (and
# checks separately that the chart's normal pod passes `restricted`).
HOST_NETWORK_RUNTIME_CLASS = "imagestreams-harness-host-network"
ADMISSION_CONFIG = {
    "apiVersion": "apiserver.config.k8s.io/v1",
    "kind": "AdmissionConfiguration",
    "plugins": [
        {
            "name": "PodSecurity",
            "configuration": {
                "apiVersion": "pod-security.admission.config.k8s.io/v1",
                "kind": "PodSecurityConfiguration",
                "defaults": {"enforce": "privileged", "audit": "privileged", "warn": "privileged"},
                "exemptions": {"runtimeClasses": [HOST_NETWORK_RUNTIME_CLASS]},
            },
        }
    ],
}

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "verbs": WRITE_VERBS}, {"level": "None"}],
}


def start_etcd(binary: Path, workdir: Path, record: ProcessRecord | None = None) -> tuple[ManagedProcess, str]:
    client_port, peer_port = free_port(), free_port()
    client_url, peer_url = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    process = ManagedProcess(
        "etcd",
        [
            str(binary),
            "--name=local",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=local={peer_url}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync",  # test data: durability is not worth the fsync latency
            "--logger=zap",
            "--log-level=warn",
        ],
        workdir / "logs",
        record=record,
    )
    process.start()
    return process, client_url


def wait_etcd(process: ManagedProcess, client_url: str) -> None:
    def healthy() -> bool:
        with urllib.request.urlopen(f"{client_url}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")

    process.wait_until(healthy, ETCD_READY_TIMEOUT, "etcd /health")


def start_apiserver(
    binary: Path, workdir: Path, certs: ControlPlaneCertificates, etcd_url: str, record: ProcessRecord | None = None
) -> tuple[ManagedProcess, str]:
    port = free_port()
    server = f"https://127.0.0.1:{port}"
    pki = workdir / "pki"
    serving_cert, serving_key = certs.serving.write(pki, "apiserver")
    (pki / "ca.crt").write_bytes(certs.serving_ca.cert_pem)
    client_ca = pki / "client-ca.crt"
    client_ca.write_bytes(certs.client_ca.cert_pem)
    sa_key, sa_pub = pki / "sa.key", pki / "sa.pub"
    sa_key.write_bytes(certs.service_account_key)
    sa_key.chmod(0o600)
    sa_pub.write_bytes(certs.service_account_public)
    kubelet_cert, kubelet_key = certs.kubelet_client.write(pki, "apiserver-kubelet-client")
    audit_policy = workdir / "audit-policy.yaml"
    audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    admission_config = workdir / "admission-config.yaml"
    admission_config.write_text(yaml.safe_dump(ADMISSION_CONFIG))
    process = ManagedProcess(
        "kube-apiserver",
        [
            str(binary),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={serving_cert}",
            f"--tls-private-key-file={serving_key}",
            f"--client-ca-file={client_ca}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={server}",
            f"--service-account-key-file={sa_pub}",
            f"--service-account-signing-key-file={sa_key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            # Towards a kubelet (node.py) for logs and exec: a client certificate it trusts and authorizes.
            f"--kubelet-client-certificate={kubelet_cert}",
            f"--kubelet-client-key={kubelet_key}",
            # No Endpoints object for a loopback apiserver address, and no APF background traffic.
            "--endpoint-reconciler-type=none",
            # There is no kube-proxy: a webhook behind a Service is called at one of the Service's EndpointSlice
            # addresses (a ready pod's IP) rather than at its cluster IP, which nothing routes
            # (cmd/kube-apiserver/app/server.go buildServiceResolver: NewEndpointServiceResolver).
            "--enable-aggregator-routing=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            f"--admission-control-config-file={admission_config}",
            # Every write, as JSON lines: tests count the operator's writes here, not in its own log.
            f"--audit-policy-file={audit_policy}",
            f"--audit-log-path={workdir / 'logs' / AUDIT_LOG}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--v=1",
        ],
        workdir / "logs",
        record=record,
    )
    process.start()
    return process, server


def wait_apiserver(process: ManagedProcess, admin: AdminHTTP) -> None:
    process.wait_until(lambda: admin.get("/readyz")[0] == 200, APISERVER_READY_TIMEOUT, "/readyz returning 200")


def start_controller_manager(
    binary: Path, workdir: Path, admin_kubeconfig: Path, record: ProcessRecord | None = None
) -> ManagedProcess:
    pki = workdir / "pki"
    process = ManagedProcess(
        "kube-controller-manager",
        [
            str(binary),
            f"--kubeconfig={admin_kubeconfig}",
            f"--authentication-kubeconfig={admin_kubeconfig}",
            f"--authorization-kubeconfig={admin_kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=false",
            # Namespaces in tests come and go quickly; sync them often.
            "--concurrent-namespace-syncs=5",
            "--v=1",
        ],
        workdir / "logs",
        record=record,
    )
    process.start()
    return process


def wait_controller_manager(process: ManagedProcess, admin: AdminHTTP) -> None:
    """Ready when the serviceaccount controller has made the default ServiceAccount in `default`."""
    process.wait_until(
        lambda: admin.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
        CONTROLLER_MANAGER_READY_TIMEOUT,
        "the default ServiceAccount created by its controller",
    )

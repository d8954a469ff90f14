"""Kubeconfigs as real clusters write them, against the real local apiserver.

Exec credential plugins are real scripts, one answer per credential shape (v1 and v1beta1 tokens, a v1 client
certificate and key), with and without expirationTimestamp, and with KUBERNETES_EXEC_INFO recorded on every run.
The cluster is also reached through a real HTTP CONNECT proxy (`proxy-url`) and, by an address its serving
certificate does not name, with `tls-server-name`. Who the server took us for comes from a SelfSubjectReview (what
`kubectl auth whoami` asks); the plugin is also run as users run it, as its own process, for each path.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import selectors
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from lightkube import ApiError
from lightkube.resources.authentication_v1 import SelfSubjectReview

from imagestreams.cli.execcredential import V1, V1BETA1
from imagestreams.cli.kubeconfig import load_target
from imagestreams.cli.transport import Clock, KubeTransport, connect, utc_now
from imagestreams.localcluster import LocalCluster
from imagestreams.localcluster.certs import CertificateAuthority
from tests.conftest import kubectl
from tests.streams import apply_stream

SECRET = "kubeconfig-secret-7f3a9c"

PLUGIN = """#!{python}
# A client-go credential plugin for tests: records each run in runs.jsonl, answers with answer.json.
import json, os, sys
from pathlib import Path

here = Path(__file__).parent
with open(here / "runs.jsonl", "a") as runs:
    record = {{"info": json.loads(os.environ["KUBERNETES_EXEC_INFO"]), "stdin_tty": os.isatty(0)}}
    runs.write(json.dumps(record) + "\\n")
answer = json.loads((here / "answer.json").read_text())
sys.stdout.write(answer["stdout"])
sys.exit(answer["exit"])
"""


class Plugin:
    """A real exec plugin script in its own directory; what it answers is set per test."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / "credential-plugin"
        self.path.write_text(PLUGIN.format(python=sys.executable))
        self.path.chmod(0o755)
        self.answer_raw("")

    def answer_raw(self, stdout: str, exit_code: int = 0) -> None:
        (self.directory / "answer.json").write_text(json.dumps({"stdout": stdout, "exit": exit_code}))

    def answer(self, api_version: str, **status: Any) -> None:
        self.answer_raw(json.dumps({"kind": "ExecCredential", "apiVersion": api_version, "status": status}))

    def runs(self) -> list[dict[str, Any]]:
        log = self.directory / "runs.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def entry(self, api_version: str, **settings: Any) -> dict[str, Any]:
        return {"command": str(self.path), "apiVersion": api_version, **settings}


def timestamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any], namespace: str | None = None) -> Path:
    context: dict[str, Any] = {"cluster": "local", "user": "someone"}
    if namespace:
        context["namespace"] = namespace
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": "someone", "user": user}],
        "contexts": [{"name": "local", "context": context}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(document))
    return path


def local_cluster(cluster: LocalCluster, **settings: Any) -> dict[str, Any]:
    return {"server": cluster.server, "certificate-authority": str(cluster.ca_file), **settings}


def admin_user(cluster: LocalCluster) -> dict[str, Any]:
    pki = cluster.workdir / "pki"
    return {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}


def client_pair(cluster: LocalCluster, user: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
    """A client certificate and key (PEM) from the cluster's client CA, as an exec plugin would return them."""
    document = yaml.safe_load(cluster.user_kubeconfig(user, groups).read_text())
    credentials = document["users"][0]["user"]
    return (
        base64.b64decode(credentials["client-certificate-data"]).decode(),
        base64.b64decode(credentials["client-key-data"]).decode(),
    )


def robot_token(cluster: LocalCluster, namespace: str) -> str:
    kubectl(cluster, "create", "serviceaccount", "robot", "-n", namespace)
    return cluster.service_account_token(namespace, "robot")


@dataclass
class Session:
    """An in-process client built exactly as the plugin builds its own (load_target, then connect)."""

    kubeconfig: Path
    clock: Clock = utc_now
    transport: KubeTransport = field(init=False)

    def __post_init__(self) -> None:
        target = load_target(str(self.kubeconfig), None, None)
        self.transport = KubeTransport(target.connection, clock=self.clock)
        self.client = connect(target, field_manager="imagestreams-tests", transport=self.transport)

    def whoami(self) -> tuple[str, list[str]]:
        review = self.client.create(SelfSubjectReview())
        assert review.status is not None and review.status.userInfo is not None
        return review.status.userInfo.username or "", list(review.status.userInfo.groups or [])

    def close(self) -> None:
        self.client.close()


@contextlib.contextmanager
def session(kubeconfig: Path, clock: Clock = utc_now) -> Iterator[Session]:
    opened = Session(kubeconfig, clock)
    try:
        yield opened
    finally:
        opened.close()


@dataclass
class Result:
    status: int
    out: str
    err: str


def run_plugin(kubeconfig: Path, *args: str, stdin: int | None = subprocess.DEVNULL) -> Result:
    """`kubectl imagestream ARGS --kubeconfig FILE` as its own process."""
    environment = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    completed = subprocess.run(
        [sys.executable, "-m", "imagestreams.cli", *args, f"--kubeconfig={kubeconfig}"],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environment,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def one_error_line(result: Result) -> str:
    """The failure's message, checked to be one `error: ...` line, without a traceback or a secret."""
    assert result.status == 1, result
    assert result.err.startswith("error: ") and result.err.endswith("\n") and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err and SECRET not in result.err
    return result.err.removeprefix("error: ").rstrip("\n")


@pytest.fixture
def readable_stream(crds: LocalCluster, namespace: str) -> str:
    """A stream `app` in `namespace` that the exec identities of these tests may read."""
    apply_stream(crds, namespace, "app", [])
    resource = "--resource=imagestreams.image.openshift.io"
    kubectl(crds, "create", "role", "stream-reader", "--verb=get", resource, "-n", namespace)
    subjects = (f"--serviceaccount={namespace}:robot", "--user=exec-cert-user")
    kubectl(crds, "create", "rolebinding", "stream-readers", "--role=stream-reader", *subjects, "-n", namespace)
    return namespace


def describes(kubeconfig: Path, namespace: str) -> None:
    shown = run_plugin(kubeconfig, "describe", "is", "app", "-n", namespace)
    assert shown.status == 0, shown.err
    assert shown.out.startswith("Name:") and "app" in shown.out.splitlines()[0], shown.out


# --- exec plugins: each credential shape ------------------------------------------------------------------------


def test_a_v1_exec_plugin_token(crds: LocalCluster, readable_stream: str, tmp_path: Path) -> None:
    namespace = readable_stream
    plugin = Plugin(tmp_path / "plugin")
    plugin.answer(V1, token=robot_token(crds, namespace))
    kubeconfig = write_kubeconfig(
        tmp_path / "config", local_cluster(crds), {"exec": plugin.entry(V1, interactiveMode="Never")}
    )
    with session(kubeconfig) as client:
        assert client.whoami()[0] == f"system:serviceaccount:{namespace}:robot"
        client.whoami()
    assert [run["info"] for run in plugin.runs()] == [
        {"kind": "ExecCredential", "apiVersion": V1, "spec": {"interactive": False}}
    ]
    describes(kubeconfig, namespace)
    assert len(plugin.runs()) == 2  # the plugin's own process ran it once more


def test_a_v1beta1_exec_plugin_token(crds: LocalCluster, readable_stream: str, tmp_path: Path) -> None:
    namespace = readable_stream
    plugin = Plugin(tmp_path / "plugin")
    plugin.answer(V1BETA1, token=robot_token(crds, namespace))
    # v1beta1 may leave interactiveMode out (it defaults to IfAvailable).
    kubeconfig = write_kubeconfig(tmp_path / "config", local_cluster(crds), {"exec": plugin.entry(V1BETA1)})
    with session(kubeconfig) as client:
        assert client.whoami()[0] == f"system:serviceaccount:{namespace}:robot"
    assert plugin.runs()[0]["info"]["apiVersion"] == V1BETA1
    describes(kubeconfig, namespace)


def test_a_v1_exec_plugin_client_certificate(crds: LocalCluster, readable_stream: str, tmp_path: Path) -> None:
    plugin = Plugin(tmp_path / "plugin")
    certificate, key = client_pair(crds, "exec-cert-user", ("exec-team",))
    plugin.answer(V1, clientCertificateData=certificate, clientKeyData=key)
    kubeconfig = write_kubeconfig(
        tmp_path / "config", local_cluster(crds), {"exec": plugin.entry(V1, interactiveMode="IfAvailable")}
    )
    with session(kubeconfig) as client:
        user, groups = client.whoami()
        assert (user, "exec-team" in groups) == ("exec-cert-user", True)
    describes(kubeconfig, readable_stream)


# --- when the plugin runs again ---------------------------------------------------------------------------------


def test_expiration_timestamp_decides_when_the_plugin_runs_again(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    token = robot_token(cluster, namespace)
    now = utc_now()
    for case, expires, runs in [
        ("past", timestamp(now - datetime.timedelta(minutes=5)), 3),  # expired: every request runs it
        ("future", timestamp(now + datetime.timedelta(hours=1)), 1),
        ("none", None, 1),  # no expiry: kept for the life of the process
    ]:
        plugin = Plugin(tmp_path / case)
        plugin.answer(V1, token=token, **({"expirationTimestamp": expires} if expires else {}))
        kubeconfig = write_kubeconfig(
            tmp_path / f"{case}.yaml", local_cluster(cluster), {"exec": plugin.entry(V1, interactiveMode="Never")}
        )
        with session(kubeconfig) as client:
            for _ in range(3):
                assert client.whoami()[0] == f"system:serviceaccount:{namespace}:robot"
        assert len(plugin.runs()) == runs, case

    # A credential that expires while the process runs is replaced then, not before.
    plugin = Plugin(tmp_path / "crossing")
    expiry = now + datetime.timedelta(hours=1)
    plugin.answer(V1, token=token, expirationTimestamp=timestamp(expiry))
    kubeconfig = write_kubeconfig(
        tmp_path / "crossing.yaml", local_cluster(cluster), {"exec": plugin.entry(V1, interactiveMode="Never")}
    )
    moments = iter([expiry - datetime.timedelta(seconds=1), expiry, expiry + datetime.timedelta(seconds=1)])
    with session(kubeconfig, clock=lambda: next(moments)) as client:
        client.whoami()
        client.whoami()
        assert len(plugin.runs()) == 1
        client.whoami()
        assert len(plugin.runs()) == 2


def test_a_new_client_certificate_replaces_the_connections(cluster: LocalCluster, tmp_path: Path) -> None:
    plugin = Plugin(tmp_path / "plugin")
    expiry = utc_now() + datetime.timedelta(hours=1)
    first, second = client_pair(cluster, "exec-rotate-a"), client_pair(cluster, "exec-rotate-b")
    plugin.answer(V1, clientCertificateData=first[0], clientKeyData=first[1], expirationTimestamp=timestamp(expiry))
    kubeconfig = write_kubeconfig(
        tmp_path / "config", local_cluster(cluster), {"exec": plugin.entry(V1, interactiveMode="Never")}
    )
    clock = [expiry - datetime.timedelta(minutes=1)]
    with session(kubeconfig, clock=lambda: clock[0]) as client:
        assert client.whoami()[0] == "exec-rotate-a"
        plugin.answer(V1, clientCertificateData=second[0], clientKeyData=second[1])
        assert client.whoami()[0] == "exec-rotate-a"  # still valid: the open connection and certificate stay
        clock[0] = expiry + datetime.timedelta(seconds=1)
        assert client.whoami()[0] == "exec-rotate-b"
    assert len(plugin.runs()) == 2


def test_a_refused_credential_is_replaced_for_the_next_request(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    plugin = Plugin(tmp_path / "plugin")
    plugin.answer(V1, token="not-a-token-the-server-knows")
    kubeconfig = write_kubeconfig(
        tmp_path / "config", local_cluster(cluster), {"exec": plugin.entry(V1, interactiveMode="Never")}
    )
    with session(kubeconfig) as client:
        with pytest.raises(ApiError) as refused:
            client.whoami()
        assert refused.value.status.code == 401
        plugin.answer(V1, token=robot_token(cluster, namespace))
        assert client.whoami()[0] == f"system:serviceaccount:{namespace}:robot"
    assert len(plugin.runs()) == 2


# --- what the plugin is told ------------------------------------------------------------------------------------


def test_kubernetes_exec_info_carries_the_cluster_when_asked(cluster: LocalCluster, tmp_path: Path) -> None:
    plugin = Plugin(tmp_path / "plugin")
    certificate, key = client_pair(cluster, "exec-info-user")
    plugin.answer(V1, clientCertificateData=certificate, clientKeyData=key)
    settings = {"audience": "imagestreams-tests", "nested": {"list": [1, 2]}}
    cluster_entry = local_cluster(
        cluster,
        **{
            "tls-server-name": "localhost",
            "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": settings}],
        },
    )
    kubeconfig = write_kubeconfig(
        tmp_path / "config",
        cluster_entry,
        {"exec": plugin.entry(V1, interactiveMode="Never", provideClusterInfo=True)},
    )
    with session(kubeconfig) as client:
        assert client.whoami()[0] == "exec-info-user"
    assert plugin.runs()[0]["info"] == {
        "kind": "ExecCredential",
        "apiVersion": V1,
        "spec": {
            "cluster": {
                "server": cluster.server,
                "tls-server-name": "localhost",
                "certificate-authority-data": base64.b64encode(Path(cluster.ca_file).read_bytes()).decode(),
                "config": settings,
            },
            "interactive": False,
        },
    }


def test_an_interactive_plugin_gets_the_terminal(crds: LocalCluster, readable_stream: str, tmp_path: Path) -> None:
    plugin = Plugin(tmp_path / "plugin")
    plugin.answer(V1, token=robot_token(crds, readable_stream))
    terminal, terminal_side = os.openpty()
    try:
        for mode, interactive in [("IfAvailable", True), ("Always", True), ("Never", False)]:
            kubeconfig = write_kubeconfig(
                tmp_path / f"{mode}.yaml", local_cluster(crds), {"exec": plugin.entry(V1, interactiveMode=mode)}
            )
            shown = run_plugin(kubeconfig, "describe", "is", "app", "-n", readable_stream, stdin=terminal_side)
            assert shown.status == 0, shown.err
            run = plugin.runs()[-1]
            assert (run["info"]["spec"]["interactive"], run["stdin_tty"]) == (interactive, interactive), mode
    finally:
        os.close(terminal)
        os.close(terminal_side)
    always = write_kubeconfig(
        tmp_path / "always.yaml", local_cluster(crds), {"exec": plugin.entry(V1, interactiveMode="Always")}
    )
    refused = run_plugin(always, "describe", "is", "app", "-n", readable_stream)  # stdin is /dev/null
    assert one_error_line(refused) == (
        "getting credentials: exec plugin cannot support interactive mode: standard input is not a terminal"
    )


def test_impersonation_from_the_kubeconfig(cluster: LocalCluster, tmp_path: Path) -> None:
    user = {**admin_user(cluster), "as": "exec-impersonated", "as-groups": ["team-a", "team-b"]}
    with session(write_kubeconfig(tmp_path / "config", local_cluster(cluster), user)) as client:
        name, groups = client.whoami()
    assert name == "exec-impersonated" and {"team-a", "team-b"} <= set(groups)


# --- a proxy and a server name ----------------------------------------------------------------------------------


def _pipe(first: socket.socket, second: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with selectors.DefaultSelector() as selector:
        selector.register(first, selectors.EVENT_READ, second)
        selector.register(second, selectors.EVENT_READ, first)
        while True:
            for key, _ in selector.select():
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(65536)
                if not data:
                    return
                # TLS may hold decrypted bytes that select() does not see.
                while isinstance(source, ssl.SSLSocket) and source.pending():
                    data += source.recv(source.pending())
                key.data.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that records every tunnel, asks for basic credentials, and resolves
    the names in `hosts` itself (so a server name that only it knows proves the traffic went through it).
    With `tls`, clients reach it over TLS (an https:// proxy)."""

    def __init__(self, hosts: dict[str, str], username: str, password: str, tls: ssl.SSLContext | None = None) -> None:
        self.scheme = "https" if tls else "http"
        self.tunnels: list[str] = []
        self.refused = 0
        expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                client: socket.socket = tls.wrap_socket(self.request, server_side=True) if tls else self.request
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = client.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                if method != "CONNECT":
                    client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                    return
                if headers.get("Proxy-Authorization", headers.get("proxy-authorization")) != expected:
                    proxy.refused += 1
                    client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
                    return
                host, port = target.rsplit(":", 1)
                with socket.create_connection((hosts.get(host, host), int(port)), timeout=10) as upstream:
                    proxy.tunnels.append(target)
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    _pipe(client, upstream)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, username: str, password: str) -> str:
        return f"{self.scheme}://{username}:{password}@127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Relay:
    """A TCP relay from an address of our choice to the apiserver: the server reached by an address its
    certificate does not name."""

    def __init__(self, listen: str, upstream: tuple[str, int]) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(upstream, timeout=10) as server:
                    _pipe(self.request, server)

        self.server = _Server((listen, 0), Handler)
        self.url = f"https://{listen}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def apiserver_address(cluster: LocalCluster) -> tuple[str, int]:
    parts = urlsplit(cluster.server)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


@pytest.fixture
def proxy(cluster: LocalCluster) -> Iterator[ConnectProxy]:
    started = ConnectProxy({"kube-apiserver.test": apiserver_address(cluster)[0]}, "proxy-user", SECRET)
    yield started
    started.close()


@pytest.fixture
def https_proxy(cluster: LocalCluster, tmp_path: Path) -> Iterator[ConnectProxy]:
    """The proxy over TLS, with a certificate from the cluster's CA (client-go checks an https proxy with the
    cluster's own TLS settings)."""
    certificate, key = cluster.issue_loopback_certificate("test-proxy").write(tmp_path, "proxy")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificate, key)
    started = ConnectProxy({}, "proxy-user", SECRET, tls)
    yield started
    started.close()


@pytest.fixture
def relay(cluster: LocalCluster) -> Iterator[Relay]:
    # 127.0.0.2 is loopback too on Linux, but the apiserver's certificate names only 127.0.0.1 and localhost.
    started = Relay("127.0.0.2", apiserver_address(cluster))
    yield started
    started.close()


def test_a_cluster_behind_a_connect_proxy(
    crds: LocalCluster, readable_stream: str, proxy: ConnectProxy, tmp_path: Path
) -> None:
    host, port = apiserver_address(crds)
    kubeconfig = write_kubeconfig(
        tmp_path / "config",
        local_cluster(crds, **{"proxy-url": proxy.url("proxy-user", SECRET)}),
        admin_user(crds),
    )
    with session(kubeconfig) as client:
        client.whoami()
        client.whoami()
    assert proxy.tunnels == [f"{host}:{port}"]  # one tunnel, kept alive for both requests
    describes(kubeconfig, readable_stream)
    assert proxy.tunnels == [f"{host}:{port}"] * 2
    wrong = write_kubeconfig(
        tmp_path / "wrong", local_cluster(crds, **{"proxy-url": proxy.url("proxy-user", "nope")}), admin_user(crds)
    )
    message = one_error_line(run_plugin(wrong, "describe", "is", "app"))
    assert message.startswith("unable to connect to the server: ") and "407" in message, message
    assert proxy.refused == 1


def test_a_cluster_behind_an_https_proxy(cluster: LocalCluster, https_proxy: ConnectProxy, tmp_path: Path) -> None:
    host, port = apiserver_address(cluster)
    kubeconfig = write_kubeconfig(
        tmp_path / "config",
        local_cluster(cluster, **{"proxy-url": https_proxy.url("proxy-user", SECRET)}),
        admin_user(cluster),
    )
    with session(kubeconfig) as client:
        assert client.whoami()[0] == "imagestreams-admin"
    assert https_proxy.tunnels == [f"{host}:{port}"]

    # A proxy whose certificate the cluster's CA did not sign is refused, and the message says it may be the proxy.
    stranger = CertificateAuthority("someone-else").issue("proxy", server=True, ip_addresses=("127.0.0.1",))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*stranger.write(tmp_path, "stranger"))
    untrusted = ConnectProxy({}, "proxy-user", SECRET, tls)
    try:
        kubeconfig = write_kubeconfig(
            tmp_path / "untrusted",
            local_cluster(cluster, **{"proxy-url": untrusted.url("proxy-user", SECRET)}),
            admin_user(cluster),
        )
        message = one_error_line(run_plugin(kubeconfig, "describe", "is", "app"))
    finally:
        untrusted.close()
    assert message == (
        f"unable to connect to the server: tls: failed to verify the certificate of {cluster.server} or of the proxy "
        f"https://<redacted>@127.0.0.1:{untrusted.port}: unable to get local issuer certificate"
    )
    assert untrusted.tunnels == []


def test_a_server_name_only_the_proxy_resolves(cluster: LocalCluster, proxy: ConnectProxy, tmp_path: Path) -> None:
    port = apiserver_address(cluster)[1]
    entry = {
        "server": f"https://kube-apiserver.test:{port}",
        "certificate-authority": str(cluster.ca_file),
        "proxy-url": proxy.url("proxy-user", SECRET),
        "tls-server-name": "localhost",  # the name in the certificate, sent in SNI through the tunnel
    }
    with session(write_kubeconfig(tmp_path / "config", entry, admin_user(cluster))) as client:
        assert client.whoami()[0] == "imagestreams-admin"
    assert proxy.tunnels == [f"kube-apiserver.test:{port}"]


def test_tls_server_name_for_an_address_the_certificate_does_not_name(
    crds: LocalCluster, readable_stream: str, relay: Relay, tmp_path: Path
) -> None:
    unnamed = write_kubeconfig(
        tmp_path / "unnamed", {"server": relay.url, "certificate-authority": str(crds.ca_file)}, admin_user(crds)
    )
    message = one_error_line(run_plugin(unnamed, "describe", "is", "app"))
    assert message == (
        f"unable to connect to the server: tls: failed to verify the certificate of {relay.url}: "
        "IP address mismatch, certificate is not valid for '127.0.0.2'."
    )
    named = write_kubeconfig(
        tmp_path / "named",
        {"server": relay.url, "certificate-authority": str(crds.ca_file), "tls-server-name": "localhost"},
        admin_user(crds),
    )
    with session(named) as client:
        assert client.whoami()[0] == "imagestreams-admin"
    describes(named, readable_stream)
    misnamed = write_kubeconfig(
        tmp_path / "misnamed",
        {"server": relay.url, "certificate-authority": str(crds.ca_file), "tls-server-name": "wrong.example"},
        admin_user(crds),
    )
    message = one_error_line(run_plugin(misnamed, "describe", "is", "app"))
    assert message == (
        f"unable to connect to the server: tls: failed to verify the certificate of {relay.url} "
        "(checked as wrong.example): Hostname mismatch, certificate is not valid for 'wrong.example'."
    )


def test_a_server_certificate_from_another_authority_is_refused(crds: LocalCluster, tmp_path: Path) -> None:
    other = base64.b64encode(CertificateAuthority("someone-else").cert_pem).decode()
    kubeconfig = write_kubeconfig(
        tmp_path / "config", {"server": crds.server, "certificate-authority-data": other}, admin_user(crds)
    )
    message = one_error_line(run_plugin(kubeconfig, "describe", "is", "app"))
    assert message.startswith(
        f"unable to connect to the server: tls: failed to verify the certificate of {crds.server}"
    )


# --- every kubeconfig problem: one error line, no traceback, no secret ---------------------------------------


def _problems(cluster: LocalCluster, tmp_path: Path) -> dict[str, tuple[Callable[[], Path], str]]:
    plugin = Plugin(tmp_path / "plugin")
    cluster_entry = local_cluster(cluster)

    def config(user: dict[str, Any], cluster_settings: dict[str, Any] | None = None) -> Callable[[], Path]:
        return lambda: write_kubeconfig(tmp_path / "config", cluster_settings or cluster_entry, user)

    def failing(exit_code: int) -> Callable[[], Path]:
        def make() -> Path:
            plugin.answer_raw(json.dumps({"status": {"token": SECRET}}), exit_code)
            return config({"exec": plugin.entry(V1, interactiveMode="Never")})()

        return make

    def answering(stdout: str) -> Callable[[], Path]:
        def make() -> Path:
            plugin.answer_raw(stdout)
            return config({"exec": plugin.entry(V1, interactiveMode="Never")})()

        return make

    def yaml_with_token() -> Path:
        path = tmp_path / "config"
        path.write_text(f"users:\n- name: someone\n  user:\n    token: {SECRET}: oops\n")
        return path

    return {
        "yaml": (yaml_with_token, f'error loading config file "{tmp_path / "config"}": line 4, column'),
        "exit code": (failing(3), f"getting credentials: exec: executable {plugin.path} failed with exit code 3"),
        "missing plugin": (
            config(
                {
                    "exec": {
                        "command": str(tmp_path / "nowhere"),
                        "apiVersion": V1,
                        "interactiveMode": "Never",
                        "installHint": "Install it with\n  pip install nowhere",
                    }
                }
            ),
            f"getting credentials: exec: executable {tmp_path / 'nowhere'} not found: Install it with pip install",
        ),
        "not json": (answering(f"token={SECRET}"), "getting credentials: decoding stdout: invalid JSON at character 0"),
        "other version": (
            answering(json.dumps({"kind": "ExecCredential", "apiVersion": V1BETA1, "status": {"token": SECRET}})),
            f"getting credentials: exec plugin is configured to use API version {V1}, plugin returned version",
        ),
        "v1alpha1": (
            config({"exec": plugin.entry("client.authentication.k8s.io/v1alpha1")}),
            'exec plugin: invalid apiVersion "client.authentication.k8s.io/v1alpha1"',
        ),
        "v1 without interactiveMode": (
            config({"exec": plugin.entry(V1)}),
            "interactiveMode must be specified for someone to use exec authentication plugin",
        ),
        "socks5": (
            config(admin_user(cluster), {**cluster_entry, "proxy-url": f"socks5://u:{SECRET}@127.0.0.1:1080"}),
            'invalid \'proxy-url\' "socks5://<redacted>@127.0.0.1:1080" for cluster "local": socks5 proxies',
        ),
        "token file": (
            config({"tokenFile": str(tmp_path / "no-token")}),
            f"unable to read tokenFile {tmp_path / 'no-token'} for someone due to No such file or directory",
        ),
        "client certificate file": (
            config({"client-certificate": str(tmp_path / "no.crt"), "client-key": str(tmp_path / "no.key")}),
            f"unable to read client-cert {tmp_path / 'no.crt'} for someone due to No such file or directory",
        ),
        "certificate authority": (
            config(admin_user(cluster), {"server": cluster.server, "certificate-authority-data": "bm90IGEgUEVN"}),
            'the certificate authority of cluster "local" holds no usable certificate',
        ),
        "auth provider": (
            config({"auth-provider": {"name": "oidc", "config": {"id-token": SECRET}}}),
            'the auth-provider "oidc" of user "someone" is not supported by kubectl-imagestream',
        ),
    }


PROBLEMS = [
    "yaml",
    "exit code",
    "missing plugin",
    "not json",
    "other version",
    "v1alpha1",
    "v1 without interactiveMode",
    "socks5",
    "token file",
    "client certificate file",
    "certificate authority",
    "auth provider",
]


@pytest.mark.parametrize("problem", PROBLEMS)
def test_a_kubeconfig_problem_is_one_error_line(cluster: LocalCluster, tmp_path: Path, problem: str) -> None:
    make, expected = _problems(cluster, tmp_path)[problem]
    message = one_error_line(run_plugin(make(), "describe", "is", "app"))
    assert message.startswith(expected), message

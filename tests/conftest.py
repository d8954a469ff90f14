"""Fixtures shared by every test: the real local cluster, registries, clients and identities.

The cluster starts once per session, and only when a test asks for it. A missing
binary is an error that names the fix (`make setup`), never a skip.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from imagestreams.localcluster import ClusterSettings, LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.node import Node
from imagestreams.localcluster.processes import die_with_parent
from tests.helpers import OperatorProcess

_session_cluster: LocalCluster | None = None


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM and SIGHUP stop the run as Ctrl-C does: fixtures tear down, so the cluster stops in order.

    The death of our parent (`make test` killed, even by SIGKILL) counts as SIGTERM, unless SIGHUP was
    ignored when we started (nohup: the user asked to outlive the terminal).
    """
    outlive_terminal = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if not outlive_terminal:
        signal.signal(signal.SIGHUP, signal.default_int_handler)
        die_with_parent(signal.SIGTERM)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    global _session_cluster  # noqa: PLW0603 - read by the report hook below
    local = LocalCluster(ClusterSettings(workdir=tmp_path_factory.mktemp("cluster")))
    local.start()
    _session_cluster = local
    print(f"\nlocal cluster {local.timings.summary()}")
    for reaped in local.reaped:
        print(f"stopped leftovers of an earlier cluster in {reaped.workdir}: {', '.join(reaped.stopped) or 'none'}")
    try:
        yield local
    finally:
        _session_cluster = None
        local.stop()


@pytest.fixture(scope="module")
def node(cluster: LocalCluster) -> Iterator[Node]:
    """A worker node (containerd, kubelet, kube-scheduler) on the session cluster for one test module (about 2 s
    to start). It is dedicated: only pods with `node.dedicated_pod_spec()` run there, so other tests' pods stay
    Pending, as they do without a node. There is one node per machine, so it is stopped after the module: tests
    that run `make dev` or `up --node` start their own."""
    started = cluster.start_node(dedicated=True)
    print(f"\n{started.timings.summary()}")
    yield started
    cluster.stop_node()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failing test, attach the last lines of every cluster process's log to the report."""
    report = yield
    if report.failed and _session_cluster is not None:
        for process in _session_cluster.processes:
            report.sections.append((f"log: {process.name}", process.log_tail(15)))
    return report


def client_for(kubeconfig: Path) -> Client:
    return Client(config=KubeConfig.from_file(kubeconfig), field_manager="imagestreams-tests", trust_env=False)


@pytest.fixture(scope="session")
def admin(cluster: LocalCluster) -> Client:
    """A client in system:masters."""
    return client_for(cluster.admin_kubeconfig)


@pytest.fixture
def namespace(admin: Client) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    admin.create(Namespace(metadata=ObjectMeta(name=name, labels={"imagestreams.test": "true"})))
    yield name
    admin.delete(Namespace, name)


@pytest.fixture
def solo_namespace(admin: Client) -> Iterator[str]:
    """A fresh namespace the session operator ignores, for a test that runs its own operator."""
    name = f"solo-{uuid.uuid4().hex[:10]}"
    admin.create(Namespace(metadata=ObjectMeta(name=name, labels={"imagestreams.test": "true"})))
    yield name
    admin.delete(Namespace, name)


@pytest.fixture
def user_client(cluster: LocalCluster) -> Callable[..., Client]:
    """Make a client for a client-certificate user with the given groups (no rights until RBAC grants some)."""

    def make(user: str, groups: tuple[str, ...] = ()) -> Client:
        return client_for(cluster.user_kubeconfig(user, groups))

    return make


@pytest.fixture
def service_account_client(cluster: LocalCluster) -> Callable[[str, str], Client]:
    """Make a client that authenticates with a TokenRequest token of namespace/name's ServiceAccount."""

    def make(namespace: str, name: str) -> Client:
        return client_for(cluster.service_account_kubeconfig(namespace, name))

    return make


@pytest.fixture
def plain_registry(cluster: LocalCluster) -> Registry:
    return cluster.registries[RegistryKind.PLAIN]


@pytest.fixture
def tls_registry(cluster: LocalCluster) -> Registry:
    return cluster.registries[RegistryKind.TLS_BASIC]


@pytest.fixture
def token_registry(cluster: LocalCluster) -> Registry:
    return cluster.registries[RegistryKind.TOKEN]


@pytest.fixture(params=[kind.value for kind in RegistryKind])
def any_registry(request: pytest.FixtureRequest, cluster: LocalCluster) -> Registry:
    """Each registry variant in turn."""
    return cluster.registries[RegistryKind(request.param)]


@pytest.fixture
def repository() -> str:
    """A repository path no other test uses."""
    return f"test/app-{uuid.uuid4().hex[:8]}"


REPO_ROOT = Path(__file__).resolve().parents[1]


def kubectl(cluster: LocalCluster, *args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run the pinned kubectl as admin; returns stdout, raising with stderr when `check` and it fails."""
    assert cluster.binaries is not None
    result = subprocess.run(
        [str(cluster.binaries.kubectl), f"--kubeconfig={cluster.admin_kubeconfig}", *args],
        input=stdin,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout if check else result.stdout + result.stderr


def namespace_events(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    """Every Event in the namespace, as the API server returns them."""
    items: list[dict[str, Any]] = json.loads(kubectl(cluster, "get", "events", "-n", namespace, "-o", "json"))["items"]
    return items


@pytest.fixture(scope="session")
def crds(cluster: LocalCluster) -> LocalCluster:
    """The cluster with every CRD in crds/ applied and established."""
    kubectl(cluster, "apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
    # kubectl wait fails at once on a CRD whose status has no conditions yet (just applied): retry it.
    deadline = time.monotonic() + 30
    while "condition met" not in kubectl(
        cluster, "wait", "--for=condition=Established", "--timeout=30s", "crd", "--all", check=False
    ):
        assert time.monotonic() < deadline, "the CRDs did not become Established within 30 s"
        time.sleep(0.5)
    return cluster


OPERATOR_TEST_SETTINGS = {
    "IMAGESTREAMS_SCHEDULED_INTERVAL_SECONDS": "3",
    "IMAGESTREAMS_IMPORT_WORKERS": "4",
    "IMAGESTREAMS_MAX_REPOSITORY_TAGS": "4",
    "IMAGESTREAMS_HISTORY_LIMIT": "3",
    # The test registries listen on 127.0.0.1, which the operator refuses by default.
    "IMAGESTREAMS_LOOPBACK_REGISTRIES": "true",
    # solo-* namespaces belong to tests that run an operator of their own (restarts, RBAC, settings).
    "IMAGESTREAMS_EXCLUDED_NAMESPACES": "solo-*",
}


def solo_settings(namespaces: str) -> dict[str, str]:
    """Settings for an operator of a test's own that watches only `namespaces` (solo-* ones included)."""
    return {**OPERATOR_TEST_SETTINGS, "IMAGESTREAMS_NAMESPACES": namespaces, "IMAGESTREAMS_EXCLUDED_NAMESPACES": ""}


@pytest.fixture(scope="session")
def operator(crds: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator running against the cluster as admin, trusting the cluster CA for the TLS registry."""
    process = OperatorProcess(
        crds.admin_kubeconfig,
        tmp_path_factory.mktemp("operator"),
        {**OPERATOR_TEST_SETTINGS, "IMAGESTREAMS_EXTRA_CA_FILE": str(crds.ca_file)},
    ).start()
    try:
        yield process
    finally:
        process.stop()

"""The chart installed for real on the local node, with the operator image `make image` builds.

`helm install` into a namespace that enforces the restricted Pod Security level; the operator pod runs Ready (its
probes pass), serves its admission webhooks behind their Service with the CA bundle it made (a Pod created with a
short name gets the stream's digest), imports a tag and rolls a triggered Deployment whose pods print their image's
content; a new image reaches new pods; with two replicas and leader election the standby takes over from a deleted
leader and acts; `helm upgrade` restarts the pod with a changed setting, and `helm uninstall` leaves only what
docs/install.md says.

The harness's API server and registries listen on 127.0.0.1 and there is no kube-proxy, so the operator pod runs
with the chart's hostNetwork, apiServer and metrics.address values (docs/install.md, "A cluster without kube-proxy"),
its webhook port is a free port of the node, the API server reaches the webhook Service at its EndpointSlice address
(--enable-aggregator-routing),
in the RuntimeClass that Pod Security admission exempts (hostNetwork is allowed by the privileged level only). That
the chart's normal pod passes `restricted` on its own is checked separately, by a server-side dry run.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Pod
from prometheus_client.parser import text_string_to_metric_families

from imagestreams.api.webhooks import LOOKUP_PATH
from imagestreams.imagebuild.build import build
from imagestreams.localcluster import LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.controlplane import HOST_NETWORK_RUNTIME_CLASS
from imagestreams.localcluster.images import PushClient
from imagestreams.localcluster.node import Node, dedicated_pod_spec, message_image
from tests.conftest import kubectl
from tests.helpers import eventually, pusher_for
from tests.integration.test_metrics import Samples, free_port, total
from tests.streams import apply_stream, insecure_tag, triggered_deployment, wait_for_tag
from tests.unit.test_chart_render import CHART, helm, render

LEASE = "imagestream-operator"  # the operator's Lease name (controller/__main__.py)
POD_TIMEOUT = 90.0
# A restart or a first pull on a loaded 2-core machine takes seconds, not minutes.
ROLL_TIMEOUT = 60.0


@dataclass(frozen=True)
class OperatorImage:
    repository: str
    digest: str
    build_seconds: float


@pytest.fixture(scope="module")
def operator_image(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> OperatorImage:
    """`make image`, pushed to the plain registry. Its inputs come from ~/.cache/imagestreams/image-inputs (the
    build's own cache), so only a machine's first run downloads them."""
    started = time.monotonic()
    result = build(output=tmp_path_factory.mktemp("operator-image"))
    registry = cluster.registries[RegistryKind.PLAIN]
    repository = "imagestreams/operator-e2e"
    with PushClient(registry.url, timeout=120.0) as client:
        assert client.push_image(repository, result.tag, result.image) == result.digest
    return OperatorImage(f"{registry.host}/{repository}", result.digest, time.monotonic() - started)


class Release:
    """A helm release of the chart in its own namespace, which enforces (and warns about) `restricted`."""

    def __init__(self, cluster: LocalCluster, admin: Client, namespace: str) -> None:
        self.cluster, self.admin, self.namespace = cluster, admin, namespace
        self.name = "e2e"
        self.fullname = f"{self.name}-imagestream-operator"

    def helm(self, *args: str, stdin: str | None = None) -> str:
        kubeconfig = f"--kubeconfig={self.cluster.admin_kubeconfig}"
        return helm(*args, kubeconfig, "--namespace", self.namespace, stdin=stdin).stdout

    def apply(self, verb: str, values: dict[str, Any]) -> None:
        """`helm install` or `helm upgrade` with exactly these values."""
        self.helm(verb, self.name, str(CHART), "--values", "-", stdin=yaml.safe_dump(values))

    def pods(self) -> list[Pod]:
        """The release's operator pods that are not being deleted."""
        pods = self.admin.list(Pod, namespace=self.namespace, labels={"app.kubernetes.io/instance": self.name})
        return [pod for pod in pods if pod.metadata and not pod.metadata.deletionTimestamp]

    def all_pods(self) -> list[Pod]:
        return list(self.admin.list(Pod, namespace=self.namespace))

    def diagnosis(self) -> str:
        """The pods' description and their operator's last log lines, the previous run's too (a crash loop)."""
        text = kubectl(self.cluster, "describe", "pods", "-n", self.namespace, check=False)
        account = f"--as=system:serviceaccount:{self.namespace}:{self.fullname}"
        text += kubectl(self.cluster, "auth", "can-i", "--list", "-n", self.namespace, account, check=False)
        for pod in self.all_pods():
            assert pod.metadata is not None and pod.metadata.name is not None
            for previous in ("", "--previous"):
                logs = kubectl(self.cluster, "logs", pod.metadata.name, "-n", self.namespace, "--tail=30",
                               *([previous] if previous else []), check=False)  # fmt: skip
                text += f"\n--- logs {pod.metadata.name} {previous}\n{logs}"
        return text

    def lease_holder(self) -> str:
        try:
            lease = self.admin.get(Lease, LEASE, namespace=self.namespace)
        except ApiError:
            return ""
        return (lease.spec.holderIdentity if lease.spec else None) or ""


@pytest.fixture
def release(crds: LocalCluster, admin: Client, solo_namespace: str) -> Iterator[Release]:
    namespace = f"{solo_namespace}-helm"
    kubectl(crds, "create", "namespace", namespace)
    kubectl(
        crds, "label", "namespace", namespace,
        "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted",
    )  # fmt: skip
    chart_release = Release(crds, admin, namespace)
    try:
        yield chart_release
    finally:
        chart_release.helm("uninstall", chart_release.name, "--ignore-not-found")
        kubectl(crds, "delete", "namespace", namespace, "--wait=false")


def host_network_values(cluster: LocalCluster, metrics_port: int, webhook_port: int | None = None) -> dict[str, Any]:
    """What any operator pod needs in the local cluster, whose API server and registries listen on 127.0.0.1 and
    which has no kube-proxy: the node's network and the API server's address (docs/install.md, "A cluster without
    kube-proxy"), its servers on free ports of the node, and loopback registries allowed."""
    return {
        "hostNetwork": True,
        "apiServer": {"host": "127.0.0.1", "port": str(urlsplit(cluster.server).port)},
        # Servers on this machine listen on 127.0.0.1 only; the probes then ask there.
        "metrics": {"port": metrics_port, "address": "127.0.0.1"},
        # Every address of the node: the API server calls the webhooks at the pod's IP, the node's.
        "webhooks": {"port": webhook_port or free_port()},
        "settings": {"loopbackRegistries": True},
    }


def harness_values(cluster: LocalCluster, image: OperatorImage, watched: str, metrics_port: int) -> dict[str, Any]:
    """host_network_values, and for this test's release: the image, the RuntimeClass Pod Security admission exempts,
    the dedicated node's scheduler, and one watched namespace."""
    dedicated = dedicated_pod_spec()
    host_network = host_network_values(cluster, metrics_port)
    return {
        **host_network,
        "image": {"repository": image.repository, "digest": image.digest},
        "runtimeClassName": HOST_NETWORK_RUNTIME_CLASS,
        "schedulerName": dedicated["schedulerName"],
        "tolerations": dedicated["tolerations"],
        "probes": {"readiness": {"periodSeconds": 1}},
        "watchNamespaces": [watched],
        "clusterRoles": {"create": False},  # the session's `kubectl apply -f crds/` made them
        "settings": {**host_network["settings"], "historyLimit": 3},
    }


# --- the workload: a Deployment whose container prints its image's content ------------------------------------


def push_content(registry: Registry, node: Node, repository: str, text: str) -> str:
    with pusher_for(registry) as client:
        return client.push_image(repository, "latest", message_image(node.binaries.pause, text))


def web_following_app(namespace: str, registry: Registry) -> str:
    """The Deployment `web` following app:latest, on the dedicated node."""
    return triggered_deployment(
        namespace,
        "app:latest",
        # Until the trigger sets the tag's image: a name the local registry does not have, so the first pod fails
        # its pull here rather than asking a registry on the internet.
        image=f"{registry.host}/absent/placeholder:0",
        pod_spec={**dedicated_pod_spec(), "terminationGracePeriodSeconds": 2},
    )


def running_with(admin: Client, namespace: str, digest: str) -> Pod | None:
    """The Deployment's pod whose container runs the image `digest`, once it is Running."""
    for pod in admin.list(Pod, namespace=namespace, labels={"app": "web"}):
        if pod.metadata and pod.metadata.deletionTimestamp:
            continue
        for status in (pod.status.containerStatuses or []) if pod.status else []:
            if status.imageID.endswith(digest) and status.state and status.state.running:
                return pod
    return None


def roll_to(cluster: LocalCluster, admin: Client, namespace: str, digest: str, content: str, started: float) -> float:
    """Seconds from `started` until a pod of the Deployment runs `digest`; checks that it prints `content`."""
    pod = eventually(lambda: running_with(admin, namespace, digest), ROLL_TIMEOUT, f"a pod running {digest}")
    seconds = time.monotonic() - started
    assert pod.metadata is not None and pod.metadata.name is not None
    name = pod.metadata.name
    logs = eventually(lambda: kubectl(cluster, "logs", name, "-n", namespace), 10, f"output of {name}")
    assert logs == content
    return seconds


def stream_writes_admitted(cluster: LocalCluster, namespace: str) -> bool:
    """A server-side dry run of a stream create passes the release's stream webhooks (failurePolicy Fail): they are
    served, behind a ready endpoint of their Service, with a CA bundle the API server trusts."""
    probe = {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
             "metadata": {"name": f"probe-{uuid.uuid4().hex[:6]}", "namespace": namespace}}  # fmt: skip
    answer = kubectl(cluster, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe), check=False)
    return answer.endswith("created (server dry run)\n")


def ca_bundles(cluster: LocalCluster, configuration: str) -> set[str]:
    """The caBundle of every webhook of the release's two configurations."""
    bundles = set()
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        body = json.loads(kubectl(cluster, "get", kind, configuration, "-o", "json"))
        bundles |= {webhook["clientConfig"].get("caBundle", "") for webhook in body["webhooks"]}
    return bundles


def request_import(cluster: LocalCluster, namespace: str) -> None:
    request = f"imagestreams.dev/import-request={uuid.uuid4().hex[:8]}"
    kubectl(cluster, "annotate", "imagestream", "app", "-n", namespace, request, "--overwrite")


# --- the operator pods --------------------------------------------------------------------------------------------


def ready(pod: Pod) -> bool:
    conditions = (pod.status.conditions or []) if pod.status else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def running(pod: Pod) -> bool:
    return bool(pod.status and pod.status.phase == "Running")


def electing(pod: Pod) -> bool:
    """Running, of the template with leader election (not the replica it replaces)."""
    return running(pod) and env_of(pod).get("IMAGESTREAMS_LEADER_ELECTION") == "true"


def name_of(pod: Pod) -> str:
    assert pod.metadata is not None and pod.metadata.name is not None
    return pod.metadata.name


def env_of(pod: Pod) -> dict[str, str]:
    assert pod.spec is not None
    return {e.name: e.value or "" for e in pod.spec.containers[0].env or []}


def only_pods(release: Release, count: int, check: Any = running) -> list[Pod] | None:
    """The release's pods once there are exactly `count`, all passing `check`, and no other pod in the namespace
    (the previous ones have gone)."""
    pods = release.pods()
    if len(pods) == count and len(release.all_pods()) == count and all(check(p) for p in pods):
        return pods
    return None


def scrape_in_pod(cluster: LocalCluster, namespace: str, pod: str, port: int) -> Samples:
    """/metrics as seen from inside the operator's container (the image has python3, no curl)."""
    code = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics').read().decode())"
    text = kubectl(cluster, "exec", pod, "-n", namespace, "-c", "operator", "--", "python3", "-c", code)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def log_line(cluster: LocalCluster, namespace: str, pod: str, text: str) -> str | None:
    for line in kubectl(cluster, "logs", pod, "-n", namespace, check=False).splitlines():
        if text in line:
            return line
    return None


def identity_in(line: str) -> str:
    """The replica's identity from its leader election log line ("... (Lease ns/name) as IDENTITY")."""
    return str(json.loads(line)["message"]).rsplit(" as ", 1)[1]


# --- the tests ------------------------------------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_helm_install_upgrade_and_uninstall_run_the_operator_on_the_node(
    crds: LocalCluster,
    node: Node,
    admin: Client,
    release: Release,
    operator_image: OperatorImage,
    solo_namespace: str,
    plain_registry: Registry,
    repository: str,
) -> None:
    cluster, watched, namespace = crds, solo_namespace, release.namespace
    test_started = time.monotonic()
    port = free_port()
    values = harness_values(cluster, operator_image, watched, port)
    timings: dict[str, float] = {"image build and push": operator_image.build_seconds}

    # 1. Install: the operator pod runs Ready on the node, in a namespace that enforces `restricted`.
    bare_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "control", "namespace": namespace},
                "spec": {"containers": [{"name": "c", "image": "x"}]}}  # fmt: skip
    refused = kubectl(cluster, "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(bare_pod), check=False)
    assert 'violates PodSecurity "restricted' in refused  # enforced: only the exempt RuntimeClass gets through
    started = time.monotonic()
    release.apply("install", values)
    try:
        (operator_pod,) = eventually(lambda: only_pods(release, 1, ready), POD_TIMEOUT, "the operator pod to be Ready")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{release.diagnosis()}") from None
    timings["install to operator Ready"] = time.monotonic() - started
    assert operator_pod.spec is not None
    assert operator_pod.spec.nodeName == node.name
    assert operator_pod.spec.hostNetwork is True
    assert operator_pod.spec.runtimeClassName == HOST_NETWORK_RUNTIME_CLASS
    operator_name = name_of(operator_pod)
    assert operator_pod.status is not None and operator_pod.status.containerStatuses
    assert operator_pod.status.containerStatuses[0].imageID.endswith(operator_image.digest)

    # 2. The admission webhooks (the chart's default): the operator made its CA and filled the CA bundle of both
    # configurations; the API server calls them through the Service, at the pod's EndpointSlice address.
    eventually(lambda: stream_writes_admitted(cluster, watched), 30, "a stream write admitted by the webhooks")
    timings["install to the first admission through the webhook Service"] = time.monotonic() - started
    secret = json.loads(kubectl(cluster, "get", "secret", f"{release.fullname}-webhook-tls", "-n", namespace,
                                "-o", "json"))  # fmt: skip
    assert ca_bundles(cluster, release.fullname) == {secret["data"]["trusted-ca.crt"]}
    assert base64.b64decode(secret["data"]["trusted-ca.crt"]).startswith(b"-----BEGIN CERTIFICATE-----")
    slices = json.loads(kubectl(cluster, "get", "endpointslices", "-n", namespace, "-o", "json",
                                "-l", f"kubernetes.io/service-name={release.fullname}-webhook"))["items"]  # fmt: skip
    addresses = {a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]}
    assert addresses == {operator_pod.status.podIP}, (addresses, operator_pod.status.podIP)

    # 3. A stream with local lookup and a triggered Deployment whose container prints its image's content; a Pod
    # created with the short name app:latest is stored with the tag's digest pull spec.
    contents = {version: f"content {version} {uuid.uuid4()}\n" for version in ("v1", "v2", "v3", "v4")}
    v1 = push_content(plain_registry, node, repository, contents["v1"])
    apply_stream(cluster, watched, "app", [insecure_tag("latest", f"{plain_registry.host}/{repository}:latest")],
                 lookupPolicy={"local": True})  # fmt: skip
    stored = wait_for_tag(cluster, watched, "app", "latest", image=v1)
    assert stored["items"][0]["generation"] == 1  # numbered by the mutating webhook
    short_named = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "short-name", "namespace": watched},
                   "spec": {"containers": [{"name": "main", "image": "app:latest"}]}}  # fmt: skip
    pod = json.loads(kubectl(cluster, "create", "-o", "json", "-f", "-", stdin=json.dumps(short_named)))
    assert pod["spec"]["containers"][0]["image"] == f"{plain_registry.host}/{repository}@{v1}"
    kubectl(cluster, "delete", "pod", "short-name", "-n", watched, "--wait=false")
    started = time.monotonic()
    kubectl(cluster, "apply", "-f", "-", stdin=web_following_app(watched, plain_registry))
    timings["Deployment created to its pod Running v1"] = roll_to(cluster, admin, watched, v1, contents["v1"], started)
    before = scrape_in_pod(cluster, namespace, operator_name, port)

    # 4. A new image: pushed, its import requested, and the Deployment's new pod runs it.
    started = time.monotonic()
    v2 = push_content(plain_registry, node, repository, contents["v2"])
    timings["push v2 (upload)"] = time.monotonic() - started
    request_import(cluster, watched)
    timings["push v2 to new pod Running"] = roll_to(cluster, admin, watched, v2, contents["v2"], started)
    after = scrape_in_pod(cluster, namespace, operator_name, port)
    for name, labels in (
        ("imagestreams_imports_total", {"result": "succeeded"}),
        ("imagestreams_trigger_writes_total", {"kind": "Deployment"}),
    ):
        assert total(before, name, **labels) >= 1, (name, before)
        assert total(after, name, **labels) > total(before, name, **labels), name
    assert total(after, "imagestreams_leader") == 1
    assert total(before, "imagestreams_admission_requests_total", path=LOOKUP_PATH, result="patched") >= 1  # the Pod

    # 5. Two replicas with leader election. Their health and webhook servers are off: with hostNetwork on one node
    # both would need the same ports (docs/install.md); so neither declares a hostPort and the scheduler places both
    # here. Turning the webhooks off removes their configurations: stream writes are not refused meanwhile.
    elected = {**values, "replicas": 2, "leaderElection": {"enabled": True}, "metrics": {"enabled": False},
               "webhooks": {"enabled": False}}  # fmt: skip
    started = time.monotonic()
    release.apply("upgrade", elected)
    pods = eventually(lambda: only_pods(release, 2, electing), POD_TIMEOUT, "two replicas with leader election")
    assert kubectl(cluster, "get", "mutatingwebhookconfiguration,validatingwebhookconfiguration", "-o", "name",
                   "-l", f"app.kubernetes.io/instance={release.name}") == ""  # fmt: skip
    assert all(pod.spec and pod.spec.nodeName == node.name for pod in pods)
    names = [name_of(pod) for pod in pods]

    def roles() -> tuple[str, str, str] | None:
        """(leader pod, standby pod, standby identity) once one leads and the other waits."""
        leading = {n: log_line(cluster, namespace, n, "became the leader") for n in names}
        waiting = {n: log_line(cluster, namespace, n, "waiting to become the leader") for n in names}
        leaders = [n for n, line in leading.items() if line and identity_in(line) == release.lease_holder()]
        standbys = [n for n in names if not leading[n] and waiting[n]]
        if len(leaders) == 1 and len(standbys) == 1:
            return leaders[0], standbys[0], identity_in(waiting[standbys[0]] or "")
        return None

    leader, standby, standby_identity = eventually(roles, POD_TIMEOUT, "one leader and one standby")
    timings["upgrade to 2 replicas, one leading"] = time.monotonic() - started

    started = time.monotonic()
    release.admin.delete(Pod, leader, namespace=namespace)
    eventually(lambda: release.lease_holder() == standby_identity, 30, "the standby to take the Lease")
    timings["leader pod deleted to standby holding the Lease"] = time.monotonic() - started
    eventually(lambda: log_line(cluster, namespace, standby, "image stream operator started"), 30, "it to start")
    timings["leader pod deleted to standby operator started"] = time.monotonic() - started
    # The new leader acts: a new image reaches the Deployment's pods.
    started = time.monotonic()
    v3 = push_content(plain_registry, node, repository, contents["v3"])
    request_import(cluster, watched)
    timings["push v3 to new pod Running (new leader)"] = roll_to(cluster, admin, watched, v3, contents["v3"], started)

    # 6. helm upgrade with a changed setting: back to one replica with its probes and webhooks, and historyLimit 2.
    changed = {**values, "settings": {**values["settings"], "historyLimit": 2}}
    started = time.monotonic()
    release.apply("upgrade", changed)
    (upgraded,) = eventually(
        lambda: only_pods(release, 1, lambda pod: ready(pod) and env_of(pod)["IMAGESTREAMS_HISTORY_LIMIT"] == "2"),
        POD_TIMEOUT,
        "the upgraded pod to be Ready",
    )
    timings["upgrade to the new pod Ready"] = time.monotonic() - started
    # The leader releases the Lease on SIGTERM, but Helm deletes the Role for Leases (no election now) at the same
    # moment: the release is usually refused, and the Lease left to expire, with no replica left to wait for it.
    assert release.lease_holder() in ("", standby_identity)
    assert env_of(upgraded)["IMAGESTREAMS_HISTORY_LIMIT"] == "2"
    environ = "import os; print(os.environ['IMAGESTREAMS_HISTORY_LIMIT'])"
    in_process = kubectl(cluster, "exec", name_of(upgraded), "-n", namespace, "--", "python3", "-c", environ)
    assert in_process.strip() == "2"
    # The webhooks are back, with the CA the Secret kept.
    eventually(lambda: stream_writes_admitted(cluster, watched), 30, "stream writes admitted again")
    assert ca_bundles(cluster, release.fullname) == {secret["data"]["trusted-ca.crt"]}
    v4 = push_content(plain_registry, node, repository, contents["v4"])
    request_import(cluster, watched)
    tag = wait_for_tag(cluster, watched, "app", "latest", image=v4)
    assert [item["image"] for item in tag["items"]] == [v4, v3], "historyLimit 2 keeps the two newest"

    # 7. helm uninstall: nothing of the release is left but the CRD (docs/install.md, "Uninstalling").
    started = time.monotonic()
    release.helm("uninstall", release.name, "--wait", "--timeout=60s")
    assert release.helm("list", "--short") == ""
    eventually(lambda: not release.all_pods(), 30, "the operator pods to go")
    timings["uninstall"] = time.monotonic() - started
    assert_only_documented_leftovers(release, watched)

    timings["whole test (image build excluded)"] = time.monotonic() - test_started
    print("\n" + "\n".join(f"{what}: {seconds:.2f}s" for what, seconds in timings.items()))


def assert_only_documented_leftovers(release: Release, watched: str) -> None:
    """Nothing labelled with the release anywhere, cluster-wide or namespaced; in the release namespace only what
    Kubernetes makes in every namespace and the operator's Lease; the CRD, streams and workloads stay."""
    cluster, namespace = release.cluster, release.namespace
    instance = f"app.kubernetes.io/instance={release.name}"
    kinds = kubectl(cluster, "api-resources", "--verbs=list", "-o", "name").split()
    kinds = [k for k in kinds if k not in ("events", "events.events.k8s.io")]
    labelled = kubectl(cluster, "get", ",".join(kinds), "-A", "-l", instance, "-o", "name", "--ignore-not-found")
    assert labelled.strip() == "", labelled

    namespaced = kubectl(cluster, "api-resources", "--verbs=list", "--namespaced", "-o", "name").split()
    namespaced = [k for k in namespaced if k not in ("events", "events.events.k8s.io")]

    def left() -> set[str]:
        return set(kubectl(cluster, "get", ",".join(namespaced), "-n", namespace, "-o", "name").split())

    expected = {
        "configmap/kube-root-ca.crt",  # Kubernetes', in every namespace
        "serviceaccount/default",
        f"lease.coordination.k8s.io/{LEASE}",  # the operator's, not Helm's: it stays
        f"secret/{release.fullname}-webhook-tls",  # the operator's webhook CA and certificate, likewise
    }
    # The metrics Service's EndpointSlice goes with it, a moment later.
    try:
        eventually(lambda: left() == expected, 30, f"only {sorted(expected)} in {namespace}")
    except AssertionError as error:
        raise AssertionError(f"{error}; found {sorted(left())}") from None
    assert kubectl(cluster, "get", "role,rolebinding", "-n", watched, "-l", instance, "-o", "name") == ""
    assert "imagestreams.image.openshift.io" in kubectl(cluster, "get", "crd", "-o", "name")
    webhooks = "mutatingwebhookconfiguration,validatingwebhookconfiguration"
    assert kubectl(cluster, "get", webhooks, release.fullname, "--ignore-not-found", "-o", "name") == ""
    assert (
        kubectl(cluster, "get", "imagestream", "app", "-n", watched, "-o", "name")
        == "imagestream.image.openshift.io/app\n"
    )
    assert kubectl(cluster, "get", "deployment", "web", "-n", watched, "-o", "name") == "deployment.apps/web\n"


def test_the_charts_own_pod_passes_restricted_and_the_harness_pod_only_by_its_runtime_class(
    crds: LocalCluster, node: Node, solo_namespace: str
) -> None:
    """The chart's pod with its defaults is admitted by `restricted` without a warning; the harness's (hostNetwork,
    a hostPort) is refused there unless it names the RuntimeClass that admission exempts, which the node created."""
    namespace = solo_namespace
    for mode in ("enforce", "warn"):
        kubectl(crds, "label", "namespace", namespace, f"pod-security.kubernetes.io/{mode}=restricted")
    assert node.name  # the node created the RuntimeClass (handler runc, containerd's runtime)
    kubectl(crds, "create", "serviceaccount", "rel-imagestream-operator", "-n", namespace)  # the pod's, as rendered
    runtime_class = json.loads(kubectl(crds, "get", "runtimeclass", HOST_NETWORK_RUNTIME_CLASS, "-o", "json"))
    assert runtime_class["handler"] == "runc"

    def dry_run(values: dict[str, Any]) -> str:
        (deployment,) = [o for o in render(values, namespace=namespace) if o["kind"] == "Deployment"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "chart-pod", "namespace": namespace, **deployment["spec"]["template"]["metadata"]},
            "spec": deployment["spec"]["template"]["spec"],
        }
        return kubectl(crds, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False)

    admitted = dry_run({})
    assert admitted == "pod/chart-pod created (server dry run)\n", admitted  # no "Warning:" either
    harness = {
        "hostNetwork": True,
        "apiServer": {"host": "127.0.0.1", "port": "6443"},
        "metrics": {"address": "127.0.0.1"},
    }
    refused = dry_run(harness)
    assert 'violates PodSecurity "restricted:latest"' in refused, refused
    assert "host namespaces (hostNetwork=true)" in refused and "hostPort" in refused, refused
    exempt = dry_run({**harness, "runtimeClassName": HOST_NETWORK_RUNTIME_CLASS})
    assert exempt == "pod/chart-pod created (server dry run)\n", exempt

"""The operator works with exactly the rights it ships (deploy/imagestream-operator-rbac.yaml), proven by
running it under a TokenRequest token of that ServiceAccount, its admission webhooks included; and a missing rule is
caught."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagestreams.api.rbac import OPERATOR_NAME, OPERATOR_RULES, WEBHOOK_SECRET
from imagestreams.api.webhooks import CONFIGURATION_NAME, url_client_config, webhook_configurations
from imagestreams.localcluster import LocalCluster, Registry, RegistryKind
from tests.conftest import REPO_ROOT, kubectl, namespace_events, solo_settings
from tests.helpers import OperatorProcess, eventually
from tests.integration.test_metrics import free_port
from tests.streams import (
    apply_stream,
    docker_tag,
    grant_image_puller,
    insecure_tag,
    pull_secret,
    push_unique,
    triggered_deployment,
    wait_for_tag,
)

RBAC_MANIFEST = REPO_ROOT / "deploy" / "imagestream-operator-rbac.yaml"
POD = "spec.template.spec"


@pytest.fixture(scope="session")
def shipped_rbac(crds: LocalCluster) -> dict[str, Any]:
    kubectl(crds, "apply", "--server-side", "-f", str(RBAC_MANIFEST))
    documents = [d for d in yaml.safe_load_all(RBAC_MANIFEST.read_text()) if d]
    return next(d for d in documents if d["kind"] == "ServiceAccount")


def operator_as(
    crds: LocalCluster, namespaces: str, account: str, sa_namespace: str, tmp_path: Path
) -> OperatorProcess:
    kubeconfig = crds.service_account_kubeconfig(sa_namespace, account)
    settings = {**solo_settings(namespaces), "IMAGESTREAMS_EXTRA_CA_FILE": str(crds.ca_file)}
    return OperatorProcess(kubeconfig, tmp_path, settings).start()


def web_image(crds: LocalCluster, namespace: str) -> str:
    return kubectl(
        crds, "get", "deployment", "web", "-n", namespace, "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    )


def test_import_and_triggers_work_under_the_shipped_service_account(
    crds: LocalCluster,
    shipped_rbac: dict[str, Any],
    solo_namespace: str,
    cluster: LocalCluster,
    repository: str,
    tmp_path: Path,
) -> None:
    registry: Registry = cluster.registries[RegistryKind.TLS_BASIC]
    image = push_unique(registry, repository, "v1", "rbac")
    ns = solo_namespace
    other = f"{ns}-base"
    kubectl(crds, "create", "namespace", other)
    operator = operator_as(crds, f"{ns},{other}", OPERATOR_NAME, shipped_rbac["metadata"]["namespace"], tmp_path)
    try:
        # Import from a TLS registry with a pull secret: secrets list (where the namespace opted in, as
        # docs/install.md shows), status patch, events.
        account = f"{shipped_rbac['metadata']['namespace']}:{OPERATOR_NAME}"
        kubectl(
            crds, "create", "rolebinding", "imagestream-operator-pull-secrets", "-n", ns,
            "--clusterrole=imagestream-operator-pull-secrets", f"--serviceaccount={account}",
        )  # fmt: skip
        as_operator = f"--as=system:serviceaccount:{account}"
        assert kubectl(crds, "auth", "can-i", "list", "secrets", "-n", ns, as_operator, check=False).startswith("yes")
        for elsewhere in (("-n", other), ("--all-namespaces",)):
            answer = kubectl(crds, "auth", "can-i", "list", "secrets", *elsewhere, as_operator, check=False)
            assert answer.startswith("no"), elsewhere
        pull_secret(crds, ns, registry)
        apply_stream(crds, ns, "app", [docker_tag("v1", f"{registry.host}/{repository}:v1")])
        wait_for_tag(crds, ns, "app", "v1", image=image.digest)
        reference = f"{registry.host}/{repository}@{image.digest}"
        # A trigger on a Deployment (patch) and a cross-namespace trigger (subject access review).
        kubectl(crds, "apply", "-f", "-", stdin=triggered_deployment(ns, "app:v1"))
        eventually(lambda: web_image(crds, ns) == reference, what="the Deployment to follow the tag")
        grant_image_puller(crds, ns, other)
        # A Job run (jobs create/list).
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "migrate",
                "namespace": ns,
                "annotations": {
                    "image.openshift.io/triggers": json.dumps(
                        [
                            {
                                "from": {"kind": "ImageStreamTag", "name": "app:v1"},
                                "fieldPath": f'{POD}.containers[?(@.name=="main")].image',
                            }
                        ]
                    )
                },
            },
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "placeholder:0"}]}
                }
            },
        }
        kubectl(crds, "apply", "-f", "-", stdin=json.dumps(job))
        eventually(
            lambda: (
                kubectl(crds, "get", "jobs", "-n", ns, "-l", "imagestreams.dev/source-job=migrate", "-o", "name")
                or None
            ),
            what="a run of the Job",
        )

        def reasons() -> set[str]:
            return {e["reason"] for e in namespace_events(crds, ns)}

        # Events are posted after the writes they report (never delaying them), so the last may come a moment later.
        eventually(
            lambda: {"TagUpdated", "ImageChangeTriggered", "JobRunStarted"} <= reasons(),
            timeout=10,
            what="the TagUpdated, ImageChangeTriggered and JobRunStarted Events",
        )
        assert "Forbidden" not in operator.log() and " 403" not in operator.log()
    finally:
        operator.stop()
        kubectl(crds, "delete", "namespace", other, "--wait=false")


def test_a_missing_rule_is_caught(
    crds: LocalCluster,
    shipped_rbac: dict[str, Any],
    solo_namespace: str,
    plain_registry: Registry,
    repository: str,
    tmp_path: Path,
) -> None:
    """Without `patch` on deployments the trigger cannot apply: the positive test above would fail."""
    ns = solo_namespace
    reduced = [
        rule if "deployments" not in rule["resources"] else {**rule, "verbs": ["list", "watch"]}
        for rule in OPERATOR_RULES
    ]
    account = "reduced-operator"
    kubectl(crds, "create", "serviceaccount", account, "-n", ns)
    kubectl(
        crds,
        "apply",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRole",
                        "metadata": {"name": f"{ns}-reduced"},
                        "rules": reduced,
                    },
                    {
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRoleBinding",
                        "metadata": {"name": f"{ns}-reduced"},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "ClusterRole",
                            "name": f"{ns}-reduced",
                        },
                        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}],
                    },
                ],
            }
        ),
    )
    image = push_unique(plain_registry, repository, "v1", "reduced")
    operator = operator_as(crds, ns, account, ns, tmp_path)
    try:
        apply_stream(
            crds,
            ns,
            "app",
            [docker_tag("v1", f"{plain_registry.host}/{repository}:v1", importPolicy={"insecure": True})],
        )
        wait_for_tag(crds, ns, "app", "v1", image=image.digest)
        kubectl(crds, "apply", "-f", "-", stdin=triggered_deployment(ns, "app:v1"))
        eventually(lambda: "forbidden" in operator.log().lower() or None, timeout=20, what="a 403 in the operator log")
        time.sleep(2)
        assert web_image(crds, ns) == "placeholder:0"
    finally:
        operator.stop()
        kubectl(crds, "delete", "clusterrolebinding,clusterrole", f"{ns}-reduced", check=False)


def test_two_replicas_with_leader_election_one_acts_and_the_other_takes_over(
    crds: LocalCluster,
    shipped_rbac: dict[str, Any],
    solo_namespace: str,
    plain_registry: Registry,
    repository: str,
    tmp_path: Path,
) -> None:
    """Both replicas run under the shipped ServiceAccount; the Lease lives in the operator's namespace."""
    ns = solo_namespace
    lease_namespace = shipped_rbac["metadata"]["namespace"]
    kubeconfig = crds.service_account_kubeconfig(lease_namespace, OPERATOR_NAME)
    settings = {
        **solo_settings(ns),
        "IMAGESTREAMS_LEADER_ELECTION": "true",
        "IMAGESTREAMS_LEADER_ELECTION_NAMESPACE": lease_namespace,
        "IMAGESTREAMS_LEADER_ELECTION_LEASE_SECONDS": "6",
    }
    first = OperatorProcess(kubeconfig, tmp_path, settings).start()
    second = OperatorProcess(kubeconfig, tmp_path, settings).start(ready="waiting to become the leader")
    try:
        assert "became the leader" in first.log()
        image = push_unique(plain_registry, repository, "v1")
        apply_stream(crds, ns, "one", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
        wait_for_tag(crds, ns, "one", "v1", image=image.digest)
        assert "became the leader" not in second.log()
        assert "write: " not in second.log()  # the standby never acted

        first.stop()
        eventually(lambda: "became the leader" in second.log() or None, timeout=30, what="the standby to take over")
        apply_stream(crds, ns, "two", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
        wait_for_tag(crds, ns, "two", "v1", image=image.digest)
        lease = json.loads(kubectl(crds, "get", "lease", "imagestream-operator", "-n", lease_namespace, "-o", "json"))
        assert lease["spec"]["leaseTransitions"] >= 1
    finally:
        first.stop()
        second.stop()
        kubectl(crds, "delete", "lease", "imagestream-operator", "-n", lease_namespace, check=False)


def test_sigterm_releases_the_lease_and_the_standby_takes_over_at_once(
    crds: LocalCluster, shipped_rbac: dict[str, Any], solo_namespace: str, tmp_path: Path
) -> None:
    """A rolling update: the leader gets SIGTERM, stops, and releases the Lease (as client-go's ReleaseOnCancel does),
    so the standby takes over within about a second instead of waiting for the Lease to expire (the default 15 s)."""
    lease_namespace = shipped_rbac["metadata"]["namespace"]
    kubeconfig = crds.service_account_kubeconfig(lease_namespace, OPERATOR_NAME)
    settings = {
        **solo_settings(solo_namespace),
        "IMAGESTREAMS_LEADER_ELECTION": "true",
        "IMAGESTREAMS_LEADER_ELECTION_NAMESPACE": lease_namespace,
        "IMAGESTREAMS_LEADER_ELECTION_LEASE_SECONDS": "15",
    }

    def lease() -> dict[str, Any]:
        text = kubectl(crds, "get", "lease", "imagestream-operator", "-n", lease_namespace, "-o", "json")
        spec: dict[str, Any] = json.loads(text)["spec"]
        return spec

    kubectl(crds, "delete", "lease", "imagestream-operator", "-n", lease_namespace, check=False)
    first = OperatorProcess(kubeconfig, tmp_path, settings).start()
    second = OperatorProcess(kubeconfig, tmp_path, settings).start(ready="waiting to become the leader")
    try:
        assert "became the leader" in first.log()
        transitions = lease().get("leaseTransitions", 0)

        stopping = threading.Thread(target=first.stop)  # SIGTERM, then waits for the process to exit
        sent = time.monotonic()
        stopping.start()
        eventually(lambda: "became the leader" in second.log() or None, timeout=30, what="the standby to take over")
        takeover = time.monotonic() - sent
        stopping.join()
        print(f"standby took over {takeover:.2f} s after the leader's SIGTERM (lease 15 s)")
        assert takeover < 5.0
        assert "released the Lease" in first.log()
        held = lease()
        assert held["holderIdentity"] in second.log()  # "became the leader (Lease ...) as <identity>"
        assert held["leaseTransitions"] == transitions + 1

        second.stop()  # the last replica: the Lease is left released, not held for 15 s
        released = lease()
        assert not released.get("holderIdentity")
        assert released["leaseDurationSeconds"] == 1
        assert released["acquireTime"] == released["renewTime"]
        assert released["leaseTransitions"] == transitions + 1
    finally:
        first.stop()
        second.stop()
        kubectl(crds, "delete", "lease", "imagestream-operator", "-n", lease_namespace, check=False)


@pytest.fixture
def shipped_webhooks(crds: LocalCluster, shipped_rbac: dict[str, Any], solo_namespace: str) -> Iterator[int]:
    """The webhook configurations under the name deploy/'s RBAC grants (the operator's), called by URL on 127.0.0.1
    for the test's namespace only and without a CA bundle; yields the port. The Secret the operator makes is
    removed afterwards, so each run starts without one."""
    port = free_port()
    selector = {"matchLabels": {"kubernetes.io/metadata.name": solo_namespace}}
    for body in webhook_configurations(url_client_config(f"https://127.0.0.1:{port}"), selector):
        kubectl(crds, "apply", "--server-side", "-f", "-", stdin=json.dumps(body))
    try:
        yield port
    finally:
        kubectl(crds, "delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", CONFIGURATION_NAME)
        namespace = shipped_rbac["metadata"]["namespace"]
        kubectl(crds, "delete", "secret", WEBHOOK_SECRET, "-n", namespace, "--ignore-not-found")


def webhook_settings(port: int, namespace: str) -> dict[str, str]:
    """The chart's webhook settings for the operator deploy/ describes, served on 127.0.0.1."""
    return {
        "IMAGESTREAMS_WEBHOOK_PORT": str(port),
        "IMAGESTREAMS_WEBHOOK_ADDRESS": "127.0.0.1",
        "IMAGESTREAMS_WEBHOOK_HOSTS": "127.0.0.1",
        "IMAGESTREAMS_WEBHOOK_NAMESPACE": namespace,
    }


def test_the_webhooks_work_under_the_shipped_service_account(
    crds: LocalCluster, shipped_rbac: dict[str, Any], shipped_webhooks: int, solo_namespace: str, tmp_path: Path
) -> None:
    """The Secret created and read in the operator's namespace, the CA bundle patched into both configurations, and a
    stream write admitted through them (the validating webhook's access review included), all as the ServiceAccount;
    which may still read no other secret and patch no other webhook configuration."""
    sa_namespace = shipped_rbac["metadata"]["namespace"]
    kubeconfig = crds.service_account_kubeconfig(sa_namespace, OPERATOR_NAME)
    settings = {**solo_settings(solo_namespace), **webhook_settings(shipped_webhooks, sa_namespace)}
    operator = OperatorProcess(kubeconfig, tmp_path, settings).start()
    try:
        secret = json.loads(kubectl(crds, "get", "secret", WEBHOOK_SECRET, "-n", sa_namespace, "-o", "json"))
        trusted = secret["data"]["trusted-ca.crt"]
        for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
            body = json.loads(kubectl(crds, "get", kind, CONFIGURATION_NAME, "-o", "json"))
            assert {webhook["clientConfig"].get("caBundle") for webhook in body["webhooks"]} == {trusted}, kind
        stream = {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": "app", "namespace": solo_namespace},
            # Another namespace's stream as a source: the validating webhook asks a SubjectAccessReview.
            "spec": {"tags": [{"name": "v1", "from": {"kind": "ImageStreamTag", "name": "base:v1"}, "generation": 5}]},
        }

        def create() -> str | None:
            try:
                return kubectl(crds, "create", "-o", "json", "-f", "-", stdin=json.dumps(stream))
            except AssertionError:  # refused until the API server has read the CA bundle
                return None

        created = eventually(create, 15, "a stream write admitted")
        assert json.loads(created)["spec"]["tags"][0]["generation"] == 1, created  # the mutating webhook ran
        assert "forbidden" not in operator.log().lower() and " 403" not in operator.log()
        as_operator = f"--as=system:serviceaccount:{sa_namespace}:{OPERATOR_NAME}"
        for denied in (
            ("get", "secrets", "-n", sa_namespace),  # only its own Secret, by name
            ("update", "secrets/other", "-n", sa_namespace),
            ("create", "secrets", "-n", solo_namespace),  # not outside its namespace
            ("patch", "mutatingwebhookconfigurations/someone-elses"),
            ("list", "validatingwebhookconfigurations"),
        ):
            assert kubectl(crds, "auth", "can-i", *denied, as_operator, check=False).startswith("no"), denied
        assert kubectl(crds, "auth", "can-i", "update", f"secrets/{WEBHOOK_SECRET}", "-n", sa_namespace,
                       as_operator, check=False).startswith("yes")  # fmt: skip
    finally:
        operator.stop()


def test_without_the_webhook_rules_the_operator_says_why_and_exits(
    crds: LocalCluster, shipped_rbac: dict[str, Any], shipped_webhooks: int, solo_namespace: str, tmp_path: Path
) -> None:
    """An account with every operator rule but the webhooks' cannot create the Secret: the operator does not start
    half-working, it exits and names what failed."""
    ns = solo_namespace
    account = "no-webhook-rights"
    kubectl(crds, "create", "serviceaccount", account, "-n", ns)
    kubectl(crds, "create", "clusterrolebinding", f"{ns}-operator", f"--clusterrole={OPERATOR_NAME}",
            f"--serviceaccount={ns}:{account}")  # fmt: skip
    operator = OperatorProcess(
        crds.service_account_kubeconfig(ns, account),
        tmp_path,
        {**solo_settings(ns), **webhook_settings(shipped_webhooks, ns)},
    )
    try:
        operator.start(ready="cannot serve the admission webhooks")
        assert "forbidden" in operator.log().lower()
    finally:
        operator.stop()
        kubectl(crds, "delete", "clusterrolebinding", f"{ns}-operator", check=False)

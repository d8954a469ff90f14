"""The Helm chart against the real local apiserver: lint, what each mode renders, a server-side dry run, and
installs whose ServiceAccount then runs the operator through an import and a Deployment trigger.

There is no kubelet here, so the chart's pod never runs: the operator runs as a local process with the
command, arguments and environment of the installed Deployment and a TokenRequest token of the chart's
ServiceAccount, which is what the pod would get.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagestreams.api.crd import cluster_roles, custom_resource_definition, render_mirror_set
from imagestreams.api.mirrorsets import MIRROR_SET_KINDS
from imagestreams.api.rbac import (
    CLUSTER_SCOPED_RESOURCES,
    DEFAULT_NAMESPACE,
    OPERATOR_NAME,
    OPERATOR_RULES,
    PULL_SECRET_RULES,
    cluster_scoped_rules,
    cluster_wide_rules,
    namespaced_rules,
)
from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.images import unique_image
from tests.conftest import REPO_ROOT, kubectl
from tests.helpers import OperatorProcess, eventually, pusher_for
from tests.integration.test_metrics import free_port
from tests.streams import apply_stream, insecure_tag, pull_secret, triggered_deployment, wait_for_tag
from tests.unit.test_chart_render import CHART, container_env, find, helm, kube_version, render

FULLNAME = "rel-imagestream-operator"  # release "rel" in the rendering tests
# Fast settings for the installs, as the other operator tests use.
TEST_SETTINGS = {
    "scheduledIntervalSeconds": 3,
    "historyLimit": 3,
    "maxRepositoryTags": 4,
    "importWorkers": 4,
    "loopbackRegistries": True,  # the test registries listen on 127.0.0.1
}


def lint(values: dict[str, Any] | None) -> str:
    return helm(
        "lint", str(CHART), "--strict", "--kube-version", kube_version(), "--values", "-", stdin=yaml.safe_dump(values)
    ).stdout


def rules_of(objects: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    (found,) = find(objects, kind, name)
    rules: list[dict[str, Any]] = found["rules"]
    return rules


# --- lint and rendering ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        None,
        {"watchNamespaces": ["team-a", "team-b"], "rbac": {"subjectAccessReviews": False}},
        {
            "replicas": 0,
            "caBundle": {"kind": "Secret", "name": "cas"},
            "settings": {"allowedRegistries": ["quay.io"], "deniedRegistries": ["10.0.0.0/8"]},
            "clusterRoles": {"create": False},
            "logFormat": "plain",
        },
    ],
    ids=["defaults", "namespaced", "non-default"],
)
def test_lint(values: dict[str, Any] | None) -> None:
    assert "1 chart(s) linted, 0 chart(s) failed" in lint(values)


def test_defaults_render_one_cluster_wide_operator_with_exactly_the_shipped_rules() -> None:
    objects = render()
    webhooks = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Service"]  # with their rights:
    webhook_rights = ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]  # tests/unit/test_chart_render.py
    assert sorted(o["kind"] for o in objects) == sorted(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"] + ["ClusterRole"] * 4
        + webhooks + webhook_rights
    )  # fmt: skip
    # Every rule but reading secrets cluster-wide; that one is a role of its own, bound per namespace.
    assert rules_of(objects, "ClusterRole", FULLNAME) == cluster_wide_rules(secrets=False)
    assert rules_of(objects, "ClusterRole", f"{FULLNAME}-pull-secrets") == PULL_SECRET_RULES
    assert find(objects, "RoleBinding", f"{FULLNAME}-pull-secrets") == []
    (binding,) = find(objects, "ClusterRoleBinding", FULLNAME)
    assert binding["roleRef"]["name"] == FULLNAME
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": "ops"}]
    (deployment,) = find(objects, "Deployment", FULLNAME)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == FULLNAME
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["command"] == ["imagestream-operator"]
    assert container["args"] == ["--log-format=json"]
    assert container["image"] == "registry.example.com/imagestreams/imagestream-operator:0.1.0"
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["limits"]["memory"] == "512Mi"
    assert {"IMAGESTREAMS_NAMESPACES", "IMAGESTREAMS_EXTRA_CA_FILE"}.isdisjoint(container_env(objects))
    assert [m["name"] for m in container["volumeMounts"]] == ["tmp"]  # an emptyDir: the root filesystem is read-only


def test_the_cluster_roles_are_templates_equal_to_the_generated_ones_and_crds_hold_only_the_crd() -> None:
    objects = render()
    for role in cluster_roles():
        (rendered,) = find(objects, "ClusterRole", role["metadata"]["name"])
        assert rendered["rules"] == role["rules"]
        assert role["metadata"].get("labels", {}).items() <= rendered["metadata"]["labels"].items()
    with_crds = render(None, "--include-crds")
    # The chart's crds/, in file order: the mirror-set CRDs (for clusters without OpenShift's) and the stream's.
    mirror_sets = [yaml.safe_load(render_mirror_set(kind)) for kind in MIRROR_SET_KINDS]
    assert find(with_crds, "CustomResourceDefinition") == [mirror_sets[0], custom_resource_definition(), mirror_sets[1]]
    assert len(with_crds) == len(objects) + 3
    assert find(render({"clusterRoles": {"create": False}}), "ClusterRole") == [
        *find(objects, "ClusterRole", FULLNAME),
        *find(objects, "ClusterRole", f"{FULLNAME}-pull-secrets"),
        *find(objects, "ClusterRole", f"{FULLNAME}-webhooks"),
    ]


def test_namespaced_mode_renders_a_role_per_namespace_and_only_access_reviews_cluster_wide() -> None:
    objects = render({"watchNamespaces": ["team-a", "team-b"], "clusterRoles": {"create": False}})
    roles = find(objects, "Role", FULLNAME)
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert all(r["rules"] == namespaced_rules() for r in roles)
    bindings = find(objects, "RoleBinding", FULLNAME)
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert all(b["subjects"][0] == {"kind": "ServiceAccount", "name": FULLNAME, "namespace": "ops"} for b in bindings)
    # Besides the webhooks' own (their two configurations by name, tests/unit/test_chart_render.py).
    cluster_roles = [r["metadata"]["name"] for r in find(objects, "ClusterRole")]
    assert cluster_roles == [f"{FULLNAME}-access-reviews", f"{FULLNAME}-webhooks"]
    assert rules_of(objects, "ClusterRole", f"{FULLNAME}-access-reviews") == cluster_scoped_rules()
    # What no Role can grant: access reviews, and the cluster-scoped mirror sets (docs/mirrors.md).
    assert cluster_scoped_rules() == [
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        {
            "apiGroups": ["config.openshift.io"],
            "resources": ["imagedigestmirrorsets", "imagetagmirrorsets"],
            "verbs": ["list", "watch"],
        },
    ]
    assert container_env(objects)["IMAGESTREAMS_NAMESPACES"] == "team-a,team-b"
    without = render({"watchNamespaces": ["team-a"], "rbac": {"subjectAccessReviews": False}})
    assert find(without, "ClusterRole", f"{FULLNAME}-access-reviews") == []
    assert find(without, "ClusterRoleBinding", f"{FULLNAME}-access-reviews") == []


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_ca_bundle_is_mounted_read_only_and_named_in_the_environment(kind: str) -> None:
    objects = render({"caBundle": {"kind": kind, "name": "registry-cas", "key": "bundle.pem"}})
    (deployment,) = find(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "ca-bundle"]
    assert mount == {"name": "ca-bundle", "mountPath": "/etc/imagestreams/ca", "readOnly": True}
    (volume,) = [v for v in pod["volumes"] if v["name"] == "ca-bundle"]
    source = volume["configMap"] if kind == "ConfigMap" else volume["secret"]
    assert source["name" if kind == "ConfigMap" else "secretName"] == "registry-cas"
    assert source["items"] == [{"key": "bundle.pem", "path": "bundle.pem"}]
    assert source["defaultMode"] == 0o444
    assert container_env(objects)["IMAGESTREAMS_EXTRA_CA_FILE"] == "/etc/imagestreams/ca/bundle.pem"


def test_registry_lists_and_other_settings_reach_the_environment() -> None:
    env = container_env(
        render(
            {
                "settings": {
                    "allowedRegistries": ["quay.io", "*.corp.example", "10.1.0.0/16"],
                    "deniedRegistries": ["169.254.0.0/16", "bad.corp.example"],
                    "platformArchitecture": "arm64",
                },
                "excludedNamespaces": ["kube-*"],
            }
        )
    )
    assert env["IMAGESTREAMS_ALLOWED_REGISTRIES"] == "quay.io,*.corp.example,10.1.0.0/16"
    assert env["IMAGESTREAMS_DENIED_REGISTRIES"] == "169.254.0.0/16,bad.corp.example"
    assert env["IMAGESTREAMS_PLATFORM_ARCHITECTURE"] == "arm64"
    assert env["IMAGESTREAMS_EXCLUDED_NAMESPACES"] == "kube-*"


def test_replicas_and_switched_off_parts() -> None:
    objects = render({"replicas": 0, "rbac": {"create": False}, "serviceAccount": {"create": False, "name": "mine"}})
    (deployment,) = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 0
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    # The image-puller and aggregated roles, the metrics and webhook Services, and the webhook configurations.
    webhooks = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    assert {o["kind"] for o in objects} == {"Deployment", "ClusterRole", "Service", *webhooks}
    assert find(objects, "ClusterRole", FULLNAME) == []


def test_the_deployment_rendered_for_the_plain_manifests_uses_deploys_service_account() -> None:
    """docs/install.md: `kubectl apply -f crds/ -f deploy/` plus the chart's Deployment rendered as release
    imagestream-operator in namespace imagestream-operator; the names must line up."""
    shipped = [
        d for d in yaml.safe_load_all((REPO_ROOT / "deploy" / "imagestream-operator-rbac.yaml").read_text()) if d
    ]
    (account,) = find(shipped, "ServiceAccount")
    (deployment,) = find(
        render(None, "--show-only", "templates/deployment.yaml", release=OPERATOR_NAME, namespace=DEFAULT_NAMESPACE),
        "Deployment",
    )
    assert deployment["metadata"]["namespace"] == account["metadata"]["namespace"] == DEFAULT_NAMESPACE
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]


# --- against the apiserver ---------------------------------------------------------------------------------


def test_the_cluster_scoped_rules_are_exactly_those_the_apiserver_does_not_namespace(crds: LocalCluster) -> None:
    cluster_scoped = set(kubectl(crds, "api-resources", "--namespaced=false", "-o", "name").split())
    for rule in OPERATOR_RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                plural = resource.split("/")[0]
                name = f"{plural}.{group}" if group else plural
                expected = name in cluster_scoped
                assert ((group, plural) in CLUSTER_SCOPED_RESOURCES) == expected, name


def test_rendered_chart_passes_a_server_side_dry_run(crds: LocalCluster, solo_namespace: str) -> None:
    network_policy = {"networkPolicy": {"enabled": True, "apiServerCIDRs": ["127.0.0.1/32"]}}
    # Watching the release namespace and another (the webhooks never cover the operator's own namespace).
    namespaced = {"watchNamespaces": [solo_namespace, "default"]}
    for values in ({}, namespaced, network_policy):
        manifests = helm(
            "template", "dry", str(CHART), "-n", solo_namespace, "--include-crds", "--kube-version", kube_version(),
            "--values", "-", stdin=yaml.safe_dump(values),
        ).stdout  # fmt: skip
        output = kubectl(crds, "apply", "--dry-run=server", "-f", "-", stdin=manifests)
        assert "deployment.apps/dry-imagestream-operator created (server dry run)" in output


class ChartOperator(OperatorProcess):
    """The operator started with the installed Deployment's command, arguments and environment."""

    def __init__(self, kubeconfig: Path, log_dir: Path, container: dict[str, Any], env: dict[str, str]) -> None:
        rendered = {e["name"]: e.get("value", "") for e in container.get("env", [])}  # "" is omitted when read back
        # The pod serves its probes and metrics on every address at metrics.port; here, on loopback at a free port.
        self.health_port = free_port()
        health = {"IMAGESTREAMS_HEALTH_ADDRESS": "127.0.0.1", "IMAGESTREAMS_HEALTH_PORT": str(self.health_port)}
        super().__init__(kubeconfig, log_dir, {**rendered, **health, **env})
        # The console script of this checkout stands in for the image's.
        executable = Path(sys.executable).parent / container["command"][0]
        self.command = [str(executable), *container.get("args", [])]


# The chart's pod never runs here (no kubelet), so nothing would serve the webhook Service and every stream write
# would be refused: the installs below leave the webhooks out. test_helm_e2e.py runs them, on a node.
NO_WEBHOOKS = {"webhooks": {"enabled": False}}


class Release:
    """A helm install into the local apiserver, uninstalled (and its namespace deleted) afterwards."""

    def __init__(self, cluster: LocalCluster, name: str, namespace: str) -> None:
        self.cluster, self.name, self.namespace = cluster, name, namespace
        self.fullname = f"{name}-imagestream-operator"
        self.notes = ""

    def helm(self, *args: str, stdin: str | None = None) -> str:
        kubeconfig = f"--kubeconfig={self.cluster.admin_kubeconfig}"
        return helm(*args, kubeconfig, "--namespace", self.namespace, stdin=stdin).stdout

    def install(self, values: dict[str, Any]) -> Release:
        # No --wait: without a kubelet the pod never becomes ready.
        self.notes = self.helm("install", self.name, str(CHART), "--values", "-", stdin=yaml.safe_dump(values))
        return self

    def deployment(self) -> dict[str, Any]:
        deployment: dict[str, Any] = json.loads(
            kubectl(self.cluster, "get", "deployment", self.fullname, "-n", self.namespace, "-o", "json")
        )
        return deployment

    def uninstall(self) -> None:
        self.helm("uninstall", self.name)
        assert self.helm("list", "--short") == ""
        leftovers = kubectl(
            self.cluster, "get", "clusterrole,clusterrolebinding", "-o", "name",
            "-l", f"app.kubernetes.io/instance={self.name}",
        )  # fmt: skip
        assert leftovers == ""


@pytest.fixture
def release(crds: LocalCluster, solo_namespace: str) -> Iterator[Release]:
    """A release namespace that enforces the restricted Pod Security Standard, and a release name."""
    namespace = f"{solo_namespace}-chart"
    kubectl(crds, "create", "namespace", namespace)
    kubectl(crds, "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    chart_release = Release(crds, f"r{solo_namespace.removeprefix('solo-')}", namespace)
    try:
        yield chart_release
    finally:
        chart_release.helm("uninstall", chart_release.name, "--ignore-not-found")
        kubectl(crds, "delete", "namespace", namespace, "--wait=false")


def assert_the_pod_meets_the_restricted_standard(release: Release) -> None:
    """The ReplicaSet controller creates the pod only if Pod Security admission lets it (restricted)."""
    cluster, namespace = release.cluster, release.namespace
    bare_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "control", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    refused = kubectl(cluster, "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(bare_pod), check=False)
    assert 'violates PodSecurity "restricted' in refused  # admission is on: the check below means something

    def pod_or_refusal() -> str | None:
        pods = kubectl(cluster, "get", "pods", "-n", namespace, "-o", "name")
        if pods:
            return pods
        events = kubectl(cluster, "get", "events", "-n", namespace, "--field-selector", "reason=FailedCreate")
        assert "PodSecurity" not in events, events
        return None

    eventually(pod_or_refusal, what="the ReplicaSet to create the operator pod")


def import_and_trigger(
    release: Release,
    namespace: str,
    registry: Registry,
    repository: str,
    tmp_path: Path,
    extra_env: dict[str, str],
    copy_to: str | None = None,
) -> str:
    """Run the operator as the chart's ServiceAccount: a stream imports a tag, a Deployment follows it, and
    (with `copy_to`) a stream in that namespace copies the tag, which takes a SubjectAccessReview."""
    cluster = release.cluster
    image = unique_image("chart")
    with pusher_for(registry) as client:
        client.push_image(repository, "v1", image)
    (container,) = release.deployment()["spec"]["template"]["spec"]["containers"]
    kubeconfig = cluster.service_account_kubeconfig(release.namespace, release.fullname)
    operator = ChartOperator(kubeconfig, tmp_path, container, extra_env).start()
    try:
        apply_stream(cluster, namespace, "app", [insecure_tag("v1", f"{registry.host}/{repository}:v1")])
        wait_for_tag(cluster, namespace, "app", "v1", image=image.digest)
        kubectl(cluster, "apply", "-f", "-", stdin=triggered_deployment(namespace, "app:v1"))
        reference = f"{registry.host}/{repository}@{image.digest}"
        image_path = "jsonpath={.spec.template.spec.containers[0].image}"
        eventually(
            lambda: kubectl(cluster, "get", "deployment", "web", "-n", namespace, "-o", image_path) == reference,
            what="the Deployment to follow the tag",
        )
        for probe in ("livenessProbe", "readinessProbe"):  # the paths the chart's probes ask
            path = container[probe]["httpGet"]["path"]
            with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}{path}", timeout=10) as answer:
                assert answer.status == 200, path
        if copy_to:
            source = {"kind": "ImageStreamTag", "namespace": namespace, "name": "app:v1"}
            apply_stream(cluster, copy_to, "mirror", [{"name": "v1", "from": source}])
            wait_for_tag(cluster, copy_to, "mirror", "v1", image=image.digest)
        log = operator.log()
        assert "Forbidden" not in log and " 403" not in log, log[-2000:]
        return log
    finally:
        operator.stop()


def can_i(cluster: LocalCluster, release: Release, *args: str) -> str:
    subject = f"--as=system:serviceaccount:{release.namespace}:{release.fullname}"
    return kubectl(cluster, "auth", "can-i", *args, subject, check=False).strip()


def test_cluster_wide_install_runs_the_operator_under_its_service_account(
    crds: LocalCluster,
    release: Release,
    solo_namespace: str,
    token_registry: Registry,
    repository: str,
    tmp_path: Path,
) -> None:
    # The session's `kubectl apply -f crds/` owns the shared cluster roles already, so this release does not.
    release.install(
        {
            "settings": TEST_SETTINGS,
            "verbose": True,
            "clusterRoles": {"create": False},
            "pullSecrets": {"namespaces": [solo_namespace]},
            **NO_WEBHOOKS,
        }
    )
    assert "Cluster-wide mode" in release.notes
    assert f"It reads pull secrets only in {solo_namespace} and in namespaces that bind" in release.notes
    live_role = json.loads(kubectl(crds, "get", "clusterrole", release.fullname, "-o", "json"))
    assert live_role["rules"] == cluster_wide_rules(secrets=False)
    # Least privilege by default: no secret is readable anywhere but where pull secrets were asked for.
    assert can_i(crds, release, "list", "secrets", "--all-namespaces").splitlines()[0] == "no"
    assert can_i(crds, release, "list", "secrets", "-n", "default").splitlines()[0] == "no"
    assert can_i(crds, release, "get", "secrets", "-n", solo_namespace).splitlines()[0] == "no"
    assert can_i(crds, release, "list", "secrets", "-n", solo_namespace).splitlines()[0] == "yes"
    assert can_i(crds, release, "list", "deployments.apps", "--all-namespaces").splitlines()[0] == "yes"
    assert_the_pod_meets_the_restricted_standard(release)
    # An import that needs the namespace's pull secret (the token registry refuses anonymous pulls).
    pull_secret(crds, solo_namespace, token_registry)
    # The session operator and other tests share this cluster: this one looks only at its own namespace.
    log = import_and_trigger(
        release,
        solo_namespace,
        token_registry,
        repository,
        tmp_path,
        {"IMAGESTREAMS_NAMESPACES": solo_namespace, "IMAGESTREAMS_EXCLUDED_NAMESPACES": ""},
    )
    assert log.lstrip().startswith("{")  # --log-format=json from the chart's arguments
    release.uninstall()


def test_cluster_wide_install_with_secrets_everywhere_is_a_choice(crds: LocalCluster, release: Release) -> None:
    release.install({"clusterRoles": {"create": False}, "replicas": 0, "pullSecrets": {"clusterWide": True}})
    assert "pullSecrets.clusterWide is true: it may read every secret in the cluster" in release.notes
    assert can_i(crds, release, "list", "secrets", "--all-namespaces").splitlines()[0] == "yes"
    release.uninstall()


def test_namespaced_install_cannot_read_secrets_elsewhere_and_still_works(
    crds: LocalCluster,
    release: Release,
    solo_namespace: str,
    plain_registry: Registry,
    repository: str,
    tmp_path: Path,
) -> None:
    other = f"{solo_namespace}-other"
    kubectl(crds, "create", "namespace", other)
    try:
        watched = [solo_namespace, other]
        release.install({"watchNamespaces": watched, "settings": TEST_SETTINGS, "clusterRoles": {"create": False},
                         **NO_WEBHOOKS})  # fmt: skip
        assert f"Namespaced mode: it watches only {solo_namespace}, {other}" in release.notes
        assert can_i(crds, release, "list", "secrets", "--all-namespaces").splitlines()[0] == "no"
        assert can_i(crds, release, "list", "secrets", "-n", "default").splitlines()[0] == "no"
        assert can_i(crds, release, "list", "secrets", "-n", solo_namespace).splitlines()[0] == "yes"
        assert can_i(crds, release, "create", "subjectaccessreviews").splitlines()[0] == "yes"
        assert can_i(crds, release, "list", "imagestreams.image.openshift.io", "--all-namespaces").startswith("no")
        elsewhere = can_i(crds, release, "--list", "-n", "default")
        assert "secrets" not in elsewhere and "deployments" not in elsewhere, elsewhere
        assert "subjectaccessreviews.authorization.k8s.io" in elsewhere
        assert "secrets" in can_i(crds, release, "--list", "-n", solo_namespace)
        assert_the_pod_meets_the_restricted_standard(release)
        env = container_env([release.deployment()])
        assert env["IMAGESTREAMS_NAMESPACES"] == ",".join(watched)  # the chart's own setting, used as rendered
        # Let the other namespace use this one's streams: the operator checks that with a SubjectAccessReview,
        # the one right its namespaced mode holds cluster-wide.
        kubectl(
            crds, "create", "rolebinding", "pull", "-n", solo_namespace, "--clusterrole=system:image-puller",
            f"--group=system:serviceaccounts:{other}",
        )  # fmt: skip
        import_and_trigger(
            release,
            solo_namespace,
            plain_registry,
            repository,
            tmp_path,
            {"IMAGESTREAMS_EXCLUDED_NAMESPACES": ""},
            copy_to=other,
        )
        release.uninstall()
        by_helm = "app.kubernetes.io/managed-by=Helm"
        for namespace in watched:
            assert kubectl(crds, "get", "role,rolebinding", "-n", namespace, "-l", by_helm, "-o", "name") == ""
    finally:
        kubectl(crds, "delete", "namespace", other, "--wait=false")

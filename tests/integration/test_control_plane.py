"""The local control plane is the real thing: apiserver, controllers, RBAC and TokenRequest."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx2
import pytest
from lightkube import ApiError, Client
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.batch_v1 import JobSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta, OwnerReference
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from imagestreams.localcluster import LocalCluster
from tests.helpers import cluster_tls, eventually


def pod_template(app: str) -> PodTemplateSpec:
    return PodTemplateSpec(
        metadata=ObjectMeta(labels={"app": app}),
        spec=PodSpec(containers=[Container(name="app", image="127.0.0.1:5000/demo/app:v1")]),
    )


def test_readyz_answers_with_the_cluster_ca(cluster: LocalCluster) -> None:
    response = httpx2.get(f"{cluster.server}/readyz", verify=cluster_tls(cluster))
    assert response.status_code == 200
    assert response.text == "ok"


def test_server_reports_the_pinned_kubernetes_version(cluster: LocalCluster) -> None:
    assert cluster.binaries is not None
    response = httpx2.get(f"{cluster.server}/version", verify=cluster_tls(cluster))
    assert response.json()["gitVersion"] == cluster.binaries.kubernetes_version


def test_deployment_gets_a_replicaset_from_the_controller_manager(admin: Client, namespace: str) -> None:
    admin.create(
        Deployment(
            metadata=ObjectMeta(name="web", namespace=namespace),
            spec=DeploymentSpec(selector=LabelSelector(matchLabels={"app": "web"}), template=pod_template("web")),
        )
    )

    def owned_replicaset() -> ReplicaSet | None:
        for replicaset in admin.list(ReplicaSet, namespace=namespace):
            owners = replicaset.metadata.ownerReferences or [] if replicaset.metadata else []
            if any(owner.kind == "Deployment" and owner.name == "web" for owner in owners):
                return replicaset
        return None

    replicaset = eventually(owned_replicaset, what="a ReplicaSet owned by Deployment web")
    assert replicaset.spec is not None
    assert replicaset.spec.template.spec is not None
    assert replicaset.spec.template.spec.containers[0].image == "127.0.0.1:5000/demo/app:v1"


def test_job_controller_creates_a_pod_that_stays_pending(admin: Client, namespace: str) -> None:
    template = pod_template("batch")
    assert template.spec is not None
    template.spec.restartPolicy = "Never"
    admin.create(Job(metadata=ObjectMeta(name="once", namespace=namespace), spec=JobSpec(template=template)))
    pods = eventually(
        lambda: list(admin.list(Pod, namespace=namespace, labels={"job-name": "once"})), what="the Job's pod"
    )
    assert pods[0].status is not None
    assert pods[0].status.phase == "Pending"  # no scheduler or kubelet here, by design


def test_garbage_collector_deletes_dependents(admin: Client, namespace: str) -> None:
    owner = admin.create(ConfigMap(metadata=ObjectMeta(name="owner", namespace=namespace)))
    assert owner.metadata is not None
    assert owner.metadata.uid is not None
    admin.create(
        ConfigMap(
            metadata=ObjectMeta(
                name="dependent",
                namespace=namespace,
                ownerReferences=[
                    OwnerReference(apiVersion="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
                ],
            )
        )
    )
    admin.delete(ConfigMap, "owner", namespace=namespace)

    def dependent_gone() -> bool:
        try:
            admin.get(ConfigMap, "dependent", namespace=namespace)
        except ApiError as error:
            return error.status.code == 404
        return False

    eventually(dependent_gone, what="the garbage collector to delete the dependent")


def test_namespace_deletion_completes(admin: Client) -> None:
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    admin.create(Namespace(metadata=ObjectMeta(name=name)))
    admin.create(ConfigMap(metadata=ObjectMeta(name="content", namespace=name), data={"a": "b"}))
    admin.delete(Namespace, name)

    def gone() -> bool:
        try:
            admin.get(Namespace, name)
        except ApiError as error:
            return error.status.code == 404
        return False

    eventually(gone, timeout=60, what=f"namespace {name} to finish terminating")


def grant_configmap_reading(admin: Client, namespace: str, subject: Subject) -> None:
    admin.create(
        Role(
            metadata=ObjectMeta(name="configmap-reader", namespace=namespace),
            rules=[PolicyRule(apiGroups=[""], resources=["configmaps"], verbs=["get", "list"])],
        )
    )
    admin.create(
        RoleBinding(
            metadata=ObjectMeta(name="configmap-reader", namespace=namespace),
            roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"),
            subjects=[subject],
        )
    )


def list_status(client: Client, namespace: str) -> int:
    try:
        list(client.list(ConfigMap, namespace=namespace))
    except ApiError as error:
        return error.status.code or 0
    return 200


def test_service_account_token_is_forbidden_until_a_rolebinding_allows_it(
    admin: Client, namespace: str, service_account_client: Callable[[str, str], Client]
) -> None:
    admin.create(ServiceAccount(metadata=ObjectMeta(name="robot", namespace=namespace)))
    robot = service_account_client(namespace, "robot")

    assert list_status(robot, namespace) == 403
    grant_configmap_reading(admin, namespace, Subject(kind="ServiceAccount", name="robot", namespace=namespace))
    eventually(lambda: list_status(robot, namespace) == 200, timeout=10, what="RBAC to allow the ServiceAccount")
    # The grant is namespaced: the same token is still refused elsewhere.
    assert list_status(robot, "default") == 403


def test_client_certificate_user_is_forbidden_until_a_rolebinding_allows_it(
    admin: Client, namespace: str, user_client: Callable[..., Client]
) -> None:
    tenant = user_client("tenant-a", ("tenants",))

    assert list_status(tenant, namespace) == 403
    grant_configmap_reading(
        admin, namespace, Subject(kind="Group", name="tenants", apiGroup="rbac.authorization.k8s.io")
    )
    eventually(lambda: list_status(tenant, namespace) == 200, timeout=10, what="RBAC to allow the group")


def test_an_unknown_bearer_token_is_unauthorized(cluster: LocalCluster) -> None:
    response = httpx2.get(
        f"{cluster.server}/api/v1/namespaces",
        verify=cluster_tls(cluster),
        headers={"Authorization": "Bearer not-a-real-token"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/apis/admissionregistration.k8s.io/v1", "/apis/authentication.k8s.io/v1"])
def test_webhook_and_token_review_apis_are_served(cluster: LocalCluster, path: str) -> None:
    response = httpx2.get(
        f"{cluster.server}{path}",
        verify=cluster_tls(cluster, admin=True),
    )
    assert response.status_code == 200

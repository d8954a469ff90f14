"""Reading image-field ownership from managedFields."""

from __future__ import annotations

from imagestreams.core.fieldowners import gitops_owners, image_field_path, image_owners

POD = ("spec", "template", "spec")
MANAGED = [
    {
        "manager": "argocd-controller",
        "operation": "Apply",
        "fieldsV1": {
            "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}, "f:name": {}}}}}}
        },
    },
    {
        "manager": "imagestream-operator",
        "operation": "Apply",
        "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}}},
    },
    {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "fieldsV1": {"f:status": {"f:replicas": {}}},
    },
]


def test_field_path_uses_the_list_map_key() -> None:
    assert image_field_path(POD, "initContainers", "init") == [
        "f:spec",
        "f:template",
        "f:spec",
        "f:initContainers",
        'k:{"name":"init"}',
        "f:image",
    ]


def test_owners_of_a_container_image() -> None:
    assert image_owners(MANAGED, POD, "containers", "web") == ["argocd-controller", "imagestream-operator"]
    assert image_owners(MANAGED, POD, "containers", "other") == []
    assert image_owners(None, POD, "containers", "web") == []


def test_gitops_managers_are_recognised() -> None:
    assert gitops_owners(["argocd-controller", "imagestream-operator", "kustomize-controller", "kubectl"]) == [
        "argocd-controller",
        "kustomize-controller",
    ]

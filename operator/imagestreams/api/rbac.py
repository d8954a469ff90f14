"""The rights the operator needs, in one place: the generated RBAC manifest and the Helm chart use these."""

from __future__ import annotations

from typing import Any

from imagestreams.api.imagestream import GROUP, PLURAL

OPERATOR_NAME = "imagestream-operator"
DEFAULT_NAMESPACE = "imagestream-operator"

# Every rule, with why it is needed. Nothing here reads secrets by name or writes anything but
# stream status, the triggered workloads' images, Job runs and events.
OPERATOR_RULES: list[dict[str, Any]] = [
    # Watch streams; write only their status.
    {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["patch"]},
    # Pull secrets of a stream's namespace (listed by type, never watched or cached across namespaces).
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]},
    # Events on streams and workloads.
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    # Cross-namespace sources and triggers: may namespace A pull from namespace B?
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    # Triggered workloads: watched; only the image of triggered containers is written (server-side apply).
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "daemonsets"],
        "verbs": ["list", "watch", "patch"],
    },
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["list", "watch", "patch"]},
    # Jobs are build definitions: runs are created from them and pruned.
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "watch", "create", "delete"]},
]


def operator_rbac(namespace: str = DEFAULT_NAMESPACE) -> list[dict[str, Any]]:
    """Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding for a cluster-wide operator."""
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": OPERATOR_NAME, "namespace": namespace}},
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": OPERATOR_NAME}, "rules": OPERATOR_RULES},
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": OPERATOR_NAME},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR_NAME},
            "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": namespace}],
        },
    ]

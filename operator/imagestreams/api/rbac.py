"""The rights the operator needs, in one place: the generated RBAC manifest and the Helm chart use these."""

from __future__ import annotations

from typing import Any

from imagestreams.api.imagestream import GROUP, PLURAL
from imagestreams.core.workloadkinds import WORKLOAD_TYPES, TriggerWrite

OPERATOR_NAME = "imagestream-operator"
DEFAULT_NAMESPACE = "imagestream-operator"

_TRIGGER_VERBS = {
    TriggerWrite.APPLY: ["list", "watch", "patch"],
    TriggerWrite.RUN: ["list", "watch", "create", "delete"],
}


def _workload_rules() -> list[dict[str, Any]]:
    """One rule per API group and way of writing, in the order of the table of workload kinds."""
    rules: dict[tuple[str, TriggerWrite], list[str]] = {}
    for workload in WORKLOAD_TYPES.values():
        rules.setdefault((workload.group, workload.write), []).append(workload.plural)
    return [
        {"apiGroups": [group], "resources": plurals, "verbs": list(_TRIGGER_VERBS[write])}
        for (group, write), plurals in rules.items()
    ]


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
    # Triggered workloads (every kind in core.workloadkinds): watched; for most only the image of triggered
    # containers is written (server-side apply); Jobs are build definitions: runs are created from them and pruned.
    *_workload_rules(),
]


# Reading pull secrets. In cluster-wide mode this is not granted cluster-wide by default (that would let the
# operator read every secret in the cluster): the ClusterRole PULL_SECRETS_ROLE carries it, and a RoleBinding
# to it in each namespace that uses private registries grants it there (the chart makes them for
# pullSecrets.namespaces; a namespace admin can make one too). Without it, imports there are anonymous.
PULL_SECRET_RULES: list[dict[str, Any]] = [rule for rule in OPERATOR_RULES if "secrets" in rule["resources"]]
PULL_SECRETS_ROLE = f"{OPERATOR_NAME}-pull-secrets"


def cluster_wide_rules(*, secrets: bool) -> list[dict[str, Any]]:
    """The rules of the cluster-wide ClusterRole: every rule, or every rule but reading secrets."""
    return [rule for rule in OPERATOR_RULES if secrets or rule not in PULL_SECRET_RULES]


# With leader election (several replicas), in the operator's own namespace only.
LEADER_ELECTION_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
]


# The resources of OPERATOR_RULES that are not namespaced: a Role cannot grant them, so the chart's namespaced
# mode grants them with a small ClusterRole of their own (tests check this list against the apiserver).
CLUSTER_SCOPED_RESOURCES = frozenset({("authorization.k8s.io", "subjectaccessreviews")})


def _is_cluster_scoped(rule: dict[str, Any]) -> bool:
    pairs = {(group, resource.split("/")[0]) for group in rule["apiGroups"] for resource in rule["resources"]}
    scoped = pairs & CLUSTER_SCOPED_RESOURCES
    if scoped and scoped != pairs:
        raise ValueError(f"rule mixes cluster-scoped and namespaced resources: {rule}")
    return bool(scoped)


def namespaced_rules() -> list[dict[str, Any]]:
    """The rules a Role in each watched namespace carries when the operator watches only some namespaces."""
    return [rule for rule in OPERATOR_RULES if not _is_cluster_scoped(rule)]


def cluster_scoped_rules() -> list[dict[str, Any]]:
    """The rules no Role can grant: in namespaced mode they need a ClusterRole (SubjectAccessReview only)."""
    return [rule for rule in OPERATOR_RULES if _is_cluster_scoped(rule)]


def operator_rbac(namespace: str = DEFAULT_NAMESPACE) -> list[dict[str, Any]]:
    """Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding for a cluster-wide operator, and the
    pull-secrets ClusterRole, bound nowhere: bind it in each namespace whose streams need pull secrets."""
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": OPERATOR_NAME, "namespace": namespace}},
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": OPERATOR_NAME},
            "rules": cluster_wide_rules(secrets=False),
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": PULL_SECRETS_ROLE},
            "rules": PULL_SECRET_RULES,
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": OPERATOR_NAME},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR_NAME},
            "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": namespace}],
        },
        # Only used with IMAGESTREAMS_LEADER_ELECTION=true and the Lease in this namespace.
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": f"{OPERATOR_NAME}-leader-election", "namespace": namespace},
            "rules": LEADER_ELECTION_RULES,
        },
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": f"{OPERATOR_NAME}-leader-election", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": f"{OPERATOR_NAME}-leader-election",
            },
            "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": namespace}],
        },
    ]

"""The rights the operator needs, in one place: the generated RBAC manifest and the Helm chart use these."""

from __future__ import annotations

from typing import Any

from imagestreams.api import mirrorsets
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
    # Registry mirrors for imports (ImageDigestMirrorSets, ImageTagMirrorSets, cluster-scoped): watched, never written.
    {
        "apiGroups": [mirrorsets.GROUP],
        "resources": [k.plural for k in mirrorsets.MIRROR_SET_KINDS],
        "verbs": ["list", "watch"],
    },
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


# With the admission webhooks and the operator's own certificates (not with cert-manager, whose CA injector fills the
# CA bundle): the CA bundle of its own two webhook configurations, and nothing else of them.
def webhook_configuration_rules(configuration: str) -> list[dict[str, Any]]:
    return [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
            "verbs": ["get", "patch"],
            "resourceNames": [configuration],
        },
    ]


# In the operator's own namespace only (a Role): the Secret with the webhook CA and certificate. Created on the first
# start: RBAC cannot limit `create` by name (the authorizer is not told the new object's name), so that verb is
# namespace-wide; reading and rotating it are for that one Secret.
def webhook_secret_rules(secret: str) -> list[dict[str, Any]]:
    return [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "update"], "resourceNames": [secret]},
    ]


# With push notifications, in the operator's own namespace only (a Role): reading the one Secret whose values are the
# accepted tokens. The user creates it; the operator never writes it.
def notification_secret_rules(secret: str) -> list[dict[str, Any]]:
    return [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [secret]}]


WEBHOOK_SECRET = f"{OPERATOR_NAME}-webhook-tls"  # the operator's webhook_secret default
WEBHOOKS_ROLE = f"{OPERATOR_NAME}-webhooks"  # the ClusterRole for the configurations, and the Role for the Secret


# The resources of OPERATOR_RULES that are not namespaced: a Role cannot grant them, so the chart's namespaced
# mode grants them with a small ClusterRole of their own (tests check this list against the apiserver).
CLUSTER_SCOPED_RESOURCES = frozenset(
    {
        ("authorization.k8s.io", "subjectaccessreviews"),
        *((mirrorsets.GROUP, k.plural) for k in mirrorsets.MIRROR_SET_KINDS),
    }
)


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


def _bound(role_kind: str, name: str, namespace: str, role_namespace: str | None = None) -> dict[str, Any]:
    """The binding of role `name` to the operator's ServiceAccount in `namespace` (a RoleBinding in `role_namespace`
    when given, else a ClusterRoleBinding)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding" if role_namespace else "ClusterRoleBinding",
        "metadata": {"name": name, **({"namespace": role_namespace} if role_namespace else {})},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": namespace}],
    }


def operator_rbac(namespace: str = DEFAULT_NAMESPACE, configuration: str = OPERATOR_NAME) -> list[dict[str, Any]]:
    """Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding for a cluster-wide operator, and the
    pull-secrets ClusterRole, bound nowhere: bind it in each namespace whose streams need pull secrets. For the
    admission webhooks: a ClusterRole for their two configurations (`configuration`) and a Role in `namespace` for
    their certificate's Secret."""
    rbac = "rbac.authorization.k8s.io/v1"
    leader_election = f"{OPERATOR_NAME}-leader-election"
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
        _bound("ClusterRole", OPERATOR_NAME, namespace),
        # Only used with IMAGESTREAMS_LEADER_ELECTION=true and the Lease in this namespace.
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": leader_election, "namespace": namespace},
            "rules": LEADER_ELECTION_RULES,
        },
        _bound("Role", leader_election, namespace, namespace),
        # The admission webhooks with the operator's own certificates (deploy/imagestream-operator-webhooks.yaml).
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": WEBHOOKS_ROLE},
            "rules": webhook_configuration_rules(configuration),
        },
        _bound("ClusterRole", WEBHOOKS_ROLE, namespace),
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": WEBHOOKS_ROLE, "namespace": namespace},
            "rules": webhook_secret_rules(WEBHOOK_SECRET),
        },
        _bound("Role", WEBHOOKS_ROLE, namespace, namespace),
    ]

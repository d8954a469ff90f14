"""The operator's admission webhook configurations, in one place: deploy/, the chart and the tests render these.

Three webhooks, each with the failure policy its job calls for (docs/operations.md, "Admission webhooks"):

- `lookup.imagestreams.dev` (mutating, pods and the workloads that make them): image lookup, OpenShift's
  `image.openshift.io/ImagePolicy` local-name resolution. `Ignore`: pods must stay creatable while the operator is
  down; a short name is then left as written, as OpenShift leaves one it cannot resolve.
- `mutate.imagestreams.image.openshift.io` (mutating, image streams): spec tag generations and defaults, as
  OpenShift's stream strategy sets them. `Fail`: a write that skipped these rules would import differently.
- `validate.imagestreams.image.openshift.io` (validating, image streams): cross-namespace tag sources checked
  against the requesting user (OpenShift's TagVerifier). `Fail`, for the same reason.

Only main resources are matched (no subresources): the operator's own status writes never pass through its
webhooks, and neither does anything in the namespaces listed as excluded (kube-system and the operator's own).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from imagestreams.api.imagestream import GROUP, PLURAL, VERSION

CONFIGURATION_NAME = "imagestream-operator"
# The Service in front of the webhook server (deploy/ and the chart: `<fullname>-webhook`), its port and port name.
SERVICE_NAME = f"{CONFIGURATION_NAME}-webhook"
SERVICE_PORT = 443
SERVICE_PORT_NAME = "webhooks"
LOOKUP_PATH = "/lookup"
STREAM_MUTATE_PATH = "/imagestreams/mutate"
STREAM_VALIDATE_PATH = "/imagestreams/validate"
LOOKUP_WEBHOOK = "lookup.imagestreams.dev"
STREAM_MUTATE_WEBHOOK = f"mutate.{PLURAL}.{GROUP}"
STREAM_VALIDATE_WEBHOOK = f"validate.{PLURAL}.{GROUP}"
# The API server waits this long for an answer before applying the failure policy. A lookup reads one stream.
TIMEOUT_SECONDS = 5
ALWAYS_EXCLUDED_NAMESPACES = ("kube-system",)

# What OpenShift's ImagePolicy plugin resolves by default (apiserver-library-go apis/imagepolicy/v1/defaults.go
# SetDefaults_ImagePolicyConfig), without its OpenShift-only kinds (DeploymentConfigs, Builds).
LOOKUP_RESOURCES: dict[str, tuple[str, ...]] = {
    "": ("pods", "replicationcontrollers"),
    "apps": ("deployments", "replicasets", "daemonsets", "statefulsets"),
    "batch": ("jobs", "cronjobs"),
}

ClientConfig = Callable[[str], dict[str, Any]]


def service_client_config(namespace: str, service: str, port: int = 443) -> ClientConfig:
    """Webhooks reached through a Service (the caBundle is filled in by the operator or cert-manager)."""
    return lambda path: {"service": {"namespace": namespace, "name": service, "path": path, "port": port}}


def service_hosts(namespace: str, service: str) -> tuple[str, ...]:
    """The names the serving certificate must carry: the API server asks for `<service>.<namespace>.svc`; the others
    are for clients inside the cluster."""
    return (service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local")


def url_client_config(base_url: str, ca_bundle: str = "") -> ClientConfig:
    """Webhooks reached at a URL (the local test cluster: https://127.0.0.1:PORT)."""

    def config(path: str) -> dict[str, Any]:
        result: dict[str, Any] = {"url": base_url.rstrip("/") + path}
        if ca_bundle:
            result["caBundle"] = ca_bundle
        return result

    return config


def excluding_namespaces(excluded: Sequence[str]) -> dict[str, Any]:
    """A namespace selector that matches every namespace but kube-system and `excluded`."""
    names = sorted({*ALWAYS_EXCLUDED_NAMESPACES, *excluded})
    return {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": names}]}


def _webhook(
    name: str,
    path: str,
    rules: list[dict[str, Any]],
    *,
    client_config: ClientConfig,
    namespace_selector: dict[str, Any],
    fail: bool,
) -> dict[str, Any]:
    return {
        "name": name,
        "clientConfig": client_config(path),
        "rules": rules,
        "failurePolicy": "Fail" if fail else "Ignore",
        "matchPolicy": "Equivalent",
        "namespaceSelector": copy.deepcopy(namespace_selector),  # not shared: YAML would write an alias
        "sideEffects": "None",
        "timeoutSeconds": TIMEOUT_SECONDS,
        "admissionReviewVersions": ["v1"],
    }


def _rules(group: str, version: str, resources: Sequence[str]) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": [version],
        "resources": list(resources),
        "operations": ["CREATE", "UPDATE"],
        "scope": "Namespaced",
    }


def webhook_configurations(
    client_config: ClientConfig,
    namespace_selector: dict[str, Any],
    *,
    name: str = CONFIGURATION_NAME,
    labels: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The MutatingWebhookConfiguration and the ValidatingWebhookConfiguration, both called `name`; the namespace
    selector is normally `excluding_namespaces([the operator's namespace])`."""
    metadata: dict[str, Any] = {"name": name, **({"labels": labels} if labels else {})}
    stream_rules = [_rules(GROUP, VERSION, [PLURAL])]
    lookup_rules = [_rules(group, "*", resources) for group, resources in LOOKUP_RESOURCES.items()]
    common: dict[str, Any] = {"client_config": client_config, "namespace_selector": namespace_selector}
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": dict(metadata),
        "webhooks": [
            {
                **_webhook(LOOKUP_WEBHOOK, LOOKUP_PATH, lookup_rules, fail=False, **common),
                "reinvocationPolicy": "Never",
            },
            {
                **_webhook(STREAM_MUTATE_WEBHOOK, STREAM_MUTATE_PATH, stream_rules, fail=True, **common),
                "reinvocationPolicy": "Never",
            },
        ],
    }
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": dict(metadata),
        "webhooks": [_webhook(STREAM_VALIDATE_WEBHOOK, STREAM_VALIDATE_PATH, stream_rules, fail=True, **common)],
    }
    return mutating, validating

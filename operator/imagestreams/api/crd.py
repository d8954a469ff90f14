"""Generate the ImageStream CustomResourceDefinition from the pydantic models.

Written here rather than taken from kube-custom-resource because the conversion
is short and the CRD needs details that library does not express (CEL rules,
list-map keys, printer columns with OpenShift's names).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import BaseModel

from imagestreams.api.imagestream import (
    GROUP,
    KIND,
    PLURAL,
    STREAM_NAME_PATTERN,
    VERSION,
    ImageStreamSpec,
    ImageStreamStatus,
)
from imagestreams.api.mirrorsets import MIRROR_SET_KINDS, MirrorSetKind
from imagestreams.api.mirrorsets import custom_resource_definition as mirror_set_definition
from imagestreams.api.rbac import (
    DEFAULT_NAMESPACE,
    LEADER_ELECTION_RULES,
    OPERATOR_NAME,
    OPERATOR_RULES,
    PULL_SECRET_RULES,
    cluster_scoped_rules,
    cluster_wide_rules,
    namespaced_rules,
    notification_secret_rules,
    operator_rbac,
    webhook_configuration_rules,
    webhook_secret_rules,
)
from imagestreams.api.webhooks import (
    CONFIGURATION_NAME,
    SERVICE_NAME,
    SERVICE_PORT,
    SERVICE_PORT_NAME,
    excluding_namespaces,
    service_client_config,
    webhook_configurations,
)

# The pull spec grammar of library-go's pkg/image/reference.Parse (its internal/reference ReferenceRegexp, the
# distribution grammar before IPv6 hosts), with its internal/digest ParseDigest rule folded in: sha256, sha384 or
# sha512 with exactly 64, 96 or 128 hex digits. Spelled without backslashes so the CEL string needs no escaping.
# RE2 (CEL's regex engine) matches in linear time.
_ALPHANUMERIC = "[a-z0-9]+"
_NAME_COMPONENT = f"{_ALPHANUMERIC}(?:(?:[._]|__|[-]*){_ALPHANUMERIC})*"
_HOST_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = f"{_HOST_COMPONENT}(?:[.]{_HOST_COMPONENT})*(?::[0-9]+)?"
_TAG = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}"
_DIGEST = "(?:sha256:[0-9a-fA-F]{64}|sha384:[0-9a-fA-F]{96}|sha512:[0-9a-fA-F]{128})"
PULL_SPEC_PATTERN = f"^(?:{_HOST}/)?{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$"
# reference.NameTotalLengthMax: a repository name, its host included, has at most 255 characters. The bound also
# keeps the repository rule within the API server's CEL cost budget.
REPOSITORY_MAX_LENGTH = 255

# OpenShift's ValidateImageStreamTagReference (openshift-apiserver pkg/image/apis/image/validation), as CEL so the
# apiserver refuses what OpenShift's refuses, with its messages. `from.kind` outside the three kinds is refused by
# the schema's enum; `referencePolicy.type` and `importMode` by theirs.
TAG_RULES = [
    {
        # A scheduled tag with another stream as its source is refused; scheduled without `from` is accepted.
        "rule": "!has(self.importPolicy) || !has(self.importPolicy.scheduled) || !self.importPolicy.scheduled"
        " || !has(self.from) || !has(self.from.kind) || self.from.kind == 'DockerImage'",
        "message": "only tags pointing to Docker repositories may be scheduled for background import",
        "fieldPath": ".importPolicy.scheduled",
    },
    {
        "rule": "!has(self.from) || (has(self.from.name) && self.from.name != '')",
        "message": "from.name is required",
        "fieldPath": ".from.name",
    },
    {
        "rule": "!has(self.from) || has(self.from.kind)",
        "message": "from.kind is required: valid values are 'DockerImage', 'ImageStreamImage', 'ImageStreamTag'",
        "fieldPath": ".from.kind",
    },
    # Not here: OpenShift also refuses a DockerImage from.name that does not parse. As CEL, that rule would cost
    # more than the API server's budget allows for an unbounded list of tags (it multiplies the cost by the most
    # items the list could hold), and bounding the list would refuse streams OpenShift accepts. The operator reports
    # such a tag as ImportSuccess=False InvalidSource instead (docs/openshift-differences.md).
]
REPOSITORY_RULE = {
    "rule": f"self == '' || (self.matches('{PULL_SPEC_PATTERN}') && !self.contains('@')"
    " && self.lastIndexOf(':') <= self.lastIndexOf('/'))",
    "message": "dockerImageRepository must be a repository without a tag or digest, e.g. docker.io/library/nginx",
}
NAME_RULE = {
    "rule": f"self.metadata.name.matches('{STREAM_NAME_PATTERN}')",
    "message": "name must consist of lowercase letters and digits, separated by single '.', '_' or '-' "
    "(e.g. 'my-app' or 'app.v1')",
}

PRINTER_COLUMNS = [
    {
        "name": "Image Repository",
        "type": "string",
        "jsonPath": ".status.dockerImageRepository",
        "description": "Where the stream can be pulled from, when the cluster has an integrated registry.",
    },
    # A CRD column shows only the first match of a path, so the operator keeps one-string summaries.
    {"name": "Tags", "type": "string", "jsonPath": ".status.tagsSummary", "description": "Tags with an image."},
    {
        "name": "Updated",
        "type": "date",
        "jsonPath": ".status.updated",
        "description": "When a tag last pointed at a new image.",
    },
]


def _unwrap_optional(schema: dict[str, Any]) -> dict[str, Any] | None:
    """`X | None` as X with `nullable`; None for any other anyOf."""
    options = [option for option in schema["anyOf"] if option.get("type") != "null"]
    if len(options) != 1:
        return None
    merged = {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}
    if "description" in schema:
        merged["description"] = schema["description"]
    if len(options) < len(schema["anyOf"]):
        # Optional in the model: an explicit null is accepted as OpenShift's serializer writes it
        # (`generation: null`). Without `nullable`, create prunes the null but server-side apply
        # refuses the whole object.
        merged["nullable"] = True
    return merged


def _inline(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """Resolve $refs, unwrap Optional, and drop what structural schemas do not allow."""
    if "$ref" in schema:
        target = definitions[schema["$ref"].rsplit("/", 1)[-1]]
        merged = {**copy.deepcopy(target), **{k: v for k, v in schema.items() if k != "$ref"}}
        return _inline(merged, definitions)
    if "anyOf" in schema and (unwrapped := _unwrap_optional(schema)) is not None:
        return _inline(unwrapped, definitions)
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("title", "$defs"):
            continue
        if key == "default" and value is None:
            continue
        if key == "additionalProperties" and value is True:
            continue  # extra="allow" on the models; the CRD prunes unknown fields instead
        if key == "properties":
            result[key] = {name: _inline(sub, definitions) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            result[key] = _inline(value, definitions)
        else:
            result[key] = value
    if "enum" in result and result.get("type") is None:
        result["type"] = "string"
    result.pop("required", None) if not result.get("required") else None
    return result


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _inline(raw, raw.get("$defs", {}))


def openapi_schema() -> dict[str, Any]:
    spec = _schema(ImageStreamSpec)
    spec["description"] = "What the stream tracks: its tags and where their images come from."
    spec["properties"]["dockerImageRepository"]["x-kubernetes-validations"] = [REPOSITORY_RULE]
    spec["properties"]["dockerImageRepository"]["maxLength"] = REPOSITORY_MAX_LENGTH
    spec["properties"]["tags"]["items"]["x-kubernetes-validations"] = TAG_RULES
    status = _schema(ImageStreamStatus)
    status["description"] = "What the operator observed: each tag's images, newest first, and import problems."
    return {
        "type": "object",
        "description": "An ImageStream: named tags that each resolve to an immutable image digest, with history, "
        "imported from registries and followed by workloads through image change triggers.",
        "properties": {
            "apiVersion": {"type": "string", "description": "image.openshift.io/v1"},
            "kind": {"type": "string", "description": "ImageStream"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": [NAME_RULE],
    }


def custom_resource_definition() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["is"],
                "categories": ["all"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


IMAGE_PULLER_ROLE = "system:image-puller"


def cluster_roles() -> list[dict[str, Any]]:
    """OpenShift's image-puller role, and roles that let the built-in admin/edit/view roles use streams."""
    rule_read = {"apiGroups": [GROUP], "resources": [PLURAL, f"{PLURAL}/status"], "verbs": ["get", "list", "watch"]}
    rule_write = {
        "apiGroups": [GROUP],
        "resources": [PLURAL],
        "verbs": ["create", "update", "patch", "delete", "deletecollection"],
    }

    def role(name: str, rules: list[dict[str, Any]], labels: dict[str, str] | None = None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name}
        if labels:
            metadata["labels"] = labels
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": metadata,
            "rules": rules,
        }

    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    return [
        # Bind in a source namespace to let another namespace's service accounts (and the operator on their
        # behalf) use its streams' images: `--group=system:serviceaccounts:<namespace>`.
        role(
            IMAGE_PULLER_ROLE,
            [{"apiGroups": [GROUP], "resources": [f"{PLURAL}/layers"], "verbs": ["get"]}],
        ),
        role("imagestreams-view", [rule_read], {f"{aggregate}view": "true"}),
        role(
            "imagestreams-edit",
            [
                rule_read,
                rule_write,
                {"apiGroups": [GROUP], "resources": [f"{PLURAL}/layers"], "verbs": ["get"]},
                # `kubectl imagestream tag -d` removes the tag's status history too, as deleting an ImageStreamTag
                # does on OpenShift (whose edit role may delete imagestreamtags).
                {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["patch"]},
            ],
            {f"{aggregate}edit": "true", f"{aggregate}admin": "true"},
        ),
    ]


HEADER = "# Generated from operator/imagestreams/api by `make crds`; do not edit by hand.\n"


def render() -> str:
    return HEADER + yaml.safe_dump(custom_resource_definition(), sort_keys=False, width=120)


def render_roles() -> str:
    return HEADER + yaml.safe_dump_all(cluster_roles(), sort_keys=False, width=120)


def render_operator_rbac() -> str:
    return HEADER + yaml.safe_dump_all(operator_rbac(), sort_keys=False, width=120)


def render_chart_rules() -> str:
    """The operator's rules for the Helm chart's templates: all of them (cluster-wide mode), and split by scope
    for namespaced mode (a Role per watched namespace, a ClusterRole for what no Role can grant)."""
    rules = {
        "rules": OPERATOR_RULES,
        "clusterWideRulesWithoutSecrets": cluster_wide_rules(secrets=False),
        "pullSecretRules": PULL_SECRET_RULES,
        "namespacedRules": namespaced_rules(),
        "clusterScopedRules": cluster_scoped_rules(),
        "leaderElectionRules": LEADER_ELECTION_RULES,
        # NOTIFICATIONS-SECRET: the chart puts the name of the Secret with the push notification tokens there.
        "notificationSecretRules": notification_secret_rules("NOTIFICATIONS-SECRET"),
    }
    return HEADER + yaml.safe_dump(rules, sort_keys=False, width=120)


def render_chart_cluster_roles() -> str:
    """The image-puller and aggregated roles for the chart's templates (a chart's crds/ holds only CRDs)."""
    return HEADER + yaml.safe_dump({"clusterRoles": cluster_roles()}, sort_keys=False, width=120)


# The chart's pod labels that its Services select by, for the release `imagestream-operator`: the Deployment a kubectl
# install renders with `helm template imagestream-operator` carries them.
DEPLOY_SELECTOR = {"app.kubernetes.io/name": OPERATOR_NAME, "app.kubernetes.io/instance": OPERATOR_NAME}
# deploy/'s RBAC grants the configurations by the operator's name.
assert CONFIGURATION_NAME == OPERATOR_NAME


def webhook_service(namespace: str, name: str, selector: dict[str, str]) -> dict[str, Any]:
    """The Service the API server reaches the webhooks through: ready replicas only, since the webhook server of a
    replica that is not ready may not listen yet."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": SERVICE_PORT_NAME, "port": SERVICE_PORT, "targetPort": SERVICE_PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def deploy_webhooks(namespace: str = DEFAULT_NAMESPACE) -> list[dict[str, Any]]:
    """The webhook Service and configurations for a kubectl install. No CA bundle: the operator fills it in, and an
    apply that does not name the field never takes it back."""
    configurations = webhook_configurations(
        service_client_config(namespace, SERVICE_NAME, SERVICE_PORT), excluding_namespaces([namespace])
    )
    return [webhook_service(namespace, SERVICE_NAME, DEPLOY_SELECTOR), *configurations]


def render_deploy_webhooks() -> str:
    return HEADER + yaml.safe_dump_all(deploy_webhooks(), sort_keys=False, width=120)


# Replaced by the chart's templates (templates/_helpers.tpl, "imagestream-operator.webhooks") with the release's
# names. Plain tokens that are valid where they stand, since the text is read as YAML after the replacement.
CHART_PLACEHOLDERS = {
    "namespace": "RELEASE-NAMESPACE",
    "service": "WEBHOOK-SERVICE",
    "configuration": "WEBHOOK-CONFIGURATION",
    "secret": "WEBHOOK-SECRET",
}


def render_chart_webhooks() -> str:
    """The webhook configurations and the rights they need, for the chart's templates, with placeholders for the
    release's names."""
    names = CHART_PLACEHOLDERS
    configurations = webhook_configurations(
        service_client_config(names["namespace"], names["service"], SERVICE_PORT),
        excluding_namespaces([names["namespace"]]),
        name=names["configuration"],
    )
    webhooks = {
        "configurations": list(configurations),
        "configurationRules": webhook_configuration_rules(names["configuration"]),
        "secretRules": webhook_secret_rules(names["secret"]),
    }
    return HEADER + yaml.safe_dump(webhooks, sort_keys=False, width=120)


def render_mirror_set(kind: MirrorSetKind) -> str:
    """The CRD of ImageDigestMirrorSet or ImageTagMirrorSet (api/mirrorsets.py), for clusters that lack it."""
    definition = mirror_set_definition(kind, _schema(kind.spec_model))
    return HEADER + yaml.safe_dump(definition, sort_keys=False, width=120)


# One file per mirror-set CRD, beside the ImageStream CRD: OpenShift has them already, and Helm's crds/ skips a CRD
# that exists (docs/mirrors.md says what to leave out of a kubectl install there).
MIRROR_SET_OUTPUTS: dict[str, Callable[[], str]] = {
    f"{kind.crd_name}.yaml": functools.partial(render_mirror_set, kind) for kind in MIRROR_SET_KINDS
}
OUTPUTS = {
    "imagestreams.image.openshift.io.yaml": render,
    **MIRROR_SET_OUTPUTS,
    "imagestreams-clusterroles.yaml": render_roles,
}
# Two files: the RBAC can be applied on its own (tests do), while the webhook configurations, whose stream rules fail
# closed, belong only where the operator runs.
DEPLOY_OUTPUTS = {
    "imagestream-operator-rbac.yaml": render_operator_rbac,
    "imagestream-operator-webhooks.yaml": render_deploy_webhooks,
}
# Relative to the chart directory (helm/imagestream-operator): Helm installs crds/ before the templates and
# never upgrades it; files/ is read by the templates with .Files.Get.
CHART_OUTPUTS = {
    "crds/imagestreams.image.openshift.io.yaml": render,
    **{f"crds/{name}": text for name, text in MIRROR_SET_OUTPUTS.items()},
    "files/operator-rules.yaml": render_chart_rules,
    "files/cluster-roles.yaml": render_chart_cluster_roles,
    "files/webhooks.yaml": render_chart_webhooks,
}


def main() -> None:
    import argparse  # noqa: PLC0415 - only the generator command needs it
    from pathlib import Path  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        description="Write the ImageStream CRD, its cluster roles, the operator's RBAC and webhooks, and the chart's "
        "copies."
    )
    parser.add_argument("--crds", type=Path, action="append", default=[], help="directory for the CRD and roles")
    parser.add_argument(
        "--deploy", type=Path, action="append", default=[], help="directory for the operator RBAC and webhooks"
    )
    parser.add_argument(
        "--chart", type=Path, action="append", default=[], help="Helm chart directory (writes its crds/ and files/)"
    )
    args = parser.parse_args()
    for directories, outputs in ((args.crds, OUTPUTS), (args.deploy, DEPLOY_OUTPUTS), (args.chart, CHART_OUTPUTS)):
        for directory in directories:
            for name, text in outputs.items():
                path = directory / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text())
                print(f"wrote {path}")


if __name__ == "__main__":
    main()

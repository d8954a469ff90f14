"""The Helm chart's values agree with the operator: every setting is reachable, defaults and bounds match
OperatorSettings, and what the chart renders is what the operator parses. Also the helpers for running the
pinned helm binary (tests/integration/test_chart.py uses them too)."""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagestreams.api import rbac
from imagestreams.api.settings import DEFAULT_DENIED_REGISTRIES, ENV_PREFIX, OperatorSettings
from imagestreams.api.webhooks import excluding_namespaces, service_client_config, service_hosts, webhook_configurations
from imagestreams.localcluster.binaries import Binaries, read_versions

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "imagestream-operator"
# OperatorSettings fields the chart sets from values outside `settings`.
SET_ELSEWHERE = {
    "namespaces": "watchNamespaces",
    "excluded_namespaces": "excludedNamespaces",
    "extra_ca_file": "caBundle",
    "leader_election": "leaderElection.enabled",
    "leader_election_namespace": "leaderElection (the release namespace)",
    "leader_election_lease_seconds": "leaderElection.leaseSeconds",
    "health_port": "metrics.port",
    "health_address": "metrics.address",
    "webhook_port": "webhooks.port",
    "webhook_address": "webhooks.address",
    "webhook_cert_dir": "webhooks.certManager (the mounted Secret)",
    "webhook_namespace": "webhooks (the release namespace)",
    "webhook_secret": "webhooks (<fullname>-webhook-tls)",
    "webhook_configuration": "webhooks (<fullname>; empty with certManager)",
    "webhook_hosts": "webhooks (the Service's DNS names)",
    "webhook_ca_seconds": "webhooks.certificates.caSeconds",
    "webhook_cert_seconds": "webhooks.certificates.certSeconds",
    "webhook_check_seconds": "webhooks.certificates.checkSeconds",
    "webhook_ca_publish_seconds": "webhooks.certificates.caPublishSeconds",
    "notifications_port": "notifications.port",
    "notifications_address": "notifications.address",
    "notifications_namespace": "notifications (the release namespace)",
    "notifications_secret": "notifications.secretName (<fullname>-notifications)",
}
# What the chart sets for release `rel` in namespace `ops` (template()'s defaults) with the webhooks on.
WEBHOOK_SETTINGS: dict[str, Any] = {
    "webhook_port": 9443,
    "webhook_namespace": "ops",
    "webhook_secret": "rel-imagestream-operator-webhook-tls",
    "webhook_configuration": "rel-imagestream-operator",
    "webhook_hosts": service_hosts("ops", "rel-imagestream-operator-webhook"),
}


@cache
def _helm_home() -> dict[str, str]:
    """Empty helm config, cache and data directories, so tests neither read nor write the user's."""
    home = Path(tempfile.mkdtemp(prefix="imagestreams-helm-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return {f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}


def helm(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm (versions.env; built by `make setup`); a missing binary fails, naming the fix."""
    result = subprocess.run(
        [str(Binaries.locate().helm), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **_helm_home()},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def kube_version() -> str:
    return read_versions()["K8S_VERSION"]


def template(
    values: dict[str, Any] | None = None, *args: str, release: str = "rel", namespace: str = "ops", check: bool = True
) -> subprocess.CompletedProcess[str]:
    return helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        kube_version(),
        "--values",
        "-",
        *args,
        stdin=yaml.safe_dump(values or {}),
        check=check,
    )


def render(values: dict[str, Any] | None = None, *args: str, **kwargs: Any) -> list[dict[str, Any]]:
    """The chart's objects for these values (templates only; add "--include-crds" for crds/)."""
    return [d for d in yaml.safe_load_all(template(values, *args, **kwargs).stdout) if d]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def container_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = find(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {entry["name"]: entry.get("value", "") for entry in container.get("env", [])}


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def values_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema


def field_for(key: str) -> str:
    """historyLimit -> history_limit, as the Deployment template maps it (Sprig's snakecase)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def test_every_operator_setting_is_reachable_from_the_values() -> None:
    settings_keys = {field_for(key) for key in chart_values()["settings"]}
    assert settings_keys | set(SET_ELSEWHERE) == set(OperatorSettings.model_fields)
    assert not settings_keys & set(SET_ELSEWHERE)
    assert set(values_schema()["properties"]["settings"]["properties"]) == set(chart_values()["settings"])


def test_default_settings_are_the_operators_defaults() -> None:
    for key, value in chart_values()["settings"].items():
        default = OperatorSettings.model_fields[field_for(key)].default
        if key == "deniedRegistries":
            assert value is None and default == DEFAULT_DENIED_REGISTRIES  # null: the operator keeps its own list
        elif isinstance(default, tuple):
            assert tuple(value) == default, key
        else:
            assert value == default, key


def test_schema_bounds_are_the_operators_bounds() -> None:
    model = OperatorSettings.model_json_schema()["properties"]
    schema = values_schema()["properties"]["settings"]["properties"]
    json_types = {"integer": "integer", "number": "number", "string": "string", "array": "array", "boolean": "boolean"}
    for key, chart in schema.items():
        field = model[field_for(key)]
        for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            assert chart.get(bound) == field.get(bound), f"{key}: {bound}"
        expected = field.get("type") or next(o["type"] for o in field["anyOf"] if o["type"] != "null")
        chart_types = chart["type"] if isinstance(chart["type"], list) else [chart["type"]]
        assert json_types[expected] in chart_types, key


def test_the_rendered_environment_is_what_the_operator_parses() -> None:
    values = {
        "settings": {
            "scheduledIntervalSeconds": 120,
            "maxScheduledImportsPerMinute": 0,
            "historyLimit": 25,
            "maxRepositoryTags": -1,
            "importWorkers": 8,
            "registryConcurrency": 2,
            "registryRate": 2.5,
            "platformOs": "linux",
            "platformArchitecture": "arm64",
            "allowedRegistries": ["quay.io", "*.example.com", "10.0.0.0/8"],
            "deniedRegistries": ["169.254.0.0/16", "evil.example.com:5000"],
        },
        "watchNamespaces": ["team-a", "team-b"],
        "excludedNamespaces": ["kube-*", "scratch"],
        "caBundle": {"kind": "Secret", "name": "registry-cas", "key": "bundle.pem"},
    }
    env = container_env(render(values))
    assert all(name.startswith(ENV_PREFIX) for name in env)
    parsed = OperatorSettings.from_env(env)
    assert parsed == OperatorSettings(
        scheduled_interval_seconds=120,
        max_scheduled_imports_per_minute=0,
        history_limit=25,
        max_repository_tags=-1,
        import_workers=8,
        registry_concurrency=2,
        registry_rate=2.5,
        platform_os="linux",
        platform_architecture="arm64",
        allowed_registries=("quay.io", "*.example.com", "10.0.0.0/8"),
        denied_registries=("169.254.0.0/16", "evil.example.com:5000"),
        namespaces=("team-a", "team-b"),
        excluded_namespaces=("kube-*", "scratch"),
        extra_ca_file="/etc/imagestreams/ca/bundle.pem",
        health_port=8080,
        **WEBHOOK_SETTINGS,
    )


def test_default_environment_gives_the_default_settings() -> None:
    env = container_env(render())
    assert "IMAGESTREAMS_DENIED_REGISTRIES" not in env  # the operator's built-in deny list applies
    # The chart serves probes and metrics, and the admission webhooks.
    assert OperatorSettings.from_env(env) == OperatorSettings(health_port=8080, **WEBHOOK_SETTINGS)


@pytest.mark.parametrize("number", [1_000_000, 86_400, 3])
def test_whole_numbers_render_without_an_exponent(number: int) -> None:
    """Helm reads YAML numbers as floats; 1000000 must still reach the operator as "1000000"."""
    env = container_env(render({"settings": {"scheduledIntervalSeconds": number, "maxRepositoryTags": number}}))
    assert env["IMAGESTREAMS_SCHEDULED_INTERVAL_SECONDS"] == str(number)
    assert env["IMAGESTREAMS_MAX_REPOSITORY_TAGS"] == str(number)


def test_the_rules_split_by_scope_are_a_partition_of_the_operator_rules() -> None:
    namespaced, cluster_scoped = rbac.namespaced_rules(), rbac.cluster_scoped_rules()
    assert sorted(map(repr, namespaced + cluster_scoped)) == sorted(map(repr, rbac.OPERATOR_RULES))
    assert cluster_scoped and namespaced
    generated = yaml.safe_load((CHART / "files" / "operator-rules.yaml").read_text())
    assert generated == {
        "rules": rbac.OPERATOR_RULES,
        "clusterWideRulesWithoutSecrets": rbac.cluster_wide_rules(secrets=False),
        "pullSecretRules": rbac.PULL_SECRET_RULES,
        "namespacedRules": namespaced,
        "clusterScopedRules": cluster_scoped,
        "leaderElectionRules": rbac.LEADER_ELECTION_RULES,
        "notificationSecretRules": rbac.notification_secret_rules("NOTIFICATIONS-SECRET"),
    }


def test_a_rule_that_mixes_scopes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Role cannot carry the cluster-scoped half of such a rule, so the split must not guess."""
    mixed = {
        "apiGroups": ["authorization.k8s.io", ""],
        "resources": ["subjectaccessreviews", "secrets"],
        "verbs": ["list"],
    }
    monkeypatch.setattr(rbac, "OPERATOR_RULES", [*rbac.OPERATOR_RULES, mixed])
    with pytest.raises(ValueError, match="mixes cluster-scoped and namespaced"):
        rbac.namespaced_rules()


def test_leader_election_renders_a_lease_role_rolling_updates_and_its_settings() -> None:
    objects = render({"replicas": 2, "leaderElection": {"enabled": True, "leaseSeconds": 20}})
    role = next(o for o in objects if o["kind"] == "Role" and o["metadata"]["name"].endswith("-leader-election"))
    assert role["rules"] == rbac.LEADER_ELECTION_RULES
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["IMAGESTREAMS_LEADER_ELECTION"]["value"] == "true"
    assert env["IMAGESTREAMS_LEADER_ELECTION_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["IMAGESTREAMS_LEADER_ELECTION_LEASE_SECONDS"]["value"] == "20"
    default = render({})
    assert not [o for o in default if o["kind"] == "Role" and o["metadata"]["name"].endswith("-leader-election")]
    assert next(o for o in default if o["kind"] == "Deployment")["spec"]["strategy"]["type"] == "Recreate"


def test_no_network_policy_unless_asked_and_then_egress_only_to_dns_the_apiserver_and_registries() -> None:
    assert find(render(), "NetworkPolicy") == []
    values = {"networkPolicy": {"enabled": True, "apiServerCIDRs": ["10.0.0.1/32"], "apiServerPorts": [6443]}}
    (policy,) = find(render(values), "NetworkPolicy")
    (deployment,) = find(render(values), "Deployment")
    assert policy["spec"]["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["policyTypes"] == ["Egress"]
    dns, api, registries = policy["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53} and "to" not in dns
    assert api == {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 6443}]}
    blocks = {b["ipBlock"]["cidr"]: b["ipBlock"].get("except", []) for b in registries["to"]}
    assert "127.0.0.0/8" in blocks["0.0.0.0/0"] and "169.254.0.0/16" in blocks["0.0.0.0/0"]
    assert "::1/128" in blocks["::/0"]


def test_a_network_policy_without_the_apiserver_addresses_is_refused() -> None:
    result = template({"networkPolicy": {"enabled": True}}, check=False)
    assert result.returncode != 0 and "networkPolicy.apiServerCIDRs is required" in result.stderr


def test_reading_secrets_is_split_off_from_the_cluster_wide_rules() -> None:
    assert rbac.PULL_SECRET_RULES == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]
    without = rbac.cluster_wide_rules(secrets=False)
    assert all("secrets" not in rule["resources"] for rule in without)
    assert sorted(map(repr, without + rbac.PULL_SECRET_RULES)) == sorted(map(repr, rbac.OPERATOR_RULES))
    shipped = [d for d in yaml.safe_load_all((REPO / "deploy" / "imagestream-operator-rbac.yaml").read_text()) if d]
    roles = {d["metadata"]["name"]: d["rules"] for d in shipped if d["kind"] == "ClusterRole"}
    assert roles == {
        "imagestream-operator": without,
        "imagestream-operator-pull-secrets": rbac.PULL_SECRET_RULES,
        "imagestream-operator-webhooks": rbac.webhook_configuration_rules("imagestream-operator"),
    }
    (secret_role,) = [d for d in shipped if d["kind"] == "Role" and d["metadata"]["name"].endswith("-webhooks")]
    assert all("secrets" not in rule["resources"] for rule in roles["imagestream-operator-webhooks"])
    assert secret_role["metadata"]["namespace"] == "imagestream-operator"  # secrets: a Role, never cluster-wide
    assert secret_role["rules"] == rbac.webhook_secret_rules("imagestream-operator-webhook-tls")
    bound = {d["roleRef"]["name"] for d in shipped if d["kind"] in ("ClusterRoleBinding", "RoleBinding")}
    assert "imagestream-operator-pull-secrets" not in bound  # bound per namespace by whoever opts in


def test_cluster_wide_mode_reads_pull_secrets_only_in_the_listed_namespaces() -> None:
    fullname = "rel-imagestream-operator"
    objects = render({"pullSecrets": {"namespaces": ["team-a", "team-b"]}})
    (main,) = find(objects, "ClusterRole", fullname)
    assert main["rules"] == rbac.cluster_wide_rules(secrets=False)
    (secrets,) = find(objects, "ClusterRole", f"{fullname}-pull-secrets")
    assert secrets["rules"] == rbac.PULL_SECRET_RULES
    bindings = find(objects, "RoleBinding", f"{fullname}-pull-secrets")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert all(b["roleRef"]["name"] == f"{fullname}-pull-secrets" for b in bindings)
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": fullname, "namespace": "ops"}] for b in bindings)
    everywhere = render({"pullSecrets": {"clusterWide": True, "namespaces": ["team-a"]}})
    assert find(everywhere, "ClusterRole", fullname)[0]["rules"] == rbac.OPERATOR_RULES
    assert find(everywhere, "ClusterRole", f"{fullname}-pull-secrets") == []
    assert find(everywhere, "RoleBinding", f"{fullname}-pull-secrets") == []


# --- health endpoints, metrics Service and ServiceMonitor --------------------------------------------------------


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = find(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_probes_and_the_metrics_port_are_wired_by_default() -> None:
    objects = render()
    container = operator_container(objects)
    assert container["ports"][0] == {"name": "metrics", "containerPort": 8080, "protocol": "TCP"}
    assert container_env(objects)["IMAGESTREAMS_HEALTH_PORT"] == "8080"
    assert "IMAGESTREAMS_HEALTH_ADDRESS" not in container_env(objects)  # the operator's 0.0.0.0: the kubelet's probes
    assert OperatorSettings.from_env(container_env(objects)).health_address == "0.0.0.0"
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    assert liveness["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert readiness["httpGet"] == {"path": "/readyz", "port": "metrics"}
    # The liveness check waits up to 3 s for the event loop: the probe's timeout must be longer.
    assert liveness["timeoutSeconds"] > 3 and liveness["failureThreshold"] >= 3
    assert "enabled" not in liveness and "enabled" not in readiness


def test_the_metrics_service_selects_the_operator_pods_ready_or_not() -> None:
    objects = render()
    (service,) = find(objects, "Service", "rel-imagestream-operator-metrics")
    (deployment,) = find(objects, "Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics"
    assert find(objects, "ServiceMonitor") == []  # off unless asked: it needs the Prometheus Operator's CRDs


def test_another_port_reaches_the_operator_the_probes_and_the_service() -> None:
    objects = render({"metrics": {"port": 9102}})
    container = operator_container(objects)
    assert container["ports"][0]["containerPort"] == 9102
    assert OperatorSettings.from_env(container_env(objects)).health_port == 9102
    (service,) = find(objects, "Service", "rel-imagestream-operator-metrics")
    assert service["spec"]["ports"][0]["port"] == 9102
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"  # by name: follows the port


def test_probes_and_the_service_can_be_switched_off_and_tuned() -> None:
    values = {
        "probes": {"liveness": {"enabled": False}, "readiness": {"periodSeconds": 2, "initialDelaySeconds": 1}},
        "metrics": {"service": {"enabled": False}},
    }
    objects = render(values)
    container = operator_container(objects)
    assert "livenessProbe" not in container
    assert container["readinessProbe"]["periodSeconds"] == 2
    assert container["readinessProbe"]["initialDelaySeconds"] == 1
    assert find(objects, "Service", "rel-imagestream-operator-metrics") == []


def test_the_service_monitor_scrapes_the_metrics_service() -> None:
    values = {"metrics": {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}}}}
    objects = render(values)
    (monitor,) = find(objects, "ServiceMonitor", "rel-imagestream-operator")
    (service,) = find(objects, "Service", "rel-imagestream-operator-metrics")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"metrics": {"serviceMonitor": {"enabled": True}, "service": {"enabled": False}}}, "needs metrics.service"),
        ({"metrics": {"port": 0}}, "at '/metrics/port': minimum"),
        ({"metrics": {"port": 70000}}, "at '/metrics/port': maximum"),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "at '/metrics/serviceMonitor/interval'"),
        ({"probes": {"liveness": {"periodSeconds": 0}}}, "at '/probes/liveness/periodSeconds': minimum"),
        ({"probes": {"readiness": {"path": "/"}}}, "additional properties 'path' not allowed"),
    ],
    ids=["monitor without service", "port 0", "port too high", "bad interval", "zero period", "unknown probe key"],
)
def test_bad_metrics_and_probe_values_are_refused(values: dict[str, Any], message: str) -> None:
    result = template(values, check=False)
    assert result.returncode != 0, f"helm accepted {values}"
    assert message in result.stderr, result.stderr


# --- a cluster without kube-proxy: hostNetwork, the API server's address, runtime class, scheduler ------------------

HARNESS = {
    "hostNetwork": True,
    "apiServer": {"host": "127.0.0.1", "port": "6443"},
    "metrics": {"port": 18123, "address": "127.0.0.1"},
    "runtimeClassName": "exempt",
    "schedulerName": "own-scheduler",
}


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = find(objects, "Deployment")
    return dict(deployment["spec"]["template"]["spec"])


def test_by_default_the_pod_is_a_normal_in_cluster_pod() -> None:
    objects = render()
    pod = pod_spec(objects)
    assert {"hostNetwork", "dnsPolicy", "schedulerName", "runtimeClassName"}.isdisjoint(pod)
    env = container_env(objects)
    assert {"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "IMAGESTREAMS_HEALTH_ADDRESS"}.isdisjoint(env)
    container = operator_container(objects)
    assert "host" not in container["livenessProbe"]["httpGet"] and "host" not in container["readinessProbe"]["httpGet"]


def test_host_network_values_reach_the_pod_its_environment_and_probes() -> None:
    objects = render(HARNESS)
    pod = pod_spec(objects)
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"  # cluster DNS still
    assert pod["schedulerName"] == "own-scheduler"
    assert pod["runtimeClassName"] == "exempt"
    env = container_env(objects)
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "6443")
    settings = OperatorSettings.from_env(env)
    assert (settings.health_address, settings.health_port) == ("127.0.0.1", 18123)
    container = operator_container(objects)
    # Declared (it becomes a hostPort: one replica per node); the kubelet asks the address the server listens on.
    assert container["ports"][0] == {"name": "metrics", "containerPort": 18123, "protocol": "TCP"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["host"] == "127.0.0.1"
        assert container[probe]["httpGet"]["port"] == "metrics"


@pytest.mark.parametrize("address", ["", "0.0.0.0", "::"])
def test_with_host_network_a_server_on_every_address_is_probed_at_the_pod_ip(address: str) -> None:
    container = operator_container(render({"hostNetwork": True, "metrics": {"address": address}}))
    assert "host" not in container["livenessProbe"]["httpGet"]


def test_an_integer_api_server_port_renders_as_a_string() -> None:
    env = container_env(render({"apiServer": {"host": "api.internal", "port": 6443}}))
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("api.internal", "6443")


def test_without_the_health_server_there_is_no_port_probe_or_service() -> None:
    """Several hostNetwork replicas on one node (the tests' node): they would all need the one port."""
    objects = render({**HARNESS, "metrics": {"enabled": False, "port": 18123}, "replicas": 2,
                      "leaderElection": {"enabled": True}, "webhooks": {"enabled": False}})  # fmt: skip
    container = operator_container(objects)
    assert {"ports", "livenessProbe", "readinessProbe"}.isdisjoint(container)
    env = container_env(objects)
    assert "IMAGESTREAMS_HEALTH_ADDRESS" not in env
    assert OperatorSettings.from_env(env).health_port == 0  # no server
    assert find(objects, "Service") == []
    refused = template({"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}}, check=False)
    assert refused.returncode != 0 and "needs metrics.service.enabled and metrics.enabled" in refused.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"apiServer": {"host": "127.0.0.1"}}, "at '/apiServer/port': minLength: got 0, want 1"),
        ({"apiServer": {"port": "6443"}}, "at '/apiServer/host': minLength: got 0, want 1"),
        ({"apiServer": {"host": "127.0.0.1", "port": "https"}}, "at '/apiServer/port'"),
        ({"apiServer": {"host": "127.0.0.1", "port": 70000}}, "at '/apiServer/port': maximum"),
        ({"metrics": {"address": "127.0.0.1"}}, "at '/hostNetwork': value must be true"),
        ({"metrics": {"address": "every"}}, "at '/metrics/address'"),
        ({"runtimeClassName": "Not A Name"}, "at '/runtimeClassName'"),
        ({"hostNetwork": "yes"}, "at '/hostNetwork': got string, want boolean"),
    ],
    ids=[
        "host only",
        "port only",
        "named port",
        "port too high",
        "loopback in the pod",
        "not an IP",
        "bad name",
        "string",
    ],
)
def test_bad_network_values_are_refused(values: dict[str, Any], message: str) -> None:
    result = template(values, check=False)
    assert result.returncode != 0, f"helm accepted {values}"
    assert message in result.stderr, result.stderr


# --- admission webhooks ------------------------------------------------------------------------------------------

WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def webhook_objects(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """What the chart renders for the webhooks: configurations, Service, port, env, RBAC, Certificate."""
    env = container_env(objects)
    return {
        "configurations": [o for o in objects if o["kind"] in WEBHOOK_KINDS],
        "service": find(objects, "Service", "rel-imagestream-operator-webhook"),
        "port": [p for p in operator_container(objects).get("ports", []) if p["name"] == "webhooks"],
        "env": {name: value for name, value in env.items() if name.startswith("IMAGESTREAMS_WEBHOOK_")},
        "rbac": [o for o in objects if o["metadata"]["name"] == "rel-imagestream-operator-webhooks"],
        "certificates": find(objects, "Certificate"),
    }


def test_the_webhooks_are_on_by_default_with_the_generated_configurations() -> None:
    objects = render()
    webhooks = webhook_objects(objects)
    generated = webhook_configurations(
        service_client_config("ops", "rel-imagestream-operator-webhook"), excluding_namespaces(["ops"])
    )
    rendered = {o["kind"]: o for o in webhooks["configurations"]}
    assert set(rendered) == set(WEBHOOK_KINDS)
    for configuration in generated:
        live = rendered[configuration["kind"]]
        assert live["metadata"]["name"] == "rel-imagestream-operator"
        assert live["webhooks"] == [_sorted_values(webhook) for webhook in configuration["webhooks"]]
        assert "annotations" not in live["metadata"]  # the operator fills the CA bundle, not cert-manager
        assert all("caBundle" not in webhook["clientConfig"] for webhook in live["webhooks"])
    policies = {w["name"]: w["failurePolicy"] for c in webhooks["configurations"] for w in c["webhooks"]}
    assert policies == {
        "lookup.imagestreams.dev": "Ignore",
        "mutate.imagestreams.image.openshift.io": "Fail",
        "validate.imagestreams.image.openshift.io": "Fail",
    }
    (service,) = webhooks["service"]
    (deployment,) = find(objects, "Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "webhooks", "port": 443, "targetPort": "webhooks", "protocol": "TCP"}]
    assert "publishNotReadyAddresses" not in service["spec"]  # ready replicas only
    assert webhooks["port"] == [{"name": "webhooks", "containerPort": 9443, "protocol": "TCP"}]
    assert webhooks["certificates"] == []


def _sorted_values(webhook: dict[str, Any]) -> dict[str, Any]:
    """The generated webhook as Helm renders it: the excluded namespaces in the order of the placeholder's sort."""
    selector = webhook["namespaceSelector"]["matchExpressions"][0]
    ordered = sorted(selector["values"], key=lambda name: (name != "ops", name))
    return {**webhook, "namespaceSelector": {"matchExpressions": [{**selector, "values": ordered}]}}


def test_the_webhooks_rights_are_their_two_configurations_and_one_secret_in_the_release_namespace() -> None:
    rules = {(o["kind"], o["metadata"].get("namespace")): o for o in webhook_objects(render())["rbac"]}
    assert set(rules) == {("ClusterRole", None), ("ClusterRoleBinding", None), ("Role", "ops"), ("RoleBinding", "ops")}
    assert rules[("ClusterRole", None)]["rules"] == rbac.webhook_configuration_rules("rel-imagestream-operator")
    assert rules[("Role", "ops")]["rules"] == rbac.webhook_secret_rules("rel-imagestream-operator-webhook-tls")
    subjects = [{"kind": "ServiceAccount", "name": "rel-imagestream-operator", "namespace": "ops"}]
    assert rules[("ClusterRoleBinding", None)]["subjects"] == rules[("RoleBinding", "ops")]["subjects"] == subjects
    # No secret rights outside the Role, and no cluster-wide write but the CA bundle of those two configurations.
    (cluster_role,) = find(render(), "ClusterRole", "rel-imagestream-operator-webhooks")
    (rule,) = cluster_role["rules"]
    assert rule["resourceNames"] == ["rel-imagestream-operator"] and rule["verbs"] == ["get", "patch"]


def test_webhooks_disabled_leave_no_configuration_service_port_env_or_rights() -> None:
    objects = render({"webhooks": {"enabled": False}})
    assert all(not found for found in webhook_objects(objects).values()), webhook_objects(objects)
    assert OperatorSettings.from_env(container_env(objects)).webhook_port == 0  # no server
    assert [p["name"] for p in operator_container(objects)["ports"]] == ["metrics"]
    assert not [o for o in objects if "webhook" in o["metadata"]["name"]]


def test_cert_manager_issues_the_certificate_and_injects_the_ca_bundle() -> None:
    values = {"webhooks": {"certManager": {"enabled": True, "issuerRef": {"name": "ca", "kind": "ClusterIssuer"}}}}
    objects = render(values)
    webhooks = webhook_objects(objects)
    (certificate,) = webhooks["certificates"]
    assert certificate["spec"]["issuerRef"] == {"name": "ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert certificate["spec"]["dnsNames"] == list(service_hosts("ops", "rel-imagestream-operator-webhook"))
    secret = certificate["spec"]["secretName"]
    for configuration in webhooks["configurations"]:
        annotation = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        assert annotation == f"ops/{certificate['metadata']['name']}"
    settings = OperatorSettings.from_env(container_env(objects))
    assert settings.webhook_cert_dir == "/etc/imagestreams/webhook-tls"
    assert settings.webhook_configuration == ""  # the CA bundle is cert-manager's to keep
    container = operator_container(objects)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "webhook-certificate"]
    assert mount == {"name": "webhook-certificate", "mountPath": "/etc/imagestreams/webhook-tls", "readOnly": True}
    (volume,) = [v for v in pod_spec(objects)["volumes"] if v["name"] == "webhook-certificate"]
    assert volume["secret"]["secretName"] == secret
    assert webhooks["rbac"] == []  # neither Secrets nor the configurations are the operator's to write
    refused = template({"webhooks": {"certManager": {"enabled": True}}}, check=False)
    assert refused.returncode != 0 and "at '/webhooks/certManager/issuerRef/name'" in refused.stderr


def test_namespaced_mode_sends_only_the_watched_namespaces_to_the_webhooks() -> None:
    webhooks = webhook_objects(render({"watchNamespaces": ["team-a", "ops", "team-b"]}))
    selectors = [w["namespaceSelector"] for c in webhooks["configurations"] for w in c["webhooks"]]
    expected = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                      "values": ["team-a", "team-b"]}]}  # fmt: skip
    assert selectors == [expected] * 3  # never the release namespace
    refused = template({"watchNamespaces": ["ops"]}, check=False)
    assert refused.returncode != 0 and "needs a watched namespace besides the release namespace" in refused.stderr
    assert template({"watchNamespaces": ["ops"], "webhooks": {"enabled": False}}).returncode == 0


def test_webhook_values_reach_the_operator() -> None:
    values = {
        "webhooks": {
            "port": 10443,
            "address": "::",
            "certificates": {"caSeconds": 86400, "certSeconds": 3600, "checkSeconds": 5, "caPublishSeconds": 2.5},
        }
    }
    objects = render(values, release="ops", namespace="imagestreams")
    settings = OperatorSettings.from_env(container_env(objects))
    assert (settings.webhook_port, settings.webhook_address) == (10443, "::")
    assert (settings.webhook_ca_seconds, settings.webhook_cert_seconds) == (86400, 3600)
    assert (settings.webhook_check_seconds, settings.webhook_ca_publish_seconds) == (5, 2.5)
    assert settings.webhook_configuration == "ops-imagestream-operator"
    assert settings.webhook_hosts[2] == "ops-imagestream-operator-webhook.imagestreams.svc"
    assert webhook_objects(objects)["port"][0]["containerPort"] == 10443


def test_webhook_defaults_and_bounds_are_the_operators() -> None:
    certificates = chart_values()["webhooks"]["certificates"]
    schema = values_schema()["properties"]["webhooks"]["properties"]
    model = OperatorSettings.model_json_schema()["properties"]
    for key, value in certificates.items():
        field = field_for(f"webhook{key[0].upper()}{key[1:]}")
        assert value == OperatorSettings.model_fields[field].default, key
        for bound in ("minimum", "exclusiveMinimum"):
            assert schema["certificates"]["properties"][key].get(bound) == model[field].get(bound), (key, bound)
    assert (schema["port"]["minimum"], schema["port"]["maximum"]) == (1, model["webhook_port"]["maximum"])


def test_deploy_has_the_charts_webhooks_for_the_release_imagestream_operator() -> None:
    """A kubectl install (deploy/ and the Deployment `helm template imagestream-operator` renders) gets the same
    configurations and Service as a Helm release of that name."""
    shipped = [d for d in yaml.safe_load_all((REPO / "deploy" / "imagestream-operator-webhooks.yaml").read_text()) if d]
    objects = render(release="imagestream-operator", namespace="imagestream-operator")
    for document in shipped:
        (chart,) = find(objects, document["kind"], document["metadata"]["name"])
        if document["kind"] == "Service":
            assert document["spec"] == chart["spec"]
            assert document["metadata"]["namespace"] == chart["metadata"]["namespace"]
        else:
            ordered = {w["name"]: w["namespaceSelector"]["matchExpressions"][0]["values"] for w in chart["webhooks"]}
            assert all(sorted(values) == values for values in ordered.values())
            assert document["webhooks"] == chart["webhooks"]
    assert {d["kind"] for d in shipped} == {"Service", *WEBHOOK_KINDS}
    env = container_env(objects)
    assert env["IMAGESTREAMS_WEBHOOK_SECRET"] == rbac.WEBHOOK_SECRET  # what deploy/'s Role names
    assert env["IMAGESTREAMS_WEBHOOK_CONFIGURATION"] == rbac.OPERATOR_NAME

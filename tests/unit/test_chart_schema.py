"""values.schema.json makes helm refuse bad values before anything reaches the cluster."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_chart_render import find, render, template

BAD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("two replicas without leader election", {"replicas": 2}, "at '/leaderElection/enabled': value must be true"),
    ("six replicas", {"replicas": 6, "leaderElection": {"enabled": True}}, "at '/replicas': maximum: got 6, want 5"),
    ("short lease", {"leaderElection": {"leaseSeconds": 2}}, "at '/leaderElection/leaseSeconds': minimum"),
    ("negative replicas", {"replicas": -1}, "at '/replicas': minimum"),
    ("history of zero", {"settings": {"historyLimit": 0}}, "at '/settings/historyLimit': minimum"),
    ("history over 100", {"settings": {"historyLimit": 101}}, "at '/settings/historyLimit': maximum"),
    ("fractional history", {"settings": {"historyLimit": 2.5}}, "at '/settings/historyLimit'"),
    ("too many workers", {"settings": {"importWorkers": 65}}, "at '/settings/importWorkers': maximum"),
    ("zero rate", {"settings": {"registryRate": 0}}, "at '/settings/registryRate': exclusiveMinimum"),
    ("interval under 1 s", {"settings": {"scheduledIntervalSeconds": 0.5}}, "at '/settings/scheduledIntervalSeconds'"),
    ("misspelt setting", {"settings": {"histroyLimit": 3}}, "additional properties 'histroyLimit' not allowed"),
    ("misspelt top-level key", {"watchNamespace": ["a"]}, "additional properties 'watchNamespace' not allowed"),
    ("registry list as a string", {"settings": {"allowedRegistries": "quay.io"}}, "got string, want array"),
    ("empty registry pattern", {"settings": {"deniedRegistries": [""]}}, "at '/settings/deniedRegistries/0'"),
    ("unknown log format", {"logFormat": "xml"}, "at '/logFormat'"),
    ("bad namespace name", {"watchNamespaces": ["Team_A"]}, "at '/watchNamespaces/0'"),
    ("duplicate namespace", {"watchNamespaces": ["a", "a"]}, "at '/watchNamespaces'"),
    ("CA bundle without a name", {"caBundle": {"kind": "Secret"}}, "at '/caBundle/name': minLength"),
    ("CA bundle from a file", {"caBundle": {"kind": "HostPath", "name": "x"}}, "at '/caBundle/kind'"),
    ("CA key with a slash", {"caBundle": {"kind": "ConfigMap", "name": "x", "key": "../ca"}}, "at '/caBundle/key'"),
    ("image digest that is a tag", {"image": {"digest": "latest"}}, "at '/image/digest'"),
    ("empty image repository", {"image": {"repository": ""}}, "at '/image/repository': minLength"),
    ("webhook port 0", {"webhooks": {"port": 0}}, "at '/webhooks/port': minimum"),
    ("webhook port too high", {"webhooks": {"port": 65536}}, "at '/webhooks/port': maximum"),
    ("webhooks on loopback", {"webhooks": {"address": "127.0.0.1"}}, "at '/webhooks/address'"),
    ("webhooks on IPv6 loopback", {"webhooks": {"address": "::1"}}, "at '/webhooks/address'"),
    ("webhook address not an IP", {"webhooks": {"address": "every"}}, "at '/webhooks/address'"),
    ("webhooks as a string", {"webhooks": {"enabled": "yes"}}, "at '/webhooks/enabled': got string, want boolean"),
    ("misspelt webhook key", {"webhooks": {"failurepolicy": "Fail"}}, "additional properties 'failurepolicy'"),
    (
        "serving certificate under 30 s",
        {"webhooks": {"certificates": {"certSeconds": 10}}},
        "at '/webhooks/certificates/certSeconds': minimum",
    ),
    ("CA under a minute", {"webhooks": {"certificates": {"caSeconds": 59}}}, "at '/webhooks/certificates/caSeconds'"),
    ("no certificate checks", {"webhooks": {"certificates": {"checkSeconds": 0}}}, "exclusiveMinimum"),
    (
        "cert-manager without an issuer",
        {"webhooks": {"certManager": {"enabled": True}}},
        "at '/webhooks/certManager/issuerRef/name': minLength",
    ),
]


@pytest.mark.parametrize(("values", "message"), [case[1:] for case in BAD_VALUES], ids=[c[0] for c in BAD_VALUES])
def test_bad_values_are_refused(values: dict[str, Any], message: str) -> None:
    result = template(values, check=False)
    assert result.returncode != 0, f"helm accepted {values}"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr


def test_a_fraction_given_with_set_is_a_string_and_refused() -> None:
    """Helm's --set parses only integers and booleans: fractions need --set-json or a values file."""
    result = template(None, "--set", "settings.registryRate=0.5", check=False)
    assert "at '/settings/registryRate': got string, want number" in result.stderr
    objects = render(None, "--set-json", "settings.registryRate=0.5")
    assert find(objects, "Deployment")


def test_every_documented_kind_of_value_is_accepted() -> None:
    values = {
        "replicas": 0,
        "image": {"repository": "quay.io/me/op", "digest": "sha256:" + "a" * 64, "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "pull"}],
        "serviceAccount": {"create": False, "name": "existing", "annotations": {"a": "b"}},
        "rbac": {"create": True, "subjectAccessReviews": False},
        "clusterRoles": {"create": False},
        "watchNamespaces": ["team-a"],
        "excludedNamespaces": ["kube-*"],
        "settings": {"registryRate": 0.5, "deniedRegistries": [], "allowedRegistries": ["quay.io"]},
        "caBundle": {"kind": "ConfigMap", "name": "cas", "key": "ca-bundle.crt"},
        "logFormat": "plain",
        "verbose": True,
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"operator": "Exists"}],
        "podAnnotations": {"example.com/note": "set by the test"},
        "podLabels": {"team": "platform"},
        "extraEnv": [{"name": "PYTHONASYNCIODEBUG", "value": "1"}],
        "webhooks": {
            "enabled": True,
            "port": 8443,
            "address": "0.0.0.0",
            "certificates": {"caSeconds": 86400, "certSeconds": 3600, "checkSeconds": 60, "caPublishSeconds": 0},
            "certManager": {"enabled": True, "issuerRef": {"name": "ca", "kind": "ClusterIssuer", "group": "x.io"}},
        },
    }
    (deployment,) = find(render(values), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 0
    assert pod["containers"][0]["image"] == "quay.io/me/op@sha256:" + "a" * 64
    assert pod["serviceAccountName"] == "existing"

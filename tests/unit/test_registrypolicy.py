"""The registry policy refuses denied and unlisted registries, by name, port, wildcard or address range."""

from __future__ import annotations

import pytest

from imagestreams.api.settings import DEFAULT_DENIED_REGISTRIES
from imagestreams.core.registrypolicy import RegistryPolicy, split_host_port

DEFAULT = RegistryPolicy(denied=DEFAULT_DENIED_REGISTRIES)


@pytest.mark.parametrize(
    "registry",
    [
        "169.254.169.254",
        "169.254.169.254:80",
        "metadata.google.internal",
        "169.254.1.1:5000",
        "[fe80::1]:5000",
        "[::ffff:a9fe:a9fe]",  # 169.254.169.254 written as an IPv4-mapped IPv6 address
        "[::ffff:169.254.169.254]:80",
        "[2002:a9fe:a9fe::1]",  # 6to4 form
    ],
)
def test_metadata_endpoints_are_denied_by_default(registry: str) -> None:
    refusal = DEFAULT.refusal(registry)
    assert refusal is not None
    assert f"registry {registry} is denied" in refusal


@pytest.mark.parametrize(
    "registry", ["registry-1.docker.io", "quay.io", "10.1.2.3:5000", "registry.kube-system.svc:5000"]
)
def test_ordinary_and_in_cluster_registries_are_allowed_by_default(registry: str) -> None:
    assert DEFAULT.refusal(registry) is None


@pytest.mark.parametrize(
    "registry", ["127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "localhost:5000", "x.localhost", "0.0.0.0:80", "[::]"]
)
def test_loopback_is_refused_unless_allowed(registry: str) -> None:
    refusal = DEFAULT.refusal(registry)
    assert refusal is not None and "loopback" in refusal and "IMAGESTREAMS_LOOPBACK_REGISTRIES" in refusal
    assert DEFAULT.denial(registry) is not None  # also as a redirect target or token realm
    assert RegistryPolicy(denied=DEFAULT_DENIED_REGISTRIES, loopback_allowed=True).refusal(registry) is None


def test_a_name_that_resolves_to_loopback_is_refused_at_connect_time() -> None:
    refusal = DEFAULT.address_refusal("evil.example.com:5000", ["93.184.216.34", "127.0.0.1"])
    assert refusal is not None and "resolving to 127.0.0.1:5000 is a loopback address" in refusal


def test_the_api_server_is_never_a_registry() -> None:
    policy = RegistryPolicy(loopback_allowed=True, api_server=("127.0.0.1:6443", "10.96.0.1"))
    assert "Kubernetes API server" in (policy.refusal("127.0.0.1:6443") or "")
    assert policy.refusal("127.0.0.1:5000") is None  # a registry beside a local apiserver
    assert "Kubernetes API server" in (policy.refusal("10.96.0.1") or "")
    assert "Kubernetes API server" in (policy.denial("10.96.0.1:443") or "")  # a token realm pointing at it
    assert "Kubernetes API server" in (policy.refusal("kubernetes.default.svc") or "")
    assert "Kubernetes API server" in (policy.address_refusal("api.example.com:6443", ["127.0.0.1"]) or "")
    assert policy.address_refusal("reg.example.com:5000", ["127.0.0.1"]) is None


def test_private_ranges_are_refused_when_asked_unless_listed() -> None:
    assert RegistryPolicy().refusal("10.1.2.3:5000") is None  # in-cluster registries work by default
    policy = RegistryPolicy(private_denied=True, private_allowed=("10.9.0.0/16", "registry.corp"))
    for registry in ("10.1.2.3:5000", "192.168.1.1", "172.16.0.1", "100.64.0.1", "[fd00::1]"):
        assert "private address" in (policy.refusal(registry) or ""), registry
    assert policy.refusal("10.9.1.1:5000") is None
    assert policy.refusal("quay.io") is None
    assert "private address" in (policy.address_refusal("sneaky.example.com", ["192.168.0.10"]) or "")
    assert policy.address_refusal("registry.corp:5000", ["10.1.2.3"]) is None  # listed by name
    # Being listed as private never exempts a name from the loopback rule.
    assert "loopback" in (policy.address_refusal("registry.corp:5000", ["127.0.0.1"]) or "")


@pytest.mark.parametrize(
    ("pattern", "registry", "matches"),
    [
        ("quay.io", "quay.io", True),
        ("quay.io", "QUAY.IO", True),
        ("quay.io", "quay.io:443", True),
        ("quay.io:5000", "quay.io", False),
        ("quay.io:5000", "quay.io:5000", True),
        ("*.example.com", "r.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "evil-example.com", False),
        ("10.0.0.0/8", "10.1.2.3:5000", True),
        ("10.0.0.0/8", "registry.internal", False),
        ("::1", "[::1]:5000", True),
    ],
)
def test_patterns(pattern: str, registry: str, matches: bool) -> None:
    assert (RegistryPolicy(denied=(pattern,)).refusal(registry) is not None) is matches


def test_allow_list_refuses_everything_else() -> None:
    policy = RegistryPolicy(allowed=("quay.io", "*.corp.example"))
    assert policy.refusal("quay.io") is None
    assert policy.refusal("r.corp.example") is None
    refusal = policy.refusal("registry-1.docker.io")
    assert (
        refusal == "registry registry-1.docker.io is not in the operator's allowed registries (quay.io, *.corp.example)"
    )


def test_deny_wins_over_allow() -> None:
    assert RegistryPolicy(allowed=("10.0.0.0/8",), denied=("10.0.0.1",)).refusal("10.0.0.1") is not None


def test_resolved_addresses_are_checked_too() -> None:
    refusal = DEFAULT.address_refusal("innocent.example", ["93.184.216.34", "169.254.169.254"])
    assert refusal is not None
    assert "resolves to 169.254.169.254" in refusal


@pytest.mark.parametrize(
    ("registry", "expected"),
    [("h", ("h", None)), ("h:1", ("h", "1")), ("[::1]:5", ("::1", "5")), ("::1", ("::1", None))],
)
def test_split_host_port(registry: str, expected: tuple[str, str | None]) -> None:
    assert split_host_port(registry) == expected


def test_a_registry_known_by_two_names_is_judged_by_both() -> None:
    names = ["docker.io", "registry-1.docker.io"]
    denial = RegistryPolicy(denied=("docker.io",)).refusal_for_names(names)
    assert denial is not None
    assert "docker.io is denied" in denial
    assert RegistryPolicy(allowed=("docker.io",)).refusal_for_names(names) is None
    assert RegistryPolicy(allowed=("quay.io",)).refusal_for_names(names) is not None

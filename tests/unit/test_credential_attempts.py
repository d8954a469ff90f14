"""Which pull-secret credentials an import tries, in which order: the kubelet's (pkg/credentialprovider keyring
Lookup, then kuberuntime PullImage trying each match in turn), then anonymous access last, as OpenShift's importer
retries anonymously after refused credentials (where the kubelet would stop).

The registry client moves on to the next credential only when the registry refused the one before (401/403); that
part is tested against the registries themselves (tests/integration/test_registry_client.py).
"""

from __future__ import annotations

import base64
import json

import pytest

from imagestreams.controller.importer import pull_credentials
from imagestreams.core.keyring import KeyringEntry, parse_dockercfg, parse_dockerconfigjson
from imagestreams.core.references import parse_reference
from imagestreams.registry import Credentials
from imagestreams.registry.client import candidate_identities

ANONYMOUS = "<anonymous>"


def _secret(auths: dict[str, str], *, legacy: bool = False) -> list[KeyringEntry]:
    """A pull secret's entries; each credential's username names it, its password is the username reversed."""
    encoded = {key: {"auth": base64.b64encode(f"{user}:{user[::-1]}".encode()).decode()} for key, user in auths.items()}
    if legacy:
        return parse_dockercfg(json.dumps(encoded).encode())
    return parse_dockerconfigjson(json.dumps({"auths": encoded}).encode())


def attempts(secrets: list[dict[str, str]], image: str) -> list[str]:
    """The identities an import of `image` tries, in order, given the namespace's pull secrets in list order."""
    keyring = [entry for secret in secrets for entry in _secret(secret)]
    candidates = candidate_identities(pull_credentials(keyring, parse_reference(image)))
    return [candidate.username if candidate else ANONYMOUS for candidate in candidates]


@pytest.mark.parametrize(
    ("secrets", "image", "expected"),
    [
        # nothing matches: anonymous, as the kubelet pulls without credentials
        ([], "quay.io/team/app:1", [ANONYMOUS]),
        ([{"ghcr.io": "gh"}], "quay.io/team/app:1", [ANONYMOUS]),
        ([{"quay.io/other": "other"}], "quay.io/team/app:1", [ANONYMOUS]),
        # something matches: the matches, then anonymous last (OpenShift's retry after refused credentials)
        ([{"quay.io": "only"}], "quay.io/team/app:1", ["only", ANONYMOUS]),
        # several secrets for one registry: in the order the secrets are listed (a stale one first is passed over)
        ([{"quay.io": "stale"}, {"quay.io": "good"}], "quay.io/team/app:1", ["stale", "good", ANONYMOUS]),
        ([{"quay.io": "good"}, {"quay.io": "stale"}], "quay.io/team/app:1", ["good", "stale", ANONYMOUS]),
        # the more specific key first, whatever the secret order
        ([{"quay.io": "host"}, {"quay.io/team": "team"}], "quay.io/team/app:1", ["team", "host", ANONYMOUS]),
        (
            [{"quay.io": "host"}, {"quay.io/team/app": "repo"}, {"quay.io/team": "team"}],
            "quay.io/team/app:1",
            ["repo", "team", "host", ANONYMOUS],
        ),
        # an exact host before a wildcard
        ([{"*.example.com": "wild"}, {"r.example.com": "exact"}], "r.example.com/app", ["exact", "wild", ANONYMOUS]),
        # one key under several spellings keeps the secrets' order
        (
            [{"https://index.docker.io/v1/": "hub-a"}, {"docker.io": "hub-b"}],
            "nginx",
            ["hub-a", "hub-b", ANONYMOUS],
        ),
        # a credential is never offered to a host it was not issued for: ports, labels and paths must match
        ([{"localhost": "no-port"}], "localhost:5000/app", [ANONYMOUS]),
        ([{"localhost:5001": "other-port"}, {"localhost:5000": "right"}], "localhost:5000/app", ["right", ANONYMOUS]),
        ([{"*.quay.io": "sub"}, {"quay.io": "host"}], "quay.io/team/app:1", ["host", ANONYMOUS]),
        ([{"quay.io": "quay"}, {"docker.io": "hub"}], "docker.io/team/app", ["hub", ANONYMOUS]),
        # the same credential in two secrets is tried once
        ([{"quay.io": "same"}, {"quay.io": "same"}, {"quay.io": "next"}], "quay.io/a/b", ["same", "next", ANONYMOUS]),
    ],
)
def test_attempt_order(secrets: list[dict[str, str]], image: str, expected: list[str]) -> None:
    assert attempts(secrets, image) == expected


def test_legacy_and_current_secret_types_share_one_order() -> None:
    keyring = _secret({"quay.io": "current"}) + _secret({"quay.io": "legacy"}, legacy=True)
    found = pull_credentials(keyring, parse_reference("quay.io/team/app"))
    assert [credentials.username for credentials in found] == ["current", "legacy"]
    assert found[0] == Credentials("current", "tnerruc")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, [None]),
        ((), [None]),
        ([], [None]),
        (Credentials("a", "1"), [Credentials("a", "1"), None]),
        ([Credentials("a", "1"), Credentials("b", "2")], [Credentials("a", "1"), Credentials("b", "2"), None]),
        ([Credentials("a", "1"), Credentials("a", "1")], [Credentials("a", "1"), None]),
        ([Credentials("a", "1"), Credentials("a", "2")], [Credentials("a", "1"), Credentials("a", "2"), None]),
    ],
)
def test_candidate_identities(
    given: Credentials | list[Credentials] | tuple[Credentials, ...] | None, expected: list[Credentials | None]
) -> None:
    assert candidate_identities(given) == expected

"""Which pull-secret credentials an import tries, in which order: the kubelet's (pkg/credentialprovider keyring
Lookup, then kuberuntime PullImage trying each match in turn), then anonymous access last, as OpenShift's importer
retries anonymously after refused credentials (where the kubelet would stop).

The registry client moves on to the next attempt only when the registry refused the one before (401/403): tables
here for the pure decision (`auth.after_attempt`) and for the loop that runs it (`auth.each_credential`) with
scripted answers; tests/integration/test_registry_client.py checks the same against the registries themselves.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from imagestreams.controller.importer import pull_credentials
from imagestreams.core.keyring import KeyringEntry, parse_dockercfg, parse_dockerconfigjson
from imagestreams.core.references import parse_reference
from imagestreams.registry import Credentials, Reason, RegistryError
from imagestreams.registry.auth import (
    Call,
    Next,
    Outcome,
    after_attempt,
    credential_attempts,
    each_credential,
    outcome_of,
)

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
    candidates = credential_attempts(pull_credentials(keyring, parse_reference(image)))
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
def test_credential_attempts(
    given: Credentials | list[Credentials] | tuple[Credentials, ...] | None, expected: list[Credentials | None]
) -> None:
    assert credential_attempts(given) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, Outcome.ACCEPTED),
        (RegistryError(Reason.UNAUTHORIZED, "", status=401), Outcome.REFUSED),
        (RegistryError(Reason.FORBIDDEN, "", status=403), Outcome.REFUSED),
        (RegistryError(Reason.NOT_FOUND, "", status=404), Outcome.FAILED),
        (RegistryError(Reason.TOO_MANY_REQUESTS, "", status=429), Outcome.FAILED),
        (RegistryError(Reason.INTERNAL_ERROR, "", status=500), Outcome.FAILED),
        (RegistryError(Reason.TIMEOUT, ""), Outcome.FAILED),  # below HTTP: no status
        (RegistryError(Reason.FORBIDDEN, "refused by the operator's registry policy"), Outcome.FAILED),
    ],
)
def test_outcome_of(error: RegistryError | None, expected: Outcome) -> None:
    assert outcome_of(error) is expected


@pytest.mark.parametrize(
    ("outcome", "number", "total", "expected"),
    [
        (Outcome.ACCEPTED, 1, 1, Next.RETURN),
        (Outcome.ACCEPTED, 2, 3, Next.RETURN),
        (Outcome.ACCEPTED, 3, 3, Next.RETURN),
        (Outcome.FAILED, 1, 1, Next.RAISE),
        (Outcome.FAILED, 1, 3, Next.RAISE),  # another credential would meet the same answer
        (Outcome.FAILED, 3, 3, Next.RAISE),
        (Outcome.REFUSED, 1, 3, Next.TRY_NEXT),
        (Outcome.REFUSED, 2, 3, Next.TRY_NEXT),  # anonymous still to come
        (Outcome.REFUSED, 3, 3, Next.RAISE_ALL_REFUSED),  # anonymous refused too: what the credentials got
        (Outcome.REFUSED, 1, 1, Next.RAISE),  # anonymous alone: its own answer
    ],
)
def test_after_attempt(outcome: Outcome, number: int, total: int, expected: Next) -> None:
    assert after_attempt(outcome, number, total) is expected


OK = "ok"
NETWORK = "network"  # a failure below HTTP, which carries no status


async def run_attempts(given: list[str], answers: dict[str, int | str]) -> tuple[list[str], str]:
    """Run `each_credential` for credentials named `given` against a registry scripted by `answers` (name -> OK,
    NETWORK or an HTTP status; unnamed: 401): who was tried, in order, and the answer ("ok as NAME") or the error
    message ("STATUS as NAME", the all-refused summary shortened to "(all N refused)")."""
    tried: list[str] = []

    async def operation(call: Call) -> str:
        name = call.credentials.username if call.credentials else ANONYMOUS
        tried.append(name)
        answer = answers.get(name, 401)
        if answer == OK:
            return f"ok as {name}"
        if answer == NETWORK:
            raise RegistryError(Reason.INTERNAL_ERROR, f"network as {name}")
        raise RegistryError(Reason.UNAUTHORIZED, f"{answer} as {name}", status=int(answer))

    anonymous = Call("r.example", "team/app", "r.example/team/app:1", None, insecure=False)
    credentials = [Credentials(name, "secret") for name in given]
    try:
        result = await each_credential(anonymous, credentials, operation)
    except RegistryError as error:
        result = re.sub(r" \(each of the (\d+) credentials .*\)$", r" (all \1 refused)", error.message)
    return tried, result


A = ANONYMOUS


@pytest.mark.parametrize(
    ("given", "answers", "tried", "result"),
    [
        # no credentials: anonymous only, whatever it gets
        ([], {A: OK}, [A], "ok as <anonymous>"),
        ([], {A: 401}, [A], "401 as <anonymous>"),
        ([], {A: 404}, [A], "404 as <anonymous>"),
        # one credential accepted: nothing else tried
        (["a"], {"a": OK}, ["a"], "ok as a"),
        # a stale credential listed first is passed over, on 401 and on 403
        (["stale", "good"], {"stale": 401, "good": OK}, ["stale", "good"], "ok as good"),
        (["stale", "good"], {"stale": 403, "good": OK}, ["stale", "good"], "ok as good"),
        (["good", "stale"], {"good": OK}, ["good"], "ok as good"),
        # all refused, then anonymous: a public image behind stale secrets still imports
        (["a", "b"], {A: OK}, ["a", "b", A], "ok as <anonymous>"),
        # anonymous refused too: the answer the credentials got; each named when there were several
        (["a"], {}, ["a", A], "401 as a"),
        (["a", "b"], {"a": 401, "b": 403, A: 401}, ["a", "b", A], "403 as b (all 2 refused)"),
        (["a", "b", "c"], {}, ["a", "b", "c", A], "401 as c (all 3 refused)"),
        # anonymous failing otherwise after refusals: its own answer
        (["a"], {A: 404}, ["a", A], "404 as <anonymous>"),
        # any other error stops at once: other credentials would meet the same
        (["a", "b"], {"a": 404}, ["a"], "404 as a"),
        (["a", "b"], {"a": 429}, ["a"], "429 as a"),
        (["a", "b"], {"a": 500}, ["a"], "500 as a"),
        (["a", "b"], {"a": NETWORK}, ["a"], "network as a"),
        (["a", "b"], {"a": 401, "b": 404}, ["a", "b"], "404 as b"),
        # the same credential twice is tried once
        (["a", "a", "b"], {"b": OK}, ["a", "b"], "ok as b"),
    ],
)
async def test_each_credential(given: list[str], answers: dict[str, int | str], tried: list[str], result: str) -> None:
    assert await run_attempts(given, answers) == (tried, result)

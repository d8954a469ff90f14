"""WWW-Authenticate parsing: quoted values may hold commas, escapes and spaces."""

from __future__ import annotations

import pytest

from imagestreams.registry.challenges import Challenge, parse_challenges, pick_challenge


def test_bearer_with_commas_inside_the_quoted_scope() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull,push"'
    )
    [challenge] = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.docker.io/token"
    assert challenge.service == "registry.docker.io"
    assert challenge.scope == "repository:library/nginx:pull,push"


def test_basic_realm_with_spaces_and_a_comma() -> None:
    [challenge] = parse_challenges('Basic realm="Registry Realm, staff only"')
    assert challenge == Challenge("basic", {"realm": "Registry Realm, staff only"})


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Bearer realm="a\\"b"', {"realm": 'a"b'}),
        ('Bearer  realm = "x" ,  service="y"', {"realm": "x", "service": "y"}),
        ("Bearer realm=https://h/token?a=b,service=svc", {"realm": "https://h/token?a=b", "service": "svc"}),
        ('BEARER REALM="x"', {"realm": "x"}),
        ('Bearer realm="x",error="insufficient_scope"', {"realm": "x", "error": "insufficient_scope"}),
        ('Bearer realm="first",realm="second"', {"realm": "first"}),
    ],
)
def test_parameter_grammar(header: str, expected: dict[str, str]) -> None:
    [challenge] = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert dict(challenge.params) == expected


def test_several_challenges_in_one_header() -> None:
    challenges = parse_challenges('Basic realm="a, b", Bearer realm="https://t",service="s,v"')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].realm == "a, b"
    assert challenges[1].service == "s,v"


def test_token68_scheme_does_not_swallow_the_next_challenge() -> None:
    challenges = parse_challenges('Negotiate abc==, Basic realm="r"')
    assert [c.scheme for c in challenges] == ["negotiate", "basic"]
    assert challenges[1].realm == "r"


@pytest.mark.parametrize("header", ["", "   ", ",,"])
def test_empty_headers_hold_no_challenge(header: str) -> None:
    assert parse_challenges(header) == []


def test_pick_prefers_bearer_with_realm_then_basic() -> None:
    assert pick_challenge(['Basic realm="r"', 'Bearer realm="https://t"']) == Challenge(
        "bearer", {"realm": "https://t"}
    )
    assert pick_challenge(['Bearer service="no realm"', 'Basic realm="r"']) == Challenge("basic", {"realm": "r"})
    assert pick_challenge(["Negotiate abc"]) is None
    assert pick_challenge([]) is None


def test_registry_wide_form_drops_scope_and_error() -> None:
    challenge = parse_challenges('Bearer realm="https://t",service="s",scope="repository:a:pull",error="x"')[0]
    assert dict(challenge.without_request_params().params) == {"realm": "https://t", "service": "s"}
    assert challenge.same_authority(Challenge("bearer", {"realm": "https://t", "service": "s"}))
    assert not challenge.same_authority(Challenge("bearer", {"realm": "https://other", "service": "s"}))
    assert not challenge.same_authority(None)

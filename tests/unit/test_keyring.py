"""Pull-secret credentials parse like the kubelet reads them and match images like its keyring."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from imagestreams.core.keyring import (
    Credentials,
    InvalidDockerConfig,
    KeyringEntry,
    lookup,
    parse_dockercfg,
    parse_dockerconfigjson,
)
from imagestreams.core.references import parse_reference

SECRET = "s3cr3t-hunter2"


def _auth(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def _dockerconfigjson(auths: Any) -> bytes:
    return json.dumps({"auths": auths}).encode()


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"auth": _auth("bob:pw")}, Credentials("bob", "pw")),
        ({"username": "bob", "password": "pw"}, Credentials("bob", "pw")),
        ({"username": "bob", "password": "pw", "email": "bob@example.com"}, Credentials("bob", "pw")),
        # "auth" wins over the separate fields, as in the kubelet.
        ({"username": "other", "password": "other", "auth": _auth("bob:pw")}, Credentials("bob", "pw")),
        # The password may itself contain colons.
        ({"auth": _auth("bob:p:w:")}, Credentials("bob", "p:w:")),
        ({"auth": _auth("bob:")}, Credentials("bob", "")),
        ({"auth": _auth(":token")}, Credentials("", "token")),
        # Unpadded base64 ("Ym9iOnB3eA" is "bob:pwx") and stray whitespace are accepted.
        ({"auth": "Ym9iOnB3eA"}, Credentials("bob", "pwx")),
        ({"auth": " Ym9iOnB3eA==\n"}, Credentials("bob", "pwx")),
        ({"auth": _auth("bøb:pässwörd")}, Credentials("bøb", "pässwörd")),
        ({"username": "bob", "password": None}, Credentials("bob", "")),
        ({"auth": "", "username": "bob", "password": "pw"}, Credentials("bob", "pw")),
    ],
)
def test_parse_entry(entry: dict[str, Any], expected: Credentials) -> None:
    assert parse_dockerconfigjson(_dockerconfigjson({"quay.io": entry})) == [KeyringEntry("quay.io", expected)]
    assert parse_dockercfg(json.dumps({"quay.io": entry}).encode()) == [KeyringEntry("quay.io", expected)]


def test_parse_keeps_order_and_drops_empty_entries() -> None:
    payload = _dockerconfigjson(
        {
            "https://index.docker.io/v1/": {"auth": _auth("hub:1")},
            "quay.io": {},
            "localhost:5000": {"username": "local", "password": "2"},
            "ghcr.io": {"identitytoken": "ignored"},
        }
    )
    assert parse_dockerconfigjson(payload) == [
        KeyringEntry("https://index.docker.io/v1/", Credentials("hub", "1")),
        KeyringEntry("localhost:5000", Credentials("local", "2")),
    ]


@pytest.mark.parametrize("payload", [b"{}", b'{"auths": null}', b'{"auths": {}}', b'{"credsStore": "desktop"}'])
def test_dockerconfigjson_without_auths_has_no_entries(payload: bytes) -> None:
    assert parse_dockerconfigjson(payload) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json " + SECRET.encode(), "docker config is not valid JSON (Expecting value at line 1 column 1)"),
        (('{"auths": {"quay.io": {"auth": "' + SECRET).encode(), "docker config is not valid JSON"),
        (b"\xff\xfe" + SECRET.encode(), "docker config is not valid UTF-8"),
        (json.dumps([SECRET]).encode(), "docker config must be a JSON object"),
        (json.dumps({"auths": [SECRET]}).encode(), '"auths" must be a JSON object'),
        (_dockerconfigjson({"quay.io": SECRET}), "entry for 'quay.io' must be a JSON object"),
        (_dockerconfigjson({"quay.io": {"auth": "!!" + SECRET}}), "'auth' for 'quay.io' is not valid base64"),
        (_dockerconfigjson({"quay.io": {"auth": "YWJjZA="}}), "'auth' for 'quay.io' is not valid base64"),
        (
            _dockerconfigjson({"quay.io": {"auth": _auth(SECRET)}}),
            "'auth' for 'quay.io' must be base64 of 'username:password'",
        ),
        (
            _dockerconfigjson({"quay.io": {"auth": _auth(b"\xff:" + SECRET.encode())}}),
            "'auth' for 'quay.io' does not decode to UTF-8 text",
        ),
        (_dockerconfigjson({"quay.io": {"auth": 12345}}), "'auth' for 'quay.io' must be a string"),
        (_dockerconfigjson({"quay.io": {"password": [SECRET]}}), "'password' for 'quay.io' must be a string"),
    ],
)
def test_malformed_payload_never_reveals_secrets(payload: bytes, message: str) -> None:
    with pytest.raises(InvalidDockerConfig) as caught:
        parse_dockerconfigjson(payload)
    error = caught.value
    assert str(error).startswith(message)
    assert isinstance(error, ValueError)
    for shown in (str(error), repr(error), *error.args):
        assert SECRET not in shown
        assert _auth(SECRET) not in shown
    # Nothing that holds the payload stays reachable from the error.
    assert error.__cause__ is None
    assert error.__context__ is None


def test_legacy_dockercfg_is_the_map_without_auths() -> None:
    payload = json.dumps({"registry.example.com": {"auth": _auth("bob:pw"), "email": "b@example.com"}}).encode()
    assert parse_dockercfg(payload) == [KeyringEntry("registry.example.com", Credentials("bob", "pw"))]


def test_credentials_hide_the_password() -> None:
    credentials = Credentials("bob", SECRET)
    entry = KeyringEntry("quay.io", credentials)
    assert repr(credentials) == "Credentials(username='bob', password=<redacted>)"
    assert str(credentials) == repr(credentials)
    for shown in (repr(credentials), str(credentials), f"{credentials}", repr(entry), str([entry])):
        assert SECRET not in shown
    assert credentials.password == SECRET


def _entries(*patterns: str) -> list[KeyringEntry]:
    # Each entry's username is its pattern, so a lookup result reads as the list of matching keys.
    return [KeyringEntry(pattern, Credentials(pattern, "pw")) for pattern in patterns]


@pytest.mark.parametrize(
    ("patterns", "registry_host", "repository", "expected"),
    [
        # hosts, schemes and API-version paths
        (["quay.io"], "quay.io", "coreos/etcd", ["quay.io"]),
        (["https://quay.io"], "quay.io", "coreos/etcd", ["https://quay.io"]),
        (["https://quay.io/v1/"], "quay.io", "coreos/etcd", ["https://quay.io/v1/"]),
        (["https://quay.io/v2/"], "quay.io", "coreos/etcd", ["https://quay.io/v2/"]),
        (["http://localhost:5000"], "localhost:5000", "app", ["http://localhost:5000"]),
        (["quay.io"], "ghcr.io", "coreos/etcd", []),
        (["quay.io"], "sub.quay.io", "app", []),
        # path prefixes: longest first
        (
            ["quay.io", "quay.io/coreos/etcd", "quay.io/coreos"],
            "quay.io",
            "coreos/etcd",
            ["quay.io/coreos/etcd", "quay.io/coreos", "quay.io"],
        ),
        (
            ["quay.io/coreos", "https://quay.io/v2/coreos"],
            "quay.io",
            "coreos/etcd",
            ["quay.io/coreos", "https://quay.io/v2/coreos"],
        ),
        (["quay.io/other"], "quay.io", "coreos/etcd", []),
        (["quay.io/coreos/etcd/extra"], "quay.io", "coreos/etcd", []),
        # the kubelet compares paths as plain strings
        (["quay.io/core"], "quay.io", "coreos/etcd", ["quay.io/core"]),
        # ports match exactly
        (["localhost"], "localhost:5000", "app", []),
        (["localhost:5000"], "localhost:5000", "app", ["localhost:5000"]),
        (["localhost:5000"], "localhost", "app", []),
        (["localhost:5001"], "localhost:5000", "app", []),
        (["127.0.0.1:5000"], "127.0.0.1:5000", "team/app", ["127.0.0.1:5000"]),
        (["127.0.0.1"], "127.0.0.1:5000", "team/app", []),
        (["[::1]:5000"], "[::1]:5000", "app", ["[::1]:5000"]),
        (["[::1]"], "[::1]:5000", "app", []),
        (["quay.io:443"], "quay.io", "app", []),
        # wildcards: one label per "*", exact host before wildcard
        (["*.example.com"], "registry.example.com", "app", ["*.example.com"]),
        (["*.example.com"], "example.com", "app", []),
        (["*.example.com"], "a.b.example.com", "app", []),
        (["*.*.example.com"], "a.b.example.com", "app", ["*.*.example.com"]),
        (["reg*.example.com"], "registry.example.com", "app", ["reg*.example.com"]),
        (["reg*.example.com"], "mirror.example.com", "app", []),
        (["registry.*.com"], "registry.example.com", "app", ["registry.*.com"]),
        (["*ry.example.*"], "registry.example.com", "app", ["*ry.example.*"]),
        # "?" starts a URL query, so the kubelet sees the host "r" here
        (["r?g.example.com"], "reg.example.com", "app", []),
        (["*"], "localhost", "app", ["*"]),
        (["*"], "quay.io", "app", []),
        (["*.example.com:5000"], "r.example.com:5000", "app", ["*.example.com:5000"]),
        (["*.example.com:5000"], "r.example.com", "app", []),
        (["*.example.com"], "r.example.com:5000", "app", []),
        (
            ["*.example.com", "registry.example.com", "*.example.com/team"],
            "registry.example.com",
            "team/app",
            ["registry.example.com", "*.example.com/team", "*.example.com"],
        ),
        # classes and escapes only match themselves: the safe side
        (["[a-z]eg.example.com"], "reg.example.com", "app", []),
        (["*[a-z].example.com"], "reg.example.com", "app", []),
        # Docker Hub under every spelling
        (["https://index.docker.io/v1/"], "docker.io", "library/nginx", ["https://index.docker.io/v1/"]),
        (["index.docker.io"], "docker.io", "library/nginx", ["index.docker.io"]),
        (["docker.io"], "docker.io", "library/nginx", ["docker.io"]),
        (["registry-1.docker.io"], "docker.io", "team/app", ["registry-1.docker.io"]),
        (["https://registry-1.docker.io/v2/"], "docker.io", "team/app", ["https://registry-1.docker.io/v2/"]),
        (["docker.io"], "index.docker.io", "library/nginx", ["docker.io"]),
        (["docker.io"], "quay.io", "library/nginx", []),
        (["*.docker.io"], "docker.io", "library/nginx", []),
        (["docker.io/team"], "docker.io", "team/app", ["docker.io/team"]),
        (["docker.io/team"], "docker.io", "library/nginx", []),
        (
            ["docker.io/library", "https://index.docker.io/v1/"],
            "docker.io",
            "library/nginx",
            ["docker.io/library", "https://index.docker.io/v1/"],
        ),
        # hostnames compare case-insensitively
        (["Quay.IO"], "quay.io", "app", ["Quay.IO"]),
        (["quay.io"], "QUAY.io", "app", ["quay.io"]),
        # keys the kubelet cannot parse are ignored
        (["quay.io:abc", "", "https://", "[::1", "/path-only", "a:b:c"], "quay.io", "app", []),
        # userinfo, query and fragment do not count
        (["https://user@quay.io/team?x=1#y"], "quay.io", "team/app", ["https://user@quay.io/team?x=1#y"]),
    ],
)
def test_lookup(patterns: list[str], registry_host: str, repository: str, expected: list[str]) -> None:
    found = lookup(_entries(*patterns), registry_host, repository)
    assert [credentials.username for credentials in found] == expected


def test_lookup_keeps_entry_order_under_one_key_and_drops_repeats() -> None:
    first, second = Credentials("first", "1"), Credentials("second", "2")
    entries = [
        KeyringEntry("quay.io", first),
        KeyringEntry("https://quay.io/v1/", second),
        KeyringEntry("quay.io/team", first),
    ]
    assert lookup(entries, "quay.io", "team/app") == [first, second]


def test_lookup_of_a_parsed_reference() -> None:
    entries = parse_dockerconfigjson(
        _dockerconfigjson(
            {
                "https://index.docker.io/v1/": {"auth": _auth("hub:pw")},
                "localhost:5000": {"auth": _auth("local:pw")},
            }
        )
    )
    for text, username in [("nginx", "hub"), ("docker.io/team/app:1", "hub"), ("localhost:5000/app", "local")]:
        reference = parse_reference(text)
        found = lookup(entries, reference.registry_host, reference.normalized_repository)
        assert [credentials.username for credentials in found] == [username]
    assert lookup(entries, "localhost:5001", "app") == []

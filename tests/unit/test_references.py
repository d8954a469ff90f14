"""Image references parse as distribution does, and normalise the way Docker Hub needs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from imagestreams.core.references import ImageReference, InvalidReference, is_digest, parse_reference

DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER_DIGEST = "sha256:" + "fedcba9876543210" * 4


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "", "nginx", None, None),
        ("nginx:1.25", "", "nginx", "1.25", None),
        ("library/nginx", "", "library/nginx", None, None),
        ("team/app:v1", "", "team/app", "v1", None),
        ("docker.io/nginx", "docker.io", "nginx", None, None),
        ("docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/nginx", "index.docker.io", "nginx", None, None),
        ("registry-1.docker.io/team/app", "registry-1.docker.io", "team/app", None, None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/team/app:dev", "localhost:5000", "team/app", "dev", None),
        # Without a slash, "localhost:5000" is the Docker Hub image "localhost" at tag "5000".
        ("localhost:5000", "", "localhost", "5000", None),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000", "team/app", None, None),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None),
        ("[fe80::1]/app", "[fe80::1]", "app", None, None),
        (f"quay.io/coreos/etcd:v3.5@{DIGEST}", "quay.io", "coreos/etcd", "v3.5", DIGEST),
        (f"nginx@{DIGEST}", "", "nginx", None, DIGEST),
        ("ghcr.io/org/group/sub/app", "ghcr.io", "org/group/sub/app", None, None),
        ("registry:5000/app", "registry:5000", "app", None, None),
        # An uppercase first component can only be a host (distribution's rule).
        ("Registry/app", "Registry", "app", None, None),
        ("example.com/a__b/c--d/e.f_g-h", "example.com", "a__b/c--d/e.f_g-h", None, None),
        ("app:Tag_With.Caps-1", "", "app", "Tag_With.Caps-1", None),
        ("app:" + "t" * 128, "", "app", "t" * 128, None),
        ("app:_underscore", "", "app", "_underscore", None),
        (f"example.com:443/app@sha512:{'ab' * 64}", "example.com:443", "app", None, f"sha512:{'ab' * 64}"),
    ],
)
def test_parse_valid(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    reference = parse_reference(text)
    assert reference == ImageReference(registry, repository, tag, digest)
    assert reference.exact() == text
    assert str(reference) == text


@pytest.mark.parametrize(
    ("text", "registry_host", "normalized_repository", "api_host", "repository_spelling"),
    [
        ("nginx", "docker.io", "library/nginx", "registry-1.docker.io", "nginx"),
        ("team/app", "docker.io", "team/app", "registry-1.docker.io", "team/app"),
        ("docker.io/nginx:1", "docker.io", "library/nginx", "registry-1.docker.io", "docker.io/nginx"),
        ("docker.io/library/nginx", "docker.io", "library/nginx", "registry-1.docker.io", "docker.io/library/nginx"),
        ("index.docker.io/nginx", "docker.io", "library/nginx", "registry-1.docker.io", "index.docker.io/nginx"),
        (
            "registry-1.docker.io/redis",
            "docker.io",
            "library/redis",
            "registry-1.docker.io",
            "registry-1.docker.io/redis",
        ),
        ("localhost:5000/app", "localhost:5000", "app", "localhost:5000", "localhost:5000/app"),
        ("localhost/app", "localhost", "app", "localhost", "localhost/app"),
        (
            f"127.0.0.1:5000/team/app:v1@{DIGEST}",
            "127.0.0.1:5000",
            "team/app",
            "127.0.0.1:5000",
            "127.0.0.1:5000/team/app",
        ),
        ("quay.io/app", "quay.io", "app", "quay.io", "quay.io/app"),
        ("localhost:5000", "docker.io", "library/localhost", "registry-1.docker.io", "localhost"),
    ],
)
def test_normalisation(
    text: str, registry_host: str, normalized_repository: str, api_host: str, repository_spelling: str
) -> None:
    reference = parse_reference(text)
    assert reference.registry_host == registry_host
    assert reference.normalized_repository == normalized_repository
    assert reference.api_host == api_host
    assert reference.repository_spelling == repository_spelling


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", ("library/nginx", "latest")),
        ("nginx:1.25", ("library/nginx", "1.25")),
        ("quay.io/team/app:v2", ("team/app", "v2")),
        (f"localhost:5000/app@{DIGEST}", ("app", DIGEST)),
        # A digest wins over a tag given alongside it.
        (f"quay.io/team/app:v2@{DIGEST}", ("team/app", DIGEST)),
    ],
)
def test_name_and_reference(text: str, expected: tuple[str, str]) -> None:
    reference = parse_reference(text)
    assert reference.name_and_reference() == expected
    assert reference.manifest_reference == expected[1]


@pytest.mark.parametrize(
    ("text", "pinned"),
    [
        ("nginx", f"nginx@{OTHER_DIGEST}"),
        ("nginx:latest", f"nginx@{OTHER_DIGEST}"),
        ("docker.io/library/nginx:1", f"docker.io/library/nginx@{OTHER_DIGEST}"),
        (f"127.0.0.1:5000/team/app:v1@{DIGEST}", f"127.0.0.1:5000/team/app@{OTHER_DIGEST}"),
        ("[::1]:5000/app:x", f"[::1]:5000/app@{OTHER_DIGEST}"),
    ],
)
def test_with_digest_keeps_the_users_spelling(text: str, pinned: str) -> None:
    assert parse_reference(text).with_digest(OTHER_DIGEST) == pinned
    assert parse_reference(pinned).digest == OTHER_DIGEST


def test_with_digest_rejects_a_bad_digest() -> None:
    with pytest.raises(InvalidReference, match="64 hex characters, not 4"):
        parse_reference("nginx").with_digest("sha256:abcd")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "repository name must have at least one component"),
        ("0123456789abcdef" * 4, "a 64-character hex string is an image ID, not a repository name"),
        ("Nginx", "repository name must be lowercase"),
        ("docker.io/Library/nginx", "repository name must be lowercase"),
        ("team/App:v1", "repository name must be lowercase"),
        ("Registry/App", "repository name must be lowercase"),
        ("nginx:", "tag is empty after ':'"),
        ("nginx@", "digest is empty after '@'"),
        ("nginx:-bad", "tag '-bad' must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"),
        ("nginx:.bad", "tag '.bad' must be"),
        ("nginx:" + "t" * 129, "tag 'ttt"),
        ("nginx:a:b", "tag 'a:b' must be"),
        ("nginx:bad/tag", "registry 'nginx:bad' is not a valid host[:port]"),
        ("host:port/app", "registry 'host:port' is not a valid host[:port]"),
        ("-bad.example.com/app", "registry '-bad.example.com' is not a valid host[:port]"),
        ("bad-.example.com/app", "registry 'bad-.example.com' is not a valid host[:port]"),
        ("example..com/app", "registry 'example..com' is not a valid host[:port]"),
        ("[::1/app", "registry '[::1' is not a valid host[:port]"),
        ("docker.io/", "repository name must have at least one component"),
        ("localhost:5000/", "repository name must have at least one component"),
        ("a//b", "repository 'a//b' must be '/'-separated components"),
        ("a/b/", "repository 'a/b/' must be '/'-separated components"),
        ("/app", "repository '/app' must be '/'-separated components"),
        ("_app", "repository '_app' must be"),
        ("app_", "repository 'app_' must be"),
        ("a___b", "repository 'a___b' must be"),
        ("a..b", "repository 'a..b' must be"),
        (" nginx", "repository ' nginx' must be"),
        ("nginx\n", "repository 'nginx\\n' must be"),
        ("ngïnx", "repository 'ngïnx' must be"),
        ("app@sha256:abc", "a sha256 digest has 64 hex characters, not 3"),
        ("app@sha256:" + "A" * 64, "a sha256 digest must be lowercase hexadecimal"),
        ("app@sha256:" + "g" * 64, "a sha256 digest must be lowercase hexadecimal"),
        ("app@md5:" + "a" * 32, "unsupported digest algorithm 'md5' (sha256, sha384 or sha512 expected)"),
        ("app@SHA256:" + "a" * 64, "unsupported digest algorithm 'SHA256'"),
        ("app@latest", "digest 'latest' is not of the form algorithm:hex"),
        (f"app@{DIGEST}@{DIGEST}", "a sha256 digest has 64 hex characters, not 136"),
        ("x" * 248, "repository name must not be more than 255 characters"),
        ("example.com/" + "x" * 256, "repository name must not be more than 255 characters"),
    ],
)
def test_parse_invalid(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_reference(text)
    assert caught.value.reference == text
    assert caught.value.reason.startswith(reason)
    assert str(caught.value) == f"invalid reference {json.dumps(text, ensure_ascii=False)}: {caught.value.reason}"


def test_error_message_names_the_input() -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_reference("team/Bar")
    assert str(caught.value) == 'invalid reference "team/Bar": repository name must be lowercase'
    assert isinstance(caught.value, ValueError)


def test_error_message_cuts_very_long_input() -> None:
    text = "x" * 1000
    with pytest.raises(InvalidReference) as caught:
        parse_reference(text)
    assert caught.value.reference == text
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    "text",
    [
        "x" * 247,  # "library/" + 247 = 255 characters on Docker Hub
        "team/" + "x" * 250,
        "example.com/" + "x" * 255,
    ],
)
def test_longest_names_that_fit(text: str) -> None:
    assert parse_reference(text).exact() == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DIGEST, True),
        ("sha384:" + "a" * 96, True),
        ("sha512:" + "a" * 128, True),
        ("sha256:" + "A" * 64, False),
        ("sha256:" + "a" * 63, False),
        ("sha256:" + "a" * 65, False),
        ("sha512:" + "a" * 64, False),
        ("sha256", False),
        ("sha256:", False),
        (":" + "a" * 64, False),
        ("", False),
        ("md5:" + "a" * 32, False),
        ("0123456789abcdef" * 4, False),
        (DIGEST + "\n", False),
        ("latest", False),
    ],
)
def test_is_digest(text: str, expected: bool) -> None:
    assert is_digest(text) is expected


def test_reference_is_immutable() -> None:
    reference = parse_reference("nginx")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reference.tag = "1"  # type: ignore[misc]

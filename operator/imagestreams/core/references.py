# Written here rather than imported: the grammar is small and stable, and docker-image-py
# would add the `regex` dependency and its own error types for about a hundred lines.
"""Container image references: the distribution grammar and Docker Hub's naming rules.

The split between registry and repository follows distribution/reference's
`splitDockerDomain`; the parts are then checked against its grammar, and digests
against go-digest's rules (sha256/sha384/sha512, lowercase hex of the exact length).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
# Spellings that all mean Docker Hub; "" is an omitted registry.
DOCKER_HUB_ALIASES = frozenset({"", DOCKER_HUB, "index.docker.io", DOCKER_HUB_API_HOST})
OFFICIAL_REPOSITORY_PREFIX = "library/"
DEFAULT_TAG = "latest"
REPOSITORY_NAME_MAX_LENGTH = 255
# The longest reference that can be valid is a 253-character DNS name with a port, a 255-character
# repository, a 128-character tag and a sha512 digest (under 800 characters). Longer text is refused
# before any pattern looks at it, which bounds the work and the error messages.
REFERENCE_MAX_LENGTH = 1024
_SHOWN_REFERENCE_LENGTH = 300

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6_ADDRESS = r"\[[a-fA-F0-9:]+\]"
_REGISTRY = re.compile(rf"(?:{_DOMAIN_NAME}|{_IPV6_ADDRESS})(?::[0-9]+)?")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
# Go's \w is ASCII-only; Python's is not, so the class is spelled out.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_GRAMMAR = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_LOWERCASE_HEX = re.compile(r"[0-9a-f]+")
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReference(ValueError):
    """The text is not an image reference; `reason` says which part is wrong."""

    def __init__(self, reference: str, reason: str) -> None:
        # JSON quoting shows control characters escaped; very long input is cut to keep logs readable.
        shown = reference if len(reference) <= _SHOWN_REFERENCE_LENGTH else reference[:_SHOWN_REFERENCE_LENGTH] + "..."
        super().__init__(f"invalid reference {json.dumps(shown, ensure_ascii=False)}: {reason}")
        self.reference = reference
        self.reason = reason


def normalize_registry_host(registry: str) -> str:
    """Docker Hub under any of its spellings (or none) becomes "docker.io"; other hosts stay as written."""
    return DOCKER_HUB if registry in DOCKER_HUB_ALIASES else registry


def _digest_problem(digest: str) -> str | None:
    if len(digest) > REFERENCE_MAX_LENGTH:
        return f"a digest must not be longer than {REFERENCE_MAX_LENGTH} characters"
    algorithm, _, encoded = digest.partition(":")
    expected_length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if expected_length is None:
        if _DIGEST_GRAMMAR.fullmatch(digest):
            return f"unsupported digest algorithm {algorithm!r} (sha256, sha384 or sha512 expected)"
        return f"digest {digest!r} is not of the form algorithm:hex"
    if len(encoded) != expected_length:
        return f"a {algorithm} digest has {expected_length} hex characters, not {len(encoded)}"
    if not _LOWERCASE_HEX.fullmatch(encoded):
        return f"a {algorithm} digest must be lowercase hexadecimal"
    return None


def is_digest(text: str) -> bool:
    """True for a digest a registry would accept, such as "sha256:" followed by 64 lowercase hex characters."""
    return _digest_problem(text) is None


def _split_registry(name: str) -> tuple[str, str]:
    # distribution's rule: the first component names a registry only if it is "localhost",
    # contains "." or ":", or has uppercase letters (repository paths are lowercase).
    first, slash, rest = name.partition("/")
    if slash and (first == "localhost" or "." in first or ":" in first or first.lower() != first):
        return first, rest
    return "", name


@dataclass(frozen=True)
class ImageReference:
    """A parsed reference. `registry` and `repository` keep the user's spelling; properties normalise."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def is_docker_hub(self) -> bool:
        return self.registry in DOCKER_HUB_ALIASES

    @property
    def registry_host(self) -> str:
        """The registry under its canonical name: "docker.io" for every Docker Hub spelling."""
        return normalize_registry_host(self.registry)

    @property
    def normalized_repository(self) -> str:
        """The path the registry knows: Docker Hub's single-component names live under "library/"."""
        if self.is_docker_hub and "/" not in self.repository:
            return OFFICIAL_REPOSITORY_PREFIX + self.repository
        return self.repository

    @property
    def api_host(self) -> str:
        """Where to send Registry API requests; "docker.io" itself does not serve them."""
        return DOCKER_HUB_API_HOST if self.is_docker_hub else self.registry

    @property
    def repository_spelling(self) -> str:
        """The user's spelling without tag or digest, e.g. "nginx" or "127.0.0.1:5000/team/app"."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def manifest_reference(self) -> str:
        """The tag or digest to fetch: a digest wins over a tag, and neither means "latest"."""
        return self.digest or self.tag or DEFAULT_TAG

    def name_and_reference(self) -> tuple[str, str]:
        """The two parts of `/v2/<name>/manifests/<reference>`."""
        return self.normalized_repository, self.manifest_reference

    def with_digest(self, digest: str) -> str:
        """The user's spelling pinned to `digest`, as OpenShift writes status dockerImageReference."""
        pinned = f"{self.repository_spelling}@{digest}"
        problem = _digest_problem(digest)
        if problem is not None:
            raise InvalidReference(pinned, problem)
        return pinned

    def exact(self) -> str:
        """The whole reference as written, tag and digest included."""
        text = self.repository_spelling
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def __str__(self) -> str:
        return self.exact()


def _whole_text_problem(text: str) -> str | None:
    if not text:
        return "repository name must have at least one component"
    if len(text) > REFERENCE_MAX_LENGTH:
        return f"a reference must not be longer than {REFERENCE_MAX_LENGTH} characters"
    if _IMAGE_ID.fullmatch(text):
        return "a 64-character hex string is an image ID, not a repository name"
    return None


def parse_reference(text: str) -> ImageReference:
    """Parse `[registry/]path[:tag][@digest]`, raising `InvalidReference` with the reason."""
    problem = _whole_text_problem(text)
    if problem is not None:
        raise InvalidReference(text, problem)

    name_and_tag, at_sign, digest = text.partition("@")
    if at_sign and not digest:
        raise InvalidReference(text, "digest is empty after '@'")
    registry, path_and_tag = _split_registry(name_and_tag)
    repository, colon, tag = path_and_tag.partition(":")
    if colon and not tag:
        raise InvalidReference(text, "tag is empty after ':'")

    if registry and not _REGISTRY.fullmatch(registry):
        raise InvalidReference(text, f"registry {registry!r} is not a valid host[:port]")
    if not repository:
        raise InvalidReference(text, "repository name must have at least one component")
    if not _REPOSITORY.fullmatch(repository):
        if _REPOSITORY.fullmatch(repository.lower()):
            raise InvalidReference(text, "repository name must be lowercase")
        raise InvalidReference(
            text,
            f"repository {repository!r} must be '/'-separated components of lowercase letters and digits, "
            "joined inside a component by '.', '_', '__' or dashes",
        )
    if colon and not _TAG.fullmatch(tag):
        raise InvalidReference(
            text,
            f"tag {tag!r} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
        )
    if digest:
        problem = _digest_problem(digest)
        if problem is not None:
            raise InvalidReference(text, problem)

    reference = ImageReference(registry, repository, tag or None, digest or None)
    if len(reference.normalized_repository) > REPOSITORY_NAME_MAX_LENGTH:
        raise InvalidReference(text, f"repository name must not be more than {REPOSITORY_NAME_MAX_LENGTH} characters")
    return reference

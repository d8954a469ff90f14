"""Registry push notifications: what a delivery says was pushed, whether it may be believed to come from a registry
the operator was told about, how often one source may send, and which scheduled tags follow what was pushed.

A notification carries no trust. It never says which image a tag holds: it only names a (registry, repository, tag)
whose scheduled tags are then looked up at once, by the import path that runs on schedule (a HEAD, and a GET only
for a digest not seen before). So a forged or replayed notification costs a lookup at most, and a wrong digest in one
changes nothing.

Formats (each parser reads the service's documented payload; the reference parsers are argocd-image-updater's
pkg/webhook/{docker,quay,harbor,ghcr,gitlab}.go):
- `distribution`: the CNCF Distribution notification envelope (`{"events": [...]}`, media type
  application/vnd.docker.distribution.events.v1+json; distribution.github.io/distribution/about/notifications), sent
  by Debian's docker-registry, the registry:2 image, and GitLab's container registry;
- `dockerhub`: Docker Hub's repository webhook (docs.docker.com/docker-hub/repos/manage/webhooks);
- `quay`: Quay's "Repository Push" notification (docs.quay.io/guides/notifications.html);
- `harbor`: Harbor's PUSH_ARTIFACT webhook (goharbor.io, "Configure Webhooks");
- `github`: GitHub's `package` (or older `registry_package`) event for container packages on ghcr.io
  (docs.github.com, "Webhook events and payloads").

Pure: no I/O; the clock is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from imagestreams.api.imagestream import ImageStream
from imagestreams.core.caches import TTLCache
from imagestreams.core.fairness import TokenBucket
from imagestreams.core.jsonlimits import load_json
from imagestreams.core.references import (
    DEFAULT_TAG,
    DOCKER_HUB,
    DOCKER_HUB_ALIASES,
    InvalidReference,
    parse_reference,
)
from imagestreams.core.tags import SourceType, classify_source

# A delivery is one small JSON document (a distribution envelope of a few events is a few KiB, GitHub's package event
# with its repository and sender objects some 20 KiB); anything larger is refused before it is read.
MAX_NOTIFICATION_BYTES = 1024 * 1024
# Pushes read from one delivery at most: a CI job pushing a few hundred tags at once fits; the rest of a larger
# delivery is refused as a whole, so nothing is half-applied.
MAX_PUSHES = 1000
# Shorter tokens are not accepted: a guessable token would let anyone make the operator contact registries.
MIN_TOKEN_BYTES = 16
# Sources (remote address and format) whose request budget is remembered; the least recently seen is forgotten
# first, so memory stays bounded whatever the number of addresses a flood comes from.
MAX_SOURCES = 10_000

GITHUB_CONTAINER_REGISTRY = "ghcr.io"
QUAY = "quay.io"


class NotificationFormat(StrEnum):
    DISTRIBUTION = "distribution"
    DOCKER_HUB = "dockerhub"
    QUAY = "quay"
    HARBOR = "harbor"
    GITHUB = "github"


class PushTarget(NamedTuple):
    """A pushed tag as an image stream's source names it: the registry under its canonical name, lowercase
    ("docker.io" for every spelling of Docker Hub), the repository as the registry knows it ("library/nginx"), and the
    tag."""

    registry: str
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Push:
    target: PushTarget
    digest: str | None = None  # what the service says the tag now holds: for logs only, never believed


class BadNotification(ValueError):
    """The body is not a notification of the format its path names."""


# --- names ---------------------------------------------------------------------------------------------------------


def push_target(registry: str, repository: str, tag: str) -> PushTarget | None:
    """The target of a push reported as (registry, repository, tag), normalised as `target_of` normalises a stream's
    source; None when the three do not make an image reference (a digest given as the tag, a host the reference
    grammar would read as a path component)."""
    host = registry.strip().lower()
    if not host or not repository or not tag:
        return None
    if host in DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    try:
        reference = parse_reference(f"{host}/{repository}:{tag}")
    except InvalidReference:
        return None
    if reference.registry.lower() != host:  # e.g. "registry": without a dot or port it would name a Docker Hub path
        return None
    return PushTarget(reference.registry_host.lower(), reference.normalized_repository, tag)


def target_of(pull_spec: str) -> PushTarget | None:
    """What a push must name to concern a DockerImage source; None for a source pinned to a digest (a push cannot
    change it) or one that is not a reference."""
    try:
        reference = parse_reference(pull_spec)
    except InvalidReference:
        return None
    if reference.digest is not None:
        return None
    return PushTarget(reference.registry_host.lower(), reference.normalized_repository, reference.tag or DEFAULT_TAG)


def scheduled_targets(namespace: str, name: str, stream: ImageStream) -> dict[str, PushTarget]:
    """The stream's scheduled tags (importPolicy.scheduled on a DockerImage source), each with the push it follows.
    Other tags never follow pushes: they are imported when their spec changes or on request."""
    targets = {}
    for tag in stream.spec.tags or []:
        if not (tag.import_policy and tag.import_policy.scheduled):
            continue
        source = classify_source(namespace, name, tag)
        if source.type is not SourceType.IMPORT:
            continue
        target = target_of(source.target)
        if target is not None:
            targets[tag.name] = target
    return targets


def tags_following(targets: Mapping[str, PushTarget], pushed: Iterable[PushTarget]) -> set[str]:
    """The tags among `targets` (scheduled_targets of one stream) that follow one of the `pushed` targets."""
    wanted = set(pushed)
    return {tag for tag, target in targets.items() if target in wanted}


# --- payloads ------------------------------------------------------------------------------------------------------


def parse_notification(
    notification_format: NotificationFormat, body: bytes, *, registry: str | None = None
) -> tuple[Push, ...]:
    """The tag pushes a delivery reports. Events that are not tag pushes (pulls, blobs, pushes by digest, deletions)
    are left out; a body that is not JSON of the format's shape raises BadNotification. `registry`, when given, is
    the registry as streams spell it, instead of the host the payload names (for a registry known under another
    name where it runs)."""
    if len(body) > MAX_NOTIFICATION_BYTES:
        raise BadNotification(f"the body is larger than {MAX_NOTIFICATION_BYTES} bytes")
    try:
        document = load_json(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadNotification(f"the body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadNotification("the body is not a JSON object")
    reported = _PARSERS[notification_format](document)
    pushes: list[Push] = []
    for host, repository, tag, digest in reported:
        if len(pushes) >= MAX_PUSHES:
            raise BadNotification(f"more than {MAX_PUSHES} pushes in one delivery")
        target = push_target(registry or host, repository, tag)
        if target is not None:
            pushes.append(Push(target, digest or None))
    return tuple(dict.fromkeys(pushes))


Reported = Iterable[tuple[str, str, str, str]]  # (registry host, repository, tag, digest or "")


def _text(node: Any, *path: str) -> str:
    """The string at `path` in nested objects; "" when any step is missing or not of the right type."""
    for key in path:
        if not isinstance(node, dict):
            return ""
        node = node.get(key)
    return node if isinstance(node, str) else ""


def _list(node: Any, key: str) -> list[Any]:
    value = node.get(key) if isinstance(node, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadNotification(f"{key!r} is not a list")
    return value


def _host_of(location: str) -> str:
    """The host[:port] at the start of a URL or a pull spec ("https://ghcr.io/owner" or "quay.io/ns/repo")."""
    _, scheme, rest = location.partition("://")
    return (rest if scheme else location).split("/", 1)[0].rsplit("@", 1)[-1]


def _distribution(document: dict[str, Any]) -> Reported:
    if "events" not in document:
        raise BadNotification("a distribution notification is an envelope with an 'events' list")
    for event in _list(document, "events"):
        if _text(event, "action") != "push":
            continue
        # request.host is the Host the pusher spelled; target.url is built from it too.
        host = _text(event, "request", "host") or _host_of(_text(event, "target", "url"))
        target = event.get("target")
        yield host, _text(target, "repository"), _text(target, "tag"), _text(target, "digest")


def _docker_hub(document: dict[str, Any]) -> Reported:
    repository = _text(document, "repository", "repo_name")
    if not repository:
        namespace, name = _text(document, "repository", "namespace"), _text(document, "repository", "name")
        repository = f"{namespace}/{name}" if namespace and name else name
    if not repository or "push_data" not in document:
        raise BadNotification("a Docker Hub webhook names repository.repo_name and push_data.tag")
    yield DOCKER_HUB, repository, _text(document, "push_data", "tag"), ""


def _quay(document: dict[str, Any]) -> Reported:
    repository = _text(document, "repository")
    if not repository:
        raise BadNotification("a Quay repository push names 'repository' and 'updated_tags'")
    docker_url = _text(document, "docker_url")
    host = _host_of(docker_url) if docker_url else QUAY  # a self-hosted Quay reports its own host there
    for tag in _list(document, "updated_tags"):
        if isinstance(tag, str):
            yield host, repository, tag, ""


def _harbor(document: dict[str, Any]) -> Reported:
    if "event_data" not in document:
        raise BadNotification("a Harbor webhook has 'type' and 'event_data'")
    if _text(document, "type") != "PUSH_ARTIFACT":  # scans, deletions, quotas, replications...
        return
    data = document["event_data"]
    repository = _text(data, "repository", "repo_full_name")
    if not repository:
        namespace, name = _text(data, "repository", "namespace"), _text(data, "repository", "name")
        repository = f"{namespace}/{name}" if namespace and name else name
    for resource in _list(data, "resources"):
        # resource_url is "<harbor host>/<project>/<repository>:<tag>" (or "@<digest>"); a push by digest has the
        # digest as its tag, which is no tag at all (push_target refuses it).
        yield _host_of(_text(resource, "resource_url")), repository, _text(resource, "tag"), _text(resource, "digest")


def _github(document: dict[str, Any]) -> Reported:
    package = document.get("package") or document.get("registry_package")
    if not isinstance(package, dict) or "action" not in document:
        raise BadNotification("a GitHub package event has 'action' and 'package'")
    if _text(document, "action") not in ("published", "updated"):
        return
    package_type = _text(package, "package_type") or _text(package, "ecosystem")
    if package_type.lower() != "container":  # npm, maven... or the retired docker.pkg.github.com ("docker")
        return
    owner, name = _text(package, "owner", "login"), _text(package, "name")
    version = package.get("package_version")
    tag = _text(version, "container_metadata", "tag", "name")
    digest = _text(version, "container_metadata", "tag", "digest") or _text(version, "version")
    registry_url = _text(package, "registry", "url")
    host = _host_of(registry_url) if registry_url else GITHUB_CONTAINER_REGISTRY  # GHES: containers.<host>
    if owner and name:
        # Package names keep the owner's capitals; image references are lowercase.
        yield host, f"{owner}/{name}".lower(), tag, digest if digest.startswith("sha256:") else ""


_PARSERS = {
    NotificationFormat.DISTRIBUTION: _distribution,
    NotificationFormat.DOCKER_HUB: _docker_hub,
    NotificationFormat.QUAY: _quay,
    NotificationFormat.HARBOR: _harbor,
    NotificationFormat.GITHUB: _github,
}


# --- authentication ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Presented:
    """What a request offers as proof that it knows a token."""

    authorization: str = ""  # the Authorization header
    path_token: str = ""  # the path segment after the format, for services that cannot send headers
    signature: str = ""  # GitHub's X-Hub-Signature-256: "sha256=" and the hex HMAC-SHA256 of the body


class Method(StrEnum):
    BEARER = "bearer"  # Authorization: Bearer <token> (distribution's `headers`, GitLab)
    HEADER = "header"  # Authorization: <token> as is (Harbor's "Auth Header"), or Basic with the token as password
    PATH = "path"  # /notifications/<format>/<token> (Docker Hub, Quay)
    SIGNATURE = "signature"  # X-Hub-Signature-256 (GitHub)


def usable_tokens(values: Mapping[str, bytes]) -> tuple[tuple[bytes, ...], tuple[str, ...]]:
    """The tokens of a Secret's data (every key is one, so a rotation adds the new token before it removes the old),
    without surrounding whitespace (a file's final newline); and the keys left out as shorter than MIN_TOKEN_BYTES."""
    tokens, too_short = [], []
    for key, value in sorted(values.items()):
        token = value.strip()
        if len(token) >= MIN_TOKEN_BYTES:
            tokens.append(token)
        else:
            too_short.append(key)
    return tuple(dict.fromkeys(tokens)), tuple(too_short)


def _raw(text: str) -> bytes:
    # HTTP headers and paths arrive as ISO-8859-1 text (http.client's reading): this gives back the bytes sent.
    return text.encode("latin-1", "replace")


def _equal_to_one(candidate: bytes, tokens: Sequence[bytes]) -> bool:
    # compare_digest takes as long whatever the first differing byte: the token cannot be guessed byte by byte.
    return bool(candidate) and any(hmac.compare_digest(candidate, token) for token in tokens)


def authenticate(presented: Presented, body: bytes, tokens: Sequence[bytes]) -> Method | None:
    """How the request proved it knows one of `tokens`, or None."""
    if not tokens:
        return None
    authorization = presented.authorization.strip()
    scheme, _, credentials = authorization.partition(" ")
    offered = [
        (Method.BEARER, _raw(credentials.strip()) if scheme.lower() == "bearer" else b""),
        # A URL with the token as its password (https://x:<token>@host/...) sends it as Basic credentials.
        (Method.HEADER, _basic_password(credentials.strip()) if scheme.lower() == "basic" else b""),
        (Method.HEADER, _raw(authorization)),
        (Method.PATH, _raw(presented.path_token)),
    ]
    for method, candidate in offered:
        if _equal_to_one(candidate, tokens):
            return method
    algorithm, _, signature = presented.signature.strip().partition("=")
    if algorithm == "sha256" and signature:
        expected = [hmac.new(token, body, hashlib.sha256).hexdigest().encode() for token in tokens]
        if _equal_to_one(_raw(signature.lower()), expected):
            return Method.SIGNATURE
    return None


def _basic_password(credentials: str) -> bytes:
    try:
        decoded = base64.b64decode(credentials, validate=True)
    except (binascii.Error, ValueError):
        return b""
    return decoded.partition(b":")[2]


# --- rate limits ---------------------------------------------------------------------------------------------------


class SourceLimits:
    """A token bucket per source: `rate` deliveries a second, bursts of `burst`. The buckets of at most
    `max_sources` sources are kept, the least recently seen forgotten first (a forgotten source starts afresh with a
    full bucket, as a new one does). Not thread-safe: the caller serialises."""

    def __init__(self, rate: float, burst: int, max_sources: int = MAX_SOURCES) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: TTLCache[Hashable, TokenBucket] = TTLCache(max_sources)

    def admit(self, source: Hashable, now: float) -> float:
        """0.0 when the source may deliver now (its token is taken); else the seconds until it may."""
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst)
            self._buckets.put(source, bucket)
        if bucket.try_take(now):
            return 0.0
        return max(bucket.delay(now), 1e-3)

    def __len__(self) -> int:
        return len(self._buckets)

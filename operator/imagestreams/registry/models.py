"""Value types the registry client takes and returns. Plain frozen dataclasses, no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from imagestreams.core.adaptivelimit import KNOWN_PULL_LIMITS


class ImportMode(StrEnum):
    """How a tag that names a manifest list or OCI index is imported (OpenShift's importMode)."""

    LEGACY = "Legacy"  # pick one platform's image; the index digest is not what the tag resolves to
    PRESERVE_ORIGINAL = "PreserveOriginal"  # the tag resolves to the index itself, children recorded


@dataclass(frozen=True)
class Platform:
    """A platform to prefer. An empty `os` or `architecture` matches any; `variant=None` matches any variant."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        text = f"{self.os or '*'}/{self.architecture or '*'}"
        return f"{text}/{self.variant}" if self.variant else text


LINUX_AMD64 = Platform("linux", "amd64")


@dataclass(frozen=True)
class Credentials:
    """A username and password (or token) for one registry. The password never shows in repr or str."""

    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"

    __str__ = __repr__

    @property
    def identity(self) -> str:
        """A stable key for caches that does not hold the password itself."""
        return hashlib.sha256(f"{self.username}\0{self.password}".encode()).hexdigest()


@dataclass(frozen=True)
class ManifestChild:
    """One entry of a manifest list or OCI index. `os`/`architecture` are "" when the entry names no platform."""

    digest: str
    media_type: str
    size: int
    os: str
    architecture: str
    variant: str | None

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant)


class Layer(NamedTuple):
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class ImageMetadata:
    """What an import records about one single-platform image, read from its manifest and config blob.

    `size` is the config size plus the sizes of the distinct layers (as OpenShift counts it).
    `labels` is a fresh dict on every result the client returns; treat it as read-only anyway.
    """

    digest: str
    media_type: str
    size: int
    architecture: str
    os: str
    created: str | None
    labels: dict[str, str]
    layers: tuple[Layer, ...]
    config_digest: str
    variant: str | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str | None = None
    user: str | None = None
    exposed_ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedImage:
    """What a tag or digest resolves to.

    - `digest`: the chosen child in Legacy mode, the index itself in PreserveOriginal, the manifest for single images.
    - `manifests`: the index's children when the reference names an index (both modes), else ().
    - `metadata`: the single-platform image's metadata (Legacy picks one); None for a preserved index, and None when
      `complete` is False.
    - `index_digest`: the digest of the index the reference names, if it names one (in Legacy mode this differs from
      `digest`); None for single images. Callers remember it to skip a GET next time (see `known_digests`).
    - `complete`: False when the reference's digest was in `known_digests` and nothing beyond HEAD was read, so
      `metadata` and `manifests` are empty; the caller already has them.
    """

    digest: str
    media_type: str
    manifests: tuple[ManifestChild, ...]
    metadata: ImageMetadata | None
    index_digest: str | None = None
    complete: bool = True


MiB = 1024 * 1024


@dataclass(frozen=True)
class ClientSettings:
    """Tuning for RegistryClient. The defaults suit an operator that polls a few hundred tags."""

    connect_timeout: float = 10.0  # seconds to open a connection (TCP and TLS)
    read_timeout: float = 30.0  # seconds between two reads of a response
    max_attempts: int = 3  # tries per request on 5xx, 429 and network errors
    backoff_base: float = 0.5  # first retry waits about this long, doubling each time (with jitter)
    backoff_max: float = 30.0
    max_retry_after: float = 60.0  # a 429 asking for a longer wait fails at once with TooManyRequests
    # Per registry, the most requests in flight and per second (token bucket; a rate <= 0 disables it). Both start
    # there and adapt to the registry's answers (core.adaptivelimit): down on a 429 or an error that may come from
    # load, back up over `limit_recovery_seconds`, never below `per_registry_min_rate` and one in flight.
    per_registry_concurrency: int = 4
    per_registry_rate: float = 5.0
    per_registry_burst: int = 10  # at least; a tenth of a second's worth of the current rate when more
    per_registry_min_rate: float = 1.0
    limit_recovery_seconds: float = 30.0
    # Registries known to count pulls (manifest GETs) against a quota before they say so: API host -> (pulls,
    # window seconds). Their RateLimit headers correct it; a manifest answer without them lifts it.
    pull_limits: Mapping[str, tuple[int, float]] = field(default_factory=lambda: dict(KNOWN_PULL_LIMITS))
    default_platform: Platform = LINUX_AMD64  # Legacy mode's choice when `preferred` matches nothing
    extra_ca_file: str | None = None  # PEM bundle trusted in addition to the system CAs
    cache_size: int = 1024  # parsed manifests and image metadata kept by digest (each)
    token_expiry_margin: float = 10.0  # seconds before `expires_in` runs out that a token is renewed
    ping_ttl: float = 300.0  # seconds a registry's scheme and auth challenge are remembered
    max_manifest_bytes: int = 4 * MiB
    max_config_bytes: int = 8 * MiB
    max_tag_pages: int = 1000
    user_agent: str = "imagestreams-operator"
    # Honour HTTP(S)_PROXY / NO_PROXY from the environment. aiohttp then also reads ~/.netrc, so keep it off unless
    # a proxy is needed.
    trust_env: bool = False
    # The operator's registry policy, applied to every request (redirect hops and token realms included)
    # and to the addresses a name resolves to when connecting: host[:port] -> refusal message or None,
    # and (host, addresses) -> refusal message or None.
    host_guard: Callable[[str], str | None] | None = None
    address_guard: Callable[[str, list[str]], str | None] | None = None
    # Told of every HTTP exchange sent (each attempt and redirect hop, not those refused before sending), for
    # metrics: (registry the request is for, method, HTTP status or the TransportKind of a failure, "refused" for
    # an address the policy denied at connect time, "cancelled"). Never given a URL or credentials.
    request_observer: Callable[[str, str, str], None] | None = None
    # Told of a registry's request limits whenever they change (registry, requests per second or math.inf,
    # requests in flight), for metrics.
    limit_observer: Callable[[str, float, int], None] | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.per_registry_concurrency < 1:
            raise ValueError("per_registry_concurrency must be at least 1")
        if self.per_registry_burst < 1:
            raise ValueError("per_registry_burst must be at least 1")
        if self.per_registry_min_rate <= 0 or self.limit_recovery_seconds <= 0:
            raise ValueError("per_registry_min_rate and limit_recovery_seconds must be positive")
        if self.cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        if min(self.connect_timeout, self.read_timeout) <= 0:
            raise ValueError("timeouts must be positive")

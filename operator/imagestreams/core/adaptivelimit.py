"""How hard the operator may press one registry: a request limit that adapts to what the registry says. Pure: time is
passed in, nothing waits here (`registry.transport` applies the limits to its requests).

- `AdaptiveLimit`: requests per second and requests in flight, AIMD-like. It starts at its ceiling, generous for a
  registry that never pushes back. A 429 (Too Many Requests) halves both, an error that may come from load (a 5xx,
  408, a timeout, a dropped connection) takes a quarter off; several answers of one burst count once (`cooldown`).
  After the last push-back both climb back linearly in time and reach the ceiling `recovery_seconds` later. A
  Retry-After is not this module's business: the transport pauses the registry for that long.
- `PullBudget`: the requests a registry counts against a quota over a window, which it may advertise in
  `RateLimit-Limit` and `RateLimit-Remaining` headers (`parse_advertised`). Docker Hub counts manifest GETs, never
  HEADs (`counts_as_pull`), and sends the headers on manifest answers to users with a quota; a manifest answer
  without them means the user has none (a paid account). `KNOWN_PULL_LIMITS` gives the budget to assume before the
  first answer (Docker Hub's limit for anonymous pulls, the lower of its two: an authenticated user's answers raise
  it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from imagestreams.core.fairness import TokenBucket
from imagestreams.core.references import DOCKER_HUB_API_HOST

# Docker Hub's pull limits (docs.docker.com/docker-hub/usage/pulls): per 6 hours, 100 pulls for an anonymous client
# (per IPv4 address or IPv6 /64), 200 for a Personal account, none for paid subscriptions. A pull is a manifest GET
# (one per platform of a multi-arch image); a HEAD, a version check, is not counted.
DOCKER_HUB_WINDOW_SECONDS = 6 * 3600.0
DOCKER_HUB_ANONYMOUS_PULLS = 100
KNOWN_PULL_LIMITS: dict[str, tuple[int, float]] = {
    DOCKER_HUB_API_HOST: (DOCKER_HUB_ANONYMOUS_PULLS, DOCKER_HUB_WINDOW_SECONDS)
}


@dataclass(frozen=True)
class LimitPolicy:
    """The bounds and steps of an `AdaptiveLimit`. A ceiling rate <= 0 means no rate limit at all (only the number
    of requests in flight adapts then)."""

    ceiling_rate: float
    ceiling_concurrency: int
    floor_rate: float = 1.0
    recovery_seconds: float = 30.0  # from the last push-back back to the ceiling, linearly
    throttled_factor: float = 0.5  # a 429
    error_factor: float = 0.75  # a 5xx, 408, timeout or dropped connection
    cooldown_seconds: float = 1.0  # push-backs within this long of the last one that counted are one

    def __post_init__(self) -> None:
        if self.ceiling_concurrency < 1:
            raise ValueError("ceiling_concurrency must be at least 1")
        if self.floor_rate <= 0:
            raise ValueError("floor_rate must be positive")
        if self.recovery_seconds <= 0 or self.cooldown_seconds < 0:
            raise ValueError("recovery_seconds must be positive and cooldown_seconds not negative")
        if not (0 < self.error_factor <= 1 and 0 < self.throttled_factor <= 1):
            raise ValueError("the factors must be in (0, 1]")


class AdaptiveLimit:
    """One registry's current request limits (see the module's docstring)."""

    def __init__(self, policy: LimitPolicy) -> None:
        self.policy = policy
        # The limits right after the last push-back that counted, and when that was (None: never pushed back).
        self._rate_after = self.ceiling_rate
        self._concurrency_after = float(policy.ceiling_concurrency)
        self._pushed_back_at: float | None = None
        self.push_backs = 0  # push-backs that counted, for metrics and tests

    @property
    def unlimited(self) -> bool:
        return self.policy.ceiling_rate <= 0

    @property
    def ceiling_rate(self) -> float:
        return math.inf if self.unlimited else self.policy.ceiling_rate

    @property
    def floor_rate(self) -> float:
        return min(self.policy.floor_rate, self.ceiling_rate)

    def rate(self, now: float) -> float:
        """Requests per second allowed now (math.inf without a rate limit)."""
        if self.unlimited:
            return math.inf
        return self._recovered(self._rate_after, self.ceiling_rate, now)

    def concurrency(self, now: float) -> int:
        """Requests allowed in flight now."""
        return max(1, int(self._recovered(self._concurrency_after, float(self.policy.ceiling_concurrency), now)))

    def throttled(self, now: float) -> bool:
        """The registry answered 429. True when this counted as a push-back (not within the cooldown of the last)."""
        return self._push_back(now, self.policy.throttled_factor)

    def failed(self, now: float) -> bool:
        """An answer or failure that may come from load (5xx, 408, timeout, dropped connection)."""
        return self._push_back(now, self.policy.error_factor)

    def _recovered(self, after: float, ceiling: float, now: float) -> float:
        if self._pushed_back_at is None or after >= ceiling:
            return ceiling
        elapsed = max(0.0, now - self._pushed_back_at)
        return min(ceiling, after + ceiling * elapsed / self.policy.recovery_seconds)

    def _push_back(self, now: float, factor: float) -> bool:
        last = self._pushed_back_at
        if last is not None and now - last < self.policy.cooldown_seconds:
            return False
        rate, concurrency = self.rate(now), self.concurrency(now)
        if not self.unlimited:
            self._rate_after = max(self.floor_rate, rate * factor)
        self._concurrency_after = float(max(1, math.floor(concurrency * factor)))
        self._pushed_back_at = now
        self.push_backs += 1
        return True


@dataclass(frozen=True)
class Advertised:
    """A quota a registry advertised: `limit` requests per `window` seconds, `remaining` of them left now."""

    limit: int
    window: float
    remaining: int | None


_QUOTA = re.compile(r"\s*(\d{1,12})\s*(?:;\s*w\s*=\s*(\d{1,12}))?")


def _quota(value: str | None) -> tuple[int, float | None] | None:
    """`100;w=21600` (Docker Hub's form, after the IETF draft) -> (100, 21600.0); a bare number has no window."""
    if value is None:
        return None
    match = _QUOTA.match(value[:64])  # the first policy when several are listed
    if match is None:
        return None
    return int(match[1]), float(match[2]) if match[2] else None


def parse_advertised(limit: str | None, remaining: str | None) -> Advertised | None:
    """The quota in a `RateLimit-Limit` and `RateLimit-Remaining` pair, or None when there is no usable one (a
    limit needs its window, from either header)."""
    quota, left = _quota(limit), _quota(remaining)
    if quota is None:
        return None
    window = quota[1] or (left[1] if left else None)
    if not window:
        return None
    return Advertised(quota[0], window, left[0] if left else None)


def counts_as_pull(method: str, path: str) -> bool:
    """Whether a request counts against a pull quota: a manifest GET (Docker Hub's definition of a pull)."""
    return method == "GET" and "/manifests/" in path


class PullBudget:
    """The requests a registry counts (`counts_as_pull`) that the operator may still send: a token bucket of
    `limit` refilled over `window`, corrected by every answer that advertises the registry's own count, and lifted
    while the registry's answers advertise none (no quota for this user)."""

    def __init__(self, limit: int, window: float) -> None:
        self.bucket = TokenBucket(limit / window, limit)
        self.limit, self.window = limit, window
        self.lifted = False

    def try_take(self, now: float) -> bool:
        return self.lifted or self.bucket.try_take(now)

    def delay(self, now: float) -> float:
        """Seconds until a pull may be sent (0.0 when one may now)."""
        return 0.0 if self.lifted else self.bucket.delay(now)

    def give_back(self) -> None:
        if not self.lifted:
            self.bucket.give_back()

    def advertised(self, quota: Advertised, now: float) -> None:
        """An answer carried the registry's quota: take its limit and window, and its count of what is left (the
        registry's count includes pulls by others behind the same address)."""
        self.lifted = False
        if (quota.limit, quota.window) != (self.limit, self.window):
            self.limit, self.window = quota.limit, quota.window
            self.bucket = TokenBucket(quota.limit / quota.window, quota.limit)
        if quota.remaining is not None:
            self.bucket.set_level(now, min(quota.remaining, quota.limit))

    def none_advertised(self) -> None:
        """A manifest answer without a quota: this user's pulls are not counted."""
        self.lifted = True

"""Scheduled imports: which tags are due, spread over the interval. The budget (a `fairness.TokenBucket`) is shared
across namespaces with `fairness.share_fairly`."""

from __future__ import annotations

import hashlib
import math


def spread_offset(key: str, interval: float) -> float:
    """A stable offset in [0, interval) so streams created together are not all checked together."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * interval


def next_due(last_checked: float | None, key: str, interval: float, started: float) -> float:
    """When a scheduled tag should next be checked: the first slot of its grid after the last check.

    Each tag's slots are `started + offset + k * interval`, with a stable offset per tag, so checks
    stay spread over the interval and keep their period however late a check ran. Never checked
    since the operator started: its first slot, so a restart re-checks everything once over one
    interval instead of all at once.
    """
    offset = spread_offset(key, interval)
    first = started + offset
    if last_checked is None or last_checked < first:
        return first
    return first + (math.floor((last_checked - first) / interval) + 1) * interval

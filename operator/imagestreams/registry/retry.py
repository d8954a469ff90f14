"""Pure retry policy: which answers are worth another try, and Retry-After parsing (how long to wait between
tries is core.backoff, shared with the work queues)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from imagestreams.core.backoff import backoff_delay

__all__ = ["backoff_delay", "is_retryable_status", "parse_retry_after"]

# 408 and the gateway family are transient; 501 (not implemented) and other 5xx codes are retried too,
# except 501 and 505 which will not change on a retry.
_NOT_RETRYABLE_5XX = frozenset({501, 505})


def is_retryable_status(status: int) -> bool:
    return status == 408 or (500 <= status <= 599 and status not in _NOT_RETRYABLE_5XX)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP date; None if absent or invalid."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        # float(), not int(): int() refuses more than 4300 digits (ValueError), and float(int()) overflows.
        delay = float(value)
        return delay if math.isfinite(delay) else None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())

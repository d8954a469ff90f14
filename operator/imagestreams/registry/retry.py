"""Pure retry policy: which answers are worth another try, how long to wait, and Retry-After parsing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# 408 and the gateway family are transient; 501 (not implemented) and other 5xx codes are retried too,
# except 501 and 505 which will not change on a retry.
_NOT_RETRYABLE_5XX = frozenset({501, 505})


def is_retryable_status(status: int) -> bool:
    return status == 408 or (500 <= status <= 599 and status not in _NOT_RETRYABLE_5XX)


def backoff_delay(attempt: int, base: float, cap: float, jitter: float) -> float:
    """Seconds to wait after the `attempt`-th failure (1-based): exponential with "equal jitter".

    Half of the exponential step is fixed, the other half scaled by `jitter` in [0, 1), so concurrent
    clients spread out but none retries immediately.
    """
    step = min(cap, base * 2.0 ** max(0, attempt - 1))
    return step / 2 + step / 2 * min(max(jitter, 0.0), 1.0)


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

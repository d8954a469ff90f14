"""The one backoff policy: exponential steps with "equal jitter". Used by the registry client's retries and by the
work queues' retries of failed passes. Pure: the caller draws the jitter."""

from __future__ import annotations

# 2**64 steps are beyond any cap; the bound keeps a long failure streak from overflowing a float.
_MAX_DOUBLINGS = 64


def backoff_delay(attempt: int, base: float, cap: float, jitter: float) -> float:
    """Seconds to wait after the `attempt`-th failure (1-based): exponential with "equal jitter".

    Half of the exponential step is fixed, the other half scaled by `jitter` in [0, 1], so concurrent
    clients spread out but none retries immediately.
    """
    step = min(cap, base * 2.0 ** min(_MAX_DOUBLINGS, max(0, attempt - 1)))
    return step / 2 + step / 2 * min(max(jitter, 0.0), 1.0)

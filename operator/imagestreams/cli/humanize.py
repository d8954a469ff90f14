"""Times, durations and sizes written the way `oc` and `kubectl` write them."""

from __future__ import annotations

import datetime


def parse_time(text: str | None) -> datetime.datetime | None:
    """An RFC 3339 timestamp as the API server writes it, or None when absent or unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def human_duration(seconds: float) -> str:  # noqa: PLR0911 - one return per band, as in go-units
    """docker/go-units HumanDuration, which `oc describe` uses ("5 minutes", "About an hour")."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ago(then: datetime.datetime | None, now: datetime.datetime) -> str:
    """`<duration> ago` as `oc describe` writes it; `<unknown>` without a time."""
    if then is None:
        return "<unknown>"
    return f"{human_duration((now - then).total_seconds())} ago"


def short_duration(seconds: float) -> str:  # noqa: PLR0911 - one return per band, as in apimachinery
    """k8s.io/apimachinery duration.HumanDuration, the AGE column of `kubectl get` ("45s", "5m2s", "3d")."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60 * 2:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y{rest}d" if rest else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(then: datetime.datetime | None, now: datetime.datetime) -> str:
    """The AGE column for a time; `<unknown>` without one."""
    if then is None:
        return "<unknown>"
    return short_duration((now - then).total_seconds())


_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float) -> str:
    """docker/go-units HumanSize: decimal units, four significant digits ("12.35MB", "512B")."""
    unit = 0
    while size >= 1000 and unit < len(_DECIMAL_UNITS) - 1:
        size /= 1000
        unit += 1
    # Python's %g follows C, as Go's does: four significant digits, trailing zeros dropped.
    return f"{size:.4g}{_DECIMAL_UNITS[unit]}"

"""The Events section of `describe --show-events`, as kubectl's DescribeEvents writes it. Pure.

`oc describe is` shows no events (its describer ignores --show-events); every other `oc describe` (and
`kubectl describe` of any object) ends with this section, written through the describer's own tabwriter,
so here it follows oc's tab-padded layout.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from imagestreams.cli.humanize import parse_time, short_duration
from imagestreams.cli.tabwriter import tabwrite

_EPOCH = datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _since(then: datetime.datetime | None, now: datetime.datetime) -> str:
    """kubectl's translateTimestampSince: the AGE form, `<unknown>` without a time."""
    if then is None:
        return "<unknown>"
    return short_duration((now - then).total_seconds())


def _sort_time(event: Mapping[str, Any]) -> datetime.datetime:
    """kubectl's eventTime: the series' last observation, else lastTimestamp, else eventTime."""
    series = event.get("series") or {}
    for value in (series.get("lastObservedTime"), event.get("lastTimestamp"), event.get("eventTime")):
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return _EPOCH


def _interval(event: Mapping[str, Any], now: datetime.datetime) -> str:
    first = parse_time(event.get("eventTime")) or parse_time(event.get("firstTimestamp"))
    first_since = _since(first, now)
    series = event.get("series")
    if series:
        last = _since(parse_time(series.get("lastObservedTime")), now)
        return f"{last} (x{series.get('count', 0)} over {first_since})"
    count = int(event.get("count") or 0)
    if count > 1:
        return f"{_since(parse_time(event.get('lastTimestamp')), now)} (x{count} over {first_since})"
    return first_since


def events_section(events: Sequence[Mapping[str, Any]], now: datetime.datetime) -> str:
    """`Events:\t<none>`, or the Type/Reason/Age/From/Message table, oldest first."""
    if not events:
        return tabwrite("Events:\t<none>\n")
    rows = ["Events:\n  Type\tReason\tAge\tFrom\tMessage\n", "  ----\t------\t----\t----\t-------\n"]
    for event in sorted(events, key=_sort_time):
        source = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
        message = str(event.get("message") or "").strip()
        rows.append(
            f"  {event.get('type', '')}\t{event.get('reason', '')}\t{_interval(event, now)}\t{source}\t{message}\n"
        )
    return tabwrite("".join(rows))

"""Durations and sizes as oc and kubectl print them."""

from __future__ import annotations

import datetime

import pytest

from imagestreams.cli.humanize import age, ago, human_duration, human_size, parse_time, short_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (59 * 60 + 59, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),  # hours are rounded: 1.49 h
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (13 * 86400, "13 days"),
        (14 * 86400, "2 weeks"),
        (59 * 86400, "8 weeks"),
        (60 * 86400, "2 months"),
        (729 * 86400, "24 months"),
        (730 * 86400, "2 years"),
    ],
)
def test_human_duration_matches_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (45, "45s"),
        (119, "119s"),
        (125, "2m5s"),
        (300, "5m"),
        (11 * 60, "11m"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (5 * 3600, "5h"),
        (9 * 3600, "9h"),
        (50 * 3600, "2d2h"),
        (3 * 86400, "3d"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_short_duration_matches_kubectl_age(seconds: float, text: str) -> None:
    assert short_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (512, "512B"),
        (999, "999B"),
        (1000, "1kB"),
        (1234, "1.234kB"),
        (12_345_678, "12.35MB"),
        (10**12, "1TB"),
    ],
)
def test_human_size_matches_go_units(size: int, text: str) -> None:
    assert human_size(size) == text


def test_times_parse_and_read_as_ago_and_age() -> None:
    now = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
    then = parse_time("2026-01-01T11:55:00Z")
    assert then == datetime.datetime(2026, 1, 1, 11, 55, tzinfo=datetime.UTC)
    assert ago(then, now) == "5 minutes ago"
    assert age(then, now) == "5m"
    assert parse_time("") is None
    assert parse_time("yesterday") is None
    assert ago(None, now) == "<unknown>"
    assert age(None, now) == "<unknown>"

"""Retry policy: retryable statuses, exponential backoff with jitter, Retry-After in both forms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imagestreams.registry.retry import backoff_delay, is_retryable_status, parse_retry_after

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Fri, 20 Nov 2026 12:00:30 GMT", 30.0),
        ("Fri, 20 Nov 2026 11:59:00 GMT", 0.0),  # in the past: no wait
        ("Friday, 20-Nov-26 12:01:00 GMT", 60.0),  # the obsolete RFC 850 form
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (502, True), (503, True), (504, True), (408, True)])
def test_transient_statuses_are_retried(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 429, 501, 505])
def test_other_statuses_are_not(status: int) -> None:
    assert not is_retryable_status(status)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, 1.0, 5.0, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_jitter_spreads_between_half_and_full_step() -> None:
    assert backoff_delay(3, 1.0, 60.0, 0.0) == 2.0
    assert backoff_delay(3, 1.0, 60.0, 0.5) == 3.0
    assert backoff_delay(3, 1.0, 60.0, 7.0) == 4.0  # out-of-range jitter is clamped


def test_a_long_failure_streak_stays_at_the_cap() -> None:
    assert backoff_delay(5_000, 1.0, 300.0, 1.0) == 300.0  # 2**4999 would overflow a float

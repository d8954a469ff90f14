"""Scheduling spreads checks and honours the budget; settings come from the environment with clear errors."""

from __future__ import annotations

import pytest

from imagestreams.api.settings import OperatorSettings, SettingsError
from imagestreams.core.schedule import TokenBucket, next_due, spread_offset


def test_spread_offset_is_stable_and_within_the_interval() -> None:
    offsets = [spread_offset(f"ns/stream:{i}", 900) for i in range(200)]
    assert all(0 <= offset < 900 for offset in offsets)
    assert spread_offset("ns/stream:1", 900) == offsets[1]
    # Spread, not bunched: every quarter of the interval gets some of the 200 keys.
    assert {int(offset // 225) for offset in offsets} == {0, 1, 2, 3}


def test_checks_follow_a_fixed_grid_per_tag() -> None:
    first = 50.0 + spread_offset("k", 900)
    assert next_due(None, "k", 900, started=50.0) == first
    # A check at its slot, or late, or early (e.g. on a user request): the next slot of the grid.
    assert next_due(first, "k", 900, started=50.0) == first + 900
    assert next_due(first + 30, "k", 900, started=50.0) == first + 900
    assert next_due(first + 899, "k", 900, started=50.0) == first + 900
    assert next_due(first + 900, "k", 900, started=50.0) == first + 1800
    # Checked before its first slot (the stream was just created): still the first slot.
    assert next_due(first - 10, "k", 900, started=50.0) == first


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(per_minute=60, burst=2)
    assert [bucket.try_take(100.0) for _ in range(3)] == [True, True, False]
    assert bucket.try_take(100.5) is False
    assert bucket.try_take(101.0) is True


def test_unlimited_budget() -> None:
    bucket = TokenBucket(per_minute=0, burst=0)
    assert all(bucket.try_take(1.0) for _ in range(1000))


def test_settings_from_environment() -> None:
    settings = OperatorSettings.from_env(
        {
            "IMAGESTREAMS_HISTORY_LIMIT": "20",
            "IMAGESTREAMS_ALLOWED_REGISTRIES": "quay.io, *.corp.example",
            "IMAGESTREAMS_NAMESPACES": "a,b",
            "UNRELATED": "x",
        }
    )
    assert settings.history_limit == 20
    assert settings.allowed_registries == ("quay.io", "*.corp.example")
    assert settings.namespaces == ("a", "b")
    assert "169.254.169.254" in settings.denied_registries


def test_bad_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="IMAGESTREAMS_HISTORY_LIMIT: Input should be less than or equal to 100"):
        OperatorSettings.from_env({"IMAGESTREAMS_HISTORY_LIMIT": "1000"})

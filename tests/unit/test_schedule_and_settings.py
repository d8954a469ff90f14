"""Scheduling spreads checks and shares the budget fairly by namespace; settings come from the environment with
clear errors."""

from __future__ import annotations

import pytest

from imagestreams.api.settings import OperatorSettings, SettingsError
from imagestreams.controller.reconciler import Scheduler, StreamCache
from imagestreams.core.schedule import next_due, spread_offset


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
    scheduler = Scheduler(OperatorSettings(max_scheduled_imports_per_minute=60))
    bucket = scheduler.budget
    bucket.take_up_to(0.0, 1000)  # spend the burst (2 x 60)
    assert [bucket.try_take(100.0) for _ in range(101)] == [True] * 100 + [False]
    assert bucket.try_take(100.5) is False
    assert bucket.try_take(101.0) is True


def test_unlimited_budget() -> None:
    for per_minute in (0, -1):
        bucket = Scheduler(OperatorSettings(max_scheduled_imports_per_minute=per_minute)).budget
        assert all(bucket.try_take(1.0) for _ in range(1000))


def scheduled_stream(namespace: str, name: str, tags: int) -> dict[str, object]:
    spec_tags = [
        {
            "name": f"t{n}",
            "from": {"kind": "DockerImage", "name": f"registry.example/{namespace}/{name}:t{n}"},
            "importPolicy": {"scheduled": True},
        }
        for n in range(tags)
    ]
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"tags": spec_tags},
    }


def test_the_scheduled_budget_is_shared_fairly_by_namespaces() -> None:
    """A namespace with a thousand scheduled tags, created first, cannot starve two namespaces with one each."""
    settings = OperatorSettings(max_scheduled_imports_per_minute=6, scheduled_interval_seconds=60)
    cache = StreamCache()
    cache.put(("big", "many"), scheduled_stream("big", "many", 1000))
    cache.put(("team-a", "app"), scheduled_stream("team-a", "app", 1))
    cache.put(("team-b", "app"), scheduled_stream("team-b", "app", 1))
    scheduler = Scheduler(settings, started=0.0)
    scheduler.budget.take_up_to(60.0, 1000)  # the burst is spent: one check every 10 s from now on
    rounds = [scheduler.due(cache, now) for now in (70.0, 80.0, 90.0, 100.0)]
    namespaces = [sorted(key[0] for key in due) for due in rounds]
    assert [len(tags) for due in rounds for tags in due.values()] == [1, 1, 1, 1]
    # Every namespace within three checks, whatever the order of the streams in the cache.
    assert sorted(ns for names in namespaces[:3] for ns in names) == ["big", "team-a", "team-b"]
    assert namespaces[3] == ["big"]  # the others have nothing left due; big gets the budget


def test_within_a_namespace_the_longest_due_goes_first() -> None:
    settings = OperatorSettings(max_scheduled_imports_per_minute=60, scheduled_interval_seconds=60)
    cache = StreamCache()
    cache.put(("ns", "app"), scheduled_stream("ns", "app", 20))
    scheduler = Scheduler(settings, started=0.0)
    scheduler.budget.take_up_to(60.0, 1000)
    [tags] = scheduler.due(cache, 60.0 + 1.0).values()  # everything due; one check allowed (1 s at 60 a minute)
    [tag] = tags
    first = min(range(20), key=lambda n: spread_offset(f"ns/app/t{n}", 60))
    assert tag == f"t{first}"


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

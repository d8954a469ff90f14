"""The adaptive per-registry request limit, advertised quotas and pull budgets. Pure: every test passes the time in."""

from __future__ import annotations

import math

import pytest

from imagestreams.core.adaptivelimit import (
    DOCKER_HUB_ANONYMOUS_PULLS,
    DOCKER_HUB_WINDOW_SECONDS,
    KNOWN_PULL_LIMITS,
    AdaptiveLimit,
    Advertised,
    LimitPolicy,
    PullBudget,
    counts_as_pull,
    parse_advertised,
)
from imagestreams.core.fairness import Admission

POLICY = LimitPolicy(ceiling_rate=100.0, ceiling_concurrency=16, floor_rate=1.0, recovery_seconds=10.0)

# --- the limit over time: (event, at second) steps, then the (rate, concurrency) expected after each ------------

SCENARIOS = [
    ("a registry that never pushes back keeps the ceiling", [("ok", 0.0), ("ok", 100.0)], [(100, 16), (100, 16)]),
    ("a 429 halves both", [("429", 5.0)], [(50, 8)]),
    ("an error takes a quarter off", [("error", 5.0)], [(75, 12)]),
    (
        "answers of one burst count once (while the limit climbs back)",
        [("429", 5.0), ("429", 5.2), ("error", 5.9), ("429", 6.0)],
        [(50, 8), (52, 8), (59, 9), (30, 4)],
    ),
    (
        "after a push-back the limit climbs back linearly, the whole range in recovery_seconds",
        [("429", 0.0), ("ok", 2.5), ("ok", 5.0), ("ok", 10.0), ("ok", 60.0)],
        [(50, 8), (75, 12), (100, 16), (100, 16), (100, 16)],
    ),
    (
        "a push-back while climbing halves the limit reached",
        [("429", 0.0), ("429", 2.5)],
        [(50, 8), (37.5, 6)],
    ),
]


@pytest.mark.parametrize(("name", "events", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_limit_over_time(name: str, events: list[tuple[str, float]], expected: list[tuple[float, int]]) -> None:
    limit = AdaptiveLimit(POLICY)
    seen = []
    for event, now in events:
        if event == "429":
            limit.throttled(now)
        elif event == "error":
            limit.failed(now)
        seen.append((limit.rate(now), limit.concurrency(now)))
    assert seen == [pytest.approx(pair) for pair in expected]


def test_never_below_the_floor_rate_and_one_request_in_flight() -> None:
    limit = AdaptiveLimit(LimitPolicy(ceiling_rate=100.0, ceiling_concurrency=16, recovery_seconds=1e9))
    for second in range(10):
        limit.throttled(float(second))
    assert (limit.rate(10.0), limit.concurrency(10.0)) == pytest.approx((1.0, 1))


def test_only_push_backs_outside_the_cooldown_count() -> None:
    limit = AdaptiveLimit(POLICY)
    assert [limit.throttled(0.0), limit.throttled(0.5), limit.failed(0.99), limit.failed(1.0)] == [
        True,
        False,
        False,
        True,
    ]
    assert limit.push_backs == 2


def test_without_a_rate_ceiling_only_the_concurrency_adapts() -> None:
    limit = AdaptiveLimit(LimitPolicy(ceiling_rate=0, ceiling_concurrency=4))
    limit.throttled(0.0)
    assert (limit.rate(0.0), limit.concurrency(0.0)) == (math.inf, 2)
    assert limit.concurrency(30.0) == 4


def test_a_floor_above_the_ceiling_is_the_ceiling() -> None:
    limit = AdaptiveLimit(LimitPolicy(ceiling_rate=0.5, ceiling_concurrency=1, floor_rate=1.0))
    limit.throttled(0.0)
    assert limit.rate(0.0) == 0.5


@pytest.mark.parametrize(
    "policy",
    [
        {"ceiling_concurrency": 0},
        {"floor_rate": 0.0},
        {"recovery_seconds": 0.0},
        {"throttled_factor": 1.5},
        {"error_factor": 0.0},
    ],
)
def test_policy_bounds_are_checked(policy: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LimitPolicy(**{"ceiling_rate": 10.0, "ceiling_concurrency": 2, **policy})  # type: ignore[arg-type]


# --- advertised quotas -------------------------------------------------------------------------------------------

ADVERTISED = [
    ("100;w=21600", "76;w=21600", Advertised(100, 21600.0, 76)),  # Docker Hub
    ("100;w=21600", None, Advertised(100, 21600.0, None)),
    ("200", "0;w=3600", Advertised(200, 3600.0, 0)),  # the window from the other header
    (" 100 ; w = 60 , 1000;w=3600", "9;w=60", Advertised(100, 60.0, 9)),  # the first of several policies
    ("100", "50", None),  # no window: nothing to pace by
    (None, "5;w=60", None),
    ("many", "5;w=60", None),
    ("1" * 100 + ";w=60", None, None),  # absurd numbers are not read
]


@pytest.mark.parametrize(("limit", "remaining", "expected"), ADVERTISED)
def test_advertised_quotas(limit: str | None, remaining: str | None, expected: Advertised | None) -> None:
    assert parse_advertised(limit, remaining) == expected


@pytest.mark.parametrize(
    ("method", "path", "counted"),
    [
        ("GET", "/v2/library/nginx/manifests/latest", True),
        ("GET", "/v2/library/nginx/manifests/sha256:abc", True),
        ("HEAD", "/v2/library/nginx/manifests/latest", False),  # a version check is not a pull
        ("GET", "/v2/library/nginx/blobs/sha256:abc", False),
        ("GET", "/v2/library/nginx/tags/list", False),
        ("GET", "/v2/", False),
    ],
)
def test_only_manifest_gets_count_as_pulls(method: str, path: str, counted: bool) -> None:
    assert counts_as_pull(method, path) is counted


def test_docker_hub_is_assumed_to_count_anonymous_pulls_until_it_says_otherwise() -> None:
    assert KNOWN_PULL_LIMITS["registry-1.docker.io"] == (100, 6 * 3600.0)
    assert (DOCKER_HUB_ANONYMOUS_PULLS, DOCKER_HUB_WINDOW_SECONDS) == (100, 21600.0)


def test_pull_budget_spends_its_limit_then_refills_over_the_window() -> None:
    budget = PullBudget(100, 21600.0)
    assert all(budget.try_take(0.0) for _ in range(100))
    assert not budget.try_take(0.0)
    assert budget.delay(0.0) == pytest.approx(216.0)
    assert budget.try_take(216.0)


def test_the_registrys_count_wins_both_ways() -> None:
    budget = PullBudget(100, 21600.0)
    budget.advertised(Advertised(100, 21600.0, 3), 0.0)  # others behind the same address pulled too
    assert [budget.try_take(0.0) for _ in range(4)] == [True, True, True, False]
    budget.advertised(Advertised(200, 21600.0, 150), 10.0)  # an authenticated user's quota
    assert sum(budget.try_take(10.0) for _ in range(300)) == 150


def test_a_budget_is_lifted_while_the_registry_advertises_none_and_back_when_it_does() -> None:
    budget = PullBudget(100, 21600.0)
    budget.advertised(Advertised(100, 21600.0, 0), 0.0)
    assert not budget.try_take(0.0)
    budget.none_advertised()
    assert all(budget.try_take(0.0) for _ in range(1000))
    assert budget.delay(0.0) == 0.0
    budget.advertised(Advertised(100, 21600.0, 0), 1.0)
    assert not budget.try_take(1.0)


def test_a_pull_not_sent_gives_its_token_back() -> None:
    budget = PullBudget(1, 60.0)
    assert budget.try_take(0.0) and not budget.try_take(0.0)
    budget.give_back()
    assert budget.try_take(0.0)


def test_admission_takes_new_limits_at_once() -> None:
    admission: Admission[str] = Admission(rate=100.0, burst=10, concurrency=4)
    for n in range(10):
        admission.enqueue(f"r{n}", ["ns"])
    admission.set_limits(0.0, rate=2.0, burst=1, concurrency=1)
    assert admission.admit(0.0) == "r0"
    assert admission.admit(0.0) is None  # one in flight
    admission.finished()
    assert admission.admit(0.0) is None  # no token: one every 0.5 s
    assert admission.wake_at(0.0) == pytest.approx(0.5)
    admission.set_limits(0.5, rate=math.inf, burst=1, concurrency=3)  # infinite: unlimited
    assert [admission.admit(0.5) for _ in range(4)] == ["r1", "r2", "r3", None]

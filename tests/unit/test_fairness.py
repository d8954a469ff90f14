"""Fair shares of a budget among namespaces: the token bucket, the fair queue, a registry's admission rules, demands
and the scheduled-import share. Pure: every test passes the time in."""

from __future__ import annotations

import pytest

from imagestreams.core.fairness import Admission, Demand, FairQueue, TokenBucket, share_fairly

# --- token bucket -----------------------------------------------------------------------------------------------


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=5.0, burst=10)
    assert [bucket.try_take(0.0) for _ in range(11)] == [True] * 10 + [False]
    assert bucket.delay(0.0) == pytest.approx(0.2)
    assert bucket.try_take(0.1) is False
    assert bucket.try_take(0.2) is True


def test_nothing_is_booked_ahead() -> None:
    """Waiters do not drive the level negative: asking a thousand times does not push the next token back."""
    bucket = TokenBucket(rate=2.0, burst=1)
    assert bucket.try_take(0.0)
    for _ in range(1000):
        assert not bucket.try_take(0.0)
    assert bucket.delay(0.0) == pytest.approx(0.5)
    assert bucket.try_take(0.5)


def test_bucket_refills_up_to_burst_and_takes_up_to_what_is_there() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert bucket.take_up_to(0.0, 10) == 3
    assert bucket.take_up_to(1.0, 10) == 2
    assert bucket.take_up_to(100.0, 10) == 3  # long idle: refilled, but only to the burst
    assert bucket.available(100.0) == 0.0


def test_a_token_given_back_is_there_again() -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    assert bucket.try_take(0.0) and not bucket.try_take(0.0)
    bucket.give_back()
    assert bucket.try_take(0.0)
    bucket.give_back()
    bucket.give_back()
    assert bucket.available(0.0) == 1.0  # never above the burst


def test_non_positive_rate_means_unlimited() -> None:
    for rate in (0.0, -1.0):
        bucket = TokenBucket(rate=rate, burst=0)
        assert all(bucket.try_take(1.0) for _ in range(1000))
        assert bucket.take_up_to(1.0, 5000) == 5000
        assert bucket.delay(1.0) == 0.0


# --- fair queue -------------------------------------------------------------------------------------------------


def drain(queue: FairQueue[str]) -> list[str]:
    served = []
    while (item := queue.pop()) is not None:
        served.append(item)
    return served


def test_a_newcomer_waits_one_turn_not_behind_a_thousand() -> None:
    queue: FairQueue[str] = FairQueue()
    for n in range(1000):
        queue.push(f"big-{n}", ["big"])
    assert queue.pop() == "big-0"
    queue.push("small-0", ["small"])
    assert [queue.pop(), queue.pop()] == ["small-0", "big-1"]
    assert queue.tenants() == {"big"} and len(queue) == 998


def test_round_robin_across_tenants_in_order_within_one() -> None:
    queue: FairQueue[str] = FairQueue()
    for item in ["a1", "a2", "a3"]:
        queue.push(item, ["a"])
    for item in ["b1", "b2"]:
        queue.push(item, ["b"])
    queue.push("c1", ["c"])
    assert queue.waiting("a") == 3 and queue.tenants() == {"a", "b", "c"}
    assert drain(queue) == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert queue.tenants() == frozenset() and len(queue) == 0


def test_a_tenant_just_served_waits_for_the_others_also_when_it_queues_again() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a1", ["a"])
    queue.push("b1", ["b"])
    assert queue.pop() == "a1"  # a has nothing left waiting
    queue.push("a2", ["a"])  # ... and queues again at once (a lookup's next request)
    queue.push("c1", ["c"])
    assert drain(queue) == ["b1", "c1", "a2"]


def test_a_tenant_that_alternates_gets_no_more_than_its_share() -> None:
    """b queues one request at a time (each after the previous was served); a and c keep many queued."""
    queue: FairQueue[str] = FairQueue()
    for n in range(6):
        queue.push(f"a{n}", ["a"])
        queue.push(f"c{n}", ["c"])
    queue.push("b0", ["b"])
    served = []
    for n in range(1, 10):
        item = queue.pop()
        assert item is not None
        served.append(item)
        if item.startswith("b"):
            queue.push(f"b{n}", ["b"])
    assert [item[0] for item in served] == ["a", "c", "b", "a", "c", "b", "a", "c", "b"]


def test_memory_of_turns_stays_bounded() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("waiting", ["stays"])
    for n in range(1000):
        queue.push(f"once-{n}", [f"tenant-{n}"])
        assert queue.pop() is not None
    assert len(queue._served) <= 2 * 1 + 64 + 1
    assert len(queue) == 1


def test_removed_items_are_skipped_and_cost_no_turn() -> None:
    queue: FairQueue[str] = FairQueue()
    for item in ["a1", "a2", "a3"]:
        queue.push(item, ["a"])
    queue.push("b1", ["b"])
    assert queue.remove("a1") and queue.remove("a2")
    assert not queue.remove("a2") and not queue.remove("never")
    assert "a3" in queue and "a1" not in queue
    assert drain(queue) == ["a3", "b1"]


def test_an_item_for_several_tenants_is_served_at_the_first_of_their_turns() -> None:
    queue: FairQueue[str] = FairQueue()
    for n in range(5):
        queue.push(f"a{n}", ["a"])
    queue.push("b1", ["b"])
    queue.push("a4", ["c"])  # a4 (deep in a's lane) is also wanted by c, now
    assert queue.tenants() == {"a", "b", "c"}
    assert drain(queue) == ["a0", "b1", "a4", "a1", "a2", "a3"]


# --- admission: a registry's budget -----------------------------------------------------------------------------


def test_admission_honours_concurrency_and_rate() -> None:
    admission: Admission[str] = Admission(rate=10.0, burst=2, concurrency=2)
    for n in range(4):
        admission.enqueue(f"r{n}", ["ns"])
    assert [admission.admit(0.0), admission.admit(0.0), admission.admit(0.0)] == ["r0", "r1", None]
    assert admission.wake_at(0.0) is None  # both slots taken: a finishing request makes room
    admission.finished()
    assert admission.admit(0.0) is None  # a slot, but no token yet
    assert admission.wake_at(0.0) == pytest.approx(0.1)
    assert admission.admit(0.1) == "r2"
    admission.finished()
    assert admission.admit(0.15) is None
    assert admission.admit(0.2) == "r3"
    assert admission.wake_at(0.2) is None  # nothing waits


def test_admission_serves_namespaces_in_turn() -> None:
    admission: Admission[str] = Admission(rate=1.0, burst=1, concurrency=100)
    for n in range(1000):
        admission.enqueue(f"big-{n}", ["big"])
    assert admission.admit(0.0) == "big-0"
    admission.enqueue("small", ["small"])
    assert admission.tenants_waiting() == {"big", "small"}
    assert admission.admit(1.0) == "small"  # the next token, not the 1000th
    assert admission.admit(2.0) == "big-1"


def test_a_withdrawn_request_costs_nothing_and_a_refund_returns_slot_and_token() -> None:
    admission: Admission[str] = Admission(rate=1.0, burst=1, concurrency=1)
    admission.enqueue("gives-up", ["a"])
    admission.enqueue("waits", ["b"])
    admission.withdraw("gives-up")
    assert admission.admit(0.0) == "waits"
    admission.enqueue("next", ["a"])
    admission.refund()  # "waits" was cancelled before it was sent
    assert admission.in_flight == 0
    assert admission.admit(0.0) == "next"  # the same instant: its token came back


def test_a_pause_holds_every_request_until_it_ends() -> None:
    admission: Admission[str] = Admission(rate=0.0, burst=1, concurrency=4)
    admission.enqueue("r", ["ns"])
    admission.pause_until(5.0)
    admission.pause_until(3.0)  # a shorter pause does not shorten it
    assert admission.admit(1.0) is None
    assert admission.wake_at(1.0) == 5.0
    assert admission.admit(5.0) == "r"


def test_a_waiting_request_learns_new_tenants() -> None:
    admission: Admission[str] = Admission(rate=1.0, burst=1, concurrency=10)
    for n in range(3):
        admission.enqueue(f"a{n}", ["a"])
    admission.enqueue("b0", ["b"])
    admission.also_for("a2", ["c"])
    admission.also_for("gone", ["c"])  # not waiting: ignored
    served = [admission.admit(float(t)) for t in range(4)]
    assert served == ["a0", "b0", "a2", "a1"]


# --- demand -----------------------------------------------------------------------------------------------------


def test_shared_work_takes_the_tenants_of_every_caller_also_later_ones() -> None:
    first, second = Demand(["team-a"]), Demand(["team-b"])
    lookup = Demand()
    lookup.include(first)
    token_fetch = Demand()  # started by the lookup, on its behalf
    token_fetch.include(lookup)
    seen: list[frozenset[str]] = []
    stop = token_fetch.follow(seen.append)
    assert token_fetch.tenants == {"team-a"}
    lookup.include(second)  # another stream joins the lookup
    assert token_fetch.tenants == {"team-a", "team-b"}
    assert seen == [{"team-b"}]
    stop()
    lookup.include(Demand(["team-c"]))
    assert seen == [{"team-b"}] and token_fetch.tenants == {"team-a", "team-b", "team-c"}


def test_demand_adds_up_the_time_waited_for_a_turn() -> None:
    root = Demand(["ns"])
    flight = Demand()
    flight.include(root)
    root.queued(0.0)
    root.unqueued(1.0)
    flight.queued(2.0)
    flight.queued(2.5)  # two requests waiting at once count once
    flight.unqueued(3.0)
    assert root.waited(3.5) == pytest.approx(2.5)  # 1 s of its own, 1.5 s of the work it waits for, still waiting
    flight.unqueued(4.0)
    assert root.waited(10.0) == pytest.approx(3.0)


def test_waited_survives_a_cycle() -> None:
    one, two = Demand(["a"]), Demand(["b"])
    one.include(two)
    two.include(one)
    assert one.tenants == two.tenants == {"a", "b"}
    one.queued(0.0)
    assert one.waited(1.0) == two.waited(1.0) == pytest.approx(1.0)


# --- scheduled-import share -------------------------------------------------------------------------------------


def test_share_fairly_round_robin_least_recently_served_first() -> None:
    queues = {"big": [f"b{n}" for n in range(100)], "small": ["s0", "s1"], "other": ["o0"]}
    picked = share_fairly(queues, 5, {})
    assert picked == [("big", "b0"), ("other", "o0"), ("small", "s0"), ("big", "b1"), ("small", "s1")]
    # "big" got a turn most recently in an earlier round: the others go first.
    assert share_fairly(queues, 2, {"big": 9, "other": 3, "small": 5}) == [("other", "o0"), ("small", "s0")]


def test_share_fairly_stops_when_everything_is_handed_out() -> None:
    assert share_fairly({"a": [1, 2], "b": [3]}, 10, {}) == [("a", 1), ("b", 3), ("a", 2)]
    assert share_fairly({"a": [1]}, 0, {}) == []
    assert share_fairly({}, 3, {}) == []

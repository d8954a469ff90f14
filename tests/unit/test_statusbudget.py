"""A status too large for the API server is cut to a byte budget, least useful parts first."""

from __future__ import annotations

import json
from typing import Any

from imagestreams.core.statusbudget import (
    COMPLETE,
    OBJECT_BUDGET_BYTES,
    fit_status,
    status_budget,
    with_completeness,
    without_completeness,
)


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _item(tag: str, number: int) -> dict[str, Any]:
    return {
        "created": "2026-11-30T10:00:00Z",
        "dockerImageReference": f"registry.example.com/team/app@sha256:{number:064x}",
        "image": f"sha256:{number:064x}",
        "generation": 1,
    }


def _status(tags: int, depth: int) -> dict[str, Any]:
    entries = [{"tag": f"t{t:04d}", "items": [_item(f"t{t}", t * 100 + d) for d in range(depth)]} for t in range(tags)]
    images = [{"image": item["image"], "labels": {"a": "x" * 50}} for e in entries for item in e["items"]]
    return {"tags": entries, "images": images, "tagsSummary": "t0000"}


def test_a_status_within_budget_is_left_as_it_is() -> None:
    status = _status(3, 3)
    fitted = fit_status(status, _size(status))
    assert fitted.status is status and not fitted.trimmed


def test_metadata_of_older_images_goes_first() -> None:
    status = _status(10, 3)
    current = {e["items"][0]["image"] for e in status["tags"]}
    budget = _size(status) - 20 * _size(status["images"][1]) // 2  # a little less than all metadata
    fitted = fit_status(status, budget)
    assert fitted.size <= budget and fitted.size == _size(fitted.status)
    assert {i["image"] for i in fitted.status["images"]} == current
    assert fitted.dropped_history_entries == 0 and fitted.dropped_tags == []
    assert [len(e["items"]) for e in fitted.status["tags"]] == [3] * 10
    assert len(status["images"]) == 30  # the input is not changed


def test_then_the_oldest_history_of_every_tag_then_whole_tags_from_the_end() -> None:
    status = _status(10, 3)
    no_metadata = {k: v for k, v in status.items() if k != "images"}
    two_deep = {**no_metadata, "tags": [{**e, "items": e["items"][:2]} for e in status["tags"]]}
    fitted = fit_status(status, _size(two_deep))
    assert fitted.dropped_image_metadata == 30 and "images" not in fitted.status
    assert [len(e["items"]) for e in fitted.status["tags"]] == [2] * 10
    assert fitted.dropped_history_entries == 10 and fitted.dropped_tags == []

    one_deep = {**no_metadata, "tags": [{**e, "items": e["items"][:1]} for e in status["tags"]]}
    fitted = fit_status(status, _size(one_deep) - 1)
    assert fitted.size <= _size(one_deep) - 1
    assert fitted.dropped_tags == ["t0009"]
    assert [e["tag"] for e in fitted.status["tags"]] == [f"t{t:04d}" for t in range(9)]
    assert "the status of 1 tag(s) (t0009)" in fitted.summary()


def test_left_out_tags_are_a_condition_whose_time_stays_while_it_holds() -> None:
    status = _status(10, 1)
    fitted = fit_status(status, _size(status) // 2)
    first = with_completeness(fitted, {}, "2026-11-30T10:00:00Z")
    (condition,) = first["conditions"]
    assert condition["type"] == COMPLETE and condition["status"] == "False" and condition["reason"] == "TooLarge"
    assert "split the stream" in condition["message"]
    again = with_completeness(fit_status(status, _size(status) // 2), first, "2026-11-30T11:00:00Z")
    assert again == first  # nothing new: nothing to write
    cleared = with_completeness(fit_status(status, _size(status)), first, "2026-11-30T12:00:00Z")
    assert "conditions" not in cleared


def test_the_budget_counts_the_rest_of_the_object_but_not_the_status_own_managed_fields() -> None:
    small = {"metadata": {"name": "a"}, "spec": {}, "status": {"tags": ["x" * 10_000]}}
    large = {"metadata": {"name": "a"}, "spec": {"tags": ["x" * 500_000]}, "status": {}}
    assert status_budget(small) - status_budget(large) > 499_000 / 1.4 - 10
    assert status_budget({"spec": {"tags": ["x" * 2_000_000]}}) == 0
    # The status write adds its own managed-fields entry: the budget must not shrink because of it, or the
    # next pass would cut the status again and write again.
    spec_fields = {"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}
    status_fields = {"manager": "imagestream-operator", "subresource": "status", "fieldsV1": {"f:x": "y" * 9000}}
    before = {"metadata": {"name": "a", "managedFields": [spec_fields]}, "spec": {}}
    after = {"metadata": {"name": "a", "managedFields": [spec_fields, status_fields]}, "spec": {}}
    assert status_budget(before) == status_budget(after)
    # Room is left for it: the status plus its managed fields (40% of it) fit the object budget.
    assert status_budget(before) * 1.4 <= OBJECT_BUDGET_BYTES


def test_a_second_pass_over_a_fitted_status_changes_nothing() -> None:
    """The stored status, with its condition, fitted again to the same budget: the same status, so no write."""
    status = _status(40, 1)
    budget = _size(status) // 2
    first = with_completeness(fit_status(status, budget), {}, "2026-11-30T10:00:00Z")
    # What the next pass starts from: the stored tags and condition, plus the left-out tags made again.
    again_input = {**status, "conditions": first["conditions"]}
    second = with_completeness(fit_status(without_completeness(again_input), budget), first, "2026-11-30T11:00:00Z")
    assert second == first

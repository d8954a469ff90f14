"""The merge patch a status write sends: what it sets, what it nulls, and nested objects patched key by key."""

from __future__ import annotations

from typing import Any

from imagestreams.kube.streams import status_patch


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 applied, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def test_unchanged_status_sends_nothing() -> None:
    status = {"tags": [{"tag": "a"}], "repositoryImport": {"repository": "r"}}
    assert status_patch(status, status) == {}


def test_a_key_gone_from_a_nested_object_is_sent_as_null() -> None:
    old = {"repositoryImport": {"repository": "r", "message": "failed", "dockerRepositoryCheck": "1"}, "updated": "t"}
    new = {"repositoryImport": {"repository": "r"}, "updated": "t"}
    patch = status_patch(old, new)
    assert patch == {"repositoryImport": {"message": None, "dockerRepositoryCheck": None}}
    assert merge(old, patch) == new


def test_lists_are_replaced_whole_and_vanished_top_level_keys_nulled() -> None:
    old = {"tags": [{"tag": "a"}, {"tag": "b"}], "tagsSummary": "a,b"}
    new = {"tags": [{"tag": "a"}], "dockerImageRepository": ""}
    patch = status_patch(old, new)
    assert patch == {"tags": [{"tag": "a"}], "dockerImageRepository": "", "tagsSummary": None}
    assert merge(old, patch) == new

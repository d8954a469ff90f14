"""Keep a stream's status within what the API server will store.

etcd refuses an object larger than its request limit (1.5 MiB by default), so a stream with thousands of
tags can have a status that can never be written. Rather than retry such a write forever, the status is
cut to a byte budget, least useful parts first:

1. image metadata (`status.images`) of images that are only in older history entries;
2. all image metadata;
3. older history entries, the oldest level of every tag first, down to each tag's current image;
4. whole tags, from the end (in name order), when even one entry per tag does not fit.

Step 4 leaves tags without a status entry, which the caller must report (a condition and a Warning).
Sizes are measured once and updated by subtraction, so fitting is linear in the status size.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

# etcd's default --max-request-bytes is 1.5 MiB (1,572,864 bytes) for the whole stored object; keep the
# whole object (metadata, managedFields, spec and status) under this, with room for etcd's own framing.
OBJECT_BUDGET_BYTES = 1_400_000


# The apiserver stores, in metadata.managedFields, the set of status fields each manager wrote: every map key
# and list key of the status again, about 40% of its size for a stream's status. Leave room for that.
MANAGED_FIELDS_SHARE = 0.4


def status_budget(body: dict[str, Any]) -> int:
    """Bytes left for status once everything else in the stored object, and the managed-fields record the
    status will add, are counted. The status's own managed-fields entries are left out of the count, so the
    budget (and the fitted status) does not change after the write: nothing is written again."""
    metadata = dict(body.get("metadata") or {})
    metadata["managedFields"] = [
        entry for entry in metadata.get("managedFields") or [] if entry.get("subresource") != "status"
    ]
    rest = {key: value for key, value in body.items() if key not in ("status", "metadata")}
    available = OBJECT_BUDGET_BYTES - _size({**rest, "metadata": metadata})
    return max(0, int(available / (1 + MANAGED_FIELDS_SHARE)))


@dataclass
class FittedStatus:
    status: dict[str, Any]
    size: int
    dropped_image_metadata: int = 0
    dropped_history_entries: int = 0
    dropped_tags: list[str] = field(default_factory=list)

    @property
    def trimmed(self) -> bool:
        return bool(self.dropped_image_metadata or self.dropped_history_entries or self.dropped_tags)

    def summary(self) -> str:
        parts = []
        if self.dropped_image_metadata:
            parts.append(f"metadata of {self.dropped_image_metadata} image(s)")
        if self.dropped_history_entries:
            parts.append(f"{self.dropped_history_entries} older history entries")
        if self.dropped_tags:
            shown = ", ".join(self.dropped_tags[:5]) + (" ..." if len(self.dropped_tags) > 5 else "")
            parts.append(f"the status of {len(self.dropped_tags)} tag(s) ({shown})")
        return "left out " + ", ".join(parts) if parts else "nothing left out"


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def fit_status(status: dict[str, Any], budget: int) -> FittedStatus:
    """`status` (wire form) cut to at most `budget` bytes of compact JSON, and what was left out."""
    total = _size(status)
    if total <= budget:
        return FittedStatus(status, total)
    result = FittedStatus(copy.deepcopy(status), total)
    if _drop_image_metadata(result, budget, keep_current=True) or _drop_image_metadata(result, budget):
        return result
    if _drop_history(result, budget):
        return result
    _drop_tags(result, budget)
    return result


def _drop_image_metadata(result: FittedStatus, budget: int, *, keep_current: bool = False) -> bool:
    fitted = result.status
    current = {entry["items"][0].get("image") for entry in fitted.get("tags") or [] if entry.get("items")}
    images: list[dict[str, Any]] = fitted.get("images") or []
    kept = []
    for summary in images:
        if keep_current and summary.get("image") in current:
            kept.append(summary)
        else:
            result.dropped_image_metadata += 1
    if kept:
        fitted["images"] = kept
    else:
        fitted.pop("images", None)
    result.size = _size(fitted)  # exact: the key itself may have gone too
    return result.size <= budget


def _drop_history(result: FittedStatus, budget: int) -> bool:
    """The oldest level of every tag's history first, down to one entry (the current image) per tag."""
    tags: list[dict[str, Any]] = result.status.get("tags") or []
    deepest = max((len(entry.get("items") or []) for entry in tags), default=0)
    for depth in range(deepest, 1, -1):
        for entry in tags:
            items = entry.get("items") or []
            if len(items) >= depth:
                result.size -= _size(items[depth - 1]) + 1
                del items[depth - 1]
                result.dropped_history_entries += 1
        if _fits(result, budget):
            return True
    return False


def _drop_tags(result: FittedStatus, budget: int) -> None:
    """Whole tags, from the end, until the rest fits."""
    tags: list[dict[str, Any]] = result.status.get("tags") or []
    dropped = []
    while tags and result.size > budget:
        while tags and result.size > budget:
            entry = tags.pop()
            result.size -= _size(entry) + 1
            dropped.append(entry.get("tag", ""))
        result.size = _size(result.status)  # exact again: the estimate may be a few bytes off
    result.dropped_tags = dropped[::-1]


def _fits(result: FittedStatus, budget: int) -> bool:
    """The running estimate says it fits: confirm with the exact size (measured only then)."""
    if result.size > budget:
        return False
    result.size = _size(result.status)
    return result.size <= budget


COMPLETE = "StatusComplete"
CONDITION_ROOM_BYTES = 2048  # kept free in the budget for the StatusComplete condition


def without_completeness(status: dict[str, Any]) -> dict[str, Any]:
    """The status without its StatusComplete condition: fitted without it (the condition has its own room, and
    counting the previous one too would cut the status a little further at every pass)."""
    others = [c for c in status.get("conditions") or [] if c.get("type") != COMPLETE]
    stripped = {key: value for key, value in status.items() if key != "conditions"}
    if others:
        stripped["conditions"] = others
    return stripped


def with_completeness(fitted: FittedStatus, old: dict[str, Any], now: str) -> dict[str, Any]:
    """The fitted status with StatusComplete=False while tags are left out, and without it otherwise.

    The transition time is kept while the condition's status stays the same, so an unchanged
    situation writes nothing.
    """
    status = dict(fitted.status)
    others = [c for c in status.get("conditions") or [] if c.get("type") != COMPLETE]
    if fitted.dropped_tags:
        previous = next((c for c in old.get("conditions") or [] if c.get("type") == COMPLETE), None)
        since = previous.get("lastTransitionTime") if previous and previous.get("status") == "False" else None
        condition = {
            "type": COMPLETE,
            "status": "False",
            "reason": "TooLarge",
            "message": f"{fitted.summary()} to stay within the API server's object size limit; "
            "split the stream or remove tags",
            "lastTransitionTime": since or now,
        }
        others.append(condition)
    if others:
        status["conditions"] = others
    else:
        status.pop("conditions", None)
    return status

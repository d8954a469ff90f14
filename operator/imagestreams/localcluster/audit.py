"""The apiserver's audit log of writes: the ground truth for "how many writes did the operator make"."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class AuditedWrite:
    verb: str
    resource: str
    namespace: str
    name: str
    user: str
    user_agent: str
    code: int
    # The apiserver's own clock (microseconds): when the request came in, and when its answer was complete.
    received: datetime.datetime | None = field(default=None, compare=False)
    completed: datetime.datetime | None = field(default=None, compare=False)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> AuditedWrite:
        target = event.get("objectRef") or {}
        resource = target.get("resource", "")
        if target.get("subresource"):
            resource = f"{resource}/{target['subresource']}"
        return cls(
            verb=event.get("verb", ""),
            resource=resource,
            namespace=target.get("namespace", ""),
            name=target.get("name", ""),
            user=(event.get("user") or {}).get("username", ""),
            user_agent=event.get("userAgent", ""),
            code=int((event.get("responseStatus") or {}).get("code", 0)),
            received=_timestamp(event.get("requestReceivedTimestamp")),
            completed=_timestamp(event.get("stageTimestamp")),
        )


class AuditLog:
    """Reads the JSON-lines audit log; `mark()` then `writes(since=mark)` counts writes in between."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        """A position to count from: the log's current size in bytes."""
        return self.path.stat().st_size if self.path.exists() else 0

    def writes(self, since: int = 0, *, namespace: str | None = None) -> list[AuditedWrite]:
        """Completed write requests after `since`, optionally only those in `namespace`."""
        return self.writes_from(since, namespace=namespace)[0]

    def writes_from(self, offset: int, *, namespace: str | None = None) -> tuple[list[AuditedWrite], int]:
        """The completed write requests in the whole lines after `offset`, and the offset after them: a caller that
        polls passes it back and reads each line once (re-reading from a mark each time costs the poller CPU that
        grows with the log, taken from the processes it measures)."""
        if not self.path.exists():
            return [], offset
        with self.path.open("rb") as log:
            log.seek(offset)
            data = log.read()
        whole = data.rfind(b"\n") + 1  # a line still being written is read next time
        return _completed(data[:whole], namespace), offset + whole


def _completed(data: bytes, namespace: str | None) -> list[AuditedWrite]:
    found = []
    for line in data.splitlines():
        if b'"ResponseComplete"' not in line:
            continue  # another stage of a request (or an empty line): not worth decoding
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line still being written
        if event.get("stage") != "ResponseComplete":
            continue
        write = AuditedWrite.from_event(event)
        if namespace is None or write.namespace == namespace:
            found.append(write)
    return found


def _timestamp(text: object) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(text) if isinstance(text, str) else None

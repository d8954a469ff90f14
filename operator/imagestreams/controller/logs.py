"""Quiet logs: one line per failure, not one per retry, and nothing for events that change nothing.

During a 60 s API server outage the operator used to write thousands of lines: a traceback per retry of
every stream and workload, and a line per retry of each of Kopf's watch requests. Every watch event of
every Deployment in the cluster also logged an INFO line. This module keeps the first line of each
failing request and drops its repeats until the next recovery, and drops Kopf's per-event success line.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

# Kopf writes e.g.: Request attempt #3 failed; will retry: GET https://…/deployments?watch=true -> OSError()
_KOPF_RETRY = re.compile(r"^Request attempt #\d+(?:/\d+)? failed; will retry: (\S+ \S+)")
_EVENT_HANDLER_SUCCEEDED = re.compile(r"^Handler '[a-z_]+_event' succeeded\.$")


class QuietFilter(logging.Filter):
    """Drops Kopf's per-event success line and the repeats of a failing Kopf request (counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.suppressed: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kopf"):
            return True  # the operator's own lines, one per write among them: kept without formatting them twice
        message = record.getMessage()
        if _EVENT_HANDLER_SUCCEEDED.match(message):
            return False
        retry = _KOPF_RETRY.match(message)
        if retry is None:
            return True
        what = retry.group(1).split("?", 1)[0]
        first = what not in self.suppressed
        self.suppressed[what] += 1
        if first:
            record.msg = f"{message} (its further retries are not logged until the API server answers again)"
            record.args = ()
        return first

    def recovered(self) -> int:
        """The API server answers again: forget the failing requests; returns how many lines were dropped."""
        dropped = sum(count - 1 for count in self.suppressed.values())
        self.suppressed.clear()
        return dropped


quiet = QuietFilter()


def install(root: logging.Logger | None = None, *, verbose: bool = False) -> None:
    """Attach the filter to every handler of the root logger (Kopf's own handler among them); unless verbose,
    leave out the HTTP client's line per request (the operator logs each write it makes itself)."""
    for handler in (root or logging.getLogger()).handlers:
        if quiet not in handler.filters:
            handler.addFilter(quiet)
    if not verbose:
        for name in ("httpx2", "httpcore2", "httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)

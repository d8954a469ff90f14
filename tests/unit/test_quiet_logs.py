"""Quiet logs: Kopf's per-event success line is dropped, and a failing request is logged once until recovery."""

from __future__ import annotations

import logging

from imagestreams.controller.logs import QuietFilter
from imagestreams.controller.runtime import failure_kind, object_fields
from imagestreams.core.workloadkinds import WorkloadKind


def _record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, (), None)


def test_the_success_line_of_every_watch_event_is_dropped_and_other_lines_kept() -> None:
    quiet = QuietFilter()
    assert not quiet.filter(_record("Handler 'workload_event' succeeded."))
    assert not quiet.filter(_record("Handler 'stream_event' succeeded."))
    assert quiet.filter(_record("Handler 'start' succeeded."))  # start-up activities stay
    assert quiet.filter(_record("write: status of image stream a/b"))


def test_only_kopf_lines_are_dropped() -> None:
    quiet = QuietFilter()
    line = "Handler 'workload_event' succeeded."
    assert quiet.filter(logging.LogRecord("imagestreams.controller.runtime", logging.INFO, __file__, 1, line, (), None))
    assert not quiet.filter(_record(line))


def test_a_failing_request_is_logged_once_until_the_api_server_answers_again() -> None:
    quiet = QuietFilter()
    watch = "GET https://127.0.0.1:6443/apis/apps/v1/deployments?watch=true&resourceVersion={}"
    lines = [
        _record(f"Request attempt #{n} failed; will retry: {watch.format(n)} -> ClientConnectorError()", logging.ERROR)
        for n in range(1, 31)
    ]
    other = _record("Request attempt #1 failed; will retry: GET https://127.0.0.1:6443/api/v1/events -> X", 40)
    kept = [record for record in [*lines, other] if quiet.filter(record)]
    assert len(kept) == 2  # the first of each request (the query string does not make a new one)
    assert "not logged until the API server answers again" in kept[0].getMessage()
    assert quiet.recovered() == 29
    assert quiet.filter(lines[5])  # after recovery a new failure is news again


def test_failure_kinds_and_object_fields() -> None:
    assert failure_kind(ValueError("x")) == "ValueError"
    assert failure_kind(None) == "unknown"
    assert object_fields(("team-a", "app")) == {"kind": "ImageStream", "namespace": "team-a", "name": "app"}
    assert object_fields((WorkloadKind.DEPLOYMENT, "team-a", "web")) == {
        "kind": WorkloadKind.DEPLOYMENT.value,
        "namespace": "team-a",
        "name": "web",
    }

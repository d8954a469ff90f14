"""The harness's audit-log reader counts completed writes, from a mark, per namespace."""

from __future__ import annotations

import json
from pathlib import Path

from imagestreams.localcluster.audit import AuditedWrite, AuditLog


def _event(stage: str, verb: str, namespace: str, name: str, agent: str = "kopf/1", code: int = 201) -> str:
    return json.dumps(
        {
            "stage": stage,
            "verb": verb,
            "objectRef": {"resource": "deployments", "namespace": namespace, "name": name, "apiGroup": "apps"},
            "user": {"username": "imagestreams-admin"},
            "userAgent": agent,
            "responseStatus": {"code": code},
        }
    )


def test_writes_after_a_mark_in_one_namespace(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    assert log.mark() == 0 and log.writes() == []
    log.path.write_text(_event("ResponseComplete", "patch", "a", "web") + "\n")
    mark = log.mark()
    with log.path.open("a") as handle:
        handle.write(_event("ResponseStarted", "watch", "a", "web") + "\n")
        handle.write(_event("ResponseComplete", "create", "a", "job-1", agent="kubectl/v1.37.2") + "\n")
        handle.write(_event("ResponseComplete", "patch", "b", "other") + "\n")
        handle.write('{"stage": "ResponseComplete", "verb": "pat')  # a line still being written

    assert log.writes(mark, namespace="a") == [
        AuditedWrite("create", "deployments", "a", "job-1", "imagestreams-admin", "kubectl/v1.37.2", 201)
    ]
    assert [w.name for w in log.writes()] == ["web", "job-1", "other"]


def test_a_poller_reads_each_whole_line_once(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    assert log.writes_from(0) == ([], 0)
    first = _event("ResponseComplete", "patch", "a", "web") + "\n"
    log.path.write_text(first + '{"stage": "ResponseComplete", "verb": "pat')  # the second line still being written
    writes, offset = log.writes_from(0, namespace="a")
    assert [w.name for w in writes] == ["web"] and offset == len(first)
    assert log.writes_from(offset) == ([], offset)
    with log.path.open("w") as handle:  # the second line completed, a third in another namespace
        handle.write(first + _event("ResponseComplete", "create", "a", "job-1") + "\n")
        handle.write(_event("RequestReceived", "create", "a", "job-2") + "\n")
        handle.write(_event("ResponseComplete", "patch", "b", "other") + "\n")
    writes, end = log.writes_from(offset, namespace="a")
    assert [w.name for w in writes] == ["job-1"] and end == log.mark()


def test_a_subresource_is_part_of_the_resource(tmp_path: Path) -> None:
    event = json.loads(_event("ResponseComplete", "patch", "a", "app"))
    event["objectRef"]["subresource"] = "status"
    assert AuditedWrite.from_event(event).resource == "deployments/status"

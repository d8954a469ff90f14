"""One tag change fanned out to many Deployments by the session operator: one server-side apply per Deployment, and
the Events that tell of it posted after the writes, never between them (issue 12, item 3). Counted and ordered in
the apiserver's audit log, with its own timestamps."""

from __future__ import annotations

import datetime
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from imagestreams.localcluster import LocalCluster
from tests.conftest import kubectl, namespace_events
from tests.helpers import eventually
from tests.integration import test_triggers
from tests.integration.test_triggers import Source, by_name, trigger, workload

DEPLOYMENTS = 40
source = test_triggers.source  # the fixture: a stream tag imported from a repository of the plain registry


@dataclass(frozen=True)
class Timed:
    verb: str
    resource: str
    name: str
    received: datetime.datetime
    completed: datetime.datetime


def operator_requests(cluster: LocalCluster, since: int, namespace: str) -> list[Timed]:
    """The operator's completed writes in `namespace` after audit mark `since` (kubectl and the controller manager,
    which share its identity, left out), with the apiserver's timestamps."""
    with cluster.audit.path.open("rb") as log:
        log.seek(since)
        lines = log.read().splitlines()
    found = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        target = event.get("objectRef") or {}
        agent = event.get("userAgent", "")
        if (
            event.get("stage") != "ResponseComplete"
            or target.get("namespace") != namespace
            or agent.startswith(("kubectl/", "kube-controller-manager/"))
        ):
            continue
        found.append(
            Timed(
                event.get("verb", ""),
                target.get("resource", "") + (f"/{target['subresource']}" if target.get("subresource") else ""),
                target.get("name", ""),
                datetime.datetime.fromisoformat(event["requestReceivedTimestamp"]),
                datetime.datetime.fromisoformat(event["stageTimestamp"]),
            )
        )
    return found


def images(cluster: LocalCluster, namespace: str) -> dict[str, str]:
    items = json.loads(kubectl(cluster, "get", "deployments", "-n", namespace, "-o", "json"))["items"]
    return {item["metadata"]["name"]: item["spec"]["template"]["spec"]["containers"][0]["image"] for item in items}


def triggered_events(cluster: LocalCluster, namespace: str, image: str) -> list[dict[str, Any]]:
    items = namespace_events(cluster, namespace)
    return [e for e in items if e["reason"] == "ImageChangeTriggered" and f"-> {image} " in e["message"]]


def test_a_fan_out_writes_each_deployment_once_and_its_events_after_the_writes(
    crds: LocalCluster, namespace: str, source: Source
) -> None:
    first = source.create()["v1"]
    follow = [trigger("app:v1", by_name("web"))]
    manifests = [workload("Deployment", namespace, f"d{n}", follow, ["web"]) for n in range(DEPLOYMENTS)]
    kubectl(crds, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
    names = {f"d{n}" for n in range(DEPLOYMENTS)}
    eventually(lambda: images(crds, namespace) == dict.fromkeys(names, first), 60, "every Deployment to follow v1")
    eventually(lambda: len(triggered_events(crds, namespace, first)) == DEPLOYMENTS, 60, "the first fan-out's Events")

    mark = crds.audit.mark()
    second = source.update()
    eventually(lambda: images(crds, namespace) == dict.fromkeys(names, second), 60, "every Deployment to follow")
    eventually(lambda: len(triggered_events(crds, namespace, second)) == DEPLOYMENTS, 60, "an Event per Deployment")

    requests = operator_requests(crds, mark, namespace)
    applies = [r for r in requests if r.resource == "deployments" and r.verb == "patch"]
    assert Counter(r.name for r in applies) == dict.fromkeys(names, 1)  # one apply each, nothing else written to them
    assert not [r for r in requests if r.resource == "deployments" and r.verb != "patch"]
    last_write = max(r.completed for r in applies)
    events = [r for r in requests if r.resource == "events" and r.verb == "create"]
    # The stream's own TagUpdated Event may go out between its pass and the watch event that starts the fan-out
    # (nothing is queued or working in that instant); every trigger Event comes after the last Deployment write.
    assert sum(r.received < last_write for r in events) <= 1, [(r.received, last_write) for r in events]
    assert sum(r.received > last_write for r in events) >= DEPLOYMENTS

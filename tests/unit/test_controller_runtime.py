"""Pure pieces of the controller's runtime: where streams are listed, how Kopf's API requests are retried."""

from __future__ import annotations

import itertools

from imagestreams.controller.handlers import CappedBackoff
from imagestreams.controller.reconciler import StreamCache
from imagestreams.controller.triggers import TriggerController
from imagestreams.core.triggers import TRIGGERS_ANNOTATION
from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.kube.streams import listable_namespaces


def test_streams_are_listed_where_they_are_watched() -> None:
    assert listable_namespaces([]) == ["*"]
    assert listable_namespaces(["team-a", "team-b"]) == ["team-a", "team-b"]
    # A glob cannot be listed as a namespace: list everywhere (the watch filters the same way).
    assert listable_namespaces(["team-a", "team-*"]) == ["*"]


def test_kopf_request_retries_stay_short_and_never_end() -> None:
    first = list(itertools.islice(CappedBackoff(), 50))
    assert max(first) == 2.0 and first[:3] == [0.25, 0.5, 1.0]
    assert list(itertools.islice(CappedBackoff(), 3)) == [0.25, 0.5, 1.0]  # each request starts afresh
    assert not hasattr(CappedBackoff(), "__len__")  # unsized: Kopf sets no limit on attempts


def _deployment(uid: str) -> dict[str, object]:
    annotations = {TRIGGERS_ANNOTATION: '[{"from": {"kind": "ImageStreamTag", "name": "app:v1"}, "fieldPath": '
                   '"spec.template.spec.containers[?(@.name==\\"web\\")].image"}]'}  # fmt: skip
    return {"metadata": {"namespace": "ns", "name": "web", "uid": uid, "annotations": annotations}}


def test_the_deletion_of_an_earlier_object_of_the_same_name_keeps_the_live_one() -> None:
    controller = TriggerController(kube=None, streams=StreamCache(), access=None, post_event=None)  # type: ignore[arg-type]
    key = controller.observe(WorkloadKind.DEPLOYMENT, "ADDED", _deployment("new"))
    assert key == (WorkloadKind.DEPLOYMENT, "ns", "web")
    # A late DELETED of the object that had this name before: the re-created one must not be forgotten.
    assert controller.observe(WorkloadKind.DEPLOYMENT, "DELETED", _deployment("old")) is None
    assert controller.workloads_for("ns", "app") == {key}
    controller.observe(WorkloadKind.DEPLOYMENT, "DELETED", _deployment("new"))
    assert controller.workloads_for("ns", "app") == set()

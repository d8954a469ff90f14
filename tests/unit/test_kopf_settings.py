"""What the operator tells Kopf to keep: no change detection (watch-event handlers only), so no essence is built
for each event."""

from __future__ import annotations

import kopf

from imagestreams.api import mirrorsets
from imagestreams.controller import handlers
from imagestreams.core.workloadkinds import KIND_OF_RESOURCE


def test_only_watch_event_handlers_are_registered() -> None:
    """WatchOnlyDiffBase builds no essence: that is right only while nothing detects changes."""
    registry = kopf.get_default_registry()
    resources = [
        kopf.Resource(mirrorsets.GROUP, mirrorsets.VERSION, kind.plural) for kind in mirrorsets.MIRROR_SET_KINDS
    ]
    for resource in resources:
        assert registry._watching.has_handlers(resource=resource), resource
        assert not registry._changing.has_handlers(resource=resource), resource
        assert not registry._spawning.has_handlers(resource=resource), resource


def test_kopf_does_not_watch_the_streams_and_workloads() -> None:
    """They have watches of their own (controller/watchers.py): a Kopf handler on them would pay Kopf's dispatch for
    every such event in the cluster a second time."""
    registry = kopf.get_default_registry()
    for group, version, plural in [*KIND_OF_RESOURCE, ("image.openshift.io", "v1", "imagestreams")]:
        resource = kopf.Resource(group, version, plural)
        assert not registry._watching.has_handlers(resource=resource), resource
        assert not registry._changing.has_handlers(resource=resource), resource
        assert not registry._spawning.has_handlers(resource=resource), resource


def test_no_essence_is_built_or_read() -> None:
    storage = handlers.WatchOnlyDiffBase(prefix=handlers.PREFIX, key="last-handled-configuration")
    body = kopf.Body({"metadata": {"name": "web", "annotations": {"a": "b"}}, "spec": {"replicas": 1}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None

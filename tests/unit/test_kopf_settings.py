"""What the operator tells Kopf to keep: no change detection (watch-event handlers only), so no essence is built
for each event."""

from __future__ import annotations

import kopf

from imagestreams.controller import handlers
from imagestreams.core.workloadkinds import KIND_OF_RESOURCE


def test_only_watch_event_handlers_are_registered() -> None:
    """WatchOnlyDiffBase builds no essence: that is right only while nothing detects changes."""
    registry = kopf.get_default_registry()
    resources = [kopf.Resource(group, version, plural) for group, version, plural in KIND_OF_RESOURCE]
    resources.append(kopf.Resource("image.openshift.io", "v1", "imagestreams"))
    for resource in resources:
        assert registry._watching.has_handlers(resource=resource), resource
        assert not registry._changing.has_handlers(resource=resource), resource
        assert not registry._spawning.has_handlers(resource=resource), resource


def test_no_essence_is_built_or_read() -> None:
    storage = handlers.WatchOnlyDiffBase(prefix=handlers.PREFIX, key="last-handled-configuration")
    body = kopf.Body({"metadata": {"name": "web", "annotations": {"a": "b"}}, "spec": {"replicas": 1}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None

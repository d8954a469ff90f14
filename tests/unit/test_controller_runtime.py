"""Pure pieces of the controller's runtime: where streams are listed, how Kopf's API requests are retried."""

from __future__ import annotations

import itertools

from imagestreams.controller.handlers import CappedBackoff
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

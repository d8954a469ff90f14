"""One tenant cannot delay another (issue 8, item 1).

Streams in one namespace that wait on a registry that never answers, or a stream with a thousand tags that fills its
registry's request budget, must not delay an import in another namespace; deleting a stream cancels its registry
lookups. Each test runs an operator of its own in solo-* namespaces, against the real plain registry and, for the
registry that never answers, a TCP server that accepts connections and never sends a byte (a fault, not a registry).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from imagestreams.kube.streams import ImageStreamResource
from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.faults import SilentServer
from imagestreams.localcluster.images import unique_image
from tests.conftest import solo_settings
from tests.helpers import OperatorProcess, eventually, pusher_for
from tests.streams import insecure_tag, push_unique


@pytest.fixture
def two_namespaces(admin: Client) -> Iterator[tuple[str, str]]:
    """Two fresh namespaces the session operator ignores (solo-*), for an operator of the test's own."""
    names = (f"solo-{uuid.uuid4().hex[:10]}", f"solo-{uuid.uuid4().hex[:10]}")
    for name in names:
        admin.create(Namespace(metadata=ObjectMeta(name=name, labels={"imagestreams.test": "true"})))
    yield names
    for name in names:
        admin.delete(Namespace, name)


def create_stream(admin: Client, namespace: str, name: str, tags: list[dict[str, Any]]) -> None:
    admin.create(ImageStreamResource(metadata=ObjectMeta(name=name, namespace=namespace), spec={"tags": tags}))


def status_tags(admin: Client, namespace: str, name: str) -> list[dict[str, Any]]:
    stream = admin.get(ImageStreamResource, name, namespace=namespace)
    return list(((stream.status or {}).get("tags")) or [])


def import_time(admin: Client, registry: Registry, namespace: str, name: str, timeout: float = 60.0) -> float:
    """Push a new image, create a stream with one tag for it, and return the seconds until its status shows it."""
    repository = f"isolation/{name}-{uuid.uuid4().hex[:6]}"
    image = push_unique(registry, repository, "v1", name)
    started = time.monotonic()
    create_stream(admin, namespace, name, [insecure_tag("v1", f"{registry.host}/{repository}:v1")])
    while time.monotonic() - started < timeout:
        for entry in status_tags(admin, namespace, name):
            if entry.get("conditions"):
                raise AssertionError(f"{namespace}/{name} failed: {entry['conditions'][0]}")
            if (entry.get("items") or [{}])[0].get("image") == image.digest:
                return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"{namespace}/{name} was not imported within {timeout:.0f}s")


def time_alone(admin: Client, registry: Registry, namespace: str) -> float:
    """The healthy stream's import time alone (after one warm-up import that pays for the registry's ping)."""
    import_time(admin, registry, namespace, "warm-up")
    return import_time(admin, registry, namespace, "alone")


def test_streams_on_a_registry_that_never_answers_do_not_delay_another_namespace(
    crds: LocalCluster, admin: Client, plain_registry: Registry, two_namespaces: tuple[str, str], tmp_path: Path
) -> None:
    healthy, hanging = two_namespaces
    with SilentServer() as silent:
        operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, solo_settings(",".join(two_namespaces))).start()
        try:
            alone = time_alone(admin, plain_registry, healthy)
            for n in range(8):  # more streams than import workers (4)
                create_stream(admin, hanging, f"hangs-{n}", [insecure_tag("v1", f"{silent.host}/team/app-{n}:v1")])
            eventually(silent.connections, timeout=10, what="the operator to connect to the registry that hangs")
            time.sleep(1)  # every hanging stream's pass has reached the registry
            beside = import_time(admin, plain_registry, healthy, "beside-hanging")
            assert not status_tags(admin, hanging, "hangs-0")  # they are still waiting on the registry
        finally:
            operator.stop()
    print(f"\nhealthy import alone {alone:.2f}s, next to 8 streams on a registry that never answers {beside:.2f}s")
    assert beside < 5.0
    assert beside < max(3 * alone, alone + 2.0)


def test_a_stream_with_a_thousand_tags_does_not_delay_another_namespace_on_the_same_registry(
    crds: LocalCluster, admin: Client, plain_registry: Registry, two_namespaces: tuple[str, str], tmp_path: Path
) -> None:
    small, busy = two_namespaces
    repository = f"isolation/thousand-{uuid.uuid4().hex[:6]}"
    image = unique_image("thousand")
    with pusher_for(plain_registry) as client:  # one image under a thousand tags: one blob upload, 1000 manifest PUTs
        client.push_image(repository, "t0", image)
        for n in range(1, 1000):
            client.push_manifest(repository, f"t{n}", image.manifest, image.media_type)
    settings = {**solo_settings(",".join(two_namespaces)), "IMAGESTREAMS_REGISTRY_RATE": "20"}
    operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, settings).start()
    try:
        alone = time_alone(admin, plain_registry, small)
        tags = [insecure_tag(f"t{n}", f"{plain_registry.host}/{repository}:t{n}") for n in range(1000)]
        create_stream(admin, busy, "thousand", tags)  # about 1000 requests: 50 s of the budget at 20 a second
        time.sleep(2)  # its lookups fill the registry's queue
        beside = import_time(admin, plain_registry, small, "beside-thousand")
        assert not status_tags(admin, busy, "thousand")  # still importing: the budget really was contended
    finally:
        operator.stop()
    print(f"\nhealthy import alone {alone:.2f}s, next to a 1,000-tag stream on the same registry {beside:.2f}s")
    assert beside < 5.0
    assert beside < max(3 * alone, alone + 2.0)


def test_deleting_a_stream_cancels_its_lookups(
    crds: LocalCluster, admin: Client, solo_namespace: str, tmp_path: Path
) -> None:
    namespace = solo_namespace
    with SilentServer() as silent:
        operator = OperatorProcess(crds.admin_kubeconfig, tmp_path, solo_settings(namespace)).start()
        try:
            tags = [insecure_tag(f"v{n}", f"{silent.host}/team/app:v{n}") for n in range(3)]
            create_stream(admin, namespace, "hangs", tags)
            eventually(silent.open_connections, timeout=10, what="the operator to connect to the registry that hangs")
            deleted = time.monotonic()
            admin.delete(ImageStreamResource, "hangs", namespace=namespace)
            eventually(lambda: silent.open_connections() == 0, timeout=5, what="the operator to close its connections")
            closed = max(c.closed or 0.0 for c in silent.connections()) - deleted
            time.sleep(1.5)  # no retry opens a new one
            late = [c for c in silent.connections() if c.opened > deleted + 0.5]
            log = operator.log()
        finally:
            operator.stop()
    print(f"\nconnections to the registry that hangs closed {closed:.2f}s after the stream's deletion")
    assert late == []
    assert f"image stream {namespace}/hangs was deleted: its import and registry lookups in flight are cancelled" in log

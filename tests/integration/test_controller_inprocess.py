"""The controller built in-process against the real API server and registry, with an injected clock.

No Kopf and no watch here: the test decides which watch events the runtime sees (none, to play a lost event or a
watch gap), drives the schedule by moving the clock, and asserts on the runtime's counters and on the API objects
instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from lightkube import AsyncClient, Client, KubeConfig
from lightkube.resources.apps_v1 import Deployment

from imagestreams.api.settings import OperatorSettings
from imagestreams.controller.runtime import Runtime
from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.localcluster import LocalCluster, Registry
from imagestreams.localcluster.images import Image
from tests.conftest import kubectl, namespace_events
from tests.streams import apply_stream, get_stream, insecure_tag, push_unique, status_tag, triggered_deployment


class FakeClock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def in_process(cluster: LocalCluster, namespace: str, clock: FakeClock) -> AsyncIterator[Runtime]:
    settings = OperatorSettings(
        namespaces=(namespace,),
        loopback_registries=True,
        resync_interval_seconds=0,  # the test calls resync() itself
        scheduled_interval_seconds=60,
        history_limit=3,
    )
    kube = AsyncClient(
        config=KubeConfig.from_file(cluster.admin_kubeconfig), field_manager="imagestream-operator", trust_env=False
    )
    runtime = Runtime(settings, kube=kube, clock=clock)
    runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
        await kube.close()


async def settled(runtime: Runtime) -> None:
    """Until both queues are idle (a retry waiting does not count)."""
    async with asyncio.timeout(30):
        while True:
            await runtime.queue.drained()
            await runtime.workload_queue.drained()
            await asyncio.sleep(0.05)
            if not len(runtime.queue) and not len(runtime.workload_queue):
                return


def web_image(admin: Client, namespace: str) -> str:
    deployment = admin.get(Deployment, "web", namespace=namespace)
    assert deployment.spec is not None and deployment.spec.template.spec is not None
    return str(deployment.spec.template.spec.containers[0].image)


def digest_reference(registry: Registry, repository: str, image: Image) -> str:
    return f"{registry.host}/{repository}@{image.digest}"


def body_of(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(kubectl(cluster, "get", kind, name, "-n", namespace, "-o", "json"))
    return body


async def test_changes_no_watch_event_announced_are_caught_by_the_resync(
    crds: LocalCluster, admin: Client, solo_namespace: str, plain_registry: Registry, repository: str
) -> None:
    """The resync compares the caches with fresh lists: without it, a lost event is lost for good."""
    namespace = solo_namespace
    image = push_unique(plain_registry, repository, "v1")
    apply_stream(crds, namespace, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
    kubectl(crds, "apply", "-f", "-", stdin=triggered_deployment(namespace, "app:v1"))
    async with in_process(crds, namespace, FakeClock()) as runtime:
        # Not one watch event is delivered, as if all were lost.
        await runtime.resync()
        assert runtime.missed == 2  # the stream and the Deployment
        await settled(runtime)
        assert status_tag(get_stream(crds, namespace, "app"), "v1")["items"][0]["image"] == image.digest
        assert runtime.triggers.writes == 0  # the cache does not know the imported status yet
        await runtime.resync()  # the stream's new status is taken from the list, and the Deployment follows it
        await settled(runtime)
        assert runtime.missed == 3
        assert web_image(admin, namespace) == digest_reference(plain_registry, repository, image)
        assert runtime.triggers.writes == 1
        await runtime.resync()  # the images are current: nothing is written again
        await settled(runtime)
        assert runtime.triggers.writes == 1


async def test_objects_deleted_in_a_watch_gap_are_forgotten_and_a_new_one_of_the_same_name_is_taken(
    crds: LocalCluster, admin: Client, solo_namespace: str, plain_registry: Registry, repository: str
) -> None:
    """A watch that expires (410) and re-lists never announces what was deleted in the gap; the comparison with a
    fresh list (run after each re-list) forgets it, keyed by uid."""
    namespace = solo_namespace
    push_unique(plain_registry, repository, "v1")
    apply_stream(crds, namespace, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
    kubectl(crds, "apply", "-f", "-", stdin=triggered_deployment(namespace, "app:v1"))
    async with in_process(crds, namespace, FakeClock()) as runtime:
        runtime.stream_seen("ADDED", (namespace, "app"), body_of(crds, "imagestream", namespace, "app"))
        runtime.workload_seen(WorkloadKind.DEPLOYMENT, "ADDED", body_of(crds, "deployment", namespace, "web"))
        await settled(runtime)
        web = (WorkloadKind.DEPLOYMENT, namespace, "web")
        first_uid = runtime.triggers.workloads[web]["metadata"]["uid"]
        assert runtime.triggers.workloads_for(namespace, "app") == {web}

        kubectl(crds, "delete", "deployment", "web", "-n", namespace, "--wait=true")  # no DELETED event delivered
        assert web in runtime.triggers.workloads
        await runtime.compare_with_api()
        assert web not in runtime.triggers.workloads
        assert runtime.triggers.workloads_for(namespace, "app") == set()
        assert runtime.vanished == 1

        kubectl(crds, "apply", "-f", "-", stdin=triggered_deployment(namespace, "app:v1"))  # no ADDED event either
        await runtime.compare_with_api()
        assert runtime.triggers.workloads[web]["metadata"]["uid"] != first_uid
        assert runtime.triggers.workloads_for(namespace, "app") == {web}

        kubectl(crds, "delete", "imagestream", "app", "-n", namespace, "--wait=true")
        await runtime.compare_with_api()
        assert runtime.cache.stream(namespace, "app") is None
        assert runtime.vanished == 2
        await settled(runtime)  # the Deployment that followed it was reconciled again and told
        events = namespace_events(crds, namespace)
        assert any("does not exist" in (event.get("message") or "") for event in events)


async def test_scheduled_imports_follow_the_injected_clock(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str
) -> None:
    namespace = solo_namespace
    push_unique(plain_registry, repository, "v1")
    source = f"{plain_registry.host}/{repository}:v1"
    apply_stream(crds, namespace, "app", [insecure_tag("v1", source, importPolicy={"scheduled": True})])
    clock = FakeClock()
    async with in_process(crds, namespace, clock) as runtime:
        runtime.stream_seen("ADDED", (namespace, "app"), body_of(crds, "imagestream", namespace, "app"))
        await settled(runtime)
        assert runtime.schedule_due() == 0  # just imported: not due
        newer = push_unique(plain_registry, repository, "v1", "newer")
        runtime.stream_seen("MODIFIED", (namespace, "app"), body_of(crds, "imagestream", namespace, "app"))
        await settled(runtime)
        assert runtime.schedule_due() == 0
        clock.now += 2 * 60  # past the interval, whatever the stream's spread within it
        assert runtime.schedule_due() == 1
        await settled(runtime)
        assert status_tag(get_stream(crds, namespace, "app"), "v1")["items"][0]["image"] == newer.digest


async def test_workloads_delivered_before_their_streams_raise_no_false_alarm(
    crds: LocalCluster, solo_namespace: str, plain_registry: Registry, repository: str
) -> None:
    """At start-up the watches deliver their listings in any order; triggers wait for the initial stream listing, so
    a workload seen before its stream is not told that the stream "does not exist (yet)"."""
    namespace = solo_namespace
    apply_stream(crds, namespace, "app", [insecure_tag("v1", f"{plain_registry.host}/{repository}:v1")])
    kubectl(crds, "apply", "-f", "-", stdin=triggered_deployment(namespace, "app:v1"))
    async with in_process(crds, namespace, FakeClock()) as runtime:
        runtime.workload_seen(WorkloadKind.DEPLOYMENT, None, body_of(crds, "deployment", namespace, "web"))
        await asyncio.sleep(0.5)  # the Deployments' listing comes first; the streams' listing half a second later
        assert not runtime.streams_listed.is_set()
        runtime.stream_seen(None, (namespace, "app"), body_of(crds, "imagestream", namespace, "app"))
        async with asyncio.timeout(10):
            await runtime.streams_listed.wait()
        await settled(runtime)
        assert runtime.triggers.problems == {}
        events = namespace_events(crds, namespace)
        on_web = [event for event in events if event["involvedObject"]["kind"] == "Deployment"]
        assert [event["message"] for event in on_web if event.get("type") == "Warning"] == []

"""kube/watch.py against the real API server: paged listings, watch events in order, expiry, refusal and silence;
and the operator's watch loop (controller/watchers.py) feeding a receiver as it feeds the runtime."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from imagestreams.controller.watchers import ListWatch
from imagestreams.kube import watch
from imagestreams.kube.client import watch_client
from imagestreams.kube.watch import Collection, WatchExpired, WatchFailed, list_pages, watch_events
from imagestreams.localcluster import LocalCluster
from tests.conftest import kubectl
from tests.helpers import kube_config
from tests.streams import triggered_deployment


def client_of(kubeconfig: Path) -> httpx2.AsyncClient:
    return watch_client(kube_config(kubeconfig))


async def drain(events: AsyncIterator[Any], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        async for _ in events:
            pass


def config_maps(namespace: str) -> Collection:
    return Collection("", "v1", "configmaps", namespace)


async def test_a_listing_comes_in_pages_with_one_version_and_each_item_knows_its_kind(
    cluster: LocalCluster, admin: Client, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        admin.create(ConfigMap(metadata=ObjectMeta(name=f"c{index}", namespace=namespace)))
    monkeypatch.setattr(watch, "LIST_PAGE_SIZE", 2)
    http = client_of(cluster.admin_kubeconfig)
    try:
        pages = [page async for page in list_pages(http, config_maps(namespace))]
    finally:
        await http.aclose()
    names = [item["metadata"]["name"] for items, _ in pages for item in items]
    assert sorted(name for name in names if name.startswith("c")) == ["c0", "c1", "c2", "c3", "c4"]
    assert len(pages) >= 3  # 5 ConfigMaps and the namespace's kube-root-ca.crt, 2 a page
    assert len({version for _, version in pages}) == 1
    assert {(item["kind"], item["apiVersion"]) for items, _ in pages for item in items} == {("ConfigMap", "v1")}


async def test_events_after_the_listing_arrive_in_order(cluster: LocalCluster, admin: Client, namespace: str) -> None:
    """Only the test's own ConfigMap counts: kube-controller-manager's root-CA publisher may create the namespace's
    kube-root-ca.crt after the listing, and its ADDED event then comes first."""
    http = client_of(cluster.admin_kubeconfig)
    try:
        [(_, since)] = [page async for page in list_pages(http, config_maps(namespace))]
        events: list[tuple[str, str]] = []

        async def collect() -> None:
            async for event_type, body, version in watch_events(http, config_maps(namespace), since):
                assert version == body["metadata"]["resourceVersion"]
                if body["metadata"]["name"] != "w":
                    continue
                events.append((event_type, body["metadata"]["name"]))
                if event_type == "DELETED":
                    return

        watching = asyncio.create_task(collect())
        await asyncio.sleep(0.5)
        admin.create(ConfigMap(metadata=ObjectMeta(name="w", namespace=namespace)))
        admin.patch(ConfigMap, "w", {"data": {"a": "b"}}, namespace=namespace)
        admin.delete(ConfigMap, "w", namespace=namespace)
        async with asyncio.timeout(20):
            await watching
    finally:
        await http.aclose()
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_a_version_the_api_server_no_longer_serves_is_an_expiry(crds: LocalCluster, namespace: str) -> None:
    """The API server's watch cache of a resource starts at the version it first listed (for a custom resource, when
    its CRD was installed) and answers a watch from an older version 410 Gone (watchCache.getAllEventsSinceLocked)."""
    http = client_of(crds.admin_kubeconfig)
    streams = Collection("image.openshift.io", "v1", "imagestreams", namespace)
    outcomes: list[str] = []
    try:
        for _ in range(100):  # 429 "storage is (re)initializing" while the cache of a newly installed CRD fills
            try:
                await drain(watch_events(http, streams, "1"))
            except (WatchFailed, WatchExpired) as error:
                outcomes.append(f"{type(error).__name__}: {error}")
                if isinstance(error, WatchExpired):
                    break
                await asyncio.sleep(0.2)
        assert outcomes[-1].startswith("WatchExpired") and "too old resource version" in outcomes[-1], outcomes
        assert all("(429)" in outcome for outcome in outcomes[:-1]), outcomes
    finally:
        await http.aclose()


async def test_a_refused_listing_and_watch_say_why(cluster: LocalCluster, namespace: str) -> None:
    http = client_of(cluster.user_kubeconfig(f"nobody-{uuid.uuid4().hex[:6]}"))
    try:
        with pytest.raises(WatchFailed, match=r"refused \(403\)"):
            await drain(list_pages(http, config_maps(namespace)))
        with pytest.raises(WatchFailed, match=r"refused \(403\)"):
            await drain(watch_events(http, config_maps(namespace), "0"))
    finally:
        await http.aclose()


async def test_a_silent_watch_is_given_up(cluster: LocalCluster, namespace: str) -> None:
    """No event and no bookmark (the API server sends one about once a minute) within the inactivity window."""
    http = client_of(cluster.admin_kubeconfig)
    try:
        [(_, since)] = [page async for page in list_pages(http, config_maps(namespace))]
        with pytest.raises(WatchFailed, match="silent"):
            await drain(watch_events(http, config_maps(namespace), since, inactivity=1.0))
    finally:
        await http.aclose()


async def test_the_watch_loop_lists_then_follows_deployments(cluster: LocalCluster, namespace: str) -> None:
    kubectl(cluster, "apply", "-f", "-", stdin=triggered_deployment(namespace, "app:v1", name="first"))
    seen: list[tuple[str | None, str]] = []
    http = client_of(cluster.admin_kubeconfig)
    task = ListWatch(
        http,
        Collection("apps", "v1", "deployments", namespace),
        lambda event_type, body: seen.append((event_type, body["metadata"]["name"])),
        lambda: None,
    ).start()
    try:
        async with asyncio.timeout(20):
            while (None, "first") not in seen:
                await asyncio.sleep(0.05)
            kubectl(cluster, "apply", "-f", "-", stdin=triggered_deployment(namespace, "app:v1", name="second"))
            while ("ADDED", "second") not in seen:
                await asyncio.sleep(0.05)
            kubectl(cluster, "delete", "deployment", "first", "-n", namespace)
            while ("DELETED", "first") not in seen:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await http.aclose()
    assert seen[0] == (None, "first")

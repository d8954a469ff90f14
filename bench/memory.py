"""The operator's memory (issue 12, item 5; target: under 150 MiB RSS with 10k Deployments, 1k of them triggered,
and 5k streams, at steady state and after a restart).

A local cluster with the plain registry; the operator runs as its own process, watching every namespace, with its
default settings. Objects are spread over 20 namespaces: 5,000 streams with one tag each (all naming one image of the
plain registry, so the registry is no bottleneck), then Deployments without replicas (no node runs pods here) in two
steps to 1,000 and 10,000, one in ten with a trigger annotation following a stream. After each step the bench waits
until every stream is imported and every triggered Deployment runs the image, and then until the operator is idle
(under 5 % of a core over 5 s), and reads its RSS (VmRSS) and peak RSS (VmHWM) from /proc. Then the operator is
stopped and started again with all the objects in place, and read the same way once idle, and again after its
first resync (every stream and workload listed again and checked; 180 s here, 600 s by default).

Usage: .venv/bin/python bench/memory.py [--streams N] [--deployments N]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from lightkube import AsyncClient

from imagestreams.localcluster import ClusterSettings, LocalCluster, RegistryKind
from imagestreams.localcluster.images import PushClient, unique_image
from imagestreams.localcluster.processes import ManagedProcess
from population import (
    admin_client,
    count_following,
    count_imported,
    create_all,
    create_namespaces,
    deployment_manifest,
    deployments,
    install_crds,
    load_average,
    peak_rss_mib,
    rss_mib,
    stream_manifest,
    streams,
    wait_until_idle,
)

NAMESPACES = [f"mem-{n:02d}" for n in range(20)]
TRIGGERED_ONE_IN = 10
# The restarted operator's resync interval: a resync lists every stream and workload again and queues a pass for
# each, so the bench waits for the first one too.
RESYNC_SECONDS = 180


def report(label: str, operator: ManagedProcess, waited: float) -> None:
    assert operator.pid is not None
    print(
        f"{label:44}: RSS {rss_mib(operator.pid):6.1f} MiB, peak {peak_rss_mib(operator.pid):6.1f} MiB "
        f"(idle after {waited:.0f} s; load {load_average()})",
        flush=True,
    )


async def settle(
    client: AsyncClient,
    operator: ManagedProcess,
    stream_count: int,
    triggered: int,
    image: str,
    *,
    timeout: float = 1200,
) -> float:
    """Wait until every stream is imported, every triggered Deployment runs `image`, and the operator is idle."""
    assert operator.pid is not None
    started = time.monotonic()
    while True:
        imported = await count_imported(client, NAMESPACES)
        following = await count_following(client, NAMESPACES, image)
        if imported >= stream_count and following >= triggered:
            break
        if time.monotonic() - started > timeout:
            raise SystemExit(f"not settled after {timeout:.0f} s: {imported} streams imported, {following} following")
        await asyncio.sleep(2)
    wait_until_idle(operator.pid)
    return time.monotonic() - started


async def run(cluster: LocalCluster, stream_count: int, deployment_steps: list[int]) -> None:
    registry = cluster.registries[RegistryKind.PLAIN]
    with PushClient(registry.url) as pusher:
        digest = pusher.push_image("bench/app", "v1", unique_image("memory"))
    image = f"{registry.host}/bench/app@{digest}"
    install_crds(cluster)
    client = admin_client(cluster)
    await create_namespaces(client, NAMESPACES)

    operator = cluster.start_operator({}, "operator-1")
    report("no streams, no Deployments", operator, wait_until_idle(operator.pid or 0))

    names = [(NAMESPACES[n % len(NAMESPACES)], f"s{n}") for n in range(stream_count)]
    pull_spec = f"{registry.host}/bench/app:v1"
    await create_all(client, streams(stream_manifest(namespace, name, pull_spec) for namespace, name in names))
    report(f"{stream_count} streams", operator, await settle(client, operator, stream_count, 0, image))

    created = 0
    for step in deployment_steps:
        manifests = []
        for n in range(created, step):
            namespace = NAMESPACES[n % len(NAMESPACES)]
            follows = None
            if n % TRIGGERED_ONE_IN == 0:
                # Stream m lives in namespace m % 20, as Deployment n does in n % 20: the same namespace.
                follows = f"s{n % stream_count}"
            manifests.append(deployment_manifest(namespace, f"d{n}", follows))
        await create_all(client, deployments(manifests))
        created = step
        triggered = len(range(0, step, TRIGGERED_ONE_IN))
        waited = await settle(client, operator, stream_count, triggered, image)
        report(f"{stream_count} streams, {step} Deployments ({triggered} triggered)", operator, waited)

    operator.stop()
    restarted = time.monotonic()
    operator = cluster.start_operator({"IMAGESTREAMS_RESYNC_INTERVAL_SECONDS": str(RESYNC_SECONDS)}, "operator-2")
    triggered = len(range(0, created, TRIGGERED_ONE_IN))
    waited = await settle(client, operator, stream_count, triggered, image)
    report("the same, after a restart", operator, waited)
    await asyncio.sleep(max(0.0, restarted + RESYNC_SECONDS + 5 - time.monotonic()))
    waited = await settle(client, operator, stream_count, triggered, image)
    report(f"and after its first resync ({RESYNC_SECONDS} s)", operator, waited)
    operator.stop()
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--deployments", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    with LocalCluster(ClusterSettings(registries=(RegistryKind.PLAIN,))) as cluster:
        asyncio.run(run(cluster, args.streams, args.deployments))


if __name__ == "__main__":
    main()

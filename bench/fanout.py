"""Fan-out of one tag change to 10, 100 and 1,000 Deployments: the operator against a plain server-side-apply script
on the same kind and number of Deployments, in one run (issue 12, item 3; target: at most 1.3x the plain script at
1,000).

A local cluster with the plain registry and no node. For each size N there are namespaces of N identical Deployments
(no replicas, and paused: kube-controller-manager makes no ReplicaSet for each new template, so a measurement does
not meet the controller manager's backlog from the last one): in op-N each follows the tag v1 of stream `app`
through a trigger annotation; plainC-N and fastC-N have none, one for each way C of running the script. The operator
runs as its own process for the op-* namespaces only, with its default settings. Each round pushes a new image, then:

- plain: the script applies the new image to every Deployment of plainC-N, the same apply body and field manager
  options as the operator (lightkube's AsyncClient, C requests at a time). In fastC-N it does so over the operator's
  own HTTP transport (kube/client.py: aiohttp's connections rather than httpx2's), so that the operator's cheaper
  requests are not measured against a script that lacks them;
- operator: the bench points the stream's tag at the new image; the operator imports it, writes the stream's status,
  and applies the image to every Deployment of op-N.

Both are timed from the apiserver's audit log (its clock, microseconds): plain from the first apply received to the
last one completed, the operator from its status write completed to its last Deployment apply completed. Each
measurement starts once the apiserver has completed no write for 2 s (kube-controller-manager's new ReplicaSets for
the previous writes, the operator's Events). The audit log also counts the operator's writes per round: Deployment
applies (must be exactly N) and Events. While the operator works the bench polls the audit log for its applies,
reading each new line once (re-reading the log from the round's start at each poll cost this process, which shares
the 2 cores, CPU the script's rounds did not pay); the script's rounds are not polled. Each measurement prints the
CPU seconds every process used during it (the script runs in the bench's process). Rounds alternate plain and
operator; the medians are printed with the ratio.
The operator applies 16 at a time (its default trigger workers), the script 4 and 16 at a time over httpx2
(`--concurrency`) and 16 at a time over aiohttp (`--aiohttp-concurrency`).

`--trigger-workers N` runs the operator with IMAGESTREAMS_TRIGGER_WORKERS=N instead of its default.

Usage: .venv/bin/python bench/fanout.py [--sizes 10 100 1000] [--rounds 3] [--concurrency 4 16]
       [--aiohttp-concurrency 16] [--trigger-workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from lightkube import AsyncClient, KubeConfig
from lightkube.resources.apps_v1 import Deployment
from lightkube.types import PatchType

from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.kube.client import operator_client
from imagestreams.kube.streams import ImageStreamResource
from imagestreams.kube.workloads import image_apply_body
from imagestreams.localcluster import ClusterSettings, LocalCluster, RegistryKind
from imagestreams.localcluster.audit import AuditedWrite
from imagestreams.localcluster.images import PushClient, unique_image
from imagestreams.localcluster.processes import ManagedProcess
from population import (
    CONTAINER,
    admin_client,
    count_following,
    cpu_by_process,
    cpu_spent,
    create_all,
    create_namespaces,
    deployment_manifest,
    deployments,
    install_crds,
    load_average,
    stream_manifest,
    streams,
    wait_for,
    when,
)

STREAM = "app"


def wait_until_quiet(cluster: LocalCluster, seconds: float = 2.0, timeout: float = 1200.0) -> None:
    """Until the apiserver has completed no write in the bench's namespaces for `seconds`: kube-controller-manager
    done with the status of the last writes (it writes 20 a second at most, its client's default), the operator
    with its Events. Each measurement starts there."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        mark = cluster.audit.mark()
        time.sleep(seconds)
        if not [w for w in cluster.audit.writes(mark) if w.namespace.startswith(("op-", "plain"))]:
            return

    raise SystemExit(f"the cluster kept writing for {timeout:.0f} s")


def by_operator(writes: list[AuditedWrite]) -> list[AuditedWrite]:
    others = ("kubectl/", "kube-controller-manager/")
    return [w for w in writes if not w.user_agent.startswith(others)]


@dataclass
class OperatorWrites:
    """The operator's writes in one namespace from a mark on, read as the audit log grows: each line once, so that
    polling costs this process (which shares the 2 cores with the operator and the apiserver) only the new lines. The
    script's rounds are not polled at all."""

    cluster: LocalCluster
    namespace: str
    offset: int
    writes: list[AuditedWrite] = field(default_factory=list)

    def read(self) -> list[AuditedWrite]:
        new, self.offset = self.cluster.audit.writes_from(self.offset, namespace=self.namespace)
        self.writes += by_operator(new)
        return self.writes


def applies(writes: list[AuditedWrite]) -> list[AuditedWrite]:
    return [w for w in writes if w.resource == "deployments" and w.verb == "patch"]


async def plain_apply(client: AsyncClient, namespace: str, size: int, image: str, concurrency: int) -> None:
    """What the operator does for each Deployment, with nothing else: one server-side apply of the image."""
    pending = iter(range(size))

    async def worker() -> None:
        for n in pending:
            name = f"d{n}"
            body = image_apply_body(WorkloadKind.DEPLOYMENT, namespace, name, {("containers", CONTAINER): image})
            await client.patch(
                Deployment,
                name,
                body,
                namespace=namespace,
                patch_type=PatchType.APPLY,
                field_manager="bench-plain",
                force=True,
            )

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def plain_round(
    cluster: LocalCluster, operator: ManagedProcess, client: AsyncClient, script: Script, *, size: int, image: str
) -> float:
    """The script applies `image` to its namespace's N Deployments; the seconds from its first apply received to its
    last one completed."""
    namespace = f"{script.side}-{size}"
    wait_until_quiet(cluster)
    mark = cluster.audit.mark()
    cpu_before = cpu_by_process(cluster, operator)
    await plain_apply(client, namespace, size, image, script.concurrency)
    cpu_after = cpu_by_process(cluster, operator)
    written = applies(cluster.audit.writes(mark, namespace=namespace))
    assert len(written) == size, (size, len(written))
    print(
        f"  plain {script}: {in_flight(written)}; CPU seconds (the script runs in the bench): "
        f"{cpu_spent(cpu_before, cpu_after)}",
        flush=True,
    )
    return seconds(min(when(w.received) for w in written), max(when(w.completed) for w in written))


def seconds(start: datetime.datetime, end: datetime.datetime) -> float:
    return (end - start).total_seconds()


async def operator_round(
    cluster: LocalCluster, operator: ManagedProcess, client: AsyncClient, size: int, pull_spec: str
) -> tuple[float, Counter[str]]:
    """Point op-N's stream at `pull_spec`; the seconds from its status write to the last Deployment written, and the
    operator's writes by resource (checked: exactly one apply per Deployment)."""
    namespace = f"op-{size}"
    wait_until_quiet(cluster)
    operator_writes = OperatorWrites(cluster, namespace, cluster.audit.mark())
    cpu_before = cpu_by_process(cluster, operator)
    await client.patch(
        ImageStreamResource,
        STREAM,
        [{"op": "replace", "path": "/spec/tags/0/from/name", "value": pull_spec}],
        namespace=namespace,
        patch_type=PatchType.JSON,
    )
    wait_for(lambda: len(applies(operator_writes.read())) >= size, 300, f"the operator's {size} applies", poll=0.2)
    cpu_after = cpu_by_process(cluster, operator)
    time.sleep(3)  # any write beyond one per Deployment would show now
    # Less the bench's own patch of the stream's spec (the same user and client library as the operator here).
    writes = [w for w in operator_writes.read() if w.resource != "imagestreams"]
    status = [w for w in writes if w.resource == "imagestreams/status"]
    written = applies(writes)
    per_deployment = Counter(w.name for w in written)
    assert len(per_deployment) == size and set(per_deployment.values()) == {1}, per_deployment
    started = when(status[0].completed)
    ended = max(when(w.completed) for w in written)
    during = sum(1 for w in writes if w.resource == "events" and started <= when(w.completed) <= ended)
    print(
        f"  operator: first apply {seconds(started, min(when(w.received) for w in written)):.2f} s after the "
        f"status write; {in_flight(written)}; {during} Events written during the fan-out; CPU seconds: "
        f"{cpu_spent(cpu_before, cpu_after)}",
        flush=True,
    )
    return seconds(started, ended), Counter(w.resource for w in writes)


def in_flight(written: list[AuditedWrite]) -> str:
    """How the applies used the apiserver: its median time per apply, and how many were in it at once on average
    (the sum of their times over the span from the first received to the last completed)."""
    spans = [seconds(when(w.received), when(w.completed)) for w in written]
    total = seconds(min(when(w.received) for w in written), max(when(w.completed) for w in written))
    return f"apiserver {statistics.median(spans) * 1000:.1f} ms per apply (median), {sum(spans) / total:.1f} in flight"


@dataclass(frozen=True)
class Script:
    """One way of running the plain script: how many applies at a time, and over which HTTP transport."""

    concurrency: int
    aiohttp: bool  # over the operator's own transport (kube/client.py) rather than httpx2's default one

    @property
    def side(self) -> str:
        return f"{'fast' if self.aiohttp else 'plain'}{self.concurrency}"

    def __str__(self) -> str:
        return f"{self.concurrency} at a time{' over aiohttp' if self.aiohttp else ''}"


async def run(
    cluster: LocalCluster, sizes: list[int], rounds: int, scripts: list[Script], trigger_workers: int | None
) -> None:
    registry = cluster.registries[RegistryKind.PLAIN]
    with PushClient(registry.url) as pusher:
        digests = [pusher.push_image("bench/app", f"r{k}", unique_image(f"fanout-{k}")) for k in range(rounds + 1)]
    images = [f"{registry.host}/bench/app@{digest}" for digest in digests]
    install_crds(cluster)
    client = admin_client(cluster)
    config = KubeConfig.from_file(cluster.admin_kubeconfig).get()
    assert config is not None
    fast_client = operator_client("bench", config)
    sides = [("op", STREAM)] + [(script.side, None) for script in scripts]
    await create_namespaces(client, [f"{side}-{size}" for size in sizes for side, _ in sides])
    for size in sizes:
        await create_all(client, streams([stream_manifest(f"op-{size}", STREAM, f"{registry.host}/bench/app:r0")]))
        for side, follows in sides:
            manifests = (deployment_manifest(f"{side}-{size}", f"d{n}", follows, paused=True) for n in range(size))
            await create_all(client, deployments(manifests))
    settings = {"IMAGESTREAMS_NAMESPACES": ",".join(f"op-{size}" for size in sizes)}
    if trigger_workers is not None:
        settings["IMAGESTREAMS_TRIGGER_WORKERS"] = str(trigger_workers)
    print(f"operator trigger workers: {trigger_workers or 'the default'}", flush=True)
    operator = cluster.start_operator(settings)
    try:
        for size in sizes:
            await wait_async(client, f"op-{size}", size, images[0], 300)
        print(f"{sum(sizes)} triggered Deployments follow r0; load {load_average()}", flush=True)
        plain: dict[tuple[int, Script], list[float]] = {}
        operated: dict[int, list[float]] = {}
        for k in range(1, rounds + 1):
            for size in sizes:
                for script in scripts:
                    script_client = fast_client if script.aiohttp else client
                    took = await plain_round(cluster, operator, script_client, script, size=size, image=images[k])
                    plain.setdefault((size, script), []).append(took)
                took, kinds = await operator_round(cluster, operator, client, size, f"{registry.host}/bench/app:r{k}")
                operated.setdefault(size, []).append(took)
                print(
                    f"round {k}, {size:5} Deployments: operator {took:6.2f} s ({dict(kinds)}); plain "
                    + ", ".join(f"{script} {plain[(size, script)][-1]:.2f} s" for script in scripts)
                    + f"; load {load_average()}",
                    flush=True,
                )
                await wait_async(client, f"op-{size}", size, images[k], 60)
        print()
        print("median over rounds (seconds from the stream's status write to the last Deployment written):")
        for size in sizes:
            operator_median = statistics.median(operated[size])
            cells = []
            for script in scripts:
                plain_median = statistics.median(plain[(size, script)])
                ratio = operator_median / plain_median
                cells.append(f"plain {script} {plain_median:.2f} s ({ratio:.2f}x)")
            print(f"{size:5} Deployments: operator {operator_median:.2f} s; " + "; ".join(cells))
    finally:
        operator.stop()
        await client.close()
        await fast_client.close()


async def wait_async(client: AsyncClient, namespace: str, size: int, image: str, timeout: float) -> None:
    started = time.monotonic()
    while await count_following(client, [namespace], image) < size:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{namespace}: not every Deployment runs {image} after {timeout:.0f} s")
        await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--aiohttp-concurrency", type=int, nargs="*", default=[16])
    parser.add_argument("--trigger-workers", type=int, default=None)
    args = parser.parse_args()
    scripts = [Script(c, aiohttp=False) for c in args.concurrency] + [
        Script(c, aiohttp=True) for c in args.aiohttp_concurrency
    ]
    with LocalCluster(ClusterSettings(registries=(RegistryKind.PLAIN,))) as cluster:
        asyncio.run(run(cluster, args.sizes, args.rounds, scripts, args.trigger_workers))


if __name__ == "__main__":
    main()

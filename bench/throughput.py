"""Import throughput on the local registry (issue 12, item 6; target: 1,000 new tags imported in under 10 s, within
a registry's advertised limits).

A local cluster with the plain registry (it advertises no limit and never answers 429); the operator runs as its own
process with its default settings unless `--rate`/`--concurrency` give IMAGESTREAMS_REGISTRY_RATE and
IMAGESTREAMS_REGISTRY_CONCURRENCY (5 and 4 were the fixed defaults before the limit adapted). Two cases, each timed
with the apiserver's clock (its audit log) from the first stream's creation received to the last status write
completed, once every tag's status shows its image:

- 1,000 new tags: 100 streams of 10 tags, each tag a new image of its own (a GET of the manifest and of the config
  each: a tag never imported is read without a HEAD first);
- one stream of 1,000 tags naming one new image (a GET of the manifest per tag, the config read once).

The operator's requests are counted in the registry's access log (its user agent), with the rate they reached and
any answer other than 200; the writes in the audit log; the CPU seconds each process used from /proc.

Usage: .venv/bin/python bench/throughput.py [--rate R] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta

from imagestreams.kube.streams import ImageStreamResource
from imagestreams.localcluster import ClusterSettings, LocalCluster, Registry, RegistryKind
from imagestreams.localcluster.images import PushClient, unique_image
from imagestreams.localcluster.processes import ManagedProcess
from population import (
    admin_client,
    cpu_by_process,
    cpu_spent,
    create_all,
    create_namespaces,
    install_crds,
    load_average,
    status_tags,
    when,
)

STREAMS, TAGS_EACH = 100, 10
OPERATOR_REQUEST = re.compile(r'"(HEAD|GET) (/\S+) HTTP[^"]*" (\d+) \d+ "[^"]*" "imagestreams-operator')


def tag(name: str, pull_spec: str) -> dict[str, object]:
    return {"name": name, "from": {"kind": "DockerImage", "name": pull_spec}, "importPolicy": {"insecure": True}}


def push_distinct(registry: Registry, repositories: list[str], tags: int) -> None:
    """A new image under each tag of each repository, 8 pushers at a time."""

    def push(repository: str) -> None:
        with PushClient(registry.url) as pusher:
            for n in range(tags):
                pusher.push_image(repository, f"t{n}", unique_image(f"{repository}-{n}"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(push, repositories))


def registry_log(registry: Registry) -> str:
    return next(p for p in registry.processes if not p.name.endswith("tokenserver")).log_path.read_text()


def requests_since(registry: Registry, offset: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    for method, path, status in OPERATOR_REQUEST.findall(registry_log(registry)[offset:]):
        kind = "manifest" if "/manifests/" in path else "blob" if "/blobs/" in path else "other"
        counts[f"{method} {kind}"] += 1
        if status != "200":
            counts[f"answered {status}"] += 1
    return counts


async def imported_tags(client: AsyncClient, namespace: str) -> int:
    imported = 0
    async for stream in client.list(ImageStreamResource, namespace=namespace, chunk_size=500):
        imported += sum(1 for entry in status_tags(stream) if entry.get("items"))
    return imported


@dataclass
class Bench:
    cluster: LocalCluster
    operator: ManagedProcess
    client: AsyncClient
    registry: Registry

    async def timed_import(self, label: str, namespace: str, streams: dict[str, list[dict[str, object]]]) -> None:
        """Create `streams` and time their import with the apiserver's clock: from the first stream's creation
        received to the last status write completed. The statuses are listed only once the audit log shows a status
        write for every stream (listing them every 0.25 s cost the apiserver and this process a tenth of the run's
        CPU)."""
        expected = sum(len(tags) for tags in streams.values())
        offset = len(registry_log(self.registry))
        mark = self.cluster.audit.mark()
        cpu_before = cpu_by_process(self.cluster, self.operator)
        started = time.monotonic()
        objects = [
            ImageStreamResource(metadata=ObjectMeta(name=name, namespace=namespace), spec={"tags": tags})
            for name, tags in streams.items()
        ]
        await create_all(self.client, objects)
        while not (
            self.status_writes(mark, namespace) >= len(streams)
            and await imported_tags(self.client, namespace) >= expected
        ):
            if time.monotonic() - started > 600:
                raise SystemExit(f"{namespace}: not every tag imported after 600 s")
            await asyncio.sleep(0.5)
        cpu_after = cpu_by_process(self.cluster, self.operator)
        writes = self.cluster.audit.writes(mark, namespace=namespace)
        first = min(when(w.received) for w in writes if (w.verb, w.resource) == ("create", "imagestreams"))
        last = max(when(w.completed) for w in writes if (w.verb, w.resource) == ("patch", "imagestreams/status"))
        seconds = (last - first).total_seconds()
        counts = requests_since(self.registry, offset)
        sent = sum(count for kind, count in counts.items() if not kind.startswith("answered"))
        print(
            f"{label:48}: {seconds:6.2f} s, {sent} requests ({sent / seconds:.0f} a second) "
            f"{dict(sorted(counts.items()))}; load {load_average()}",
            flush=True,
        )
        print(f"  CPU seconds: {cpu_spent(cpu_before, cpu_after)}")
        print(f"  writes: {dict(sorted(Counter(f'{w.verb} {w.resource}' for w in writes).items()))}", flush=True)

    def status_writes(self, mark: int, namespace: str) -> int:
        writes = self.cluster.audit.writes(mark, namespace=namespace)
        return sum(1 for w in writes if (w.verb, w.resource) == ("patch", "imagestreams/status"))


async def run(cluster: LocalCluster, settings: dict[str, str]) -> None:
    registry = cluster.registries[RegistryKind.PLAIN]
    run_id = uuid.uuid4().hex[:6]
    repositories = [f"throughput/{run_id}-s{n}" for n in range(STREAMS)]
    started = time.monotonic()
    push_distinct(registry, repositories, TAGS_EACH)
    single = f"throughput/{run_id}-single"
    image = unique_image("single")
    with PushClient(registry.url) as pusher:
        pusher.push_image(single, "t0", image)
        for n in range(1, STREAMS * TAGS_EACH):
            pusher.push_manifest(single, f"t{n}", image.manifest, image.media_type)
    print(f"pushed {STREAMS * TAGS_EACH} images and one image under 1,000 tags in {time.monotonic() - started:.0f} s")
    install_crds(cluster)
    client = admin_client(cluster)
    await create_namespaces(client, ["warm-up", "distinct", "single"])
    operator = cluster.start_operator(settings)
    try:
        print(f"operator settings: {settings or 'the defaults'}")
        bench = Bench(cluster, operator, client, registry)
        warm = {"warm": [tag("t0", f"{registry.host}/{repositories[0]}:t0")]}
        await bench.timed_import("warm-up (the registry's ping, first connections)", "warm-up", warm)
        distinct = {
            f"s{n}": [tag(f"t{t}", f"{registry.host}/{repository}:t{t}") for t in range(TAGS_EACH)]
            for n, repository in enumerate(repositories)
        }
        await bench.timed_import("1,000 new tags (100 streams x 10, distinct images)", "distinct", distinct)
        one = {"thousand": [tag(f"t{n}", f"{registry.host}/{single}:t{n}") for n in range(STREAMS * TAGS_EACH)]}
        await bench.timed_import("one stream of 1,000 tags (one image)", "single", one)
    finally:
        operator.stop()
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", help="IMAGESTREAMS_REGISTRY_RATE for the operator")
    parser.add_argument("--concurrency", help="IMAGESTREAMS_REGISTRY_CONCURRENCY for the operator")
    args = parser.parse_args()
    settings = {}
    if args.rate:
        settings["IMAGESTREAMS_REGISTRY_RATE"] = args.rate
    if args.concurrency:
        settings["IMAGESTREAMS_REGISTRY_CONCURRENCY"] = args.concurrency
    with LocalCluster(ClusterSettings(registries=(RegistryKind.PLAIN,))) as cluster:
        asyncio.run(run(cluster, settings))


if __name__ == "__main__":
    main()

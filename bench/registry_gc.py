"""What the fixture registry's garbage-collector target costs: the CPU seconds Debian's docker-registry uses to
answer the requests of an import (a GET of a manifest, a GET of its config blob), with Go's default target (GOGC
100) and with the one the local cluster sets (localcluster/registry.py, REGISTRY_GOGC).

docker-registry 2.8 allocates a 4 MiB read buffer for every blob it serves, so on its small heap the default target
collects every few blob reads. The registry stands for one on another host; on the 2-core machine its CPU is taken
from the operator and the API server, which is why the throughput bench depends on it.

Each setting: a plain registry, 250 images pushed under 25 repositories, one warm-up pass, then ROUNDS rounds of
2,000 GETs (each image's manifest and config, 4 times), 16 at a time over aiohttp.

Usage: .venv/bin/python bench/registry_gc.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from imagestreams.localcluster import registry as fixture
from imagestreams.localcluster.binaries import Binaries
from imagestreams.localcluster.certs import CertificateAuthority
from imagestreams.localcluster.images import PushClient, unique_image
from population import cpu_seconds

IMAGES, REPOSITORIES, REPEAT, CONCURRENCY = 250, 25, 4, 16


async def get_all(url: str, requests: list[tuple[str, str]]) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def get(path: str, accept: str) -> None:
            async with limit, session.get(url + path, headers={"Accept": accept}) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"GET {path}: {response.status}")

        await asyncio.gather(*(get(path, accept) for path, accept in requests))


def measure(gogc: str, rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory() as workdir:
        binary, ca = Binaries.locate().docker_registry, CertificateAuthority("gc")
        registry = fixture.start_registry(fixture.RegistryKind.PLAIN, Path(workdir), binary, ca, gogc=gogc)
        try:
            requests = []
            with PushClient(registry.url) as pusher:
                for n in range(IMAGES):
                    image = unique_image(f"gc-{n}")
                    repository = f"gc/r{n % REPOSITORIES}"
                    pusher.push_image(repository, f"t{n}", image)
                    config = json.loads(image.manifest)["config"]["digest"]
                    requests += [(f"/v2/{repository}/manifests/t{n}", image.media_type)]
                    requests += [(f"/v2/{repository}/blobs/{config}", "*/*")]
            pid = registry.processes[-1].pid
            assert pid is not None
            asyncio.run(get_all(registry.url, requests))
            used = []
            for _ in range(rounds):
                before, started = cpu_seconds(pid), time.monotonic()
                asyncio.run(get_all(registry.url, requests * REPEAT))
                used.append(cpu_seconds(pid) - before)
                print(
                    f"GOGC={gogc:>4}: {len(requests) * REPEAT} GETs, registry CPU {used[-1]:.2f} s, "
                    f"wall {time.monotonic() - started:.2f} s",
                    flush=True,
                )
            return used
        finally:
            registry.stop()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    chosen = fixture.REGISTRY_GOGC
    results = {gogc: measure(gogc, rounds) for gogc in ("100", chosen)}
    for gogc, used in results.items():
        print(f"GOGC={gogc:>4}: median {statistics.median(used):.2f} CPU s per {IMAGES * 2 * REPEAT} GETs")


if __name__ == "__main__":
    main()

"""Registry cost of import rounds: N streams x M scheduled tags against the local token-auth registry.

Phases:
  unchanged  two scheduled intervals with nothing new in the registry;
  changed    every tag gets a new image; the next interval's scheduled checks pick them up;
  forced     every stream asks for an import again, with nothing new.
For each it prints the registry requests by type (HEAD manifest, GET manifest, GET blob, token),
per tag, the wall time until every stream shows the result, and the operator's CPU seconds.
Target: an unchanged tag costs exactly one HEAD per round (tokens are cached).

Usage: .venv/bin/python bench/import_cycle.py [--streams N] [--tags M] [--interval SECONDS]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

from imagestreams.localcluster import ClusterSettings, LocalCluster, RegistryKind
from imagestreams.localcluster.images import PushClient, unique_image

REQUEST = re.compile(r'"(HEAD|GET|PUT|POST) (/\S+) HTTP')
OPERATOR_REQUEST = re.compile(r'"(HEAD|GET|PUT|POST) (/\S+) HTTP[^"]*" \d+ \d+ "[^"]*" "imagestreams-operator')


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, cluster: LocalCluster, streams: int, tags: int, interval: float) -> None:
        self.cluster = cluster
        self.streams, self.tags, self.interval = streams, tags, interval
        self.registry = cluster.registries[RegistryKind.TOKEN]
        self.registry_log = next(p for p in self.registry.processes if not p.name.endswith("tokenserver")).log_path
        self.token_log = next(p for p in self.registry.processes if p.name.endswith("tokenserver")).log_path
        assert cluster.binaries is not None
        self.kubectl = [str(cluster.binaries.kubectl), f"--kubeconfig={cluster.admin_kubeconfig}"]
        self.namespace = "bench"

    def run(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run([*self.kubectl, *args], input=stdin, capture_output=True, text=True, check=True).stdout

    def repo(self, stream: int, tag: int) -> str:
        return f"bench/s{stream}-t{tag}"

    def push_all(self, label: str) -> dict[tuple[int, int], str]:
        assert self.registry.pusher is not None
        digests = {}
        with PushClient(
            self.registry.url, username=self.registry.pusher.username, password=self.registry.pusher.password
        ) as client:
            for s in range(self.streams):
                for t in range(self.tags):
                    image = unique_image(label)
                    digests[(s, t)] = client.push_image(self.repo(s, t), "latest", image)
        return digests

    def create(self) -> None:
        assert self.registry.reader is not None
        reader = self.registry.reader
        auth = base64.b64encode(f"{reader.username}:{reader.password}".encode()).decode()
        config = base64.b64encode(json.dumps({"auths": {self.registry.host: {"auth": auth}}}).encode()).decode()
        self.run("create", "namespace", self.namespace)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "pull", "namespace": self.namespace},
            "data": {".dockerconfigjson": config},
        }
        items = [secret]
        for s in range(self.streams):
            tags = [
                {
                    "name": f"t{t}",
                    "from": {"kind": "DockerImage", "name": f"{self.registry.host}/{self.repo(s, t)}:latest"},
                    "importPolicy": {"scheduled": True, "insecure": True},
                }
                for t in range(self.tags)
            ]
            items.append(
                {
                    "apiVersion": "image.openshift.io/v1",
                    "kind": "ImageStream",
                    "metadata": {"name": f"s{s}", "namespace": self.namespace},
                    "spec": {"tags": tags},
                }
            )
        self.run(
            "apply", "--server-side", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        )

    def current(self) -> dict[tuple[int, int], str]:
        streams = json.loads(self.run("get", "imagestreams", "-n", self.namespace, "-o", "json"))["items"]
        found = {}
        for stream in streams:
            s = int(stream["metadata"]["name"][1:])
            for entry in (stream.get("status") or {}).get("tags") or []:
                if entry.get("items"):
                    found[(s, int(entry["tag"][1:]))] = entry["items"][0]["image"]
        return found

    def wait_for(self, digests: dict[tuple[int, int], str], timeout: float = 300) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.current() == digests:
                return time.monotonic() - started
            time.sleep(0.2)
        raise SystemExit("timed out waiting for the imports")

    def request_all(self, value: str) -> None:
        self.run(
            "annotate",
            "imagestreams",
            "--all",
            "-n",
            self.namespace,
            f"imagestreams.dev/import-request={value}",
            "--overwrite",
        )

    def counts_since(self, registry_offset: int, token_offset: int) -> Counter[str]:
        counts: Counter[str] = Counter()
        # Only the operator's requests: the benchmark's own pushes go to the same registry.
        for method, path in OPERATOR_REQUEST.findall(self.registry_log.read_text()[registry_offset:]):
            if path == "/v2/":
                counts["ping"] += 1
            elif "/manifests/" in path:
                counts[f"{method} manifest"] += 1
            elif "/blobs/" in path:
                counts[f"{method} blob"] += 1
            elif "/tags/" in path:
                counts["tags list"] += 1
        # The token server serves only the operator while the benchmark is not pushing.
        counts["token"] += sum(1 for _ in REQUEST.findall(self.token_log.read_text()[token_offset:]))
        return counts

    def offsets(self) -> tuple[int, int]:
        return len(self.registry_log.read_text()), len(self.token_log.read_text())


def report(name: str, counts: Counter[str], tags: int, rounds: int, *, seconds: float | None, cpu: float) -> None:
    kinds = ("HEAD manifest", "GET manifest", "GET blob", "token", "ping")
    per_tag = {key: counts[key] / (tags * rounds) for key in kinds}
    shown = ", ".join(f"{key} {value:.2f}" for key, value in per_tag.items())
    wall = f"{seconds:.2f}s until all {tags} tags showed the result" if seconds is not None else f"{rounds} rounds"
    print(
        f"{name:9}: {wall}; requests per tag per round: {shown}; "
        f"totals {dict(sorted(counts.items()))}; operator CPU {cpu:.2f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--tags", type=int, default=5)
    parser.add_argument("--interval", type=float, default=15.0)
    args = parser.parse_args()
    total = args.streams * args.tags
    with LocalCluster(ClusterSettings(registries=(RegistryKind.TOKEN,))) as cluster:
        assert cluster.binaries is not None
        subprocess.run(
            [
                str(cluster.binaries.kubectl),
                f"--kubeconfig={cluster.admin_kubeconfig}",
                "apply",
                "--server-side",
                "-f",
                str(Path(__file__).resolve().parents[1] / "crds"),
            ],
            check=True,
            capture_output=True,
        )
        bench = Bench(cluster, args.streams, args.tags, args.interval)
        operator = cluster.start_operator(
            {
                "IMAGESTREAMS_SCHEDULED_INTERVAL_SECONDS": str(args.interval),
                "IMAGESTREAMS_MAX_SCHEDULED_IMPORTS_PER_MINUTE": "0",
                "IMAGESTREAMS_REGISTRY_RATE": "1000",
                "IMAGESTREAMS_IMPORT_WORKERS": "8",
            }
        )
        try:
            assert operator.pid is not None
            print(f"{args.streams} streams x {args.tags} scheduled tags = {total} tags, interval {args.interval:.0f}s")
            digests = bench.push_all("first")
            offsets, cpu = bench.offsets(), cpu_seconds(operator.pid)
            bench.create()
            seconds = bench.wait_for(digests)
            report(
                "initial", bench.counts_since(*offsets), total, 1, seconds=seconds, cpu=cpu_seconds(operator.pid) - cpu
            )

            time.sleep(args.interval)  # let the first scheduled round settle after the initial import
            offsets, cpu = bench.offsets(), cpu_seconds(operator.pid)
            time.sleep(2 * args.interval)
            report(
                "unchanged", bench.counts_since(*offsets), total, 2, seconds=None, cpu=cpu_seconds(operator.pid) - cpu
            )

            # Changed: new images everywhere, picked up by the scheduled checks within one interval.
            offsets, cpu, pushing = bench.offsets(), cpu_seconds(operator.pid), time.monotonic()
            digests = bench.push_all("second")
            bench.wait_for(digests, timeout=3 * args.interval)
            seconds = time.monotonic() - pushing
            time.sleep(max(0.0, args.interval - seconds))
            report(
                "changed", bench.counts_since(*offsets), total, 1, seconds=seconds, cpu=cpu_seconds(operator.pid) - cpu
            )

            offsets, cpu = bench.offsets(), cpu_seconds(operator.pid)
            bench.request_all("forced")
            time.sleep(3)
            report("forced", bench.counts_since(*offsets), total, 1, seconds=None, cpu=cpu_seconds(operator.pid) - cpu)
        finally:
            operator.stop()


if __name__ == "__main__":
    main()

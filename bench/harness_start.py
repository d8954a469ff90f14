"""How long the local cluster takes to become ready and to stop, with binaries cached.

Prints one line per run and the median; record the numbers in docs/benchmarks.md.
With --node, the cluster also starts a node (containerd, kubelet, kube-scheduler), and the time from the control
plane being ready until the node is Ready and schedulable is reported too (target: within 2 s).
Usage: .venv/bin/python bench/harness_start.py [RUNS] [--node]
"""

from __future__ import annotations

import statistics
import sys
import time

from imagestreams.localcluster import ClusterSettings, LocalCluster


def main() -> None:
    node = "--node" in sys.argv[1:]
    numbers = [arg for arg in sys.argv[1:] if arg != "--node"]
    runs = int(numbers[0]) if numbers else 3
    totals, stops, nodes = [], [], []
    for run in range(1, runs + 1):
        cluster = LocalCluster(ClusterSettings(node=node))
        cluster.start()
        started = time.monotonic()
        cluster.stop()
        stop_seconds = time.monotonic() - started
        totals.append(cluster.timings.total)
        stops.append(stop_seconds)
        nodes.append(cluster.timings.node)
        print(f"run {run}: {cluster.timings.summary()}; stopped in {stop_seconds:.1f}s", flush=True)
    print(
        f"median over {runs} runs: ready {statistics.median(totals):.1f}s "
        f"(min {min(totals):.1f}s, max {max(totals):.1f}s), stop {statistics.median(stops):.1f}s"
    )
    if node:
        print(
            f"node Ready and schedulable after the control plane: median {statistics.median(nodes):.2f}s "
            f"(min {min(nodes):.2f}s, max {max(nodes):.2f}s)"
        )


if __name__ == "__main__":
    main()

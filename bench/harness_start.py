"""How long the local cluster takes to become ready and to stop, with binaries cached.

Prints one line per run and the median; record the numbers in docs/benchmarks.md.
Usage: .venv/bin/python bench/harness_start.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys
import time

from imagestreams.localcluster import LocalCluster


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    totals, stops = [], []
    for run in range(1, runs + 1):
        cluster = LocalCluster()
        cluster.start()
        started = time.monotonic()
        cluster.stop()
        stop_seconds = time.monotonic() - started
        totals.append(cluster.timings.total)
        stops.append(stop_seconds)
        print(f"run {run}: {cluster.timings.summary()}; stopped in {stop_seconds:.1f}s", flush=True)
    print(
        f"median over {runs} runs: ready {statistics.median(totals):.1f}s "
        f"(min {min(totals):.1f}s, max {max(totals):.1f}s), stop {statistics.median(stops):.1f}s"
    )


if __name__ == "__main__":
    main()

"""Start-up time of the kubectl plugin: `kubectl-imagestream --help`, which imports no Kubernetes client.

Usage: .venv/bin/python bench/cli_start.py [RUNS]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    plugin = shutil.which("kubectl-imagestream") or str(Path(sys.executable).parent / "kubectl-imagestream")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([plugin, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    print(
        f"kubectl-imagestream --help over {runs} runs: median {statistics.median(times) * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()

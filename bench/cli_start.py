"""Start-up time of the kubectl plugin: `kubectl-imagestream --help`, which imports no Kubernetes client and no verb
module, and a verb's own `-h`, which imports that verb's module (and with it the pydantic models).

Usage: .venv/bin/python bench/cli_start.py [RUNS]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def measure(plugin: str, args: list[str], runs: int) -> str:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([plugin, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return (
        f"kubectl-imagestream {' '.join(args)} over {runs} runs: median {statistics.median(times) * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms)"
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    plugin = shutil.which("kubectl-imagestream") or str(Path(sys.executable).parent / "kubectl-imagestream")
    print(measure(plugin, ["--help"], runs))
    print(measure(plugin, ["tag", "-h"], max(runs // 4, 3)))


if __name__ == "__main__":
    main()

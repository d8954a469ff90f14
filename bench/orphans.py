"""How long a local cluster's processes outlive `imagestreams-localcluster up` when it is stopped by a signal.

Starts `up` (plain and token registries: etcd, apiserver, controller manager, 3 registry processes) in a child
process, reads the processes its work directory records, signals the child, and times until none is left.

    .venv/bin/python bench/orphans.py [RUNS]
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imagestreams.localcluster.records import ProcessRecord


def one_run(signum: signal.Signals, workdir: Path) -> tuple[int, float]:
    child = subprocess.Popen(
        [sys.executable, "-m", "imagestreams.localcluster", "up", f"--workdir={workdir}",
         "--registry=plain", "--registry=token"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "IMAGESTREAMS_RUN_DIR": str(workdir.parent / "run")},
    )  # fmt: skip
    assert child.stdout is not None
    for line in child.stdout:
        if "press Ctrl-C" in line:
            break
    record = ProcessRecord.read(workdir)
    assert record is not None, "no process record"
    identities = [p.identity for p in record.processes]
    started = time.monotonic()
    child.send_signal(signum)
    while any(identity.alive() for identity in identities):
        if time.monotonic() - started > 30:
            raise SystemExit(f"{signum.name}: processes still running after 30 s")
        time.sleep(0.01)
    seconds = time.monotonic() - started
    child.wait()
    return len(identities), seconds


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"{'signal':8} {'runs':>4} {'processes':>9} {'median':>8} {'min':>7} {'max':>7}")
    for signum in (signal.SIGKILL, signal.SIGTERM):
        times, count = [], 0
        for run in range(runs):
            with tempfile.TemporaryDirectory(prefix="orphans-") as scratch:
                count, seconds = one_run(signum, Path(scratch) / f"cluster-{run}")
                times.append(seconds)
        print(
            f"{signum.name:8} {runs:4d} {count:9d} {statistics.median(times):7.2f}s "
            f"{min(times):6.2f}s {max(times):6.2f}s"
        )


if __name__ == "__main__":
    main()

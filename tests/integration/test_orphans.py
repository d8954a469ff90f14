"""No process of a local cluster outlives the process that started it, however that one is stopped.

Each test starts a real cluster in a child process (`imagestreams-localcluster up`, `make dev`,
or a pytest run using the session fixture), signals that child, and then checks every process
the cluster's work directory recorded, and every process that names the work directory at all,
by pid and start time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestreams.localcluster.processes import ProcessIdentity
from imagestreams.localcluster.records import RECORD_FILE, ProcessRecord

REPO = Path(__file__).resolve().parents[2]
# A clean stop: SIGTERM to each process, newest first; the operator and the apiserver take the longest.
ORDERLY_STOP_SECONDS = 20.0
# After SIGKILL nothing runs any clean-up: the kernel's parent-death signal has to do it.
KILLED_STOP_SECONDS = 5.0


class Child:
    """A command in a session of its own whose output is collected line by line."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path = REPO) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> str:
        """The first output line containing `text`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in the output within {timeout:.0f}s:\n{self.output}")

    def signal(self, signum: int) -> None:
        """Signal the child alone (not its session: what reaches the others is the point of the test)."""
        os.kill(self.process.pid, signum)

    def signal_group(self, signum: int) -> None:
        """Signal the child's whole process group, as a terminal does (Ctrl-C, hang-up)."""
        os.killpg(self.process.pid, signum)

    def exit_code(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill_all(self) -> None:
        """After a failed test: the whole session, even if its leader is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def run_dir(tmp_path: Path) -> dict[str, str]:
    """A private index of running clusters, so these tests never reap the developer's own clusters."""
    return {"IMAGESTREAMS_RUN_DIR": str(tmp_path / "run")}


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill_all()


def _recorded(workdir: Path, at_least: int) -> list[tuple[str, ProcessIdentity]]:
    record = ProcessRecord.read(workdir)
    assert record is not None, f"no {RECORD_FILE} in {workdir}"
    processes = [(p.name, p.identity) for p in record.processes]
    assert len(processes) >= at_least, processes
    assert all(identity.alive() for _, identity in processes), processes
    return processes


def _mentioning(text: str) -> list[int]:
    """Processes whose command line or environment names `text` (the operator names the workdir only in env)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                seen = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            except OSError:
                continue
            if text.encode() in seen and ProcessIdentity.of(int(entry.name)) is not None:
                found.append(int(entry.name))
    return found


def _seconds_until_gone(processes: list[tuple[str, ProcessIdentity]], workdir: Path, timeout: float) -> float:
    started = time.monotonic()
    while True:
        alive = [name for name, identity in processes if identity.alive()]
        stray = _mentioning(str(workdir))
        if not alive and not stray:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"still running {timeout:.0f}s after the signal: {alive}, stray pids {stray}")
        time.sleep(0.05)


def _up(workdir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "imagestreams.localcluster",
        "up",
        f"--workdir={workdir}",
        "--registry=plain",
        "--registry=token",
    ]


# etcd, kube-apiserver, kube-controller-manager, the plain registry, the token server and its registry
UP_PROCESSES = 6


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_up_stops_in_order_on_a_stop_signal(
    signum: signal.Signals, tmp_path: Path, run_dir: dict[str, str], children: list[Child]
) -> None:
    workdir = tmp_path / "cluster"
    child = Child(_up(workdir), run_dir)
    children.append(child)
    child.wait_for("press Ctrl-C", 90)
    processes = _recorded(workdir, UP_PROCESSES)

    child.signal(signum)

    seconds = _seconds_until_gone(processes, workdir, ORDERLY_STOP_SECONDS)
    assert child.exit_code(10) == 0, child.output
    assert f"stopping ({signum.name})" in child.output
    assert "stopped in" in child.output
    assert not (workdir / RECORD_FILE).exists()  # an orderly stop leaves nothing to reap
    print(f"{signum.name}: every process gone {seconds:.2f}s after the signal")


def test_up_killed_takes_its_cluster_with_it(tmp_path: Path, run_dir: dict[str, str], children: list[Child]) -> None:
    workdir = tmp_path / "cluster"
    child = Child(_up(workdir), run_dir)
    children.append(child)
    child.wait_for("press Ctrl-C", 90)
    processes = _recorded(workdir, UP_PROCESSES)

    child.signal(signal.SIGKILL)

    seconds = _seconds_until_gone(processes, workdir, KILLED_STOP_SECONDS)
    assert child.exit_code(5) == -signal.SIGKILL
    print(f"SIGKILL: every process gone {seconds:.2f}s after the signal")


def _make_dev(children: list[Child], run_dir: dict[str, str]) -> tuple[Child, Path]:
    child = Child(["make", "--no-print-directory", "dev"], run_dir)
    children.append(child)
    child.wait_for("press Ctrl-C", 180)
    logs = child.wait_for("logs:", 1).split("logs:", 1)[1].strip()
    return child, Path(logs).parent


# etcd, kube-apiserver, kube-controller-manager, the plain registry and the operator
MAKE_DEV_PROCESSES = 5


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGTERM, False), (signal.SIGKILL, False), (signal.SIGHUP, True)],
    ids=["SIGTERM-to-make", "SIGKILL-to-make", "SIGHUP-to-the-terminal-group"],
)
def test_make_dev_stopped_by_any_signal_leaves_nothing(
    signum: signal.Signals, to_group: bool, run_dir: dict[str, str], children: list[Child]
) -> None:
    child, workdir = _make_dev(children, run_dir)
    processes = _recorded(workdir, MAKE_DEV_PROCESSES)
    assert "imagestream-operator" in [name for name, _ in processes]

    # GNU make forwards SIGTERM to its child. After SIGKILL, make is gone and the kernel sends its child
    # (the cluster's owner) SIGTERM. A hang-up comes from the terminal to the whole foreground group
    # (make waits for its children on SIGHUP and forwards nothing).
    if to_group:
        child.signal_group(signum)
    else:
        child.signal(signum)

    seconds = _seconds_until_gone(processes, workdir, ORDERLY_STOP_SECONDS)
    child.exit_code(10)
    assert not workdir.exists(), "the temporary work directory was left behind"
    print(f"make dev, {signum.name}: every process gone {seconds:.2f}s after the signal")


PYTEST_HOLDING_A_CLUSTER = """
import time

def test_hold(cluster):
    print(f"CLUSTER {cluster.workdir}", flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_pytest_stopped_by_a_signal_tears_its_cluster_down(
    signum: signal.Signals, tmp_path: Path, run_dir: dict[str, str], children: list[Child]
) -> None:
    test_file = tmp_path / "test_hold.py"
    test_file.write_text(PYTEST_HOLDING_A_CLUSTER)
    command = [
        sys.executable, "-m", "pytest", str(test_file), "-p", "tests.conftest", "-s", "-q",
        "-c", str(REPO / "pyproject.toml"), f"--rootdir={REPO}", f"--basetemp={tmp_path / 'basetemp'}",
        "-p", "no:cacheprovider",
    ]  # fmt: skip
    child = Child(command, run_dir)
    children.append(child)
    workdir = Path(child.wait_for("CLUSTER ", 90).split("CLUSTER ", 1)[1].strip())
    processes = _recorded(workdir, 7)  # etcd, apiserver, controller manager, 3 registries, token server

    child.signal(signum)

    seconds = _seconds_until_gone(processes, workdir, ORDERLY_STOP_SECONDS)
    assert child.exit_code(10) == pytest.ExitCode.INTERRUPTED, child.output
    print(f"pytest, {signum.name}: every process gone {seconds:.2f}s after the signal")


def test_a_new_cluster_reaps_leftovers_and_down_stops_it(
    tmp_path: Path, run_dir: dict[str, str], children: list[Child]
) -> None:
    # Leftovers of a cluster whose owner died without the kernel's help: two servers in sessions of
    # their own, and a recorded pid now used by an unrelated process (a different start time).
    def sleeper() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)

    dead_owner, etcd, registry, stranger = sleeper(), sleeper(), sleeper(), sleeper()
    identities = {}
    for process in (dead_owner, etcd, registry, stranger):
        identity = ProcessIdentity.of(process.pid)
        assert identity is not None
        identities[process.pid] = identity
    dead_owner.kill()
    dead_owner.wait()
    try:
        leftover = tmp_path / "leftover"
        leftover.mkdir()
        stranger_id = identities[stranger.pid]
        reused = ProcessIdentity(stranger_id.pid, stranger_id.start_ticks + 7, stranger_id.boot_id)
        record = {
            "owner": identities[dead_owner.pid].to_json(),
            "temporary_workdir": True,
            "processes": [
                {"name": "etcd", **identities[etcd.pid].to_json()},
                {"name": "registry-plain", **identities[registry.pid].to_json()},
                {"name": "kube-apiserver", **reused.to_json()},
            ],
        }
        (leftover / RECORD_FILE).write_text(json.dumps(record))
        index = Path(run_dir["IMAGESTREAMS_RUN_DIR"])
        index.mkdir()
        (index / "leftover").symlink_to(leftover)

        workdir = tmp_path / "cluster"
        child = Child(_up(workdir), run_dir)
        children.append(child)
        child.wait_for("press Ctrl-C", 90)

        assert f"cluster {leftover} (its owner had died): stopped registry-plain, etcd" in child.output
        assert etcd.wait(timeout=5) is not None and registry.wait(timeout=5) is not None
        assert stranger.poll() is None, "a process that merely reuses a recorded pid was stopped"
        assert not leftover.exists()

        processes = _recorded(workdir, UP_PROCESSES)
        down = subprocess.run(
            [sys.executable, "-m", "imagestreams.localcluster", "down"],
            env={**os.environ, **run_dir},
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )
        assert f"cluster {workdir} (its owner was still running and was asked to stop)" in down.stdout
        _seconds_until_gone(processes, workdir, 1)  # `down` returns once everything is gone
        assert child.exit_code(5) == 0
        assert "stopping (SIGTERM)" in child.output
    finally:
        for process in (etcd, registry, stranger):
            if process.poll() is None:
                process.kill()
            process.wait()

"""Managed processes are stopped by PID, with SIGKILL for those that ignore SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imagestreams.localcluster.processes import (
    ManagedProcess,
    ProcessFailed,
    ProcessIdentity,
    free_port,
    stop_identity,
)

IGNORE_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    process = ManagedProcess("stubborn", [sys.executable, "-c", IGNORE_SIGTERM], tmp_path)
    process.start()
    process.wait_until(lambda: "up" in process.log_path.read_text(), 10, "printing up")
    pid = process.pid
    assert pid is not None
    started = time.monotonic()
    process.stop(grace=0.5)
    assert not _alive(pid)
    assert 0.5 <= time.monotonic() - started < 5


def test_process_runs_in_its_own_session(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path)
    process.start()
    try:
        assert process.pid is not None
        assert os.getsid(process.pid) == process.pid
    finally:
        process.stop()


def test_wait_until_reports_an_early_exit_with_the_log(tmp_path: Path) -> None:
    process = ManagedProcess(
        "crasher", [sys.executable, "-c", "print('boom: bad flag'); raise SystemExit(3)"], tmp_path
    )
    process.start()
    with pytest.raises(ProcessFailed, match=r"crasher exited with code 3 before ready(.|\n)*boom: bad flag"):
        process.wait_until(lambda: False, 10, "ready")


def test_wait_until_times_out_with_a_clear_message(tmp_path: Path) -> None:
    process = ManagedProcess("slow", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path)
    process.start()
    try:
        with pytest.raises(ProcessFailed, match="slow did not reach 'ready' within 0s"):
            process.wait_until(lambda: False, 0.3, "ready")
    finally:
        process.stop()


def test_missing_executable_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessFailed, match="cannot run /nonexistent/etcd"):
        ManagedProcess("etcd", ["/nonexistent/etcd"], tmp_path).start()


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# --- dying with the starter ------------------------------------------------------------------

SPAWN_FROM_A_THREAD_THEN_HANG = """
import sys, threading, time
from imagestreams.localcluster.processes import spawn

def start():
    child = spawn([sys.executable, "-c", "import time; time.sleep(120)"], stdout=None)
    print(child.pid, flush=True)

# A thread that ends at once: Linux sends the parent-death signal when the forking *thread* ends,
# so a child forked here directly would be killed now. It must live until this process dies.
worker = threading.Thread(target=start)
worker.start()
worker.join()
print("thread ended", flush=True)
time.sleep(120)
"""


def _wait_gone(pid: int, timeout: float) -> float:
    started = time.monotonic()
    while _alive_not_zombie(pid):
        assert time.monotonic() - started < timeout, f"pid {pid} still running after {timeout}s"
        time.sleep(0.02)
    return time.monotonic() - started


def _alive_not_zombie(pid: int) -> bool:
    return ProcessIdentity.of(pid) is not None


def test_a_spawned_child_outlives_the_thread_that_started_it_and_dies_with_its_process() -> None:
    starter = subprocess.Popen([sys.executable, "-c", SPAWN_FROM_A_THREAD_THEN_HANG], stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        child = int(starter.stdout.readline())
        assert starter.stdout.readline().strip() == "thread ended"
        time.sleep(0.3)
        assert _alive_not_zombie(child), "the child died with the thread that forked it"
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        assert _wait_gone(child, 5) < 5
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()


def test_a_managed_process_dies_when_its_starter_is_killed(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from imagestreams.localcluster.processes import ManagedProcess\n"
        f"p = ManagedProcess('server', [sys.executable, '-c', {IGNORE_SIGTERM!r}], Path({str(tmp_path)!r}))\n"
        "p.start(); print(p.pid, flush=True); time.sleep(120)\n"
    )
    starter = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    child = int(starter.stdout.readline())
    starter.kill()
    starter.wait()
    # The server ignores SIGTERM; the parent-death signal is SIGKILL.
    assert _wait_gone(child, 5) < 5


def test_identity_tells_a_reused_pid_from_the_recorded_process() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = ProcessIdentity.of(sleeper.pid)
        assert identity is not None and identity.alive()
        # The same pid with another start time is another process: never ours to stop.
        imposter = ProcessIdentity(identity.pid, identity.start_ticks + 1, identity.boot_id)
        assert not imposter.alive()
        assert not stop_identity(imposter, grace=0.1)
        assert sleeper.poll() is None
        assert ProcessIdentity(identity.pid, identity.start_ticks, "another-boot").alive() is False
    finally:
        sleeper.kill()
        sleeper.wait()
    assert ProcessIdentity.of(sleeper.pid) is None


def test_stop_identity_stops_a_process_that_is_not_our_child_with_its_group() -> None:
    # A shell in its own session that starts a grandchild in the same group, then is left alone.
    shell = subprocess.Popen(
        ["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert shell.stdout is not None
    grandchild = int(shell.stdout.readline())
    identity = ProcessIdentity.of(shell.pid)
    assert identity is not None
    assert stop_identity(identity, grace=2)
    shell.wait(timeout=5)
    assert _wait_gone(grandchild, 5) < 5

"""Managed processes are stopped by PID, with SIGKILL for those that ignore SIGTERM."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from imagestreams.localcluster.processes import ManagedProcess, ProcessFailed, free_port

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

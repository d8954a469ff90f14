"""Start and stop the local cluster's server processes.

Each process runs in its own session with its output in a log file, and is
stopped by its PID: SIGTERM, then SIGKILL if it has not exited in time.

A process also dies with the process that started it, whatever kills that one
(SIGKILL included): the kernel's parent-death signal (prctl PR_SET_PDEATHSIG)
is set in the child before it runs its program. Linux sends that signal when
the *thread* that forked the child ends, not the process, so every child is
forked by one spawner thread that lives as long as the interpreter.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagestreams.localcluster.records import ProcessRecord

STOP_GRACE_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def die_with_parent(signum: int = signal.SIGKILL, expected_parent: int | None = None) -> None:
    """Ask the kernel to send `signum` to this process when its parent (thread) dies.

    If the parent is already gone (re-parented before the call), deliver the signal now.
    """
    if _prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if expected_parent is not None and os.getppid() != expected_parent:
        os.kill(os.getpid(), signum)


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as the kernel knows it: a pid alone can be reused, a pid with its start time cannot.

    `start_ticks` is field 22 of /proc/PID/stat (clock ticks after boot), and `boot_id`
    tells apart two boots, after which every start time starts again from zero.
    """

    pid: int
    start_ticks: int
    boot_id: str

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity | None:
        """The identity of the live process `pid`, or None if there is none (zombies count as dead)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        # The command name (field 2) is in parentheses and may itself contain spaces and ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, start_ticks = fields[0], int(fields[19])
        if state in ("Z", "X"):
            return None
        return cls(pid, start_ticks, boot_id())

    def alive(self) -> bool:
        """True while this very process (not a later one with the same pid) runs."""
        return ProcessIdentity.of(self.pid) == self

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "start_ticks": self.start_ticks, "boot_id": self.boot_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessIdentity:
        return cls(int(data["pid"]), int(data["start_ticks"]), str(data["boot_id"]))


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def this_process() -> ProcessIdentity:
    identity = ProcessIdentity.of(os.getpid())
    assert identity is not None
    return identity


def stop_identity(identity: ProcessIdentity, grace: float = STOP_GRACE_SECONDS) -> bool:
    """Stop a process that is not our child, by identity: SIGTERM its group, then SIGKILL after `grace`.

    Does nothing unless the pid still belongs to that very process. Returns True if it was running.
    """

    def signal_it(signum: int) -> None:
        if not identity.alive():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # Our processes lead their own session; signal the group only if that still holds.
            if os.getpgid(identity.pid) == identity.pid:
                os.killpg(identity.pid, signum)
            else:
                os.kill(identity.pid, signum)

    if not identity.alive():
        return False
    signal_it(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while identity.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if identity.alive():
        signal_it(signal.SIGKILL)
        deadline = time.monotonic() + grace
        while identity.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
    return True


class _Spawner:
    """One long-lived thread that forks every child, so that their parent-death signal fires only when
    this interpreter ends (a short-lived thread's exit would kill the children it forked)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, make: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="process-spawner", daemon=True)
                self._thread.start()
        done: Future[Any] = Future()
        self._requests.put((make, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            make, done = self._requests.get()
            try:
                done.set_result(make())
            except BaseException as error:
                done.set_exception(error)


_spawner = _Spawner()


def spawn(
    argv: Sequence[str],
    *,
    stdout: IO[bytes] | int | None,
    env: Mapping[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Popen `argv` in a session of its own that receives SIGKILL when this process dies, however it dies."""
    parent = os.getpid()

    def tie_to_parent() -> None:  # runs in the child between fork and exec
        die_with_parent(signal.SIGKILL, expected_parent=parent)

    def make() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=tie_to_parent,  # noqa: PLW1509 - only a prctl call, forked from one dedicated thread
        )

    popen: subprocess.Popen[bytes] = _spawner.run(make)
    return popen


class ProcessFailed(RuntimeError):
    """A managed process exited or never became ready."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ManagedProcess:
    """One server process with a log file, started in its own session."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        record: ProcessRecord | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self._env = dict(env) if env is not None else None
        self._record = record
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        environment = {**os.environ, **self._env} if self._env is not None else None
        try:
            self._popen = spawn(self.argv, stdout=self._log, env=environment)
        except FileNotFoundError as error:
            raise ProcessFailed(f"{self.name}: cannot run {self.argv[0]}: {error.strerror}") from error
        if self._record is not None:
            identity = ProcessIdentity.of(self._popen.pid)
            if identity is not None:
                self._record.add(self.name, identity)

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM the process (and its session's group), then SIGKILL after `grace` seconds."""
        popen = self._popen
        if popen is not None and popen.poll() is None:
            # The process leads its own session, so its group id is its pid.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(timeout=grace)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll `ready` until it is true; fail early if the process exits. Returns the seconds waited."""
        started = time.monotonic()
        delay = 0.02
        while True:
            if not self.running():
                code = self._popen.returncode if self._popen else None
                raise ProcessFailed(
                    f"{self.name} exited with code {code} before {what}; last log lines "
                    f"({self.log_path}):\n{self.log_tail()}"
                )
            with contextlib.suppress(Exception):
                if ready():
                    return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise ProcessFailed(
                    f"{self.name} did not reach '{what}' within {timeout:.0f}s; last log lines "
                    f"({self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

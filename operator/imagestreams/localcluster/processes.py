"""Start and stop the local cluster's server processes.

Each process runs in its own session with its output in a log file, and is
stopped by its PID: SIGTERM, then SIGKILL if it has not exited in time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

STOP_GRACE_SECONDS = 5.0


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
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self._env = dict(env) if env is not None else None
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        environment = {**os.environ, **self._env} if self._env is not None else None
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        except FileNotFoundError as error:
            raise ProcessFailed(f"{self.name}: cannot run {self.argv[0]}: {error.strerror}") from error

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

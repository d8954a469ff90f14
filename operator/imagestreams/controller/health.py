"""The operator's HTTP endpoints: /healthz (liveness), /readyz (readiness) and /metrics (Prometheus).

A small stdlib HTTP server in daemon threads, started by `main()` before anything else: a standby replica waits for
the Lease in `main()`'s thread, with no event loop yet, and must still answer its probes and scrapes. So the answers
do not depend on the event loop answering HTTP; liveness asks the loop a question from the server's thread instead,
which also catches a loop blocked by a runaway callback (a loop-hosted endpoint would just stop answering).

- Liveness, while the operator runs: the event loop answers within LOOP_TIMEOUT_SECONDS, and none of the watch
  streams (Kopf's, and the workload watches of controller/watchers.py) has ended. Both reconnect a watch that goes
  quiet (no event or bookmark for 70 s) and re-list one that expired on its own; a watch task that is gone for good
  is what a restart can fix. While a standby waits for the
  Lease: its election loop keeps trying. While starting or stopping: alive.
- Readiness: the initial listing of image streams is done (triggers wait for it too) and, with leader election, the
  Lease was renewed within its duration; a standby is ready while the API server answers its Lease requests, so a
  rolling update of several replicas goes on while the old leader still holds the Lease.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import choose_encoder

from imagestreams.controller.metrics import Metrics

logger = logging.getLogger(__name__)

LOOP_TIMEOUT_SECONDS = 3.0
# Kopf names the task of each watch stream "watcher for RESOURCE..." (kopf/_core/reactor/orchestration.py), and the
# workload watches are named alike. Should a later Kopf name its own otherwise, only the workload watches are counted.
WATCHER_TASK_PREFIX = "watcher for "
# A standby's election loop tries every second or so (each request bounded by a third of the lease); it counts as
# stuck, or cut off from the API server, after twice the lease without a try or an answer.
MIN_STANDBY_WINDOW_SECONDS = 10.0


class Phase(StrEnum):
    STANDBY = "standby"  # waiting for the Lease
    STARTING = "starting"  # leading (or no election), Kopf starting
    RUNNING = "running"  # the runtime is built and its workers run
    STOPPING = "stopping"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


class Health:
    """What the probes answer. Told by `main()`, the leader election's threads and the start-up and clean-up
    handlers what the process is doing; asked by the server's threads."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        leader_election: bool = False,
        lease_seconds: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.leader_election = leader_election
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.phase = Phase.STARTING
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listed: Callable[[], bool] = lambda: False
        self._last_try = clock()  # the election's last attempt, whatever came of it
        self._last_answer: float | None = None  # the election's last attempt that the API server answered
        self._renewed: float | None = None  # the last time this process held the Lease
        self._watchers = 0  # the most watch streams seen at once
        metrics.set_leader(False)

    @property
    def standby_window(self) -> float:
        return max(MIN_STANDBY_WINDOW_SECONDS, 2 * self.lease_seconds)

    # --- told ----------------------------------------------------------------------------------------------------

    def standby(self) -> None:
        self.phase = Phase.STANDBY

    def lease_attempt(self, held: bool | None) -> None:
        """The leader election's observer: True holds the Lease, False another does, None the attempt failed."""
        now = self.clock()
        with self._lock:
            self._last_try = now
            if held is not None:
                self._last_answer = now
            if held:
                self._renewed = now
        if held is not None:
            self.metrics.set_leader(held)

    def starting(self) -> None:
        self.phase = Phase.STARTING

    def running(self, loop: asyncio.AbstractEventLoop, listed: Callable[[], bool]) -> None:
        """The runtime runs on `loop`; `listed` says whether its initial listing of image streams is done."""
        self._loop, self._listed = loop, listed
        self.phase = Phase.RUNNING
        if not self.leader_election:
            self.metrics.set_leader(True)

    def stopping(self) -> None:
        self.phase = Phase.STOPPING

    # --- asked ---------------------------------------------------------------------------------------------------

    def liveness(self) -> Verdict:
        phase, now = self.phase, self.clock()
        if phase is Phase.STANDBY:
            with self._lock:
                since = now - self._last_try
            if since > self.standby_window:
                return Verdict(False, f"standby: the leader election has not tried for the Lease in {since:.0f} s")
            return Verdict(True, "standby: waiting for the Lease")
        if phase is not Phase.RUNNING or self._loop is None:
            return Verdict(True, phase.value)
        watchers = self._ask_loop(self._loop)
        if watchers is None:
            return Verdict(False, f"the event loop did not answer within {LOOP_TIMEOUT_SECONDS:g} s")
        with self._lock:
            self._watchers = most = max(self._watchers, watchers)
        if watchers < most:
            return Verdict(False, f"{most - watchers} of the {most} watch streams ended")
        return Verdict(True, f"ok: the event loop answers; {watchers} watch streams")

    def readiness(self) -> Verdict:
        phase, now = self.phase, self.clock()
        if phase is Phase.STANDBY:
            return self._standby_readiness(now)
        if phase is not Phase.RUNNING:
            return Verdict(False, f"not ready: {phase.value}")
        if not self._listed():
            return Verdict(False, "not ready: the initial listing of image streams is not done")
        if self.leader_election:
            with self._lock:
                renewed = self._renewed
            if renewed is None or now - renewed > self.lease_seconds:
                return Verdict(False, "not ready: the Lease was not renewed within its duration")
            return Verdict(True, "ready: leading")
        return Verdict(True, "ready")

    def _standby_readiness(self, now: float) -> Verdict:
        with self._lock:
            answered = self._last_answer
        if answered is None or now - answered > self.standby_window:
            return Verdict(False, "standby: the API server has not answered the Lease requests")
        return Verdict(True, "standby: another replica holds the Lease")

    @staticmethod
    def _ask_loop(loop: asyncio.AbstractEventLoop) -> int | None:
        """The number of watch tasks, counted on the loop itself; None when the loop does not answer."""
        answer: concurrent.futures.Future[int] = concurrent.futures.Future()

        def count() -> None:
            tasks = asyncio.all_tasks()
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                answer.set_result(sum(1 for task in tasks if task.get_name().startswith(WATCHER_TASK_PREFIX)))

        try:
            loop.call_soon_threadsafe(count)
        except RuntimeError:  # the loop is closed
            return None
        try:
            return answer.result(timeout=LOOP_TIMEOUT_SECONDS)
        except TimeoutError:
            answer.cancel()
            return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, port: int, health: Health, metrics: Metrics) -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.health = health
        self.metrics = metrics
        super().__init__((address, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's name up in DNS (getfqdn), which may hang: not needed here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "imagestreams-operator"

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._reply(200, encoder(self.server.metrics.registry), content_type)
            return
        if path in ("/healthz", "/livez"):
            verdict = self.server.health.liveness()
        elif path == "/readyz":
            verdict = self.server.health.readiness()
        else:
            self._reply(404, b"not found: /healthz, /readyz and /metrics are served here\n")
            return
        self._reply(200 if verdict.ok else 503, f"{verdict.message}\n".encode())

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("health server: %s %s", self.address_string(), format % args)


class HealthServer:
    """Serves Health and Metrics on address:port from daemon threads, until `stop()`."""

    def __init__(self, health: Health, metrics: Metrics, address: str, port: int) -> None:
        self._server = _Server(address, port, health, metrics)  # binds now: an OSError says why it cannot
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-server", daemon=True)
        self._thread.start()
        logger.info("serving /healthz, /readyz and /metrics on port %d", self.port)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

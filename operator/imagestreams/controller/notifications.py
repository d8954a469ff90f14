"""The registry push notification endpoint: `POST /notifications/<format>[/<token>]` on its own port, plain HTTP.

What a delivery says is decided in core/notifications.py; here it is received, authenticated, rate-limited and handed
to the runtime, which makes the matching scheduled tags due at once (Runtime.pushed). Nothing a notification says is
believed beyond "look at this tag now".

- **Plain HTTP on its own port.** The hosted services (Docker Hub, Quay, GitHub, a Harbor elsewhere) only deliver to
  a URL with a publicly trusted certificate, which the operator cannot have; the cluster's ingress terminates TLS for
  them and forwards here. The webhook certificate (admission/) is issued by the operator's own CA, which no
  registry trusts, and serves another purpose. A registry in the cluster posts to the Service directly.
- **Every replica serves it, only the leader acts.** The Service spreads deliveries over the replicas, and a standby
  has no runtime: it authenticates and parses a delivery like the leader (so a wrong token is a 401 everywhere, and
  counted), then answers 503 with Retry-After, so a registry that retries (distribution, GitLab, Harbor) reaches
  the leader on a later attempt. The leader answers 503 too until its initial listing of streams is done.
- **Answers.** 202 with `{"pushes": N, "scheduledTags": M}`; 400 a body that is not the format's JSON; 401 without a
  valid token; 404 an unknown path or format; 411/413 no length or a body over core's limit; 429 with Retry-After
  when the source spent its budget (a source is a remote address and a format for deliveries with a valid token, and
  the address alone for those without); 503 with Retry-After on a standby.
- **Bounded.** At most MAX_CONNECTIONS connections at once (more are closed at once), READ_TIMEOUT_SECONDS to send a
  request, core.notifications.MAX_NOTIFICATION_BYTES per body, MAX_SOURCES rate-limit buckets.

The token is never logged: the path (which may carry it) is not written anywhere, and the Secret's values only go to
the comparison.

A stdlib server in daemon threads, as health.py and the admission server are: it runs before the leader election,
on a standby too, where there is no event loop. A delivery reaches the runtime's loop with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import logging
import math
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from imagestreams.core.notifications import (
    MAX_NOTIFICATION_BYTES,
    BadNotification,
    Method,
    NotificationFormat,
    Presented,
    PushTarget,
    SourceLimits,
    authenticate,
    parse_notification,
    usable_tokens,
)

logger = logging.getLogger(__name__)

PATH_PREFIX = "/notifications/"
READ_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 64
# How long a delivery waits for the runtime's event loop to take it (it only marks tags due and queues streams).
DELIVERY_TIMEOUT_SECONDS = 5.0
# How often the Secret is read again while deliveries arrive: a rotated token is accepted within this long.
TOKEN_REFRESH_SECONDS = 10.0
STANDBY_RETRY_SECONDS = 1
# The rate-limit bucket of an address's deliveries without a valid token (whatever their format).
UNAUTHENTICATED = "unauthenticated"

# On the runtime's event loop: the scheduled tags made due for these pushes, or None when the runtime cannot act yet.
Deliver = Callable[[tuple[PushTarget, ...]], int | None]
# (format, result, scheduled tags): for metrics.
Observer = Callable[[str, str, int], None]


class Result(StrEnum):
    ACCEPTED = "accepted"
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    STANDBY = "standby"
    ERROR = "error"


class TokenSource(Protocol):
    def current(self) -> tuple[bytes, ...]:
        """The tokens accepted now."""
        ...


SecretReader = Callable[[], Mapping[str, bytes] | None]  # the Secret's data, None when there is no such Secret


class SecretTokens:
    """The tokens of one Secret (every value is a token), read when first needed and again at most every
    TOKEN_REFRESH_SECONDS while deliveries arrive. A failed read keeps the tokens of the last good one."""

    def __init__(self, read: SecretReader, where: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self.where = where
        self._clock = clock
        self._tokens: tuple[bytes, ...] = ()
        self._read_at: float | None = None
        self._refreshing = threading.Lock()
        self._described = ""

    def current(self) -> tuple[bytes, ...]:
        read_at = self._read_at
        if read_at is not None and self._clock() - read_at < TOKEN_REFRESH_SECONDS:
            return self._tokens
        # One thread reads; the others go on with the tokens they have, unless there are none yet.
        if not self._refreshing.acquire(blocking=read_at is None):
            return self._tokens
        try:
            if self._read_at is read_at:
                self._refresh()
        finally:
            self._refreshing.release()
        return self._tokens

    def _refresh(self) -> None:
        try:
            data = self._read()
        except Exception as error:  # the API server unreachable, no right to read: keep what was read before
            self._describe(f"cannot read the notification tokens in Secret {self.where} ({error}); keeping the "
                           f"{len(self._tokens)} read before", logging.WARNING)  # fmt: skip
            self._read_at = self._clock() - TOKEN_REFRESH_SECONDS / 2  # try again soon
            return
        self._read_at = self._clock()
        if data is None:
            self._tokens = ()
            self._describe(f"no Secret {self.where}: every push notification is refused (401)", logging.WARNING)
            return
        self._tokens, too_short = usable_tokens(data)
        if too_short:
            logger.warning(
                "Secret %s: key(s) %s hold fewer than 16 bytes and are not accepted as notification tokens",
                self.where,
                ", ".join(too_short),
            )
        if self._tokens:
            self._describe(f"{len(self._tokens)} notification token(s) from Secret {self.where}", logging.INFO)
        else:
            self._describe(f"Secret {self.where} holds no usable token: every push notification is refused (401)",
                           logging.WARNING)  # fmt: skip

    def _describe(self, message: str, level: int) -> None:
        # Once per state, not at every read.
        if message != self._described:
            self._described = message
            logger.log(level, "%s", message)


def secret_reader(namespace: str, name: str, timeout: float = 5.0) -> SecretReader:
    """Reads the Secret through the API server (get on that one Secret: the chart's Role grants nothing more)."""
    import httpx2  # noqa: PLC0415 - only with notifications
    from lightkube import ApiError, Client  # noqa: PLC0415
    from lightkube.resources.core_v1 import Secret  # noqa: PLC0415

    client = Client(timeout=httpx2.Timeout(timeout))

    def read() -> Mapping[str, bytes] | None:
        try:
            secret = client.get(Secret, name, namespace=namespace)
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise
        return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}

    return read


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, port: int, endpoint: NotificationServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.endpoint = endpoint
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__((address, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's name up in DNS (getfqdn), which may hang: not needed here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        # One thread per connection, and no more than MAX_CONNECTIONS: beyond that a connection is closed unread,
        # so a flood of slow clients costs neither memory nor threads.
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(READ_TIMEOUT_SECONDS)
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "imagestreams-operator"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request line holds the path, and the path may hold the token

    def do_GET(self) -> None:
        self._reply(405, "push notifications are POSTed\n", {"Allow": "POST"})

    def do_POST(self) -> None:
        endpoint = self.server.endpoint
        url = urllib.parse.urlsplit(self.path)
        route = _route(url.path)
        if route is None:
            self._reply(404, f"not found: POST {PATH_PREFIX}<format>[/<token>], format one of "
                             f"{', '.join(f.value for f in NotificationFormat)}\n")  # fmt: skip
            return
        notification_format, path_token = route
        address = self.client_address[0]
        body = self._body(notification_format)
        if body is None:
            return
        presented = Presented(
            authorization=self.headers.get("Authorization", ""),
            path_token=path_token,
            signature=self.headers.get("X-Hub-Signature-256", ""),
        )
        method = authenticate(presented, body, endpoint.tokens.current())
        # Deliveries with a valid token and those without one spend different budgets: a registry set up with a
        # wrong token (which retries forever), or anyone guessing, never spends that of a registry behind the same
        # address (an ingress) that has the right one.
        wait = endpoint.admit((address, notification_format.value if method else UNAUTHENTICATED))
        if wait:
            self._refuse(notification_format, Result.RATE_LIMITED, 429, "too many notifications from this source\n",
                         {"Retry-After": str(math.ceil(wait))})  # fmt: skip
            return
        if method is None:
            logger.debug("push notification (%s) from %s refused: no valid token", notification_format, address)
            self._refuse(notification_format, Result.UNAUTHORIZED, 401, "a valid token is required\n",
                         {"WWW-Authenticate": 'Bearer realm="imagestreams-notifications"'})  # fmt: skip
            return
        if self.headers.get("X-GitHub-Event") == "ping":  # sent once when the webhook is created
            endpoint.observe(notification_format, Result.ACCEPTED, 0)
            self._reply(200, "pong\n")
            return
        self._deliver(notification_format, method, body, (urllib.parse.parse_qs(url.query).get("registry") or [""])[0])

    def _body(self, notification_format: NotificationFormat) -> bytes | None:
        """The request's body, or None when it was refused (or the client went away)."""
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self._refuse(notification_format, Result.BAD_REQUEST, 411, "a Content-Length is required\n")
            return None
        length = int(length_header)
        if length > MAX_NOTIFICATION_BYTES:
            self._refuse(notification_format, Result.TOO_LARGE, 413, f"at most {MAX_NOTIFICATION_BYTES} bytes\n")
            return None
        try:
            # Read before any answer: a connection closed with its body unread is reset, and the client may never
            # see the answer (a 429 it should back off on); and GitHub's signature covers the body.
            return self.rfile.read(length)
        except OSError:  # the client went away or sent too slowly
            return None

    def _deliver(self, notification_format: NotificationFormat, method: Method, body: bytes, registry: str) -> None:
        endpoint, source = self.server.endpoint, self.client_address[0]
        try:
            pushes = parse_notification(notification_format, body, registry=registry or None)
        except BadNotification as error:
            self._refuse(notification_format, Result.BAD_REQUEST, 400, f"{error}\n")
            return
        targets = tuple(dict.fromkeys(push.target for push in pushes))
        try:
            scheduled = endpoint.deliver(targets)
        except Exception:
            logger.exception("push notification (%s) from %s: handing it to the runtime failed", notification_format,
                             source)  # fmt: skip
            self._refuse(notification_format, Result.ERROR, 500, "the operator failed; retry later\n")
            return
        if scheduled is None:
            self._refuse(notification_format, Result.STANDBY, 503, "this replica does not act now; retry\n",
                         {"Retry-After": str(STANDBY_RETRY_SECONDS)})  # fmt: skip
            return
        endpoint.observe(notification_format, Result.ACCEPTED, scheduled)
        level = logging.INFO if scheduled else logging.DEBUG
        shown = ", ".join(str(target) for target in targets[:5]) + (", ..." if len(targets) > 5 else "")
        logger.log(level, "push notification (%s, %s) from %s: %d push(es) (%s); %d scheduled tag(s) due now",
                   notification_format, method, source, len(targets), shown or "none", scheduled)  # fmt: skip
        self._reply(202, json.dumps({"pushes": len(targets), "scheduledTags": scheduled}) + "\n", json_body=True)

    def _refuse(
        self,
        notification_format: NotificationFormat,
        result: Result,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.server.endpoint.observe(notification_format, result, 0)
        self._reply(status, message, headers)

    def _reply(
        self, status: int, message: str, headers: Mapping[str, str] | None = None, *, json_body: bool = False
    ) -> None:
        body = message.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if json_body else "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)


def _route(path: str) -> tuple[NotificationFormat, str] | None:
    """(format, token in the path or "") for /notifications/<format>[/<token>]; None for any other path."""
    if not path.startswith(PATH_PREFIX):
        return None
    parts = path[len(PATH_PREFIX) :].split("/")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1]):
        return None
    try:
        notification_format = NotificationFormat(parts[0])
    except ValueError:
        return None
    return notification_format, parts[1] if len(parts) == 2 else ""


class NotificationServer:
    """Serves the endpoint on address:port from daemon threads, until `stop()`. Deliveries reach the runtime once
    `attach()` names its loop and entry point (the start-up handler does, on the leader); until then, and after
    `detach()`, authenticated deliveries are answered 503."""

    def __init__(
        self,
        tokens: TokenSource,
        address: str,
        port: int,
        *,
        rate: float,
        burst: int,
        observe: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = tokens
        self._observe: Observer = observe or (lambda notification_format, result, tags: None)
        self._clock = clock
        self._limits = SourceLimits(rate, burst)
        self._limits_lock = threading.Lock()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Deliver | None = None
        self._server = _Server(address, port, self)  # binds now: an OSError says why it cannot
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> NotificationServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="notifications", daemon=True)
        self._thread.start()
        logger.info("push notifications accepted on port %d (POST %s<format>)", self.port, PATH_PREFIX)
        return self

    def stop(self) -> None:
        self.detach()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def attach(self, loop: asyncio.AbstractEventLoop, deliver: Deliver) -> None:
        with self._lock:
            self._loop, self._deliver = loop, deliver

    def detach(self) -> None:
        with self._lock:
            self._loop, self._deliver = None, None

    def admit(self, source: tuple[str, str]) -> float:
        """0.0 when `source` (an address, and a format or UNAUTHENTICATED) may deliver now; else the seconds until it
        may."""
        with self._limits_lock:
            return self._limits.admit(source, self._clock())

    def observe(self, notification_format: NotificationFormat, result: Result, tags: int) -> None:
        self._observe(notification_format.value, result.value, tags)

    def deliver(self, targets: tuple[PushTarget, ...]) -> int | None:
        """Hand the pushes to the runtime on its loop and wait for its answer; None when no runtime acts here."""
        with self._lock:
            loop, deliver = self._loop, self._deliver
        if loop is None or deliver is None:
            return None
        answer: concurrent.futures.Future[int | None] = concurrent.futures.Future()

        def run() -> None:
            if not answer.set_running_or_notify_cancel():
                return  # the waiting thread gave up
            try:
                answer.set_result(deliver(targets))
            except Exception as error:
                answer.set_exception(error)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop is closed: the runtime stopped
            return None
        try:
            return answer.result(timeout=DELIVERY_TIMEOUT_SECONDS)
        except TimeoutError:
            answer.cancel()
            logger.warning("the event loop did not take a push notification within %g s", DELIVERY_TIMEOUT_SECONDS)
            return None

"""Faults for tests and benchmarks: a registry address that never answers, and a registry proxy that misbehaves.

SilentServer is not a fake registry: it speaks no protocol at all (not even TLS), exactly like a registry whose
process hangs or a firewall that swallows traffic after the handshake. It records when each connection opened and
closed, so a test can see a client give up (close) its connections.

FaultProxy is a plain-HTTP reverse proxy in front of a real registry: it forwards every request unchanged until a test
switches a Fault on for the requests whose method and path it matches (hang, drip, a 5xx or 429 answer, a truncated,
oversized or altered body, a redirect). It is hand-written, on the standard library only, because it is a test
fixture and no maintained library injects these faults into a registry's answers: TCP-level fault proxies
(toxiproxy and the like) can slow or cut a connection, but cannot answer 429 with Retry-After, alter a manifest under
its digest or redirect one path.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import select
import selectors
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from email.message import Message
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast


@dataclass
class Connection:
    opened: float  # time.monotonic()
    closed: float | None = None
    received: int = 0  # bytes the client sent (a request, a TLS hello), never answered


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection, reads what arrives and never sends a byte."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"silent-server-{self.port}", daemon=True)

    @property
    def host(self) -> str:
        """host:port, as an image reference names a registry."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def connections(self) -> list[Connection]:
        with self._lock:
            return [Connection(c.opened, c.closed, c.received) for c in self._connections]

    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for c in self._connections if c.closed is None)

    def _serve(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        try:
            while not self._stopping.is_set():
                for key, _ in self._selector.select(timeout=0.05):
                    if key.data is None:
                        self._accept()
                    else:
                        self._read(key)
        finally:
            for key in list(self._selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            self._selector.close()

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        record = Connection(time.monotonic())
        with self._lock:
            self._connections.append(record)
        self._selector.register(conn, selectors.EVENT_READ, record)

    def _read(self, key: selectors.SelectorKey) -> None:
        conn: socket.socket = key.fileobj  # type: ignore[assignment]
        record: Connection = key.data
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            with self._lock:
                record.received += len(data)
            return
        with self._lock:
            record.closed = time.monotonic()
        self._selector.unregister(conn)
        conn.close()


GiB = 1024**3
# Not forwarded either way; Accept-Encoding is dropped so that the registry answers bodies as they are.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "accept-encoding"}
)


class FaultKind(StrEnum):
    HANG = "hang"  # read the request, never answer
    DRIP = "drip"  # the registry's answer, one byte every `interval` seconds
    STATUS = "status"  # answer `code` (5xx, 429 with Retry-After) instead of the registry
    TRUNCATE = "truncate"  # the registry's answer, declaring twice its body's length, cut in half, then close
    OVERSIZE = "oversize"  # a 200 declaring (or, undeclared, streaming) `size` bytes of zeros
    WRONG_DIGEST = "wrong-digest"  # the registry's answer with a byte added: no longer the digest it is named by
    REDIRECT = "redirect"  # answer `code` (302) with Location: `location`


@dataclass(frozen=True)
class Fault:
    """A fault and the requests it spoils: `path` is a regular expression searched in the request path, `methods`
    the methods (all when empty), `times` how many matching requests it spoils before it stops (None: all)."""

    kind: FaultKind
    code: int = 0
    retry_after: str | None = None
    location: str = ""
    interval: float = 1.0
    size: int = GiB
    declared: bool = True
    path: str = ""
    methods: frozenset[str] = frozenset()
    times: int | None = None

    @classmethod
    def hang(cls) -> Fault:
        return cls(FaultKind.HANG)

    @classmethod
    def drip(cls, interval: float = 1.0) -> Fault:
        return cls(FaultKind.DRIP, interval=interval)

    @classmethod
    def status(cls, code: int, retry_after: str | None = None) -> Fault:
        return cls(FaultKind.STATUS, code, retry_after=retry_after)

    @classmethod
    def truncate(cls) -> Fault:
        return cls(FaultKind.TRUNCATE)

    @classmethod
    def oversize(cls, size: int = GiB, *, declared: bool = True) -> Fault:
        return cls(FaultKind.OVERSIZE, size=size, declared=declared)

    @classmethod
    def wrong_digest(cls) -> Fault:
        return cls(FaultKind.WRONG_DIGEST)

    @classmethod
    def redirect(cls, location: str, code: int = 302) -> Fault:
        return cls(FaultKind.REDIRECT, code, location=location)

    def on(self, path: str, *methods: str, times: int | None = None) -> Fault:
        """This fault for the requests whose path `path` (a regular expression) is found in, with one of `methods`."""
        return replace(self, path=path, methods=frozenset(methods), times=times)

    def matches(self, method: str, path: str) -> bool:
        return (not self.methods or method in self.methods) and re.search(self.path, path) is not None


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)  # Authorization as its scheme and fingerprint only
    answer: str = ""  # the registry's status code when forwarded, else the fault's kind


def fingerprint(authorization: str) -> str:
    """How SeenRequest shows an Authorization value: its scheme and a hash, never the credential."""
    scheme, _, _ = authorization.partition(" ")
    return f"{scheme} sha256:{hashlib.sha256(authorization.encode()).hexdigest()[:12]}"


def _raw(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    head = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Fault')}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class FaultProxy:
    """A threaded reverse proxy on 127.0.0.1 in front of `upstream` (http://host:port or https://host:port, trusted
    with `ca_file`), itself plain HTTP: image references name it `host`, with the insecure import flag."""

    def __init__(self, upstream: str, *, ca_file: Path | None = None) -> None:
        url = urllib.parse.urlsplit(upstream)
        self._upstream = (url.scheme, url.hostname or "127.0.0.1", url.port)
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._spoiled = 0
        self._seen: list[SeenRequest] = []
        self.stopping = threading.Event()
        self._server = _Server(self)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fault-proxy-{self.port}",
            daemon=True,
        )

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def inject(self, fault: Fault | None) -> None:
        """Switch `fault` on (None: off) for the requests that arrive from now on."""
        with self._lock:
            self._fault, self._spoiled = fault, 0

    def requests(self, path: str = "") -> list[SeenRequest]:
        """The requests seen so far whose path `path` (a regular expression) is found in, oldest first."""
        with self._lock:
            return [seen for seen in self._seen if re.search(path, seen.path)]

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if one is on and matches it (and counting it against `times`)."""
        with self._lock:
            fault = self._fault
            if (
                fault is None
                or not fault.matches(method, path)
                or (fault.times is not None and self._spoiled >= fault.times)
            ):
                return None
            self._spoiled += 1
            return fault

    def record(self, method: str, path: str, headers: Message, answer: str) -> None:
        shown = {k: fingerprint(v) if k.lower() == "authorization" else v for k, v in headers.items()}
        with self._lock:
            self._seen.append(SeenRequest(method, path, shown, answer))

    def forward(
        self, method: str, path: str, headers: Message, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request to the registry as it came; its answer, with Content-Length set to the body read."""
        scheme, host, port = self._upstream
        connection = (
            http.client.HTTPSConnection(host, port, timeout=30, context=self._context)
            if scheme == "https"
            else http.client.HTTPConnection(host, port, timeout=30)
        )
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    connection.putheader(name, value)
            if body:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            content = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}]
            length = response.getheader("Content-Length", "0") if method == "HEAD" else str(len(content))
            return response.status, [*kept, ("Content-Length", length)], content
        except OSError as error:
            message = f"the fault proxy cannot reach the registry: {error}\n".encode()
            return 502, [("Content-Length", str(len(message)))], message
        finally:
            connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as registries answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `FaultProxy.requests()`."""

    def _handle(self) -> None:
        proxy = cast(_Server, self.server).proxy
        method, path = self.command, self.path
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = proxy.take(method, path)
        status, headers, content = 0, list[tuple[str, str]](), b""
        if fault is None or fault.kind in (FaultKind.DRIP, FaultKind.TRUNCATE, FaultKind.WRONG_DIGEST):
            status, headers, content = proxy.forward(method, path, self.headers, body)
        proxy.record(method, path, self.headers, str(fault.kind) if fault else str(status))
        if method == "HEAD":
            content = b""  # headers only, as the registry answered: a body would be read as the next answer
        if fault is None:
            self._send(_raw(status, headers, content))
        elif fault.kind is FaultKind.HANG:
            self._hang(proxy.stopping)
        elif fault.kind is FaultKind.DRIP:
            self.close_connection = True
            for byte in _raw(status, headers, content):
                if proxy.stopping.wait(fault.interval) or not self._send(bytes([byte])):
                    return
        elif fault.kind is FaultKind.STATUS:
            message = b"" if method == "HEAD" else f"fault injected: {fault.code}\n".encode()
            extra = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
            self._send(_raw(fault.code, [*extra, ("Content-Length", str(len(message)))], message))
        elif fault.kind is FaultKind.TRUNCATE:
            self.close_connection = True
            declared = [*(h for h in headers if h[0] != "Content-Length"), ("Content-Length", str(2 * len(content)))]
            self._send(_raw(status, declared, content[: len(content) // 2]))
        elif fault.kind is FaultKind.OVERSIZE:
            self._oversize(fault, proxy.stopping, body=method != "HEAD")
        elif fault.kind is FaultKind.WRONG_DIGEST:
            altered = content + b"\n" if status == 200 and method != "HEAD" else content
            kept = [*(h for h in headers if h[0] != "Content-Length"), ("Content-Length", str(len(altered)))]
            self._send(_raw(status, kept if method != "HEAD" else headers, altered))
        else:
            self._send(_raw(fault.code, [("Location", fault.location), ("Content-Length", "0")]))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _send(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return False
        return True

    def _hang(self, stopping: threading.Event) -> None:
        """Never answer; end when the client gives up (closes) or the proxy stops."""
        self.close_connection = True
        while not stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if readable:
                try:
                    if not self.connection.recv(65536):
                        return
                except OSError:
                    return

    def _oversize(self, fault: Fault, stopping: threading.Event, *, body: bool) -> None:
        self.close_connection = True
        length = [("Content-Length", str(fault.size))] if fault.declared else [("Connection", "close")]
        if not self._send(_raw(200, [("Content-Type", "application/vnd.oci.image.manifest.v1+json"), *length])):
            return
        if not body:
            return
        chunk, sent = bytes(64 * 1024), 0
        while sent < fault.size and not stopping.is_set() and self._send(chunk[: fault.size - sent]):
            sent += len(chunk)

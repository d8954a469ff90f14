"""The admission webhook server: HTTPS, one thread per connection, each path served by a handler.

A stdlib server in daemon threads, like the health server (controller/health.py), and for the same reason: every
replica serves admission, the standby too (the API server spreads calls over the Service's endpoints), and a
standby has no event loop. Handlers are synchronous and short: they read one stream at most.

The serving certificate can change while the server runs (rotation, admission/certs.py): each new connection is
wrapped with the context of the certificate current at that moment, so a rotation needs no restart and drops no
connection.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from imagestreams.admission.review import MAX_REVIEW_BYTES, BadReview, Request, Response, parse_review, render_response

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Response]
# (path, result, seconds): result is "allowed", "patched", "denied" or "error".
Observer = Callable[[str, str, float], None]
# The API server gives a webhook at most its timeoutSeconds (the shipped configurations say 5); a client that sends
# nothing for this long is not the API server.
READ_TIMEOUT_SECONDS = 10.0


class CertificateSource(Protocol):
    def serving_pair(self) -> tuple[bytes, bytes]:
        """The current serving certificate chain and key, PEM."""
        ...


@dataclass(frozen=True)
class _Context:
    pair: tuple[bytes, bytes]
    context: ssl.SSLContext


def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A TLS 1.2+ server context for a PEM chain and key (ssl loads them only from files)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="imagestreams-webhook-") as directory:
        cert_path, key_path = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], webhook: WebhookServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.webhook = webhook
        # The API server keeps its connections open between calls: a stopped server must end them too, or it goes
        # on answering on them.
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._closing = False
        super().__init__(address, _RequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # In the connection's own thread: the handshake of one slow client never holds up the accept loop.
        request.settimeout(READ_TIMEOUT_SECONDS)
        # The answer goes out as two writes (headers, then body): with Nagle's algorithm the second waits for the
        # API server's delayed ACK, 40 ms on Linux, on every call.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            wrapped = self.webhook.tls_context().wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as error:
            logger.debug("admission: TLS handshake with %s failed: %s", client_address[0], error)
            return
        with self._connections_lock:
            if self._closing:
                return
            self._connections.add(wrapped)
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(wrapped)

    def close_connections(self) -> None:
        """End every open connection (a request being answered is cut off) and accept no more."""
        with self._connections_lock:
            self._closing = True
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                # The plain socket's shutdown: SSLSocket's own would drop its TLS state under the reading thread.
                socket.socket.shutdown(connection, socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        handler = self.server.webhook.handlers.get(path)
        length = int(self.headers.get("Content-Length") or 0)
        if handler is None or length > MAX_REVIEW_BYTES:
            self.send_error(404 if handler is None else 413)
            return
        body = self.rfile.read(length)
        started = time.monotonic()
        try:
            request = parse_review(body)
        except BadReview as error:
            self.send_error(400, str(error))
            return
        try:
            response = handler(request)
            result = "denied" if not response.allowed else ("patched" if response.patch else "allowed")
        except Exception:
            # A bug must not block the cluster's writes: the request is let through unchanged, and said so.
            logger.exception("admission: %s failed on %s %s/%s", path, request.kind, request.namespace, request.name)
            response, result = (
                Response(warnings=("the image stream operator's webhook failed; nothing was changed",)),
                "error",
            )
        payload = render_response(request.uid, response)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.server.webhook.observe(path, result, time.monotonic() - started)


class WebhookServer:
    def __init__(
        self,
        certificates: CertificateSource,
        handlers: Mapping[str, Handler],
        address: str,
        port: int,
        observe: Observer | None = None,
    ) -> None:
        self.certificates = certificates
        self.handlers = dict(handlers)
        self.observe: Observer = observe or (lambda path, result, seconds: None)
        self._lock = threading.Lock()
        self._context: _Context | None = None
        self._server = _Server((address, port), self)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def tls_context(self) -> ssl.SSLContext:
        """The context of the current certificate, rebuilt when the certificate changed."""
        pair = self.certificates.serving_pair()
        with self._lock:
            if self._context is None or self._context.pair != pair:
                self._context = _Context(pair, server_context(*pair))
            return self._context.context

    def start(self) -> WebhookServer:
        self.tls_context()  # a certificate that does not load fails here, not at the first call
        self._thread = threading.Thread(target=self._server.serve_forever, name="admission-webhooks", daemon=True)
        self._thread.start()
        logger.info("admission webhooks served on %s:%d", *self._server.server_address[:2])
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()

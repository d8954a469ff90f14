"""Faults for tests and benchmarks: a registry address that accepts connections and never answers.

Not a fake registry: it speaks no protocol at all (not even TLS), exactly like a registry whose process hangs or a
firewall that swallows traffic after the handshake. It records when each connection opened and closed, so a test can
see a client give up (close) its connections.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self


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

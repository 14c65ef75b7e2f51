"""The Discord fake's HTTP/1.1 side: a stdlib ``ThreadingHTTPServer`` whose handler
reads each request and writes the :class:`~simulator.discord_fake.wire.Answer`
the fake decides (held back, or a reset instead of an answer, when a fault says so).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from simulator.discord_fake.wire import MAX_BODY_BYTES, Answer

Answerer = Callable[[str, str, str | None, bytes], Answer]
"""``(method, path with query, Authorization header, body) -> Answer``."""


class HttpServer(ThreadingHTTPServer):
    """Serves every request with ``answer``; ``hold(seconds)`` waits before a held answer.

    Keeps the open connections, so that :meth:`close_connections` can wake the
    handlers blocked on kept-alive ones at shutdown.
    """

    daemon_threads = False
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], answer: Answerer, hold: Callable[[float], object]
    ) -> None:
        self.answer = answer
        self.hold = hold
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self._open_lock:
            self._open.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler blocked reading a kept-alive connection."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the
    # second waits for the client's delayed ACK (about 40 ms per answer).
    disable_nagle_algorithm = True
    server: HttpServer

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the fake keeps its own request log."""

    def _serve(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.send_error(400, "bad Content-Length")
            return
        body = self.rfile.read(length) if length else b""
        answer = self.server.answer(method, self.path, self.headers.get("Authorization"), body)
        if answer.delay_s > 0:
            self.server.hold(answer.delay_s)
        if answer.close_without_answer:
            # SO_LINGER 0: closing sends a reset, as a dying proxy would.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            if answer.status != 204:
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.status != 204:
                self.wfile.write(answer.body)
        except OSError:
            # The client gave up (its timeout passed while the answer was held).
            self.close_connection = True

"""Test helpers for the simulated map server: a raw HTTP client, a tiny SSE parser."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from simulator.map_server import MapServer

API_KEY = "demo-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class SseEvent:
    event: str = "message"
    id: str | None = None
    data: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads("\n".join(self.data))


class SseCollector:
    """A small incremental SSE parser (any line ending, split anywhere) for assertions."""

    def __init__(self) -> None:
        self.events: list[SseEvent] = []
        self.comments: list[str] = []
        self._carry = b""
        self._skip_lf = False
        self._current = SseEvent()
        self._started = False

    def feed(self, data: bytes) -> None:
        buffer = self._carry + data
        if self._skip_lf and buffer.startswith(b"\n"):
            buffer = buffer[1:]
        if not buffer:
            return
        # A CR at the end is a whole line ending, but an LF right after it is not another.
        self._skip_lf = buffer.endswith(b"\r")
        *lines, self._carry = re.split(rb"\r\n|\r|\n", buffer)
        for line in lines:
            self._line(line.decode("utf-8", errors="replace"))

    def _line(self, line: str) -> None:
        if not line:
            if self._started:
                self.events.append(self._current)
            self._current, self._started = SseEvent(), False
        elif line.startswith(":"):
            self.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            self._started = True
            if name == "event":
                self._current.event = value
            elif name == "id":
                self._current.id = value
            elif name == "data":
                self._current.data.append(value)


def parse_sse(raw: bytes) -> tuple[list[SseEvent], list[str]]:
    """Complete events and comments in ``raw``; a trailing partial event is dropped."""
    collector = SseCollector()
    collector.feed(raw)
    return collector.events, collector.comments


class RawStream:
    """An SSE request over a bare socket that keeps each HTTP chunk (one server write) apart."""

    def __init__(
        self,
        port: int,
        path: str = "/api/maps/demo/events/stream",
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        all_headers = {"Host": f"127.0.0.1:{port}", **AUTH, **(headers or {})}
        head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in all_headers.items())
        self.sock.sendall((head + "\r\n").encode())
        self._buffer = b""
        raw_head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split(" ")[1])
        self.headers = {
            name.lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        self.body = b""
        self.collector = SseCollector()
        if "content-length" in self.headers:
            self.body = self._read_exactly(int(self.headers["content-length"]))

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self._buffer += data
        return bool(data)

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            if not self._fill():
                raise EOFError("connection closed")
        found, _, self._buffer = self._buffer.partition(marker)
        return found

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise EOFError("connection closed")
        found, self._buffer = self._buffer[:size], self._buffer[size:]
        return found

    def chunk(self) -> bytes:
        """The next HTTP chunk's payload (one server write); ``b""`` for the final chunk.

        Raises:
            EOFError: the server closed without the final chunk.
            TimeoutError: nothing within the socket timeout.
        """
        size = int(self._read_until(b"\r\n"), 16)
        payload = self._read_exactly(size)
        self._read_exactly(2)
        self.collector.feed(payload)
        return payload

    def chunks_until_events(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """Chunks until ``count`` more complete events have arrived.

        Raises:
            TimeoutError: they did not all arrive within ``timeout`` (keepalives
                arriving meanwhile do not extend it).
        """
        deadline = time.monotonic() + timeout
        target = len(self.collector.events) + count
        chunks: list[bytes] = []
        while len(self.collector.events) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{target - len(self.collector.events)} events missing")
            chunks.append(self.chunk())
        return chunks

    def events(self, count: int, timeout: float = 5.0) -> list[SseEvent]:
        """Read until ``count`` more complete events have arrived; return all new ones."""
        start = len(self.collector.events)
        self.chunks_until_events(count, timeout)
        return self.collector.events[start:]

    def close(self) -> None:
        self.sock.close()


@contextmanager
def raw_stream(
    server: MapServer, query: str = "", headers: Mapping[str, str] | None = None
) -> Iterator[RawStream]:
    path = f"/api/maps/{server.slug}/events/stream" + (f"?{query}" if query else "")
    stream = RawStream(server.port, path, headers)
    try:
        yield stream
    finally:
        stream.close()

"""BoundedWebSocket against a raw loopback server that streams crafted frames.

The server writes frame headers and payloads itself, from one reused chunk,
so that the memory the test measures (``tracemalloc``: this process, every
thread) is the client's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import struct
import threading
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
import websocket
from websocket import ABNF

from actors.bounded_websocket import BoundedWebSocket, Message

MIB = 1 << 20
CHUNK = b"x" * 65_536
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Script = Callable[[socket.socket], None]


def header(opcode: int, size: int, *, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        return struct.pack("!BB", first, size)
    if size < 65_536:
        return struct.pack("!BBH", first, 126, size)
    return struct.pack("!BBQ", first, 127, size)


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    return header(opcode, len(payload), fin=fin) + payload


def stream_payload(conn: socket.socket, size: int) -> None:
    while size:
        part = CHUNK[: min(size, len(CHUNK))]
        conn.sendall(part)
        size -= len(part)


def _handshake(conn: socket.socket) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())  # RFC 6455's accept key
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


@pytest.fixture
def serve() -> Iterator[Callable[[Script], str]]:
    """Start a one-connection server running ``script`` after the handshake; its URL."""
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def start(script: Script) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def run() -> None:
            conn, _ = listener.accept()
            with conn:
                _handshake(conn)
                script(conn)
                with contextlib.suppress(OSError):
                    conn.recv(1)  # until the client closes

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return f"ws://127.0.0.1:{listener.getsockname()[1]}/"

    yield start
    for listener in listeners:
        listener.close()
    for thread in threads:
        thread.join(5)


def connect(url: str, max_message_bytes: int = MIB, keep_bytes: int = 1024) -> BoundedWebSocket:
    client = BoundedWebSocket(max_message_bytes, keep_bytes)
    client.connect(url, timeout=5)  # type: ignore[no-untyped-call]
    return client


def receive_measured(client: BoundedWebSocket) -> tuple[Message, int]:
    """The next message, and the peak of memory allocated while receiving it."""
    tracemalloc.start()
    try:
        message = client.receive()
        return message, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_frame_announcing_more_than_the_bound_is_rejected_unread_and_the_next_one_arrives(
    serve: Callable[[Script], str],
) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(header(ABNF.OPCODE_TEXT, 64 * MIB))
        stream_payload(conn, 64 * MIB)
        conn.sendall(frame(ABNF.OPCODE_TEXT, b'{"after": 1}'))

    client = connect(serve(script))
    try:
        message, peak = receive_measured(client)
        assert (message.opcode, message.size, message.oversized) == (
            ABNF.OPCODE_TEXT,
            64 * MIB,
            True,
        )
        assert message.data == CHUNK[:1024]
        assert peak < 2 * MIB, f"{peak} bytes to skip a 64 MiB frame"
        assert client.receive().data == b'{"after": 1}'
    finally:
        client.close()


def test_a_fragmented_message_is_gathered_whole_in_order(serve: Callable[[Script], str]) -> None:
    parts = [bytes([65 + n % 26]) * 64 for n in range(MIB // 64)]

    def script(conn: socket.socket) -> None:
        wire = [frame(ABNF.OPCODE_TEXT, parts[0], fin=False)]
        wire += [frame(ABNF.OPCODE_CONT, part, fin=False) for part in parts[1:-1]]
        wire.append(frame(ABNF.OPCODE_CONT, parts[-1]))
        conn.sendall(b"".join(wire))

    client = connect(serve(script))
    try:
        message = client.receive()
        assert (message.opcode, message.size, message.oversized) == (ABNF.OPCODE_TEXT, MIB, False)
        assert message.data == b"".join(parts)
    finally:
        client.close()


def test_a_fragmented_message_outgrowing_the_bound_is_rejected_with_bounded_memory(
    serve: Callable[[Script], str],
) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(frame(ABNF.OPCODE_BINARY, CHUNK, fin=False))
        for _ in range(62):
            conn.sendall(frame(ABNF.OPCODE_CONT, CHUNK, fin=False))
        conn.sendall(frame(ABNF.OPCODE_CONT, CHUNK))
        conn.sendall(frame(ABNF.OPCODE_PING, b"are you there"))
        conn.sendall(frame(ABNF.OPCODE_TEXT, b"next"))

    client = connect(serve(script))
    try:
        message, peak = receive_measured(client)
        assert (message.opcode, message.size, message.oversized) == (
            ABNF.OPCODE_BINARY,
            4 * MIB,
            True,
        )
        assert message.data == CHUNK[:1024]
        assert peak < 3 * MIB, f"{peak} bytes to discard a 4 MiB message bounded at 1 MiB"
        assert client.receive().opcode == ABNF.OPCODE_PING
        assert client.receive().data == b"next"
    finally:
        client.close()


def test_a_control_frame_longer_than_125_bytes_is_a_protocol_error(
    serve: Callable[[Script], str],
) -> None:
    client = connect(serve(lambda conn: conn.sendall(frame(ABNF.OPCODE_PING, b"p" * 126))))
    try:
        with pytest.raises(websocket.WebSocketProtocolException, match="control frame"):
            client.receive()
    finally:
        client.close()


def test_a_continuation_without_a_message_is_a_protocol_error(
    serve: Callable[[Script], str],
) -> None:
    client = connect(serve(lambda conn: conn.sendall(frame(ABNF.OPCODE_CONT, b"orphan"))))
    try:
        with pytest.raises(websocket.WebSocketProtocolException, match="continuation"):
            client.receive()
    finally:
        client.close()

"""websocket-client's client socket, with bounded messages and read-ahead.

websocket-client reads a frame's payload whole before anyone can look at its
size, joining the parts it read (a 64 MiB frame costs 128 MiB), and
reassembles a fragmented message by concatenating bytes (quadratic: a 1 MiB
message in small fragments costs seconds of CPU). :class:`BoundedWebSocket`
reads frames itself, on websocket-client's frame buffer:

- a data frame whose header announces more than the room left in its message
  (``max_message_bytes``) is not read into memory: its payload is consumed in
  chunks and discarded, keeping only its first ``keep_bytes`` for the reject;
- fragments gather in one growing buffer, bounded by ``max_message_bytes``;
  a message that outgrows it is discarded the same way, to its last fragment;
- a control frame longer than 125 bytes is a protocol error (RFC 6455 5.5).

A message that was too large comes back as a :class:`Message` with
``oversized`` set: the caller rejects it and the connection goes on. Memory
per connection is bounded by ``max_message_bytes`` plus one read.

The socket also reads ahead: websocket-client asks for a frame's header,
length and payload one by one, each a system call (two with a read timeout),
and every system call releases the GIL, which another busy thread may then
keep for a switch interval. Reading up to :data:`READ_AHEAD_BYTES` at a time
brings every frame that has arrived in one call; the frame buffer keeps what
a read returns beyond the size asked for, and hands out each part asked for
with one copy of that part (websocket-client's own buffer copies all it
holds at every ask). :meth:`BoundedWebSocket.has_data` tells a reader
whether the next message has (at least partly) arrived, so that it can
gather the messages already here into one batch without waiting for more.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import websocket
from websocket import ABNF, WebSocketProtocolException
from websocket._abnf import frame_buffer

READ_AHEAD_BYTES: Final = 65_536
_SKIP_CHUNK: Final = 65_536
_MAX_CONTROL_PAYLOAD: Final = 125
_DATA: Final = frozenset({ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT})


@dataclass(frozen=True, slots=True)
class Message:
    """One message (data, ping, pong or close) as received.

    Attributes:
        opcode: ``ABNF.OPCODE_TEXT``, ``_BINARY``, ``_PING``, ``_PONG`` or ``_CLOSE``.
        data: the payload; of an oversized message, its first ``keep_bytes``.
        size: the payload's size in bytes, as announced by the frame headers.
        oversized: the message was larger than ``max_message_bytes`` and was
            not kept (nor read into memory past ``keep_bytes``).
    """

    opcode: int
    data: bytes
    size: int
    oversized: bool = False


class _ReadAheadBuffer(frame_buffer):
    """websocket-client's frame buffer, keeping a read-ahead without copying it at every ask."""

    def __init__(self, recv: Callable[[int], bytes], skip_utf8_validation: bool) -> None:
        super().__init__(recv, skip_utf8_validation)
        self._data = b""
        self._position = 0

    def buffered(self) -> int:
        """Bytes read from the socket and not handed out yet."""
        return len(self._data) - self._position

    def recv_strict(self, bufsize: int) -> bytes:
        data, start = self._data, self._position
        end = start + bufsize
        if end <= len(data):
            self._position = end
            return data[start:end]
        parts = [data[start:]]
        have = len(parts[0])
        while have < bufsize:
            chunk = self.recv(bufsize - have)
            parts.append(chunk)
            have += len(chunk)
        self._data = b"".join(parts)
        self._position = bufsize
        return self._data[:bufsize]


@dataclass(slots=True)
class _Skipping:
    """An oversized frame whose payload is being discarded."""

    fin: int
    opcode: int
    size: int
    left: int


class BoundedWebSocket(websocket.WebSocket):
    """A client WebSocket whose messages are bounded; see the module docstring.

    Thread-safe for sends (``enable_multithread``); :meth:`receive` is for one
    reader thread. Pings are answered, as websocket-client does.

    Args:
        max_message_bytes: the largest message kept, fragments together.
        keep_bytes: how much of an oversized message is kept for its reject.
    """

    def __init__(self, max_message_bytes: int, keep_bytes: int) -> None:
        super().__init__(skip_utf8_validation=True, enable_multithread=True)
        self._read_ahead = _ReadAheadBuffer(self._recv, skip_utf8_validation=True)
        self.frame_buffer = self._read_ahead
        self._max = max_message_bytes
        self._keep = min(keep_bytes, max_message_bytes)
        self._skipping: _Skipping | None = None
        self._skipped_prefix = bytearray()
        self._fragments = bytearray()
        self._fragments_opcode = 0
        self._fragments_size = 0
        self._fragments_oversized = False

    def _recv(self, bufsize: int) -> bytes:
        data: bytes = super()._recv(max(bufsize, READ_AHEAD_BYTES))  # type: ignore[no-untyped-call]
        return data

    def has_data(self) -> bool:
        """Bytes of the next message are here: read ahead, or readable without waiting."""
        if self._read_ahead.buffered():
            return True
        sock = self.sock
        if sock is None:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    def receive(self) -> Message:
        """The next message; raises websocket-client's exceptions (timeouts included).

        After a timeout, calling again resumes where the read stopped.
        """
        while True:
            fin, opcode, data, size, oversized = self._frame()
            if opcode not in _DATA:
                if opcode == ABNF.OPCODE_PING:
                    self.pong(data)
                elif opcode == ABNF.OPCODE_CLOSE:
                    self.send_close()
                return Message(opcode, data, size)
            if opcode != ABNF.OPCODE_CONT:
                if self._fragments_opcode:
                    msg = "a new message began inside a fragmented one"
                    raise WebSocketProtocolException(msg)
                if fin:  # the usual case: one frame, one message, no copy
                    return Message(opcode, data, size, oversized)
                self._fragments_opcode = opcode
            elif not self._fragments_opcode:
                raise WebSocketProtocolException("a continuation frame outside a message")
            self._gather(data, size, oversized)
            if fin:
                return self._fragmented_message()

    def _gather(self, data: bytes, size: int, oversized: bool) -> None:
        self._fragments_size += size
        if oversized or self._fragments_size > self._max:
            self._fragments_oversized = True
        if not self._fragments_oversized:
            self._fragments += data
        elif len(self._fragments) < self._keep:
            self._fragments += data[: self._keep - len(self._fragments)]
        else:
            del self._fragments[self._keep :]

    def _fragmented_message(self) -> Message:
        message = Message(
            self._fragments_opcode,
            bytes(self._fragments[: self._keep] if self._fragments_oversized else self._fragments),
            self._fragments_size,
            self._fragments_oversized,
        )
        self._fragments = bytearray()
        self._fragments_opcode = 0
        self._fragments_size = 0
        self._fragments_oversized = False
        return message

    def _frame(self) -> tuple[int, int, bytes, int, bool]:
        """``(fin, opcode, payload, size, oversized)`` of the next frame."""
        buffer = self.frame_buffer
        with buffer.lock:
            if self._skipping is None:
                if buffer.needs_header():
                    buffer.recv_header()
                if buffer.needs_length():
                    buffer.recv_length()
                if buffer.needs_mask():
                    buffer.recv_mask()
                assert buffer.header is not None
                assert buffer.length is not None
                fin, rsv1, rsv2, rsv3, opcode, has_mask, _bits = buffer.header
                size: int = buffer.length
                if opcode not in _DATA and size > _MAX_CONTROL_PAYLOAD:
                    msg = f"a control frame of {size} bytes (at most 125)"
                    raise WebSocketProtocolException(msg)
                room = self._max - self._fragments_size if opcode == ABNF.OPCODE_CONT else self._max
                if size <= room:
                    payload = buffer.recv_strict(size)
                    if has_mask and buffer.mask_value:
                        payload = ABNF.mask(buffer.mask_value, payload)
                    buffer.clear()
                    frame = ABNF(fin, rsv1, rsv2, rsv3, opcode, has_mask, payload)
                    frame.validate(skip_utf8_validation=True)
                    return fin, opcode, payload, size, False
                ABNF(fin, rsv1, rsv2, rsv3, opcode, 0, b"").validate(skip_utf8_validation=True)
                self._skipping = _Skipping(fin, opcode, size, size)
                self._skipped_prefix = bytearray()
            return self._skip()

    def _skip(self) -> tuple[int, int, bytes, int, bool]:
        """Read and discard the oversized frame's payload, keeping its first ``keep_bytes``."""
        buffer = self.frame_buffer
        skipping = self._skipping
        assert skipping is not None
        while skipping.left:
            chunk = buffer.recv_strict(min(skipping.left, _SKIP_CHUNK))
            skipping.left -= len(chunk)
            room = self._keep - len(self._skipped_prefix)
            if room > 0:
                self._skipped_prefix += chunk[:room]
        buffer.clear()
        self._skipping = None
        return skipping.fin, skipping.opcode, bytes(self._skipped_prefix), skipping.size, True

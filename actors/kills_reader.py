"""The reader thread of a ``kills`` connection: one WebSocket, from connect to its end.

It opens the WebSocket (:class:`~actors.bounded_websocket.BoundedWebSocket`:
messages bounded by ``max_frame_bytes`` before they are read, read-ahead),
then only receives: it stamps each message with ``time.monotonic_ns()``,
decodes it with the connection's shared :class:`~realtime.phoenix.PhoenixClient`
(CPU only, under the lock it shares with the actor), encodes each event's data
for the journal while it is fresh, and hands the events and rejects to the
journal as one :class:`~actors.protocol.Ingest` (waiting, reading nothing,
while the journal cannot take it). Messages that have already arrived go
into one batch: the batch is handed off as soon as the socket has nothing
more to read at once (a reader never waits for more with events in hand), or
when it holds ``batch_max`` events. It tells the actor what changes the
connection: :class:`Opened`, :class:`ChannelEvent`, :class:`RoundTrip`
(after handing off the events received before). How it ended goes to the
actor last, as for every :class:`~actors.connection.ReaderThread`.
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

import pykka
import websocket
from websocket import ABNF

from actors.bounded_websocket import BoundedWebSocket, Message
from actors.connection import SUPERSEDED, ConnectionMessage, Ended, ReaderThread, describe
from actors.protocol import Ingest
from actors.source_support import IngestGate, RejectLog
from realtime.event import KILLS_SOURCE, Event, Reject
from realtime.journal_store import stored_payload
from realtime.phoenix import Control, PhoenixClient, Received

PING_PAYLOAD: Final = struct.Struct("!Q")
"""A WebSocket ping carries its send time (``time.monotonic_ns()``): the pong gives the RTT."""
_MAX_PLAUSIBLE_RTT_S: Final = 3600.0


@dataclass(frozen=True, slots=True)
class Opened(ConnectionMessage):
    """The WebSocket is open; ``local_port`` names it on the server's side."""

    local_port: int


@dataclass(frozen=True, slots=True)
class ChannelEvent(ConnectionMessage):
    """The channel or the subscription changed (a join's answer, a close...)."""

    control: Control


@dataclass(frozen=True, slots=True)
class RoundTrip(ConnectionMessage):
    """A heartbeat's reply or a ping's pong arrived after ``rtt_s``; ``kind`` says which."""

    rtt_s: float
    kind: str


@dataclass(slots=True)
class Shared:
    """What a kills actor and its reader threads share; guarded by ``lock``."""

    lock: threading.Lock
    client: PhoenixClient
    last_frame_at: float = 0.0


class KillsReader(ReaderThread):
    """Connects one WebSocket, then receives until it ends; see the module docstring.

    Args:
        owner, generation, gate: as :class:`~actors.connection.ReaderThread`.
        name: the actor's name, for the thread's.
        url: the WebSocket URL.
        connect_timeout_s: TCP connect plus handshake.
        read_timeout_s: a read this long without a byte wakes the thread
            (to see whether it was retired; the actor's watchdog decides death).
        shared: the actor's Phoenix client.
        rejects: the actor's reject log.
        max_message_bytes: larger messages are rejected unread.
        keep_bytes: what a reject keeps of an oversized message.
        batch_max: the most events handed to the journal in one batch.
    """

    def __init__(
        self,
        owner: pykka.ActorRef[Any],
        generation: int,
        gate: IngestGate,
        *,
        name: str,
        url: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        shared: Shared,
        rejects: RejectLog,
        max_message_bytes: int,
        keep_bytes: int,
        batch_max: int,
    ) -> None:
        super().__init__(owner, generation, f"{name}-reader-{generation}", gate)
        self._sender = name  # the journal answers refusals to this actor
        self._batch_max = batch_max
        self._events: list[Event] = []
        self._payloads: list[bytes | None] = []
        self._rejects: list[Reject] = []
        self.socket = BoundedWebSocket(max_message_bytes, keep_bytes)
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._shared = shared
        self._reject_log = rejects

    def run(self) -> Ended:
        try:
            try:
                # websocket-client leaves connect() and shutdown() unannotated.
                self.socket.connect(  # type: ignore[no-untyped-call]
                    self._url, timeout=self._connect_timeout_s, suppress_origin=True
                )
            except (OSError, websocket.WebSocketException) as error:
                return Ended("connect_failed", describe(error))
            if not self.hold_socket(self.socket.sock):
                return SUPERSEDED
            self.socket.settimeout(self._read_timeout_s)
            sock = self.socket.sock
            local_port = int(sock.getsockname()[1]) if sock is not None else 0
            if not self.post(Opened(self.generation, local_port)):
                return SUPERSEDED
            try:
                return Ended("connection_lost", self._receive())
            finally:
                self._flush()  # however reading ended, what was read goes on
        finally:
            self.socket.shutdown()  # type: ignore[no-untyped-call]

    def reading_paused(self, now: float) -> None:
        with self._shared.lock:
            self._shared.client.reading_paused(now)

    def reading_resumed(self, paused_at: float, now: float) -> None:
        with self._shared.lock:
            self._shared.client.reading_resumed(now)

    def _receive(self) -> str:
        while True:
            if self._batch_due() and not self._flush():
                return "superseded"
            try:
                message = self.socket.receive()
            except websocket.WebSocketTimeoutException:
                if self.aborted:
                    return "superseded"
                continue
            except websocket.WebSocketConnectionClosedException:
                return "connection closed by the server"
            except (OSError, websocket.WebSocketException) as error:
                return describe(error)
            received_ns = time.monotonic_ns()
            now = received_ns / 1e9
            opcode = message.opcode
            if opcode == ABNF.OPCODE_CLOSE:
                return f"server closed the connection ({_close_reason(message.data)})"
            if opcode == ABNF.OPCODE_PONG:
                self._shared.last_frame_at = now
                self._pong(message.data, received_ns)
            elif opcode == ABNF.OPCODE_PING:  # answered by the socket
                self._shared.last_frame_at = now
            elif not self._decoded(message, received_ns, now):
                return "superseded"

    def _decoded(self, message: Message, received_ns: int, now: float) -> bool:
        shared = self._shared
        with shared.lock:
            # Checked under the lock: the actor retires a reader before it
            # resets the client, so a retired reader never feeds the next one's.
            if self.aborted:
                return False
            client = shared.client
            if message.oversized:
                received = client.receive_oversized(message.data, message.size, received_ns, now)
            elif message.opcode == ABNF.OPCODE_TEXT:
                text = message.data.decode("utf-8", "surrogateescape")
                received = client.receive(text, received_ns, now)
            else:
                received = client.receive(message.data, received_ns, now)
            shared.last_frame_at = now
        return self._hand_off(received)

    def _hand_off(self, received: Received) -> bool:
        for reject in received.rejects:
            self._reject_log.note(reject)
        self._events += received.events
        # Decoded from JSON text just now: stored as that JSON, unchecked.
        self._payloads += [stored_payload(e.data, from_json=True) for e in received.events]
        self._rejects += received.rejects
        if received.rtt_s is None and received.control is None:
            return True
        # What the actor is told may change what it does with the feed: the
        # events received before it are in the journal's hands first.
        if not self._flush():
            return False
        if received.rtt_s is not None:
            self.post(RoundTrip(self.generation, received.rtt_s, "heartbeat"))
        if received.control is not None:
            return self.post(ChannelEvent(self.generation, received.control))
        return True

    def _batch_due(self) -> bool:
        """The batch goes now: nothing more has arrived to join it, or it is full."""
        if not (self._events or self._rejects):
            return False
        return len(self._events) >= self._batch_max or not self.socket.has_data()

    def _flush(self) -> bool:
        """Hand the batch to the journal; ``False`` if the reader was retired meanwhile."""
        if not (self._events or self._rejects):
            return True
        ingest = Ingest(
            KILLS_SOURCE,
            tuple(self._events),
            tuple(self._rejects),
            payloads=tuple(self._payloads),
            sender=self._sender,
        )
        self._events, self._payloads, self._rejects = [], [], []
        return self.deliver(ingest)

    def _pong(self, payload: bytes, received_ns: int) -> None:
        if len(payload) != PING_PAYLOAD.size:
            return
        (sent_ns,) = PING_PAYLOAD.unpack(payload)
        rtt_s = (received_ns - sent_ns) / 1e9
        if 0 <= rtt_s < _MAX_PLAUSIBLE_RTT_S:
            self.post(RoundTrip(self.generation, rtt_s, "ping"))


def _close_reason(payload: bytes) -> str:
    if len(payload) < 2:
        return "no status"
    code = int.from_bytes(payload[:2], "big")
    reason = payload[2:].decode("utf-8", "replace")
    return f"{code} {reason}".strip()

"""The ``kills`` actor: the wanderer-kills feed over a Phoenix channel (WebSocket).

One reader thread per connection, owned by the actor, does the blocking I/O:
it opens the WebSocket, then only receives frames, stamps them with
``time.monotonic_ns()`` and hands them off. It decodes them with the shared
:class:`~realtime.phoenix.PhoenixClient` (CPU only, under a lock), sends the
events and rejects of each frame to the journal as one
:class:`~actors.protocol.Ingest` itself, and forwards everything that changes
the connection (the join's answer, channel closed or crashed, heartbeat and
ping round trips, the end of the socket) to the actor as messages. The
socket is read in large chunks: one system call brings every frame that has
arrived (see :class:`_ReadAheadWebSocket`).

The actor owns time and decisions, on a timer tick:

- a Phoenix heartbeat every ``heartbeat_interval_s`` and a WebSocket ping with
  it (the pong's round trip is measured too);
- dead-connection detection with :meth:`PhoenixClient.is_dead`: a heartbeat
  unanswered when the next is due, or no frame at all for
  ``heartbeat_timeout_s`` (a half-open socket is found within
  ``2 * heartbeat_interval_s`` plus a tick);
- reconnection with :class:`~realtime.circuit.ReconnectPolicy` (capped
  exponential backoff with full jitter behind a circuit breaker; only a joined
  connection that lasted resets it), and a re-join on the same socket after
  ``phx_close``/``phx_error``/a refused join, with the same backoff;
- subscription changes from :class:`~actors.protocol.TrackingChanged`, pushed
  as ``subscribe_*``/``unsubscribe_*`` within the server's rate limit, never
  by re-joining (a re-join replays the preload).

On start it asks ``tracking`` for the current subscription
(:class:`~actors.protocol.GetTracking`) without blocking, and asks again on
the tick until an answer or a push arrives (tracking may start later).

Health is a :class:`~realtime.health.ConnectionHealth` of kind ``websocket``;
:meth:`KillsSource.status` reports it with the rejects, the subscription and
the Phoenix client's statistics. Rejected frames are journaled with the
events (in :attr:`Ingest.rejects`), counted per reason, and logged at most
once per reason per minute.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pykka
import websocket

from actors.base import ReportingActor
from actors.protocol import GetTracking, Ingest, IngestRefused, Names, TrackingChanged
from actors.source_support import Held, IngestGate, JournalLink, RejectLog, Resend, join_threads
from realtime.circuit import CircuitBreaker, CircuitState, ReconnectPolicy
from realtime.config import Config, KillsSourceConfig
from realtime.event import KILLS_SOURCE
from realtime.health import ConnectionHealth
from realtime.keys import Strategy
from realtime.phoenix import (
    ChannelClosed,
    ChannelErrored,
    Control,
    Joined,
    JoinFailed,
    PhoenixClient,
    Preload,
    PreloadComplete,
    SubscriptionAck,
)
from supervision import (
    ActorContext,
    ActorUnavailableError,
    Backoff,
    ChildSpec,
    MailboxFullError,
    MailboxSpec,
)

logger = logging.getLogger(__name__)

_PING_PAYLOAD: Final = struct.Struct("!Q")
READ_AHEAD_BYTES: Final = 65_536
_MAX_PLAUSIBLE_RTT_S: Final = 3600.0
_CLOSE_GOING_AWAY: Final = 1001
_TRACKING_ASK_PATIENCE_S: Final = 5.0


# -- messages from the reader thread and the timers ------------------------------------


@dataclass(frozen=True, slots=True)
class _Opened:
    generation: int
    local_port: int


@dataclass(frozen=True, slots=True)
class _ConnectFailed:
    generation: int
    reason: str


@dataclass(frozen=True, slots=True)
class _ReaderEnded:
    generation: int
    reason: str


@dataclass(frozen=True, slots=True)
class _ChannelControl:
    generation: int
    control: Control


@dataclass(frozen=True, slots=True)
class _RoundTrip:
    generation: int
    rtt_s: float
    kind: str  # "heartbeat" or "ping"


@dataclass(frozen=True, slots=True)
class _Reconnect:
    token: int


@dataclass(frozen=True, slots=True)
class _Rejoin:
    generation: int
    token: int


class _Tick:
    __slots__ = ()


_TICK: Final = _Tick()


class _Phase(enum.StrEnum):
    """Where the connection is; ``holding`` waits for the journal to take held batches."""

    WAITING = "waiting"
    CONNECTING = "connecting"
    AWAITING_TRACKING = "awaiting_tracking"
    JOINING = "joining"
    JOINED = "joined"
    REJOIN_WAIT = "rejoin_wait"
    HOLDING = "holding"
    STOPPED = "stopped"


_SOCKET_OPEN: Final = frozenset(
    {_Phase.AWAITING_TRACKING, _Phase.JOINING, _Phase.JOINED, _Phase.REJOIN_WAIT}
)


@dataclass(slots=True)
class _Shared:
    """State the reader threads and the actor share; guarded by ``lock``."""

    lock: threading.Lock
    client: PhoenixClient
    generation: int = 0
    last_frame_at: float = 0.0


# -- the reader thread ------------------------------------------------------------------


class _ReadAheadWebSocket(websocket.WebSocket):
    """websocket-client's socket, reading what has arrived rather than exactly each part.

    websocket-client asks its reader for a frame's header, length and payload
    one by one, each a system call (two with a read timeout), and every system
    call releases the GIL, which another busy thread may then keep for a
    switch interval. Reading up to :data:`READ_AHEAD_BYTES` at a time brings
    every frame that has arrived in one call; websocket-client's frame buffer
    keeps what a read returns beyond the size asked for.
    """

    def _recv(self, bufsize: int) -> bytes:
        data: bytes = super()._recv(max(bufsize, READ_AHEAD_BYTES))  # type: ignore[no-untyped-call]
        return data


class _Reader:
    """Connects one WebSocket, then receives until it ends; see the module docstring."""

    def __init__(
        self,
        *,
        generation: int,
        url: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        shared: _Shared,
        gate: IngestGate,
        owner: pykka.ActorRef[Any],
        rejects: RejectLog,
    ) -> None:
        self.generation = generation
        self.socket = _ReadAheadWebSocket(skip_utf8_validation=True, enable_multithread=True)
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._shared = shared
        self._gate = gate
        self._owner = owner
        self._rejects = rejects
        self.thread = threading.Thread(
            target=self._run, name=f"kills-reader-{generation}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def abort(self) -> None:
        """Wake the thread from any blocking call (from another thread); it then ends."""
        sock = self.socket.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("kills: socket already closed when aborting")

    def _current(self) -> bool:
        with self._shared.lock:
            return self._shared.generation == self.generation

    def _post(self, message: object) -> bool:
        try:
            self._owner.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def _run(self) -> None:
        try:
            try:
                # websocket-client leaves connect() and shutdown() unannotated.
                self.socket.connect(  # type: ignore[no-untyped-call]
                    self._url, timeout=self._connect_timeout_s, suppress_origin=True
                )
            except (OSError, websocket.WebSocketException) as error:
                self._post(_ConnectFailed(self.generation, _describe(error)))
                return
            if not self._current():
                return
            self.socket.settimeout(self._read_timeout_s)
            sock = self.socket.sock
            local_port = int(sock.getsockname()[1]) if sock is not None else 0
            if not self._post(_Opened(self.generation, local_port)):
                return
            reason = self._receive()
            self._post(_ReaderEnded(self.generation, reason))
        finally:
            self.socket.shutdown()  # type: ignore[no-untyped-call]

    def _receive(self) -> str:
        while True:
            try:
                opcode, frame = self.socket.recv_data_frame(control_frame=True)
            except websocket.WebSocketTimeoutException:
                if not self._current():
                    return "superseded"
                continue
            except websocket.WebSocketConnectionClosedException:
                return "connection closed by the server"
            except (OSError, websocket.WebSocketException) as error:
                return _describe(error)
            received_ns = time.monotonic_ns()
            now = received_ns / 1e9
            data: str | bytes
            if opcode == websocket.ABNF.OPCODE_TEXT:
                data = frame.data.decode("utf-8", "surrogateescape")
            elif opcode == websocket.ABNF.OPCODE_BINARY:
                data = bytes(frame.data)
            elif opcode == websocket.ABNF.OPCODE_PONG:
                self._shared.last_frame_at = now
                self._pong(frame.data, received_ns)
                continue
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                return f"server closed the connection ({_close_reason(frame.data)})"
            else:  # a ping, answered by websocket-client itself
                self._shared.last_frame_at = now
                continue
            if not self._frame(data, received_ns, now):
                return "superseded"

    def _frame(self, data: str | bytes, received_ns: int, now: float) -> bool:
        shared = self._shared
        with shared.lock:
            if shared.generation != self.generation:
                return False
            received = shared.client.receive(data, received_ns, now)
            shared.last_frame_at = now
        for reject in received.rejects:
            self._rejects.note(reject)
        if received.events or received.rejects:
            ingest = Ingest(KILLS_SOURCE, received.events, received.rejects)
            if not self._gate.deliver(ingest):
                return False
        if received.rtt_s is not None:
            self._post(_RoundTrip(self.generation, received.rtt_s, "heartbeat"))
        if received.control is not None:
            return self._post(_ChannelControl(self.generation, received.control))
        return True

    def _pong(self, payload: bytes, received_ns: int) -> None:
        if len(payload) != _PING_PAYLOAD.size:
            return
        (sent_ns,) = _PING_PAYLOAD.unpack(payload)
        rtt_s = (received_ns - sent_ns) / 1e9
        if 0 <= rtt_s < _MAX_PLAUSIBLE_RTT_S:
            self._post(_RoundTrip(self.generation, rtt_s, "ping"))


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


def _close_reason(payload: bytes) -> str:
    if len(payload) < 2:
        return "no status"
    code = int.from_bytes(payload[:2], "big")
    reason = payload[2:].decode("utf-8", "replace")
    return f"{code} {reason}".strip()


# -- the actor ---------------------------------------------------------------------------


class KillsSource(ReportingActor):
    """The ``kills`` source actor; see the module docstring.

    Args:
        ctx: from the supervisor.
        settings: ``[sources.kills]``.
        key_strategy: the dedup key strategy of killmail events.
        max_reject_bytes: a reject keeps at most this many bytes of its frame.
        held_capacity: batches kept while the journal cannot take them; when
            full, the connection is closed until they are taken.
        connect_timeout_s: TCP connect plus WebSocket handshake;
            ``heartbeat_timeout_s`` (capped at 10 s) by default.
        stable_s: how long a joined connection must last for its loss to
            reset the backoff; ``heartbeat_timeout_s`` by default.
        tracking_retry_s: how often ``tracking`` is asked while it does not answer.
        tracking_grace_s: how long after start the first join waits for
            tracking's answer, so that it carries the subscription (joining
            empty and subscribing later works too, with more pushes).
        resend_min_s, resend_max_s: the backoff between resends of held batches.
        rand: the jitter's random source (seed it in tests).
    """

    def __init__(
        self,
        ctx: ActorContext,
        settings: KillsSourceConfig,
        *,
        key_strategy: Strategy = "hybrid",
        max_reject_bytes: int = 65_536,
        held_capacity: int = 256,
        connect_timeout_s: float | None = None,
        stable_s: float | None = None,
        tracking_retry_s: float = 1.0,
        tracking_grace_s: float = 5.0,
        resend_min_s: float = 0.5,
        resend_max_s: float = 30.0,
        rand: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(ctx)
        self._settings = settings
        self._url = PhoenixClient.connect_url(settings.url)
        self._connect_timeout_s = connect_timeout_s or min(settings.heartbeat_timeout_s, 10.0)
        self._tick_s = min(1.0, settings.heartbeat_interval_s / 4)
        self._tracking_retry_s = tracking_retry_s
        self._join_deadline = time.monotonic() + tracking_grace_s
        self._preload = Preload(
            limit_per_system=settings.preload_limit_per_system,
            since_hours=settings.preload_since_hours,
        )
        client = PhoenixClient(
            heartbeat_interval_s=settings.heartbeat_interval_s,
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
            updates_per_minute=settings.subscription_updates_per_minute,
            max_frame_bytes=settings.max_frame_bytes,
            key_strategy=key_strategy,
            max_reject_bytes=max_reject_bytes,
        )
        self._shared = _Shared(threading.Lock(), client)
        now = time.monotonic()
        self._health = ConnectionHealth(
            Names.KILLS,
            "websocket",
            now=now,
            silence_timeout_s=settings.heartbeat_timeout_s,
            stale_after_s=min(
                1.5 * settings.heartbeat_interval_s, 0.9 * settings.heartbeat_timeout_s
            ),
        )
        jitter = rand or random.Random().random
        self._policy = ReconnectPolicy(
            Backoff(settings.reconnect_min_s, settings.reconnect_max_s, jitter=1.0),
            CircuitBreaker(settings.circuit_failures, settings.circuit_open_s),
            rand=jitter,
            stable_s=settings.heartbeat_timeout_s if stable_s is None else stable_s,
        )
        self._journal = JournalLink(
            self.registry,
            self.actor_ref,
            self.timers,
            capacity=held_capacity,
            backoff=Backoff(resend_min_s, max(resend_min_s, resend_max_s), jitter=0.5),
            rand=jitter,
        )
        self._rejects = RejectLog(logger, Names.KILLS)
        self._phase = _Phase.WAITING
        self._reader: _Reader | None = None
        self._retired: list[threading.Thread] = []
        self._local_port = 0
        self._token = 0
        self._last_frame_seen = 0.0
        self._last_ping_rtt_s: float | None = None
        self._tracking_known = False
        self._tracking_future: pykka.Future[Any] | None = None
        self._tracking_asked_at = 0.0
        self._tracking_next_ask = 0.0
        self._reported: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------------

    def on_start(self) -> None:
        super().on_start()
        self.timers.send_interval(self._tick_s, _TICK)
        self._poll_tracking(time.monotonic())
        self._connect()

    def on_stop(self) -> None:
        self._shutdown("stopped")

    def on_failure(self, *_exc_info: object) -> None:
        self._shutdown("crashed")

    def _shutdown(self, why: str) -> None:
        self._phase = _Phase.STOPPED
        reader = self._reader
        if reader is not None and reader.socket.connected:
            try:
                reader.socket.send_close(_CLOSE_GOING_AWAY, why.encode())
            except (OSError, websocket.WebSocketException):
                logger.debug("kills: no close frame sent: the socket is gone")
        self._retire_reader()
        stuck = join_threads(self._retired, 2.0)
        if stuck:
            logger.warning("kills: reader threads did not end in time: %s", ", ".join(stuck))

    # -- messages -------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:  # noqa: PLR0912 -- one dispatch table
        if isinstance(message, _Tick):
            self._tick()
        elif isinstance(message, Held | IngestRefused):
            self._hold(message)
        elif isinstance(message, _ChannelControl):
            if self._is_current(message.generation):
                self._channel_control(message.control)
        elif isinstance(message, _RoundTrip):
            if self._is_current(message.generation):
                self._round_trip(message)
        elif isinstance(message, _Opened):
            if self._is_current(message.generation):
                self._opened(message.local_port)
        elif isinstance(message, _ConnectFailed | _ReaderEnded):
            if self._is_current(message.generation):
                kind = (
                    "connect_failed" if isinstance(message, _ConnectFailed) else "connection_lost"
                )
                self._connection_lost(kind, message.reason)
        elif isinstance(message, _Reconnect):
            if message.token == self._token and self._phase is _Phase.WAITING:
                self._connect()
        elif isinstance(message, _Rejoin):
            if message.token == self._token and self._is_current(message.generation):
                self._join()
        elif isinstance(message, TrackingChanged):
            self._tracking_known = True
            self._tracking_future = None
            self._follow(message)
        elif isinstance(message, Resend):
            if self._journal.resend() and self._phase is _Phase.HOLDING:
                logger.info("kills: the journal takes events again; reconnecting")
                self._connect()
        else:
            return super().on_receive(message)
        return None

    # -- connecting and joining -----------------------------------------------------

    def _is_current(self, generation: int) -> bool:
        return self._reader is not None and self._reader.generation == generation

    def _connect(self) -> None:
        now = time.monotonic()
        if self._journal.full:
            self._phase = _Phase.HOLDING
            return
        if not self._policy.attempt_allowed(now):
            self._schedule_reconnect(self._policy.breaker.retry_in(now) or self._tick_s)
            return
        self._health.connecting(now)
        with self._shared.lock:
            self._shared.generation += 1
            generation = self._shared.generation
            self._shared.client.reset()
        self._reader = _Reader(
            generation=generation,
            url=self._url,
            connect_timeout_s=self._connect_timeout_s,
            read_timeout_s=max(self._settings.heartbeat_timeout_s, self._connect_timeout_s),
            shared=self._shared,
            gate=self._journal.gate,
            owner=self.actor_ref,
            rejects=self._rejects,
        )
        self._phase = _Phase.CONNECTING
        self._reader.start()

    def _opened(self, local_port: int) -> None:
        self._local_port = local_port
        logger.info("kills: connected to %s", self._url)
        if self._tracking_known or time.monotonic() >= self._join_deadline:
            self._join()
        else:
            self._phase = _Phase.AWAITING_TRACKING

    def _join(self) -> None:
        now = time.monotonic()
        if self._health.state != "connecting":
            self._health.connecting(now)
        with self._shared.lock:
            client = self._shared.client
            frame = client.join_frame(
                client.desired.systems, client.desired.characters, now, preload=self._preload
            )
        self._phase = _Phase.JOINING
        self._send(frame)

    def _channel_control(self, control: Control) -> None:
        now = time.monotonic()
        self._health.message(now)
        if isinstance(control, Joined):
            self._policy.connected_and_joined(now)
            if self._health.state == "connecting":
                self._health.connected(now)
            self._phase = _Phase.JOINED
            logger.info(
                "kills: joined with %d systems and %d characters",
                len(control.subscription.systems),
                len(control.subscription.characters),
            )
            self._send_updates(now)
            self._ping()  # a first round trip now, not one heartbeat interval later
        elif isinstance(control, JoinFailed):
            self._channel_lost("join_failed", f"the server refused the join: {control.reason}")
        elif isinstance(control, ChannelClosed):
            self._channel_lost("channel_closed", "the server closed the channel (phx_close)")
        elif isinstance(control, ChannelErrored):
            self._channel_lost("channel_errored", "the channel crashed on the server (phx_error)")
        elif isinstance(control, SubscriptionAck):
            if not control.ok:
                self._health.error("subscription_refused", now)
                logger.warning(
                    "kills: the server refused %s (%d ids): %s; retried within the rate limit",
                    control.kind.value,
                    len(control.ids),
                    control.reason,
                )
            self._send_updates(now)
        elif isinstance(control, PreloadComplete):
            self.counters["preloads_completed"] += 1

    def _channel_lost(self, kind: str, reason: str) -> None:
        """The channel ended but the socket lives: re-join on it after a backoff."""
        now = time.monotonic()
        logger.warning("kills: %s", reason)
        self._health.error(kind, now)
        self._health.disconnected(reason, now)
        delay = self._after_failure(now)
        assert self._reader is not None
        self._phase = _Phase.REJOIN_WAIT
        self.timers.send_after(delay, _Rejoin(self._reader.generation, self._token))

    def _connection_lost(self, kind: str, reason: str) -> None:
        now = time.monotonic()
        if self._phase is _Phase.JOINED:
            logger.warning("kills: connection lost: %s", reason)
        else:
            logger.info("kills: %s: %s", kind, reason)
        self._retire_reader()
        self._health.error(kind, now)
        if self._health.state != "disconnected":
            self._health.disconnected(reason, now)
        if self._journal.full:
            self._phase = _Phase.HOLDING
            return
        self._schedule_reconnect(self._after_failure(now))

    def _after_failure(self, now: float) -> float:
        """Record a failure; the delay before the next attempt, with health reporting it."""
        delay = self._policy.next_delay(now)
        self._token += 1
        if self._policy.breaker.state is CircuitState.OPEN:
            failures = self._policy.breaker.statistics().consecutive_failures
            self._health.failed(f"circuit open after {failures} failures", now)
            logger.error(
                "kills: %d consecutive failures to reach %s; next attempt in %.1f s",
                failures,
                self._url,
                delay,
            )
        else:
            self._health.reconnecting(now, delay)
        return delay

    def _schedule_reconnect(self, delay: float) -> None:
        self._phase = _Phase.WAITING
        self.timers.send_after(delay, _Reconnect(self._token))

    def _retire_reader(self) -> None:
        """Forget the current connection: its reader ends on its own, joined at stop."""
        reader = self._reader
        if reader is None:
            return
        with self._shared.lock:
            self._shared.generation += 1
        reader.abort()
        self._retired = [thread for thread in self._retired if thread.is_alive()]
        self._retired.append(reader.thread)
        self._reader = None

    def _send(self, frame: str) -> bool:
        reader = self._reader
        if reader is None:
            return False
        try:
            reader.socket.send(frame)
        except (OSError, websocket.WebSocketException) as error:
            self._connection_lost("send_failed", _describe(error))
            return False
        return True

    def _ping(self) -> None:
        reader = self._reader
        if reader is None:
            return
        try:
            reader.socket.ping(_PING_PAYLOAD.pack(time.monotonic_ns()))
        except (OSError, websocket.WebSocketException) as error:
            self._connection_lost("send_failed", _describe(error))

    # -- timing ---------------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        self._poll_tracking(now)
        last_frame_at = self._shared.last_frame_at
        if last_frame_at > self._last_frame_seen:
            self._last_frame_seen = last_frame_at
            self._health.message(last_frame_at)
        if self._phase is _Phase.AWAITING_TRACKING and now >= self._join_deadline:
            logger.warning("kills: tracking has not answered; joining without a subscription")
            self._join()
        if self._phase in _SOCKET_OPEN:
            self._keep_alive(now)
        if self._phase is _Phase.JOINED:
            self._send_updates(now)
        self._health.tick(now)
        self._count_decoded()

    def _keep_alive(self, now: float) -> None:
        with self._shared.lock:
            client = self._shared.client
            dead = client.is_dead(now)
            frame = None
            if dead is None and client.heartbeat_due(now):
                # Stamped as late as possible: the round trip starts at the send.
                frame = client.heartbeat_frame(time.monotonic())
        if dead is not None:
            self._connection_lost(dead.partition(":")[0], dead)
        elif frame is not None and self._send(frame):
            self._ping()

    def _send_updates(self, now: float) -> None:
        with self._shared.lock:
            frames = self._shared.client.pending_updates(now)
        for frame in frames:
            if not self._send(frame):
                return

    def _round_trip(self, message: _RoundTrip) -> None:
        now = time.monotonic()
        self._health.message(now)
        self._health.rtt(message.rtt_s, now)
        if message.kind == "ping":
            self._last_ping_rtt_s = message.rtt_s

    # -- tracking -------------------------------------------------------------------

    def _follow(self, change: TrackingChanged) -> None:
        with self._shared.lock:
            self._shared.client.set_desired(change.systems, change.characters)
        if self._phase is _Phase.JOINED:
            self._send_updates(time.monotonic())
        elif self._phase is _Phase.AWAITING_TRACKING:
            self._join()

    def _poll_tracking(self, now: float) -> None:
        """Ask ``tracking`` for the subscription without blocking, until it answers once."""
        if self._tracking_known:
            return
        future = self._tracking_future
        if future is None:
            if now < self._tracking_next_ask:
                return
            try:
                self._tracking_future = self.registry.require(Names.TRACKING).ask(
                    GetTracking(), block=False
                )
                self._tracking_asked_at = now
            except (ActorUnavailableError, pykka.ActorDeadError, MailboxFullError):
                self._tracking_next_ask = now + self._tracking_retry_s
            return
        try:
            answer = future.get(timeout=0)
        except pykka.Timeout:
            if now - self._tracking_asked_at > _TRACKING_ASK_PATIENCE_S:
                self._tracking_future = None
            return
        except Exception as error:  # noqa: BLE001 -- whatever tracking raised, ask again later
            logger.info("kills: tracking did not answer (%s); asking again", _describe(error))
            self._tracking_future = None
            self._tracking_next_ask = now + self._tracking_retry_s
            return
        self._tracking_future = None
        if isinstance(answer, TrackingChanged):
            self._tracking_known = True
            self._follow(answer)
        else:
            self._tracking_next_ask = now + self._tracking_retry_s

    # -- the journal ----------------------------------------------------------------

    def _hold(self, message: Held | IngestRefused) -> None:
        if isinstance(message, IngestRefused):
            logger.warning("kills: the journal refused a batch: %s", message.reason)
        if not self._journal.take(message):
            logger.error(
                "kills: the journal is not taking events and %d batches are held: "
                "dropped %d events; reading is paused until the journal recovers",
                self._journal.held,
                len(message.ingest.events),
            )
        if self._journal.full and self._phase is not _Phase.HOLDING:
            self._pause_for_journal()

    def _pause_for_journal(self) -> None:
        now = time.monotonic()
        if self._reader is not None:
            self._retire_reader()
            self._health.error("journal_backpressure", now)
            if self._health.state != "disconnected":
                self._health.disconnected("paused: the journal is not taking events", now)
        self._token += 1
        self._phase = _Phase.HOLDING

    # -- reporting ------------------------------------------------------------------

    def _count_decoded(self) -> None:
        with self._shared.lock:
            stats = self._shared.client.statistics()
        totals = {
            "frames_total": stats.frames_received,
            "decoded_total": stats.events,
            "rejects_total": sum(stats.rejects.values()),
        }
        for name, total in totals.items():
            delta = total - self._reported.get(name, 0)
            if delta:
                self.counters[name] += delta
                self._reported[name] = total

    def report_gauges(self) -> Mapping[str, float]:
        snapshot = self._health.snapshot(time.monotonic())
        return {
            "connected": 1.0 if snapshot.state in ("connected", "degraded") else 0.0,
            "quality_score": float(snapshot.score),
            "rtt_ms": snapshot.rtt_ms if snapshot.rtt_ms is not None else -1.0,
            "held_batches": float(self._journal.held),
        }

    def status(self) -> Mapping[str, Any]:
        now = time.monotonic()
        with self._shared.lock:
            stats = self._shared.client.statistics()
            desired = self._shared.client.desired
            acknowledged = self._shared.client.acknowledged
        phoenix = dataclasses.asdict(stats)
        phoenix["state"] = stats.state.value
        reconnect = self._policy.statistics()
        return {
            "connection": self._health.snapshot(now).to_dict(),
            "rejects": dict(stats.rejects),
            "subscription": {
                "desired_systems": sorted(desired.systems),
                "desired_characters": sorted(desired.characters),
                "acknowledged_systems": len(acknowledged.systems),
                "acknowledged_characters": len(acknowledged.characters),
                "updates_in_flight": stats.updates_in_flight,
                "update_window_used": stats.update_window_used,
                "update_window_limit": stats.update_window_limit,
                "dropped_ids": dict(stats.dropped_ids),
                "tracking_known": self._tracking_known,
            },
            "phoenix": phoenix,
            "socket": {
                "phase": self._phase.value,
                "url": self._url,
                "local_port": self._local_port,
                "ping_rtt_ms": None
                if self._last_ping_rtt_s is None
                else self._last_ping_rtt_s * 1000,
            },
            "reconnect": {
                "attempt": reconnect.attempt,
                "failures": reconnect.failures,
                "resets": reconnect.resets,
                "circuit": reconnect.circuit.state.value,
                "consecutive_failures": reconnect.circuit.consecutive_failures,
            },
            "journal": dataclasses.asdict(self._journal.statistics()),
            "rejects_not_logged": self._rejects.suppressed(),
        }


def child_spec(config: Config, **options: Any) -> ChildSpec:
    """The ``kills`` child of the ``sources`` supervisor; ``options`` go to :class:`KillsSource`."""
    settings = config.sources.kills
    options.setdefault(
        "key_strategy", config.dedup.strategies.get("killmail", config.dedup.default_strategy)
    )
    options.setdefault("max_reject_bytes", config.journal.max_reject_bytes)
    return ChildSpec(
        name=Names.KILLS,
        start=lambda ctx: KillsSource.start(ctx, settings, **options),
        mailbox=MailboxSpec(config.mailbox.sources),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )

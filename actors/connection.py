"""What every source connection shares: one lifecycle, with the protocol plugged in.

A source actor (``kills``, ``kills:characters``, ``map:{slug}``) keeps one
connection to an outside feed. The lifecycle is the same whatever the
protocol and lives here once, in :class:`SourceConnection`, as
python-websockets' ``Connection`` carries the lifecycle its
``ClientConnection`` specialises:

- **Attempts and generations.** An attempt makes a :class:`ReaderThread` of
  a new generation and starts it: the thread does the blocking I/O (connect,
  then read) and hands off, the actor decides. Every message from a reader
  is a :class:`ConnectionMessage` carrying its generation; the messages of a
  reader the actor has retired are ignored.
- **No silent end.** A reader thread always posts :class:`ReaderEnded` last,
  whether it ended normally, on an error or on a bug (then with
  :class:`Crashed`); the actor counts a crash, logs it with its traceback and
  reconnects like after any other loss.
- **Reconnection** with :class:`~realtime.circuit.ReconnectPolicy`: capped
  exponential backoff with full jitter behind a circuit breaker; an open
  circuit marks the connection ``failed``.
- **The watchdog**: on every tick, while a connection is open, the protocol's
  :meth:`SourceConnection._liveness` says whether the peer is dead.
- **The journal**: a reader hands its batches to the journal itself
  (:meth:`ReaderThread.deliver`). When the journal is behind, the reader
  waits with the batch in hand and reads nothing meanwhile: the socket's
  flow control slows the server, the connection stays up, the actor's
  heartbeats go on, and the watchdog does not count the pause against the
  peer (see :mod:`actors.source_support` for refusals).
- **Health and reporting**: a :class:`~realtime.health.ConnectionHealth`,
  counters and gauges to ``metrics``, and :meth:`SourceConnection.status`.

A protocol subclasses :class:`SourceConnection` and overrides the named
hooks: :meth:`~SourceConnection._new_reader` (required),
:meth:`~SourceConnection._on_connection_message`, :meth:`~SourceConnection._reader_ended`,
:meth:`~SourceConnection._liveness`, :meth:`~SourceConnection._on_tick`,
:meth:`~SourceConnection._closing`, :meth:`~SourceConnection._phase_name`,
:meth:`~SourceConnection._totals`, :meth:`~SourceConnection._protocol_status`
and :meth:`~SourceConnection._protocol_gauges`. Its reader subclasses
:class:`ReaderThread` and implements :meth:`ReaderThread.run`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pykka

from actors.base import ReportingActor
from actors.protocol import Ingest, IngestRefused
from actors.source_support import Held, IngestGate, JournalLink, RejectLog, Resend, join_threads
from realtime.circuit import CircuitState, ReconnectPolicy
from realtime.config import SourcesConfig
from realtime.controls import escape_controls
from realtime.health import ConnectionHealth
from supervision import ActorContext, Backoff

READER_JOIN_S: Final = 2.0
"""How long a stopping actor waits for its reader threads to end."""
_FIRST_WAIT_S: Final = 0.001
"""A waiting reader's first retry of a full journal mailbox; the delay then doubles."""


# -- what a reader tells its actor -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionMessage:
    """A message about one connection (from its reader, or a timer for it).

    ``generation`` names the connection; the actor ignores the messages of a
    connection it has retired.
    """

    generation: int


@dataclass(frozen=True, slots=True)
class Ended:
    """How a reader ended.

    Attributes:
        kind: the health error kind (``connect_failed``, ``connection_lost``,
            ``keepalive_timeout``...).
        reason: what happened, for the log and the health report.
        at_least_s: the server asked not to come back sooner (``Retry-After``,
            the SSE ``retry`` field); ``None`` if it did not.
    """

    kind: str
    reason: str
    at_least_s: float | None = None


@dataclass(frozen=True, slots=True)
class Crashed(Ended):
    """The reader raised: a bug, or input the decoders did not catch. ``trace`` is its traceback."""

    trace: str = ""


@dataclass(frozen=True, slots=True)
class ReaderEnded(ConnectionMessage):
    """Always the last message of a reader thread."""

    ended: Ended


SUPERSEDED: Final = Ended("superseded", "the actor replaced this connection")


class ReaderThread:
    """One connection's thread: :meth:`run` does the blocking I/O, its end always reaches the owner.

    Thread-safe where it says so. The owner calls :meth:`start` once and
    :meth:`abort` when it retires the connection; :meth:`run` checks
    :attr:`aborted` between blocking calls, registers its socket with
    :meth:`hold_socket` (so that :meth:`abort` wakes it from a blocking read)
    and hands its batches to :meth:`deliver`. Subclasses learn of a pause in
    reading with :meth:`reading_paused` and :meth:`reading_resumed`.
    """

    def __init__(
        self, owner: pykka.ActorRef[Any], generation: int, name: str, gate: IngestGate
    ) -> None:
        self.generation = generation
        self.owner = owner
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.waiting_since: float | None = None
        """When the reader began to wait for the journal (monotonic), while it waits."""
        self._gate = gate
        self._aborted = threading.Event()
        self._socket_lock = threading.Lock()
        self._socket: socket.socket | None = None

    def start(self) -> None:
        self.thread.start()

    @property
    def aborted(self) -> bool:
        """Whether the owner retired this reader (thread-safe)."""
        return self._aborted.is_set()

    def abort(self) -> None:
        """Retire the reader (from another thread): it stops reading and ends soon."""
        with self._socket_lock:
            self._aborted.set()
            sock = self._socket
        if sock is not None:
            # Already closed: the read it would wake has ended anyway.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def hold_socket(self, sock: socket.socket | None) -> bool:
        """Remember the connection's socket for :meth:`abort`; ``False`` if already aborted."""
        with self._socket_lock:
            self._socket = sock
            return not self._aborted.is_set()

    def post(self, message: object) -> bool:
        """Tell the owner ``message``; ``False`` when the owner is gone (the reader should end)."""
        try:
            self.owner.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def deliver(self, ingest: Ingest) -> bool:
        """Hand ``ingest`` to the journal, waiting as long as it cannot take it.

        While it waits the reader reads nothing (the pause is reported to
        :meth:`reading_paused` and :meth:`reading_resumed`). ``False`` if the
        reader was retired while it waited: the batch then goes to the owner,
        which holds it for the journal, and the reader should end.
        """
        if self._gate.send(ingest):
            return True
        paused_at = time.monotonic()
        self.waiting_since = paused_at
        self.reading_paused(paused_at)
        try:
            delivered = self._gate.wait_for_room(ingest, self._aborted)
            if delivered:
                self.reading_resumed(paused_at, time.monotonic())
        finally:
            self.waiting_since = None
        if not delivered:
            self.post(Held(ingest))
        return delivered

    def reading_paused(self, now: float) -> None:
        """The reader stops reading to wait for the journal (called on its thread)."""

    def reading_resumed(self, paused_at: float, now: float) -> None:
        """The reader reads again after a pause that began at ``paused_at`` (on its thread)."""

    def run(self) -> Ended:
        """Connect and read until the connection ends; how it ended. Override."""
        raise NotImplementedError

    def _main(self) -> None:
        try:
            ended = self.run()
        except BaseException as error:  # noqa: BLE001 -- whatever it was, the owner must know
            ended = Crashed(
                "reader_crashed", describe(error), trace="".join(traceback.format_exception(error))
            )
        self.post(ReaderEnded(self.generation, ended))


def describe(error: BaseException) -> str:
    """``Type: message`` of an exception, for logs and health reports."""
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


# -- the actor ---------------------------------------------------------------------------


class Phase(enum.StrEnum):
    """Where the connection is in its lifecycle.

    ``open`` is connected but not yet usable (the join or the stream's greeting
    awaited), ``live`` usable.
    """

    WAITING = "waiting"
    CONNECTING = "connecting"
    OPEN = "open"
    LIVE = "live"
    STOPPED = "stopped"


SOCKET_OPEN: Final = frozenset({Phase.OPEN, Phase.LIVE})


@dataclass(frozen=True, slots=True)
class _Attempt:
    """Timer: connect again, unless another attempt was scheduled since (``token``)."""

    token: int


class _Tick:
    __slots__ = ()


_TICK: Final = _Tick()


class SourceConnection(ReportingActor):
    """The lifecycle of one source connection; see the module docstring.

    Args:
        ctx: from the supervisor.
        log: the subclass module's logger.
        health: the connection's health, named as the actor.
        policy: when to reconnect.
        target: what the connection reaches (a URL), for the logs.
        tick_s: the watchdog's period.
        sources: ``[sources]``: the journal waits and resends.
        rand: the jitter's random source.
    """

    def __init__(
        self,
        ctx: ActorContext,
        *,
        log: logging.Logger,
        health: ConnectionHealth,
        policy: ReconnectPolicy,
        target: str,
        tick_s: float,
        sources: SourcesConfig,
        rand: Callable[[], float],
    ) -> None:
        super().__init__(ctx)
        self._log = log
        self._health = health
        self._policy = policy
        self._target = target
        self._tick_s = tick_s
        self._rand = rand
        self._journal = JournalLink(
            self.registry,
            self.timers,
            backoff=Backoff(sources.resend_min_s, sources.resend_max_s, jitter=0.5),
            wait=Backoff(
                min(_FIRST_WAIT_S, sources.journal_wait_max_s), sources.journal_wait_max_s
            ),
            rand=rand,
        )
        self._rejects = RejectLog(log, self.name)
        self._phase = Phase.WAITING
        self._reader: ReaderThread | None = None
        self._retired: list[threading.Thread] = []
        self._generation = 0
        self._token = 0
        self._reader_crashes = 0
        self._reported: dict[str, int] = {}

    # -- hooks ------------------------------------------------------------------------

    def _new_reader(self, generation: int) -> ReaderThread:
        """A reader for a new attempt (not started yet). Required."""
        raise NotImplementedError

    def _on_connection_message(self, message: ConnectionMessage) -> None:
        """A protocol message about the current connection (from its reader, or a timer)."""
        self._log.debug("%s: unexpected message from its reader: %r", self.name, message)

    def _reader_ended(self, ended: Ended) -> None:
        """The current reader ended (crashes are counted and logged before)."""
        self._connection_lost(ended.kind, ended.reason, at_least_s=ended.at_least_s or 0.0)

    def _liveness(self, now: float) -> tuple[str, str] | None:
        """While open: ``(kind, reason)`` when the peer is dead, else ``None``."""
        return None

    def _on_tick(self, now: float) -> None:
        """The protocol's timing (heartbeats, subscription pushes...), every tick."""

    def _closing(self, why: str) -> None:
        """The actor stops (``stopped`` or ``crashed``): say goodbye on the current connection."""

    def _phase_name(self) -> str:
        """The phase as the protocol names it in :meth:`status`."""
        return self._phase.value

    def _totals(self) -> Mapping[str, int]:
        """Running totals (counter name -> value) whose increments go to ``metrics``."""
        return {}

    def _protocol_status(self) -> dict[str, Any]:
        """The protocol's sections of :meth:`status`."""
        return {}

    def _protocol_gauges(self) -> dict[str, float]:
        """The protocol's gauges, besides ``connected``, ``quality_score``, ``held_batches``."""
        return {}

    # -- lifecycle --------------------------------------------------------------------

    def on_start(self) -> None:
        super().on_start()
        self.timers.send_interval(self._tick_s, _TICK)
        self._attempt()

    def on_stop(self) -> None:
        self._shutdown("stopped")

    def on_failure(self, *_exc_info: object) -> None:
        self._shutdown("crashed")

    def _shutdown(self, why: str) -> None:
        self._phase = Phase.STOPPED
        self._closing(why)
        self._retire_reader()
        stuck = join_threads(self._retired, READER_JOIN_S)
        if stuck:
            self._log.warning(
                "%s: reader threads did not end in time: %s", self.name, ", ".join(stuck)
            )
        # Batches a retired reader handed back, queued behind the stop request.
        for message in self.mailbox.drain():
            if isinstance(message, Held | IngestRefused):
                self._journal.take(message)
        unsent = self._journal.flush()
        if unsent:
            self._log.error(
                "%s: stopped with %d events the journal could not take (%s); "
                "the feed's replay or the committed cursor brings them back",
                self.name,
                unsent,
                why,
            )

    # -- messages ---------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Tick):
            self._tick()
        elif isinstance(message, ConnectionMessage):
            if self._reader is not None and message.generation == self._reader.generation:
                if isinstance(message, ReaderEnded):
                    self._ended(message.ended)
                else:
                    self._on_connection_message(message)
        elif isinstance(message, Held | IngestRefused):
            self._hold(message)
        elif isinstance(message, _Attempt):
            if message.token == self._token and self._phase is Phase.WAITING:
                self._attempt()
        elif isinstance(message, Resend):
            if self._journal.resend():
                self._log.info("%s: the journal takes events again", self.name)
        else:
            return super().on_receive(message)
        return None

    def _ended(self, ended: Ended) -> None:
        if isinstance(ended, Crashed):
            self._reader_crashes += 1
            self._log.error(
                "%s: the reader thread crashed: %s\n%s",
                self.name,
                escape_controls(ended.reason),
                escape_controls(ended.trace),
            )
        self._reader_ended(ended)

    # -- attempts ---------------------------------------------------------------------

    def _attempt(self) -> None:
        """Start a connection attempt now, unless the circuit breaker says wait."""
        now = time.monotonic()
        if not self._policy.attempt_allowed(now):
            self._schedule_attempt(self._policy.breaker.retry_in(now) or self._tick_s)
            return
        self._generation += 1
        reader = self._new_reader(self._generation)
        self._health.connecting(now)
        self._reader = reader
        self._phase = Phase.CONNECTING
        reader.start()

    def _schedule_attempt(self, delay_s: float) -> None:
        """The next attempt in ``delay_s`` seconds; any attempt scheduled before is void."""
        self._token += 1
        self._phase = Phase.WAITING
        self.timers.send_after(delay_s, _Attempt(self._token))

    def _connection_lost(self, kind: str, reason: str, *, at_least_s: float = 0.0) -> None:
        """The connection ended: retire its reader and reconnect after a backoff."""
        now = time.monotonic()
        if self._phase is Phase.LIVE:
            self._log.warning("%s: connection lost: %s", self.name, escape_controls(reason))
        else:
            self._log.info("%s: %s: %s", self.name, kind, escape_controls(reason))
        self._retire_reader()
        self._health.error(kind, now)
        if self._health.state != "disconnected":
            self._health.disconnected(reason, now)
        self._schedule_attempt(self._failure_delay(now, at_least_s))

    def _failure_delay(self, now: float, at_least_s: float = 0.0) -> float:
        """Record a failure in the policy; the delay before the next try, reported to health."""
        delay = max(self._policy.next_delay(now), at_least_s)
        if self._policy.breaker.state is CircuitState.OPEN:
            failures = self._policy.breaker.statistics().consecutive_failures
            self._health.failed(f"circuit open after {failures} failures", now)
            self._log.error(
                "%s: %d consecutive failures to reach %s; next attempt in %.1f s",
                self.name,
                failures,
                self._target,
                delay,
            )
        else:
            self._health.reconnecting(now, delay)
        return delay

    def _live(self, now: float) -> None:
        """The connection is usable (joined, or the stream greeted us): the backoff may reset."""
        self._policy.connected_and_joined(now)
        if self._health.state == "connecting":
            self._health.connected(now)
        self._phase = Phase.LIVE

    def _retire_reader(self) -> None:
        """Forget the current connection: its reader ends on its own, joined at stop."""
        reader = self._reader
        if reader is None:
            return
        self._reader = None
        reader.abort()
        self._retired = [thread for thread in self._retired if thread.is_alive()]
        self._retired.append(reader.thread)

    # -- timing -----------------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        reader = self._reader
        # A reader waiting for the journal reads nothing: the peer's silence is ours.
        if self._phase in SOCKET_OPEN and reader is not None and reader.waiting_since is None:
            dead = self._liveness(now)
            if dead is not None:
                self._connection_lost(*dead)
        self._on_tick(now)
        self._health.tick(now)
        self._count()

    # -- the journal ------------------------------------------------------------------

    def _hold(self, message: Held | IngestRefused) -> None:
        if isinstance(message, IngestRefused) and self._journal.held == 0:
            self._log.warning(
                "%s: the journal refused a batch (%s): reading is paused until it takes again",
                self.name,
                message.reason,
            )
        self._journal.take(message)

    # -- reporting --------------------------------------------------------------------

    def _reading_paused_s(self) -> float:
        """How long the current reader has been waiting for the journal (0 when it reads)."""
        reader = self._reader
        since = None if reader is None else reader.waiting_since
        return 0.0 if since is None else time.monotonic() - since

    def _count(self) -> None:
        for name, total in self._totals().items():
            delta = total - self._reported.get(name, 0)
            if delta:
                self.counters[name] += delta
                self._reported[name] = total

    def report_gauges(self) -> Mapping[str, float]:
        snapshot = self._health.snapshot(time.monotonic())
        return {
            "connected": 1.0 if snapshot.state in ("connected", "degraded") else 0.0,
            "quality_score": float(snapshot.score),
            **self._protocol_gauges(),
            "held_batches": float(self._journal.held),
        }

    def status(self) -> Mapping[str, Any]:
        reconnect = self._policy.statistics()
        return {
            "connection": self._health.snapshot(time.monotonic()).to_dict(),
            **self._protocol_status(),
            "reconnect": {
                "attempt": reconnect.attempt,
                "failures": reconnect.failures,
                "resets": reconnect.resets,
                "circuit": reconnect.circuit.state.value,
                "consecutive_failures": reconnect.circuit.consecutive_failures,
                "reader_crashes": self._reader_crashes,
            },
            "journal": {
                **dataclasses.asdict(self._journal.statistics()),
                "reading_paused_s": self._reading_paused_s(),
            },
            "rejects_not_logged": self._rejects.suppressed(),
        }

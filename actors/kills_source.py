"""The ``kills`` actors: the wanderer-kills feed over a Phoenix channel (WebSocket).

A :class:`~actors.connection.SourceConnection` with the Phoenix protocol
plugged in. Its reader thread (:mod:`actors.kills_reader`) receives and
decodes, hands the events to the journal, and tells the actor what changes
the connection.

The actor owns time and decisions, on a timer tick:

- a Phoenix heartbeat every ``heartbeat_interval_s`` and a WebSocket ping with
  it (the pong's round trip is measured too);
- dead-connection detection with :meth:`PhoenixClient.is_dead`: a heartbeat
  unanswered when the next is due, or no frame at all for
  ``heartbeat_timeout_s`` (a half-open socket is found within
  ``2 * heartbeat_interval_s`` plus a tick);
- a re-join on the same socket after ``phx_close``/``phx_error``/a refused
  join, with the reconnection backoff;
- subscription changes from :class:`~actors.protocol.TrackingChanged`, pushed
  as ``subscribe_*``/``unsubscribe_*`` within the server's rate limit, never
  by re-joining (a re-join replays the preload).

What a connection joins with is its :class:`JoinScope`: the tracked systems
and characters (``all``), or only one of them (a join with characters only
receives their kills in every system). The program runs two
(:func:`kills_connections`): ``kills`` joined with the systems, and
``kills:characters`` joined with the characters, so that the kills of the
tracked pilots outside every tracked system arrive too; a kill both see is an
ordinary duplicate for dedup. The server picks a channel's topics once, at the
join: a characters-only channel joined while no character was tracked listens
nowhere, so the first characters re-join it instead of subscribing.

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
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pykka
import websocket

from actors.connection import ConnectionMessage, Phase, ReaderThread, SourceConnection, describe
from actors.kills_reader import PING_PAYLOAD, ChannelEvent, KillsReader, Opened, RoundTrip, Shared
from actors.protocol import GetTracking, Names, TrackingChanged
from realtime.circuit import CircuitBreaker, ReconnectPolicy
from realtime.config import Config, SourcesConfig
from realtime.controls import escape_controls
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
)
from realtime.subscriptions import SubscriptionAck
from supervision import (
    ActorContext,
    ActorUnavailableError,
    Backoff,
    ChildSpec,
    MailboxFullError,
    MailboxSpec,
)

logger = logging.getLogger(__name__)

_CLOSE_GOING_AWAY: Final = 1001
_TRACKING_ASK_PATIENCE_S: Final = 5.0


class JoinScope(enum.StrEnum):
    """What a connection's join carries of the tracked sets."""

    ALL = "all"
    """Systems and characters: kills in the systems (characters filter within them)."""
    SYSTEMS = "systems"
    CHARACTERS = "characters"
    """Characters only: the server sends their kills in every system."""


# -- timers, and where the channel is ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rejoin(ConnectionMessage):
    token: int


class _Join(enum.StrEnum):
    """Where the channel is while the socket is open (the phase names in ``status``)."""

    AWAITING_TRACKING = "awaiting_tracking"
    JOINING = "joining"
    JOINED = "joined"
    REJOIN_WAIT = "rejoin_wait"


# -- the actor ---------------------------------------------------------------------------


class KillsSource(SourceConnection):
    """A ``kills`` source actor; see the module docstring.

    Args:
        ctx: from the supervisor.
        sources: ``[sources]`` (its ``kills`` table is this connection's settings).
        scope: what the join carries of the tracked sets.
        key_strategy: the dedup key strategy of killmail events.
        max_reject_bytes: a reject keeps at most this many bytes of its frame.
        batch_max: the most events a reader hands the journal at once.
        connect_timeout_s: TCP connect plus WebSocket handshake;
            ``heartbeat_timeout_s`` (capped at 10 s) by default.
        stable_s: how long a joined connection must last for its loss to
            reset the backoff; ``heartbeat_timeout_s`` by default.
        tracking_retry_s: how often ``tracking`` is asked while it does not answer.
        tracking_grace_s: how long after start the first join waits for
            tracking's answer, so that it carries the subscription (joining
            empty and subscribing later works too, with more pushes).
        rand: the jitter's random source (seed it in tests).
    """

    def __init__(
        self,
        ctx: ActorContext,
        sources: SourcesConfig,
        *,
        scope: JoinScope = JoinScope.ALL,
        key_strategy: Strategy = "hybrid",
        max_reject_bytes: int = 65_536,
        batch_max: int = 1000,
        connect_timeout_s: float | None = None,
        stable_s: float | None = None,
        tracking_retry_s: float = 1.0,
        tracking_grace_s: float = 5.0,
        rand: Callable[[], float] | None = None,
    ) -> None:
        settings = sources.kills
        url = PhoenixClient.connect_url(settings.url)
        jitter = rand or random.Random().random
        super().__init__(
            ctx,
            log=logger,
            health=ConnectionHealth(
                ctx.name,
                "websocket",
                now=time.monotonic(),
                silence_timeout_s=settings.heartbeat_timeout_s,
                stale_after_s=min(
                    1.5 * settings.heartbeat_interval_s, 0.9 * settings.heartbeat_timeout_s
                ),
            ),
            policy=ReconnectPolicy(
                Backoff(settings.reconnect_min_s, settings.reconnect_max_s, jitter=1.0),
                CircuitBreaker(settings.circuit_failures, settings.circuit_open_s),
                rand=jitter,
                stable_s=settings.heartbeat_timeout_s if stable_s is None else stable_s,
            ),
            target=url,
            tick_s=min(1.0, settings.heartbeat_interval_s / 4),
            sources=sources,
            rand=jitter,
        )
        self._settings = settings
        self._scope = scope
        self._max_reject_bytes = max_reject_bytes
        self._batch_max = batch_max
        self._url = url
        self._connect_timeout_s = connect_timeout_s or min(settings.heartbeat_timeout_s, 10.0)
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
            max_systems=settings.max_systems,
            max_characters=settings.max_characters,
            push_timeout_s=settings.push_timeout_s,
            max_reject_bytes=max_reject_bytes,
            max_depth=sources.max_json_depth,
        )
        self._shared = Shared(threading.Lock(), client)
        self._join = _Join.AWAITING_TRACKING
        self._local_port = 0
        self._last_frame_seen = 0.0
        self._last_ping_rtt_s: float | None = None
        self._tracking_known = False
        self._everywhere = False
        """The channel listens to every system's kills (a characters-only join with characters)."""
        self._tracking_future: pykka.Future[Any] | None = None
        self._tracking_asked_at = 0.0
        self._tracking_next_ask = 0.0

    @property
    def _socket(self) -> websocket.WebSocket | None:
        reader = self._reader
        return reader.socket if isinstance(reader, KillsReader) else None

    # -- hooks of the connection lifecycle ----------------------------------------------

    def on_start(self) -> None:
        self._poll_tracking(time.monotonic())
        super().on_start()

    def _new_reader(self, generation: int) -> ReaderThread:
        with self._shared.lock:
            self._shared.client.reset()
        return KillsReader(
            self.actor_ref,
            generation,
            self._journal.gate,
            name=self.name,
            url=self._url,
            connect_timeout_s=self._connect_timeout_s,
            read_timeout_s=max(self._settings.heartbeat_timeout_s, self._connect_timeout_s),
            shared=self._shared,
            rejects=self._rejects,
            max_message_bytes=self._settings.max_frame_bytes,
            keep_bytes=self._max_reject_bytes,
            batch_max=self._batch_max,
        )

    def _on_connection_message(self, message: ConnectionMessage) -> None:
        if isinstance(message, ChannelEvent):
            self._channel_control(message.control)
        elif isinstance(message, RoundTrip):
            self._round_trip(message)
        elif isinstance(message, Opened):
            self._opened(message.local_port)
        elif (
            isinstance(message, _Rejoin)
            and message.token == self._token
            and self._join is _Join.REJOIN_WAIT
        ):
            self._send_join()

    def _closing(self, why: str) -> None:
        sock = self._socket
        if sock is not None and sock.connected:
            try:
                sock.send_close(_CLOSE_GOING_AWAY, why.encode())
            except (OSError, websocket.WebSocketException):
                logger.debug("%s: no close frame sent: the socket is gone", self.name)

    def _liveness(self, now: float) -> tuple[str, str] | None:
        with self._shared.lock:
            dead = self._shared.client.is_dead(now)
        return None if dead is None else (dead.partition(":")[0], dead)

    def _on_tick(self, now: float) -> None:
        self._poll_tracking(now)
        last_frame_at = self._shared.last_frame_at
        if last_frame_at > self._last_frame_seen:
            self._last_frame_seen = last_frame_at
            self._health.message(last_frame_at)
        if self._phase in (Phase.OPEN, Phase.LIVE):
            if self._join is _Join.AWAITING_TRACKING and now >= self._join_deadline:
                logger.warning(
                    "%s: tracking has not answered; joining without a subscription", self.name
                )
                self._send_join()
            self._heartbeat()
        if self._phase is Phase.LIVE:
            self._send_updates(now)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, TrackingChanged):
            self._tracking_known = True
            self._tracking_future = None
            self._follow(message)
            return None
        return super().on_receive(message)

    # -- connecting and joining -----------------------------------------------------

    def _opened(self, local_port: int) -> None:
        self._local_port = local_port
        self._phase = Phase.OPEN
        logger.info("%s: connected to %s", self.name, self._url)
        if self._tracking_known or time.monotonic() >= self._join_deadline:
            self._send_join()
        else:
            self._join = _Join.AWAITING_TRACKING

    def _send_join(self, *, live: bool = False) -> None:
        """Join (``live``: re-join a channel that stays usable meanwhile, health unchanged)."""
        now = time.monotonic()
        if not live and self._health.state != "connecting":
            self._health.connecting(now)
        with self._shared.lock:
            client = self._shared.client
            frame = client.join_frame(
                client.desired.systems, client.desired.characters, now, preload=self._preload
            )
        self._join = _Join.JOINING
        self._phase = Phase.OPEN
        self._send(frame)

    def _channel_control(self, control: Control) -> None:
        now = time.monotonic()
        self._health.message(now)
        if isinstance(control, Joined):
            self._live(now)
            self._join = _Join.JOINED
            subscription = control.subscription
            self._everywhere = not subscription.systems and bool(subscription.characters)
            logger.info(
                "%s: joined with %d systems and %d characters",
                self.name,
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
                    "%s: the server refused %s (%d ids): %s; retried within the rate limit",
                    self.name,
                    control.kind.value,
                    len(control.ids),
                    escape_controls(control.reason),
                )
            self._send_updates(now)
        elif isinstance(control, PreloadComplete):
            self.counters["preloads_completed"] += 1

    def _channel_lost(self, kind: str, reason: str) -> None:
        """The channel ended but the socket lives: re-join on it after a backoff."""
        now = time.monotonic()
        logger.warning("%s: %s", self.name, escape_controls(reason))
        self._health.error(kind, now)
        self._health.disconnected(reason, now)
        delay = self._failure_delay(now)
        assert self._reader is not None
        self._token += 1
        self._phase = Phase.OPEN
        self._join = _Join.REJOIN_WAIT
        self.timers.send_after(delay, _Rejoin(self._reader.generation, self._token))

    def _send(self, frame: str) -> bool:
        sock = self._socket
        if sock is None:
            return False
        try:
            sock.send(frame)
        except (OSError, websocket.WebSocketException) as error:
            self._connection_lost("send_failed", describe(error))
            return False
        return True

    def _ping(self) -> None:
        sock = self._socket
        if sock is None:
            return
        try:
            sock.ping(PING_PAYLOAD.pack(time.monotonic_ns()))
        except (OSError, websocket.WebSocketException) as error:
            self._connection_lost("send_failed", describe(error))

    # -- timing ---------------------------------------------------------------------

    def _heartbeat(self) -> None:
        with self._shared.lock:
            client = self._shared.client
            frame = None
            if client.heartbeat_due(time.monotonic()):
                # Stamped as late as possible: the round trip starts at the send.
                frame = client.heartbeat_frame(time.monotonic())
        if frame is not None and self._send(frame):
            self._ping()

    def _send_updates(self, now: float) -> None:
        with self._shared.lock:
            frames = self._shared.client.pending_updates(now)
        for frame in frames:
            if not self._send(frame):
                return

    def _round_trip(self, message: RoundTrip) -> None:
        now = time.monotonic()
        self._health.message(now)
        self._health.rtt(message.rtt_s, now)
        if message.kind == "ping":
            self._last_ping_rtt_s = message.rtt_s

    # -- tracking -------------------------------------------------------------------

    def _follow(self, change: TrackingChanged) -> None:
        systems = change.systems if self._scope is not JoinScope.CHARACTERS else frozenset()
        characters = change.characters if self._scope is not JoinScope.SYSTEMS else frozenset()
        with self._shared.lock:
            self._shared.client.set_desired(systems, characters)
        if self._phase is Phase.LIVE and self._listens_nowhere(characters):
            self.counters["rejoins_for_characters"] += 1
            # subscribing would not make the server listen everywhere
            self._send_join(live=True)
        elif self._phase is Phase.LIVE:
            self._send_updates(time.monotonic())
        elif self._phase is Phase.OPEN and self._join is _Join.AWAITING_TRACKING:
            self._send_join()

    def _listens_nowhere(self, characters: frozenset[int]) -> bool:
        """A characters-only channel joined without characters, which now has some."""
        return (
            self._scope is JoinScope.CHARACTERS
            and self._join is _Join.JOINED
            and not self._everywhere
            and bool(characters)
        )

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
            logger.info(
                "%s: tracking did not answer (%s); asking again",
                self.name,
                escape_controls(describe(error)),
            )
            self._tracking_future = None
            self._tracking_next_ask = now + self._tracking_retry_s
            return
        self._tracking_future = None
        if isinstance(answer, TrackingChanged):
            self._tracking_known = True
            self._follow(answer)
        else:
            self._tracking_next_ask = now + self._tracking_retry_s

    # -- reporting ------------------------------------------------------------------

    def _phase_name(self) -> str:
        return self._join.value if self._phase in (Phase.OPEN, Phase.LIVE) else self._phase.value

    def _totals(self) -> Mapping[str, int]:
        with self._shared.lock:
            stats = self._shared.client.statistics()
        return {
            "frames_total": stats.frames_received,
            "decoded_total": stats.events,
            "rejects_total": sum(stats.rejects.values()),
        }

    def _protocol_gauges(self) -> dict[str, float]:
        rtt_ms = self._health.snapshot(time.monotonic()).rtt_ms
        return {"rtt_ms": rtt_ms if rtt_ms is not None else -1.0}

    def _protocol_status(self) -> dict[str, Any]:
        with self._shared.lock:
            stats = self._shared.client.statistics()
            desired = self._shared.client.desired
            acknowledged = self._shared.client.acknowledged
        phoenix = dataclasses.asdict(stats)
        phoenix["state"] = stats.state.value
        return {
            "rejects": dict(stats.rejects),
            "subscription": {
                "scope": self._scope.value,
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
                "phase": self._phase_name(),
                "url": self._url,
                "local_port": self._local_port,
                "ping_rtt_ms": None
                if self._last_ping_rtt_s is None
                else self._last_ping_rtt_s * 1000,
            },
        }


def kills_connections(config: Config) -> list[tuple[str, JoinScope]]:
    """The kills connections the configuration runs, ``(name, scope)``, in start order:
    ``kills`` (the systems) when the feed is enabled, and ``kills:characters``
    (the characters, anywhere) when maps are configured too (maps track them)."""
    if not config.sources.kills.enabled:
        return []
    connections = [(Names.KILLS, JoinScope.SYSTEMS)]
    if config.maps:
        connections.append((Names.KILLS_CHARACTERS, JoinScope.CHARACTERS))
    return connections


def child_spec(
    config: Config, *, name: str = Names.KILLS, scope: JoinScope = JoinScope.ALL, **options: Any
) -> ChildSpec:
    """A kills child of the ``sources`` supervisor, named ``name`` and joining with ``scope``.

    ``options`` go to :class:`KillsSource`.
    """
    options.setdefault(
        "key_strategy", config.dedup.strategies.get("killmail", config.dedup.default_strategy)
    )
    options.setdefault("max_reject_bytes", config.journal.max_reject_bytes)
    options.setdefault("batch_max", config.journal.batch_max)
    return ChildSpec(
        name=name,
        start=lambda ctx: KillsSource.start(ctx, config.sources, scope=scope, **options),
        mailbox=MailboxSpec(config.mailbox.sources),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )

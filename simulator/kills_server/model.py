"""The kills server's values: its settings and its statistics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Settings:
    """What :class:`~simulator.kills_server.KillsServer` was built with (see its arguments)."""

    host: str
    idle_timeout_s: float
    preload_per_system: int
    history_s: float
    clock: Callable[[], float]
    history_limit: int
    outbox_capacity: int
    close_timeout_s: float
    max_frame_size: int


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
    """One open WebSocket connection, as the server sees it.

    Attributes:
        number: the server's number for the connection (1, 2, ... since start).
        peer_port: the client's TCP port (match it with the client's local port).
        joined: whether ``killmails:lobby`` is joined now.
        joins: successful joins on this connection (a re-join counts again).
        subscription_updates: subscription changes admitted by the rate limit.
        heartbeats: heartbeats answered.
        systems: the systems subscribed now.
        characters: the characters subscribed now.
        outbox_size: frames queued for the socket and not yet written.
        outbox_capacity: the queue's bound; a client that lets it fill is dropped.
    """

    number: int
    peer_port: int
    joined: bool
    joins: int
    subscription_updates: int
    heartbeats: int
    systems: frozenset[int]
    characters: frozenset[int]
    outbox_size: int
    outbox_capacity: int


@dataclass(frozen=True, slots=True)
class KillsServerStatistics:
    """Counters since :meth:`KillsServer.start` (they survive restarts) and current state.

    ``frames_sent`` counts every frame written to a socket (replies included);
    ``frames_withheld`` those discarded while half-open.
    """

    listening: bool
    half_open: bool
    restarts: int
    connections_accepted: int
    connections_current: int
    sockets_open: int
    joins_ok: int
    joins_error: int
    heartbeats_answered: int
    subscription_updates: int
    subscription_updates_rate_limited: int
    channel_crashes: int
    socket_crashes: int
    idle_timeouts: int
    slow_consumer_drops: int
    sockets_dropped: int
    kills_published: int
    frames_sent: int
    frames_withheld: int
    history_size: int
    history_capacity: int
    connections: tuple[ConnectionStatistics, ...]

    def connection(self, peer_port: int) -> ConnectionStatistics:
        """The connection whose client uses local port ``peer_port``.

        Raises:
            KeyError: no open connection has that peer port.
        """
        for connection in self.connections:
            if connection.peer_port == peer_port:
                return connection
        raise KeyError(peer_port)

"""A loopback wanderer-kills server: the real Phoenix V1 protocol, with fault switches.

It speaks what the real server speaks on ``/socket/websocket`` (Phoenix "V1"
JSON frames ``{"topic", "event", "payload", "ref"}``) and behaves like it where
clients get hurt:

- ``killmails:lobby`` joins validate every id; one invalid id rejects the join;
- a successful join is followed by a preload (at most ``preload_per_system``
  kills per system from the last ``history_s`` seconds, ``"preload": true``,
  then ``preload_complete``), whatever preload the client asked for; a re-join
  on the same socket closes the old channel (``phx_close``) and preloads again;
- what a join receives follows the real channel's topics: a join with
  systems listens to those systems' topics only (so its character ids add
  nothing: a kill elsewhere never reaches it); a join with no systems and some
  characters listens to the all-systems topic, filtered to kills whose victim
  or any attacker is one of them; ``subscribe_systems`` adds system topics to
  either; a join with neither listens to nothing;
- every live kill is pushed twice (the real server's plain and "detailed"
  topics);
- subscription changes without a re-join, limited to 10 per minute per
  connection (the 11th gets an error reply);
- an unknown event, or a malformed payload, crashes the channel: the client
  gets ``phx_error`` and must join again; a frame that is not a V1 message
  (invalid JSON, a binary frame, missing keys) crashes the whole socket, which
  Cowboy closes with code 1011;
- a socket with no inbound bytes (frames, pings, pongs) for ``idle_timeout_s``
  is closed with code 1000.

Fault switches for tests: :meth:`KillsServer.drop_all`,
:meth:`KillsServer.set_half_open`, :meth:`KillsServer.send_raw`,
:meth:`KillsServer.refuse_joins`,
:meth:`KillsServer.restart`. The server runs an asyncio event loop in a thread
it owns; every public method is thread-safe and must not be called from that
thread. Every queue and history has a bound and :meth:`KillsServer.statistics`
shows how full it is.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Self, TypeVar, cast
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from simulator.traffic import Schedule, TrafficGenerator, iso_micros, parse_iso

SOCKET_PATH: Final = "/socket/websocket"
LOBBY: Final = "killmails:lobby"
MAX_SYSTEM_ID: Final = 50_000_000
MAX_SYSTEMS: Final = 10_000
MIN_CHARACTER_ID: Final = 90_000_000
MAX_CHARACTER_ID: Final = 3_000_000_000
MAX_CHARACTERS: Final = 50_000
UPDATES_PER_WINDOW: Final = 10
UPDATE_WINDOW_S: Final = 60.0
IDLE_CLOSE_CODE: Final = 1000
CRASH_CLOSE_CODE: Final = 1011

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")
_SUBSCRIPTION_EVENTS: Final = {
    "subscribe_systems": ("systems", True),
    "unsubscribe_systems": ("systems", False),
    "subscribe_characters": ("character_ids", True),
    "unsubscribe_characters": ("character_ids", False),
}


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


class KillsServer:
    """The loopback wanderer-kills server; a context manager that starts and stops it.

    Args:
        host: address to bind.
        port: TCP port; 0 picks a free one (see :attr:`port` after :meth:`start`).
        idle_timeout_s: a socket silent this long is closed (the real server: 60 s).
        preload_per_system: kills per system replayed after a join.
        history_s: how old a kill may be to be replayed, by its ``kill_time``.
        clock: Unix seconds; used for timestamps, the rate limit and kill ages.
            The idle timeout runs on the event loop's monotonic clock.
        history_limit: how many kills the server remembers (oldest forgotten first).
        outbox_capacity: frames queued per connection before it counts as a slow
            consumer and is dropped.
        close_timeout_s: how long a closing handshake may take before the TCP
            connection is aborted.
        max_frame_size: largest frame accepted from a client (close 1009 above).
        call_timeout_s: how long a public method waits for the server thread.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        idle_timeout_s: float = 60.0,
        preload_per_system: int = 5,
        history_s: float = 86_400.0,
        clock: Callable[[], float] = time.time,
        history_limit: int = 10_000,
        outbox_capacity: int = 10_000,
        close_timeout_s: float = 2.0,
        max_frame_size: int = 1 << 20,
        call_timeout_s: float = 10.0,
    ) -> None:
        if idle_timeout_s <= 0 or history_limit < 1 or outbox_capacity < 1:
            msg = "idle_timeout_s, history_limit and outbox_capacity must be positive"
            raise ValueError(msg)
        if preload_per_system < 0:
            msg = f"preload_per_system must not be negative, not {preload_per_system}"
            raise ValueError(msg)
        self._settings = _Settings(
            host=host,
            idle_timeout_s=idle_timeout_s,
            preload_per_system=preload_per_system,
            history_s=history_s,
            clock=clock,
            history_limit=history_limit,
            outbox_capacity=outbox_capacity,
            close_timeout_s=close_timeout_s,
            max_frame_size=max_frame_size,
        )
        self._requested_port = port
        self._call_timeout_s = call_timeout_s
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._world: _World | None = None
        self._stop_requested: asyncio.Event | None = None
        self._runners: list[TrafficRunner] = []
        self._runners_lock = threading.Lock()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port listened on (the same across :meth:`restart`)."""
        return self._running_world().port

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/socket/websocket``."""
        return f"ws://{self._settings.host}:{self.port}{SOCKET_PATH}"

    def start(self) -> None:
        """Start listening; returns once the socket is bound.

        Raises:
            RuntimeError: already started.
            OSError: the address could not be bound.
        """
        if self._thread is not None:
            msg = "the kills server is already started"
            raise RuntimeError(msg)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(started),), name="kills-server", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout=self._call_timeout_s)
        except BaseException:
            self._thread.join(self._call_timeout_s)
            self._thread = None
            raise

    def stop(self) -> None:
        """Stop traffic runners, close every connection and the listener, join the thread.

        Idempotent. Open connections get a 1001 close frame (aborted if half-open).
        """
        with self._runners_lock:
            runners, self._runners = self._runners, []
        for runner in runners:
            runner.stop()
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop_requested is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop_requested.set)
        thread.join(self._call_timeout_s + 4 * self._settings.close_timeout_s + 1)
        if thread.is_alive():
            _LOGGER.warning("the kills server thread did not end in time")
        self._thread = self._loop = self._world = self._stop_requested = None

    def publish(self, killmail: Mapping[str, Any]) -> int:
        """Record a kill in the history and push it live, twice, to every matching client.

        A client matches when it has joined and subscribes to the kill's system,
        to its victim or to one of its attackers. The killmail is copied.

        Returns:
            How many connections it was pushed to.

        Raises:
            ValueError: ``killmail_id`` or ``system_id`` is missing or not an int,
                or the killmail is not JSON-serialisable.
        """
        kill = _Kill.of(killmail)
        return self._call(lambda world: world.publish(kill))

    def publish_many(self, killmails: Iterable[Mapping[str, Any]]) -> int:
        """:meth:`publish` each kill, in order, in one hand-over to the server thread.

        The batch is validated first (one invalid killmail publishes none) and
        then handled without interruption, so keep batches to a few thousand.

        Returns:
            The sum over the kills of the connections each was pushed to.
        """
        kills = [_Kill.of(killmail) for killmail in killmails]
        return self._call(lambda world: sum(world.publish(kill) for kill in kills))

    def push_kill_count(self, system_id: int, count: int) -> int:
        """Push a ``kill_count_update`` to every joined client subscribed to ``system_id``."""
        return self._call(lambda world: world.push_kill_count(system_id, count))

    def drop_all(self) -> int:
        """Abort every TCP connection (RST, no close frame); returns how many."""
        return self._call(lambda world: world.drop_all())

    def set_half_open(self, half_open: bool) -> None:
        """Switch half-open mode: sockets stay up but the server goes silent.

        While half-open the server reads nothing (so it answers neither Phoenix
        heartbeats nor WebSocket pings: the kernel still acknowledges the bytes),
        writes nothing (pushes and replies are discarded and counted as
        withheld), does not close idle sockets, and never completes the opening
        handshake of new connections. Switching it off resumes reading: what
        clients sent meanwhile is then processed, and answered.
        """
        self._call(lambda world: world.set_half_open(half_open))

    def refuse_joins(self, reason: str | None) -> None:
        """Answer every ``phx_join`` with an error reply of ``reason`` (``None``: join again).

        As the real server refuses a join it cannot take; counted as ``joins_error``.
        """
        self._call(lambda world: world.refuse_joins(reason))

    def send_raw(self, data: str | bytes, *, systems_joins_only: bool = False) -> int:
        """Send ``data`` as is to every connected client: ``str`` as a text frame,
        ``bytes`` as a binary frame. Returns how many clients it was queued for.

        ``systems_joins_only``: only to the channels joined with systems (a
        preload never goes to a characters-only channel on the real server).
        """
        return self._call(lambda world: world.send_raw(data, systems_joins_only))

    def restart(self, down_s: float = 0.0) -> None:
        """Close every connection (1001) and the listener, stay down ``down_s``
        seconds (connections are refused), then listen again on the same port.

        Clears half-open mode; the kill history survives, as the real server's
        cache would be refilled.
        """
        closing_s = 4 * self._settings.close_timeout_s + 1
        self._call_async(
            lambda world: world.restart(down_s), self._call_timeout_s + down_s + closing_s
        )

    def statistics(self) -> KillsServerStatistics:
        """A consistent snapshot of the counters and of every open connection."""
        return self._call(lambda world: world.statistics())

    def run_traffic(
        self, generator: TrafficGenerator, schedule: Schedule, *, tick_s: float = 0.1
    ) -> TrafficRunner:
        """Publish generated kills at the schedule's pace from a new thread.

        The runner owns ``generator`` and ``schedule`` until it stops; :meth:`stop`
        stops it too. Due counts above one become a fight (:meth:`TrafficGenerator.burst`).
        """
        runner = TrafficRunner(self, generator, schedule, tick_s, self._settings.clock)
        with self._runners_lock:
            self._runners.append(runner)
        runner.start()
        return runner

    async def _main(self, started: concurrent.futures.Future[None]) -> None:
        world = _World(self._settings, self._requested_port)
        try:
            await world.listen()
        except BaseException as exc:  # noqa: BLE001  # start() re-raises it in the caller's thread
            started.set_exception(exc)
            return
        self._stop_requested = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._world = world
        started.set_result(None)
        await self._stop_requested.wait()
        await world.shutdown()

    def _running_world(self) -> _World:
        if self._world is None:
            msg = "the kills server is not running"
            raise RuntimeError(msg)
        return self._world

    def _call(self, action: Callable[[_World], _T]) -> _T:
        async def run(world: _World) -> _T:
            return action(world)

        return self._call_async(run, self._call_timeout_s)

    def _call_async(
        self, action: Callable[[_World], Coroutine[Any, Any, _T]], timeout_s: float
    ) -> _T:
        """Run ``action`` on the server's loop and wait for its result.

        Raises:
            RuntimeError: the server is not running, or this is the server's thread.
            TimeoutError: no result within ``timeout_s``.
        """
        world, loop = self._running_world(), self._loop
        assert loop is not None
        if threading.current_thread() is self._thread:
            msg = "KillsServer methods must not be called from the server's own thread"
            raise RuntimeError(msg)
        future = asyncio.run_coroutine_threadsafe(action(world), loop)
        return future.result(timeout=timeout_s)


class TrafficRunner:
    """A thread that publishes generated kills to a :class:`KillsServer` on a schedule.

    Every ``tick_s`` it asks the schedule how many kills are due; one becomes
    :meth:`TrafficGenerator.killmail`, several a :meth:`TrafficGenerator.burst`.
    It ends by itself when the server stops.
    """

    def __init__(
        self,
        server: KillsServer,
        generator: TrafficGenerator,
        schedule: Schedule,
        tick_s: float,
        clock: Callable[[], float],
    ) -> None:
        if tick_s <= 0:
            msg = f"tick_s must be positive, not {tick_s}"
            raise ValueError(msg)
        self._server = server
        self._generator = generator
        self._schedule = schedule
        self._tick_s = tick_s
        self._clock = clock
        self._stopping = threading.Event()
        self._published = 0
        self._thread = threading.Thread(target=self._run, name="kills-traffic", daemon=True)

    @property
    def published(self) -> int:
        """Kills published so far."""
        return self._published

    @property
    def running(self) -> bool:
        """Whether the publishing thread is alive."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Start publishing; :meth:`KillsServer.run_traffic` does this."""
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop publishing and join the thread."""
        self._stopping.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        self._schedule.due(self._clock())
        while not self._stopping.wait(self._tick_s):
            now = self._clock()
            due = self._schedule.due(now)
            if due == 0:
                continue
            kills = [self._generator.killmail(now)] if due == 1 else self._generator.burst(due, now)
            try:
                self._server.publish_many(kills)
            except RuntimeError:
                return  # the server stopped
            except TimeoutError:
                _LOGGER.warning("the kills server did not take %d published kills in time", due)
                continue
            self._published += len(kills)


@dataclass(frozen=True, slots=True)
class _Settings:
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
class _Kill:
    """A published killmail with what matching and preloading need, computed once."""

    killmail_id: int
    system_id: int
    kill_time: float | None
    characters: frozenset[int]
    killmail: dict[str, Any]

    @classmethod
    def of(cls, killmail: Mapping[str, Any]) -> _Kill:
        try:
            copied = orjson.loads(orjson.dumps(killmail))
        except TypeError as exc:
            msg = f"killmail is not JSON-serialisable: {exc}"
            raise ValueError(msg) from exc
        killmail_id, system_id = copied.get("killmail_id"), copied.get("system_id")
        if not _is_int(killmail_id) or not _is_int(system_id):
            msg = "a killmail needs integer killmail_id and system_id"
            raise ValueError(msg)
        kill_time = copied.get("kill_time")
        return cls(
            killmail_id=killmail_id,
            system_id=system_id,
            kill_time=parse_iso(kill_time) if isinstance(kill_time, str) else None,
            characters=frozenset(_involved_characters(copied)),
            killmail=copied,
        )


class _RequestError(Exception):
    """A request the channel answers with an error reply carrying ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Client:
    """The server side of one WebSocket connection and its (at most one) lobby channel."""

    def __init__(self, number: int, socket: ServerConnection, outbox_capacity: int) -> None:
        self.number = number
        self.socket = socket
        self.outbox: asyncio.Queue[str | bytes] = asyncio.Queue(outbox_capacity)
        self.join_ref: object = None
        self.joined = False
        self.subscription_id = ""
        self.connected_at = ""
        self.systems: set[int] = set()
        self.characters: set[int] = set()
        self.all_systems = False
        self.joins = 0
        self.updates = 0
        self.heartbeats = 0
        self.update_times: collections.deque[float] = collections.deque(maxlen=UPDATES_PER_WINDOW)

    def leave(self) -> None:
        self.joined = False
        self.join_ref = None
        self.systems = set()
        self.characters = set()
        self.all_systems = False

    def covers(self, kill: _Kill) -> bool:
        """Whether the channel gets ``kill``: it is on a topic the channel listens to
        (its system's, or the all-systems one) and passes the channel's filter
        (its system is subscribed, or a subscribed character is involved)."""
        if kill.system_id in self.systems:
            return True
        return self.all_systems and not self.characters.isdisjoint(kill.characters)

    def rate_limited(self, now: float) -> bool:
        times = self.update_times
        return len(times) == times.maxlen and now - times[0] < UPDATE_WINDOW_S

    def statistics(self) -> ConnectionStatistics:
        peer = self.socket.remote_address
        return ConnectionStatistics(
            number=self.number,
            peer_port=int(peer[1]) if peer else 0,
            joined=self.joined,
            joins=self.joins,
            subscription_updates=self.updates,
            heartbeats=self.heartbeats,
            systems=frozenset(self.systems),
            characters=frozenset(self.characters),
            outbox_size=self.outbox.qsize(),
            outbox_capacity=self.outbox.maxsize,
        )


class _World:
    """Everything that lives on the server's event loop; only that loop touches it."""

    def __init__(self, settings: _Settings, port: int) -> None:
        self._settings = settings
        self._clock = settings.clock
        self.port = port
        self._server: Server | None = None
        self._connection_class = _connection_class(self)
        # Every socket from TCP accept to close, with the loop time of its last inbound bytes.
        self.sockets: dict[ServerConnection, float] = {}
        self.half_open = False
        self._serving = asyncio.Event()  # set while not half-open
        self._serving.set()
        self._clients: dict[int, _Client] = {}
        self._numbers = itertools.count(1)
        self._history: dict[int, _Kill] = {}
        self._counts: collections.Counter[str] = collections.Counter()
        self._join_refusal: str | None = None

    # -- lifecycle -----------------------------------------------------------

    async def listen(self) -> None:
        settings = self._settings
        self._server = await serve(
            self._serve_client,
            settings.host,
            self.port,
            create_connection=self._connection_class,
            process_request=_only_socket_path,
            server_header="Cowboy",
            compression=None,
            open_timeout=None,  # a half-open server never answers the handshake
            ping_interval=None,  # Cowboy does not ping; clients must
            close_timeout=settings.close_timeout_s,
            max_size=settings.max_frame_size,
            logger=_LOGGER,
        )
        if self.port == 0:
            self.port = int(self._server.sockets[0].getsockname()[1])

    async def shutdown(self) -> None:
        await self._close_listener()

    async def restart(self, down_s: float) -> None:
        await self._close_listener()
        self._counts["restarts"] += 1
        self._set_half_open_flag(False)
        if down_s > 0:
            await asyncio.sleep(down_s)
        await self.listen()

    async def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for socket in list(self.sockets):
            # Sockets still in the opening handshake (and every socket of a
            # half-open server) would never finish a closing handshake.
            if self.half_open or socket.protocol.state is State.CONNECTING:
                socket.transport.abort()
        try:
            async with asyncio.timeout(2 * self._settings.close_timeout_s + 1):
                await server.wait_closed()
        except TimeoutError:
            for socket in list(self.sockets):
                socket.transport.abort()
            await server.wait_closed()

    # -- fault switches and pushes ---------------------------------------------

    def publish(self, kill: _Kill) -> int:
        self._remember(kill)
        self._counts["kills_published"] += 1
        targets = [c for c in self._clients.values() if c.joined and c.covers(kill)]
        if targets:
            frame = _message(
                LOBBY,
                "killmail_update",
                {
                    "system_id": kill.system_id,
                    "killmails": [kill.killmail],
                    "timestamp": iso_micros(self._clock()),
                    "preload": False,
                },
            )
            for client in targets:
                self._send(client, frame)
                self._send(client, frame)
        return len(targets)

    def push_kill_count(self, system_id: int, count: int) -> int:
        targets = [c for c in self._clients.values() if c.joined and system_id in c.systems]
        payload = {"system_id": system_id, "count": count, "timestamp": iso_micros(self._clock())}
        frame = _message(LOBBY, "kill_count_update", payload)
        for client in targets:
            self._send(client, frame)
        return len(targets)

    def drop_all(self) -> int:
        sockets = list(self.sockets)
        for socket in sockets:
            socket.transport.abort()
        self._counts["sockets_dropped"] += len(sockets)
        return len(sockets)

    def set_half_open(self, half_open: bool) -> None:
        self._set_half_open_flag(half_open)
        for socket in self.sockets:
            if half_open:
                socket.transport.pause_reading()
            else:
                socket.transport.resume_reading()

    def _set_half_open_flag(self, half_open: bool) -> None:
        self.half_open = half_open
        if half_open:
            self._serving.clear()
        else:
            self._serving.set()

    def refuse_joins(self, reason: str | None) -> None:
        self._join_refusal = reason

    def send_raw(self, data: str | bytes, systems_joins_only: bool) -> int:
        clients = [
            client
            for client in self._clients.values()
            if not systems_joins_only or (client.joined and client.systems)
        ]
        for client in clients:
            self._send(client, data)
        return len(clients)

    def statistics(self) -> KillsServerStatistics:
        counts = self._counts
        return KillsServerStatistics(
            listening=self._server is not None,
            half_open=self.half_open,
            restarts=counts["restarts"],
            connections_accepted=counts["connections_accepted"],
            connections_current=len(self._clients),
            sockets_open=len(self.sockets),
            joins_ok=counts["joins_ok"],
            joins_error=counts["joins_error"],
            heartbeats_answered=counts["heartbeats_answered"],
            subscription_updates=counts["subscription_updates"],
            subscription_updates_rate_limited=counts["subscription_updates_rate_limited"],
            channel_crashes=counts["channel_crashes"],
            socket_crashes=counts["socket_crashes"],
            idle_timeouts=counts["idle_timeouts"],
            slow_consumer_drops=counts["slow_consumer_drops"],
            sockets_dropped=counts["sockets_dropped"],
            kills_published=counts["kills_published"],
            frames_sent=counts["frames_sent"],
            frames_withheld=counts["frames_withheld"],
            history_size=len(self._history),
            history_capacity=self._settings.history_limit,
            connections=tuple(c.statistics() for c in self._clients.values()),
        )

    # -- one connection --------------------------------------------------------

    async def _serve_client(self, socket: ServerConnection) -> None:
        self._counts["connections_accepted"] += 1
        client = _Client(next(self._numbers), socket, self._settings.outbox_capacity)
        client.connected_at = iso_micros(self._clock())
        self._clients[client.number] = client
        writer = asyncio.create_task(self._write(client))
        try:
            await self._read(client)
        finally:
            writer.cancel()
            del self._clients[client.number]

    async def _read(self, client: _Client) -> None:
        socket, loop = client.socket, asyncio.get_running_loop()
        while socket in self.sockets:
            if self.half_open:
                # A silent server reads nothing and closes nothing, idle or not.
                await self._until_serving(socket)
                self._touch(socket)
                continue
            remaining = self.sockets[socket] + self._settings.idle_timeout_s - loop.time()
            if remaining <= 0:
                self._counts["idle_timeouts"] += 1
                await socket.close(IDLE_CLOSE_CODE, "idle timeout")
                return
            try:
                async with asyncio.timeout(remaining):
                    message = await socket.recv()
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            if not self._serving.is_set():  # it went silent after this frame was read
                await self._until_serving(socket)
            frame = _decode(message)
            if frame is None:
                # Phoenix's serializer raises, the socket process crashes, Cowboy closes.
                self._counts["socket_crashes"] += 1
                await socket.close(CRASH_CLOSE_CODE)
                return
            self._handle(client, frame)

    async def _until_serving(self, socket: ServerConnection) -> None:
        """Wait until half-open mode ends or ``socket`` closes."""
        waits = {
            asyncio.ensure_future(self._serving.wait()),
            asyncio.ensure_future(socket.wait_closed()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def _touch(self, socket: ServerConnection) -> None:
        if socket in self.sockets:
            self.sockets[socket] = asyncio.get_running_loop().time()

    async def _write(self, client: _Client) -> None:
        socket = client.socket
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await client.outbox.get()
                if self.half_open:
                    self._counts["frames_withheld"] += 1
                    continue
                await socket.send(frame)
                self._counts["frames_sent"] += 1

    def _send(self, client: _Client, frame: str | bytes) -> None:
        if client.socket.state is not State.OPEN:
            return
        try:
            client.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self._counts["slow_consumer_drops"] += 1
            client.socket.transport.abort()

    # -- Phoenix ---------------------------------------------------------------

    def _handle(self, client: _Client, frame: dict[str, Any]) -> None:
        topic, event, ref = frame["topic"], frame["event"], frame["ref"]
        if topic == "phoenix" and event == "heartbeat":
            client.heartbeats += 1
            self._counts["heartbeats_answered"] += 1
            self._send(client, _reply(topic, ref, "ok", {}))
        elif topic == LOBBY and event == "phx_join":
            self._join(client, frame)
        elif topic != LOBBY or not client.joined:
            self._send(client, _reply(topic, ref, "error", {"reason": "unmatched topic"}))
        elif event == "phx_leave":
            client.leave()
            self._send(client, _reply(topic, ref, "ok", {}))
        elif event == "get_status":
            self._send(client, _reply(topic, ref, "ok", self._status(client)))
        elif event in _SUBSCRIPTION_EVENTS:
            self._update_subscription(client, event, frame["payload"], ref)
        else:
            self._crash_channel(client)

    def _join(self, client: _Client, frame: dict[str, Any]) -> None:
        ref = frame["ref"]
        if client.joined:
            # Phoenix closes the existing channel before it joins the new one.
            self._send(client, _message(LOBBY, "phx_close", {}, client.join_ref))
            client.leave()
        try:
            if self._join_refusal is not None:
                raise _RequestError(self._join_refusal)
            systems, characters = _join_parameters(frame["payload"])
        except _RequestError as rejected:
            self._counts["joins_error"] += 1
            self._send(client, _reply(LOBBY, ref, "error", {"reason": rejected.reason}))
            return
        client.joined = True
        client.join_ref = frame.get("join_ref", ref)
        client.subscription_id = uuid.uuid4().hex
        client.systems, client.characters = set(systems), set(characters)
        # the real channel picks its topics once, at the join
        client.all_systems = not systems and bool(characters)
        client.joins += 1
        self._counts["joins_ok"] += 1
        response = {
            "subscription_id": client.subscription_id,
            "subscribed_systems": systems,
            "subscribed_characters": characters,
            "status": "connected",
        }
        self._send(client, _reply(LOBBY, ref, "ok", response))
        if systems:
            self._preload(client, systems)

    def _update_subscription(
        self, client: _Client, event: str, payload: object, ref: object
    ) -> None:
        key, adding = _SUBSCRIPTION_EVENTS[event]
        ids = payload.get(key) if isinstance(payload, dict) else None
        if ids is None and key == "character_ids" and isinstance(payload, dict):
            ids = payload.get("characters")  # newer servers' name, both accepted
        if not isinstance(ids, list):
            self._crash_channel(client)  # no handle_in clause matches
            return
        now = self._clock()
        if client.rate_limited(now):
            self._counts["subscription_updates_rate_limited"] += 1
            reason = f"rate limited: at most {UPDATES_PER_WINDOW} subscription updates per minute"
            self._send(client, _reply(LOBBY, ref, "error", {"reason": reason}))
            return
        client.update_times.append(now)
        client.updates += 1
        self._counts["subscription_updates"] += 1
        systems = key == "systems"
        try:
            valid = _valid_systems(ids) if systems else _valid_characters(ids)
            changed = self._apply(client, valid, systems=systems, adding=adding)
        except _RequestError as rejected:
            self._send(client, _reply(LOBBY, ref, "error", {"reason": rejected.reason}))
            return
        noun = "systems" if systems else "characters"
        if changed:
            current = client.systems if systems else client.characters
            response: dict[str, Any] = {f"subscribed_{noun}": sorted(current)}
        elif adding:
            response = {"message": f"Already subscribed to all requested {noun}"}
        else:
            response = {"message": f"Not subscribed to any of the requested {noun}"}
        self._send(client, _reply(LOBBY, ref, "ok", response))
        if systems and adding and changed:
            # The real server preloads newly subscribed systems too.
            self._preload(client, changed)

    def _apply(self, client: _Client, ids: list[int], *, systems: bool, adding: bool) -> list[int]:
        """Change the subscription; returns the ids actually added or removed."""
        current = client.systems if systems else client.characters
        if adding:
            changed = [i for i in ids if i not in current]
            limit, noun = (MAX_SYSTEMS, "systems") if systems else (MAX_CHARACTERS, "characters")
            if len(current) + len(changed) > limit:
                raise _RequestError(f"Too many {noun} (max: {limit})")
            current.update(changed)
        else:
            changed = [i for i in ids if i in current]
            current.difference_update(changed)
        return changed

    def _crash_channel(self, client: _Client) -> None:
        """What a crashing channel process looks like to the client: ``phx_error``, no channel."""
        self._counts["channel_crashes"] += 1
        self._send(client, _message(LOBBY, "phx_error", {}, client.join_ref))
        client.leave()

    def _status(self, client: _Client) -> dict[str, Any]:
        return {
            "subscription_id": client.subscription_id,
            "subscribed_systems": sorted(client.systems),
            "subscribed_characters": sorted(client.characters),
            "connected_at": client.connected_at,
            "user_id": "anonymous",
        }

    def _preload(self, client: _Client, systems: Sequence[int]) -> None:
        """Push the newest kills of each system (oldest first), then ``preload_complete``."""
        limit = self._settings.preload_per_system
        horizon = self._clock() - self._settings.history_s
        found: dict[int, list[dict[str, Any]]] = {system: [] for system in systems}
        unfilled = len(found) if limit > 0 else 0
        for kill in reversed(self._history.values()):
            if unfilled == 0:
                break
            bucket = found.get(kill.system_id)
            if bucket is None or len(bucket) >= limit:
                continue
            if kill.kill_time is not None and kill.kill_time < horizon:
                continue
            bucket.append(kill.killmail)
            if len(bucket) == limit:
                unfilled -= 1
        timestamp = iso_micros(self._clock())
        total = 0
        for system, kills in found.items():
            if kills:
                kills.reverse()
                payload = {
                    "system_id": system,
                    "killmails": kills,
                    "timestamp": timestamp,
                    "preload": True,
                }
                self._send(client, _message(LOBBY, "killmail_update", payload))
                total += len(kills)
        summary = {"total_kills": total, "systems_processed": len(found), "errors": []}
        self._send(client, _message(LOBBY, "preload_complete", summary))

    def _remember(self, kill: _Kill) -> None:
        history = self._history
        history.pop(kill.killmail_id, None)  # a republished kill becomes the newest
        history[kill.killmail_id] = kill
        while len(history) > self._settings.history_limit:
            del history[next(iter(history))]


def _connection_class(world: _World) -> type[ServerConnection]:
    """A ServerConnection that reports to ``world``: registry, inbound time, half-open."""

    class SimulatedConnection(ServerConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            world.sockets[self] = self.loop.time()
            if world.half_open:
                cast("asyncio.Transport", transport).pause_reading()

        def data_received(self, data: bytes) -> None:
            if self in world.sockets:
                world.sockets[self] = self.loop.time()
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            world.sockets.pop(self, None)
            super().connection_lost(exc)

    return SimulatedConnection


def _only_socket_path(connection: ServerConnection, request: Request) -> Response | None:
    if urlsplit(request.path).path.rstrip("/") != SOCKET_PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
    return None


def _decode(message: str | bytes) -> dict[str, Any] | None:
    """A Phoenix V1 message, or None for anything the V1 serializer would crash on."""
    if isinstance(message, bytes):
        return None
    try:
        frame = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(frame, dict) or not {"topic", "event", "payload", "ref"} <= frame.keys():
        return None
    if not isinstance(frame["topic"], str) or not isinstance(frame["event"], str):
        return None
    return frame


def _message(topic: str, event: str, payload: Mapping[str, Any], ref: object = None) -> str:
    frame = {"topic": topic, "event": event, "payload": payload, "ref": ref}
    return orjson.dumps(frame).decode()


def _reply(topic: str, ref: object, status: str, response: Mapping[str, Any]) -> str:
    return _message(topic, "phx_reply", {"status": status, "response": response}, ref)


def _join_parameters(payload: object) -> tuple[list[int], list[int]]:
    """The validated systems and characters of a join; the preload options are ignored.

    Characters may come as ``character_ids`` or (newer servers) ``characters``;
    both are read.
    """
    if not isinstance(payload, dict):
        raise _RequestError("join crashed")
    systems = payload.get("systems", [])
    character_ids, characters = payload.get("character_ids", []), payload.get("characters", [])
    if not all(isinstance(ids, list) for ids in (systems, character_ids, characters)):
        raise _RequestError("join crashed")
    return _valid_systems(systems), _valid_characters([*character_ids, *characters])


def _valid_systems(ids: list[Any]) -> list[int]:
    if len(ids) > MAX_SYSTEMS:
        raise _RequestError(f"Too many systems (max: {MAX_SYSTEMS})")
    if not all(_is_int(i) for i in ids):
        raise _RequestError("System IDs must be integers")
    if not all(0 < i <= MAX_SYSTEM_ID for i in ids):
        raise _RequestError("Invalid system IDs")
    return list(dict.fromkeys(ids))


def _valid_characters(ids: list[Any]) -> list[int]:
    if len(ids) > MAX_CHARACTERS:
        raise _RequestError(f"Too many characters (max: {MAX_CHARACTERS})")
    if not all(_is_int(i) for i in ids):
        raise _RequestError("Character IDs must be integers")
    if not all(MIN_CHARACTER_ID <= i <= MAX_CHARACTER_ID for i in ids):
        raise _RequestError("Invalid character IDs")
    return list(dict.fromkeys(ids))


def _is_int(value: object) -> bool:
    """An integer as Elixir's ``is_integer`` sees JSON: booleans are not integers."""
    return isinstance(value, int) and not isinstance(value, bool)


def _involved_characters(killmail: Mapping[str, Any]) -> Iterable[int]:
    victim = killmail.get("victim")
    if isinstance(victim, dict) and _is_int(victim.get("character_id")):
        yield victim["character_id"]
    attackers = killmail.get("attackers")
    if isinstance(attackers, list):
        for attacker in attackers:
            if isinstance(attacker, dict) and _is_int(attacker.get("character_id")):
                yield attacker["character_id"]

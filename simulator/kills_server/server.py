"""The kills server's control API: :class:`KillsServer`, and :class:`TrafficRunner`
that publishes generated kills to it on a schedule.

The server's event loop runs in a thread :class:`KillsServer` owns; every
public method hands its work to that loop and waits for the answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from simulator.kills_server.model import KillsServerStatistics, Settings
from simulator.kills_server.phoenix import SOCKET_PATH, Kill
from simulator.kills_server.sockets import LOGGER, Sockets
from simulator.traffic import Schedule, TrafficGenerator

_T = TypeVar("_T")


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
        self._settings = Settings(
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
        self._sockets: Sockets | None = None
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
        return self._running_sockets().port

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
            LOGGER.warning("the kills server thread did not end in time")
        self._thread = self._loop = self._sockets = self._stop_requested = None

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
        kill = Kill.of(killmail)
        return self._call(lambda sockets: sockets.lobby.publish(kill))

    def publish_many(self, killmails: Iterable[Mapping[str, Any]]) -> int:
        """:meth:`publish` each kill, in order, in one hand-over to the server thread.

        The batch is validated first (one invalid killmail publishes none) and
        then handled without interruption, so keep batches to a few thousand.

        Returns:
            The sum over the kills of the connections each was pushed to.
        """
        kills = [Kill.of(killmail) for killmail in killmails]
        return self._call(lambda sockets: sum(sockets.lobby.publish(kill) for kill in kills))

    def push_kill_count(self, system_id: int, count: int) -> int:
        """Push a ``kill_count_update`` to every joined client subscribed to ``system_id``."""
        return self._call(lambda sockets: sockets.lobby.push_kill_count(system_id, count))

    def drop_all(self) -> int:
        """Abort every TCP connection (RST, no close frame); returns how many."""
        return self._call(lambda sockets: sockets.drop_all())

    def set_half_open(self, half_open: bool) -> None:
        """Switch half-open mode: sockets stay up but the server goes silent.

        While half-open the server reads nothing (so it answers neither Phoenix
        heartbeats nor WebSocket pings: the kernel still acknowledges the bytes),
        writes nothing (pushes and replies are discarded and counted as
        withheld), does not close idle sockets, and never completes the opening
        handshake of new connections. Switching it off resumes reading: what
        clients sent meanwhile is then processed, and answered.
        """
        self._call(lambda sockets: sockets.set_half_open(half_open))

    def refuse_joins(self, reason: str | None) -> None:
        """Answer every ``phx_join`` with an error reply of ``reason`` (``None``: join again).

        As the real server refuses a join it cannot take; counted as ``joins_error``.
        """
        self._call(lambda sockets: sockets.lobby.refuse_joins(reason))

    def send_raw(self, data: str | bytes, *, systems_joins_only: bool = False) -> int:
        """Send ``data`` as is to every connected client: ``str`` as a text frame,
        ``bytes`` as a binary frame. Returns how many clients it was queued for.

        ``systems_joins_only``: only to the channels joined with systems (a
        preload never goes to a characters-only channel on the real server).
        """
        return self._call(lambda sockets: sockets.lobby.send_raw(data, systems_joins_only))

    def restart(self, down_s: float = 0.0) -> None:
        """Close every connection (1001) and the listener, stay down ``down_s``
        seconds (connections are refused), then listen again on the same port.

        Clears half-open mode; the kill history survives, as the real server's
        cache would be refilled.
        """
        closing_s = 4 * self._settings.close_timeout_s + 1
        self._call_async(
            lambda sockets: sockets.restart(down_s), self._call_timeout_s + down_s + closing_s
        )

    def statistics(self) -> KillsServerStatistics:
        """A consistent snapshot of the counters and of every open connection."""
        return self._call(lambda sockets: sockets.statistics())

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
        sockets = Sockets(self._settings, self._requested_port)
        try:
            await sockets.listen()
        except BaseException as exc:  # noqa: BLE001  # start() re-raises it in the caller's thread
            started.set_exception(exc)
            return
        self._stop_requested = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._sockets = sockets
        started.set_result(None)
        await self._stop_requested.wait()
        await sockets.shutdown()

    def _running_sockets(self) -> Sockets:
        if self._sockets is None:
            msg = "the kills server is not running"
            raise RuntimeError(msg)
        return self._sockets

    def _call(self, action: Callable[[Sockets], _T]) -> _T:
        async def run(sockets: Sockets) -> _T:
            return action(sockets)

        return self._call_async(run, self._call_timeout_s)

    def _call_async(
        self, action: Callable[[Sockets], Coroutine[Any, Any, _T]], timeout_s: float
    ) -> _T:
        """Run ``action`` on the server's loop and wait for its result.

        Raises:
            RuntimeError: the server is not running, or this is the server's thread.
            TimeoutError: no result within ``timeout_s``.
        """
        sockets, loop = self._running_sockets(), self._loop
        assert loop is not None
        if threading.current_thread() is self._thread:
            msg = "KillsServer methods must not be called from the server's own thread"
            raise RuntimeError(msg)
        future = asyncio.run_coroutine_threadsafe(action(sockets), loop)
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
                LOGGER.warning("the kills server did not take %d published kills in time", due)
                continue
            self._published += len(kills)

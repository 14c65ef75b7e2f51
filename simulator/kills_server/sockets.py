"""The kills server's sockets: the WebSocket listener on its event loop, each
connection's reading and writing, and the socket-level fault switches.

Everything here runs on the server's event loop only. A connection's frames
are decoded here and handed to the :class:`~simulator.kills_server.lobby.Lobby`;
what the lobby sends goes through a bounded outbox per connection (a client
that lets it fill is a slow consumer and is dropped). Half-open mode stops
reading and writing on every socket while keeping them up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from http import HTTPStatus
from typing import cast
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from simulator.kills_server.lobby import Client, Lobby
from simulator.kills_server.model import KillsServerStatistics, Settings
from simulator.kills_server.phoenix import CRASH_CLOSE_CODE, IDLE_CLOSE_CODE, SOCKET_PATH, decode
from simulator.traffic import iso_micros

LOGGER = logging.getLogger("simulator.kills_server")


class Sockets:
    """The listener, every open socket and its client, on the server's event loop."""

    def __init__(self, settings: Settings, port: int) -> None:
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
        self._numbers = itertools.count(1)
        self._counts: collections.Counter[str] = collections.Counter()
        self.lobby = Lobby(settings, self._counts, self._send)

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
            logger=LOGGER,
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

    # -- fault switches ------------------------------------------------------------

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

    def statistics(self) -> KillsServerStatistics:
        counts, lobby = self._counts, self.lobby
        return KillsServerStatistics(
            listening=self._server is not None,
            half_open=self.half_open,
            restarts=counts["restarts"],
            connections_accepted=counts["connections_accepted"],
            connections_current=len(lobby.clients),
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
            history_size=len(lobby.history),
            history_capacity=self._settings.history_limit,
            connections=tuple(c.statistics() for c in lobby.clients.values()),
        )

    # -- one connection --------------------------------------------------------

    async def _serve_client(self, socket: ServerConnection) -> None:
        self._counts["connections_accepted"] += 1
        client = Client(next(self._numbers), socket, self._settings.outbox_capacity)
        client.connected_at = iso_micros(self._clock())
        clients = self.lobby.clients
        clients[client.number] = client
        writer = asyncio.create_task(self._write(client))
        try:
            await self._read(client)
        finally:
            writer.cancel()
            del clients[client.number]

    async def _read(self, client: Client) -> None:
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
            frame = decode(message)
            if frame is None:
                # Phoenix's serializer raises, the socket process crashes, Cowboy closes.
                self._counts["socket_crashes"] += 1
                await socket.close(CRASH_CLOSE_CODE)
                return
            self.lobby.handle(client, frame)

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

    async def _write(self, client: Client) -> None:
        socket = client.socket
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await client.outbox.get()
                if self.half_open:
                    self._counts["frames_withheld"] += 1
                    continue
                await socket.send(frame)
                self._counts["frames_sent"] += 1

    def _send(self, client: Client, frame: str | bytes) -> None:
        if client.socket.state is not State.OPEN:
            return
        try:
            client.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self._counts["slow_consumer_drops"] += 1
            client.socket.transport.abort()


def _connection_class(sockets: Sockets) -> type[ServerConnection]:
    """A ServerConnection that reports to ``sockets``: registry, inbound time, half-open."""

    class SimulatedConnection(ServerConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            sockets.sockets[self] = self.loop.time()
            if sockets.half_open:
                cast("asyncio.Transport", transport).pause_reading()

        def data_received(self, data: bytes) -> None:
            if self in sockets.sockets:
                sockets.sockets[self] = self.loop.time()
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            sockets.sockets.pop(self, None)
            super().connection_lost(exc)

    return SimulatedConnection


def _only_socket_path(connection: ServerConnection, request: Request) -> Response | None:
    if urlsplit(request.path).path.rstrip("/") != SOCKET_PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
    return None

"""The map server's serving loop: an asyncio loop on a thread of its own.

It accepts connections, routes requests (the REST endpoints, the static-info
endpoint and the event stream), and runs each open stream: the response
head, the ``connected`` event, the backfill, then live events and keepalives,
laid out by the current framing (:mod:`simulator.map_server.wire`). Every
answer is decided by the shared :class:`~simulator.map_server.state.MapState`.
Each connection gets ``TCP_NODELAY`` and no user-space write buffer, so that
each chunk reaches the kernel as one write before the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import orjson

from simulator.map_server.state import MapState
from simulator.map_server.wire import (
    MAX_REQUEST_HEAD,
    NEWLINES,
    STREAM_HEAD,
    Entry,
    Request,
    RequestError,
    chunk,
    parse_filter,
    read_request,
    render,
    send_error,
    send_response,
    split,
    wait_for_hangup,
    write,
)

STATIC_INFO_PATH = "/api/common/system-static-info"
_COALESCE_LINGER_S = 0.02
_WRITE_BATCH = 64
"""Most queued items one stream takes per wake-up (and per coalesced write)."""
_SHUTDOWN_TIMEOUT_S = 10.0
_CALL_TIMEOUT_S = 10.0

_T = TypeVar("_T")


class Stream:
    """One open SSE response; touched only on the loop thread."""

    __slots__ = (
        "backfill",
        "cut_next",
        "dead",
        "queue",
        "snapshot_seq",
        "task",
        "wanted",
        "writer",
    )

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        *,
        wanted: frozenset[str] | None,
        backfill: list[Entry],
        snapshot_seq: int,
        dead: bool,
        queue_bound: int,
    ) -> None:
        self.writer = writer
        self.wanted = wanted
        self.backfill = backfill
        self.snapshot_seq = snapshot_seq
        self.dead = dead
        self.cut_next = False
        self.queue: asyncio.Queue[Entry | bytes] = asyncio.Queue(queue_bound)
        self.task: asyncio.Task[None] | None = None

    def wants(self, event_type: str) -> bool:
        return self.wanted is None or event_type in self.wanted


class MapHttp:
    """Serves one :class:`MapState` over HTTP/1.1 from a loop thread of its own.

    Args:
        state: what the map holds and decides.
        host, port: where to listen (``port=0`` picks a free port; a restart
            reuses the port first bound).
        keepalive_s: silence after which a stream gets ``: keepalive``.
        max_queued: bound of each stream's outgoing queue.
        split_rng: the cut positions of the ``split`` framing.
    """

    def __init__(
        self,
        state: MapState,
        *,
        host: str,
        port: int,
        keepalive_s: float,
        max_queued: int,
        split_rng: random.Random,
    ) -> None:
        self._state = state
        self.host = host
        self.port = port
        self._keepalive_s = keepalive_s
        self._max_queued = max_queued
        self._split_rng = split_rng
        self._streams: set[Stream] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._startup_error: OSError | None = None

    @property
    def open_streams(self) -> int:
        """Streams open now (read under the state's lock)."""
        return len(self._streams)

    # -- lifecycle (any thread) ----------------------------------------------------

    def start(self) -> None:
        """Listen and serve on a background thread; returns once listening.

        Raises:
            RuntimeError: already running, or the thread ended before listening.
            OSError: the address could not be bound.
        """
        if self._thread is not None:
            msg = "the map server is already running"
            raise RuntimeError(msg)
        ready = threading.Event()
        self._startup_error = None
        thread = threading.Thread(
            target=self._run, args=(ready,), name=f"map-server:{self._state.slug}", daemon=True
        )
        thread.start()
        ready.wait()
        if self._startup_error is not None or self._loop is None:
            thread.join()
            if self._startup_error is not None:
                raise self._startup_error
            msg = "the map server thread ended before it was listening"
            raise RuntimeError(msg)
        self._thread = thread

    def stop(self) -> None:
        """Close every connection, stop listening and join the thread (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with self._state.lock:
            loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None:
            loop.call_soon_threadsafe(stop_event.set)
        thread.join()

    def on_loop(self, coroutine: Coroutine[Any, Any, _T], default: _T) -> _T:
        """Run ``coroutine`` on the loop thread and wait for its result (``default``
        when not running)."""
        with self._state.lock:
            loop = self._loop
        if loop is None:
            coroutine.close()
            return default
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(_CALL_TIMEOUT_S)

    def fan_out_soon(self, entry: Entry) -> None:
        """Queue ``entry`` to every stream that wants it, on the loop (caller holds the lock)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._fan_out, entry)

    # -- the loop thread -------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            ready.set()
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        stop_event = asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._handle, self.host, self.port, limit=MAX_REQUEST_HEAD
            )
        except OSError as error:
            self._startup_error = error
            ready.set()
            return
        connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._connections = connections
        with self._state.lock:
            self._loop = asyncio.get_running_loop()
            self._stop_event = stop_event
            self.port = server.sockets[0].getsockname()[1]
        ready.set()
        await stop_event.wait()
        server.close()
        with self._state.lock:
            self._loop = None
            self._stop_event = None
        # Aborting the sockets ends every handler on its own (EOF on read, error
        # on write); cancelling them instead makes asyncio's stream callback log.
        for writer in connections.values():
            writer.transport.abort()
        if connections:
            await asyncio.wait(set(connections), timeout=_SHUTDOWN_TIMEOUT_S)
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # No user-space buffering: each write reaches the kernel before drain() returns.
        writer.transport.set_write_buffer_limits(high=0)
        try:
            with contextlib.suppress(OSError):
                try:
                    request = await read_request(reader)
                except RequestError as error:
                    await send_error(writer, error.status)
                    return
                if request is not None:
                    await self._route(request, reader, writer)
        finally:
            writer.close()
            if task is not None:
                self._connections.pop(task, None)

    async def _route(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        state = self._state
        if request.path == STATIC_INFO_PATH:
            status, body = state.static_info_answer(request)
            await send_response(writer, status, orjson.dumps(body))
            return
        parts = request.path.split("/")
        # ["", "api", "maps", MAP, "events", "stream"] or ["", "api", "maps", MAP, ENDPOINT]
        if len(parts) < 5 or parts[:3] != ["", "api", "maps"]:
            await send_error(writer, 404, "Not found", "NOT_FOUND")
            return
        endpoint = "/".join(parts[4:])
        if endpoint not in ("events/stream", "systems", "tracked-characters"):
            await send_error(writer, 404, "Not found", "NOT_FOUND")
            return
        if request.method != "GET":
            await send_error(writer, 405)
            return
        if endpoint == "events/stream":
            await self._serve_stream(request, parts[3], reader, writer)
            return
        with state.lock:
            state.rest_requests += 1
            refusal = state.refusal(request, parts[3])
            if refusal is None:
                body = state.systems_body() if endpoint == "systems" else state.characters_body()
        if refusal is not None:
            await send_error(writer, refusal)
            return
        await send_response(writer, 200, orjson.dumps(body))

    def _admit(self, request: Request, map_ref: str, writer: asyncio.StreamWriter) -> Stream | int:
        """Decide a stream request: a registered stream, or the status to refuse with."""
        state = self._state
        with state.lock:
            status = state.stream_refusal(request, map_ref, len(self._streams))
            if status is not None:
                return status
            wanted = parse_filter(request.query.get("events"))
            stream = Stream(
                writer,
                wanted=wanted,
                backfill=state.backfill(request.query.get("last_event_id"), wanted),
                snapshot_seq=state.seq,
                dead=state.silent,
                queue_bound=self._max_queued,
            )
            self._streams.add(stream)
            return stream

    async def _serve_stream(
        self,
        request: Request,
        map_ref: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        admitted = self._admit(request, map_ref, writer)
        if isinstance(admitted, int):
            await send_error(writer, admitted)
            return
        stream = admitted
        pump = asyncio.ensure_future(self._pump(stream))
        stream.task = pump
        hangup = asyncio.ensure_future(wait_for_hangup(reader))
        try:
            await asyncio.wait((pump, hangup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            with self._state.lock:
                self._streams.discard(stream)
            for task in (pump, hangup):
                task.cancel()
            outcomes = await asyncio.gather(pump, hangup, return_exceptions=True)
        for outcome in outcomes:
            # A client going away is routine; anything else is a bug to surface.
            if isinstance(outcome, Exception) and not isinstance(outcome, OSError):
                raise outcome

    async def _pump(self, stream: Stream) -> None:
        """Write the head, ``connected``, the backfill, then live events and keepalives."""
        state = self._state
        loop = asyncio.get_running_loop()
        await write(stream.writer, STREAM_HEAD)
        if not stream.dead:
            with state.lock:
                connected = state.connected()
            await self._write_items(stream, [connected, *stream.backfill])
        stream.backfill = []
        last_write = loop.time()
        while True:
            timeout = max(0.0, self._keepalive_s - (loop.time() - last_write))
            try:
                first = await asyncio.wait_for(stream.queue.get(), timeout)
            except TimeoutError:
                with state.lock:
                    keepalive = state.keepalive_enabled and not stream.dead
                    newline = NEWLINES[state.framing]
                if keepalive:
                    await self._send(stream, b": keepalive" + newline + newline)
                    with state.lock:
                        state.keepalives += 1
                last_write = loop.time()
                continue
            items = [first]
            _take_queued(stream.queue, items)
            if state.framing == "coalesce" and len(items) == 1:
                await asyncio.sleep(_COALESCE_LINGER_S)
                _take_queued(stream.queue, items)
            if not stream.dead:
                await self._write_items(stream, items)
                last_write = loop.time()

    async def _write_items(self, stream: Stream, items: list[Entry | bytes]) -> None:
        """Write events and raw payloads in order, laid out by the current framing."""
        state = self._state
        with state.lock:
            framing = state.framing
        newline = NEWLINES[framing]
        if framing == "coalesce" and not stream.cut_next:
            for start in range(0, len(items), _WRITE_BATCH):
                batch = items[start : start + _WRITE_BATCH]
                await self._send(stream, b"".join(render(item, newline) for item in batch))
                with state.lock:
                    state.count_written(batch)
            return
        for item in items:
            data = render(item, newline)
            if isinstance(item, Entry) and stream.cut_next:
                await self._send(stream, data[: max(1, len(data) // 2)])
                stream.writer.close()
                return
            if isinstance(item, Entry) and framing == "split":
                for piece in split(data, self._split_rng):
                    await self._send(stream, piece)
            else:
                await self._send(stream, data)
            with state.lock:
                state.count_written([item])

    async def _send(self, stream: Stream, data: bytes) -> None:
        await write(stream.writer, chunk(data))

    # -- loop-side actions of the fault switches ----------------------------------------

    def _fan_out(self, entry: Entry) -> None:
        for stream in list(self._streams):
            if entry.seq > stream.snapshot_seq and not stream.dead and stream.wants(entry.type):
                self._enqueue(stream, entry)

    def _enqueue(self, stream: Stream, item: Entry | bytes) -> bool:
        try:
            stream.queue.put_nowait(item)
        except asyncio.QueueFull:
            stream.writer.transport.abort()
            with self._state.lock:
                self._streams.discard(stream)
                self._state.slow_drops += 1
            return False
        return True

    async def queue_raw(self, data: bytes) -> int:
        """Queue ``data`` to every live stream; how many."""
        return sum(self._enqueue(stream, data) for stream in list(self._streams) if not stream.dead)

    async def kill_streams(self) -> None:
        """Make every open stream dead for good."""
        for stream in list(self._streams):
            stream.dead = True

    async def drop_streams(self, *, mid_event: bool) -> int:
        """Close every open stream now, or (``mid_event``) halfway through its next event."""
        streams = list(self._streams)
        if mid_event:
            for stream in streams:
                stream.cut_next = True
            return len(streams)
        for stream in streams:
            stream.writer.transport.abort()
        tasks = [stream.task for stream in streams if stream.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=_SHUTDOWN_TIMEOUT_S)
        return len(streams)


def _take_queued(queue: asyncio.Queue[Entry | bytes], items: list[Entry | bytes]) -> None:
    while len(items) < _WRITE_BATCH and not queue.empty():
        items.append(queue.get_nowait())
